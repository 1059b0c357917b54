import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseEnvFile } from '../../local/platform/env-file.js';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
export const CLI = join(REPO_ROOT, 'dist', 'scripts', 'cli.js');

/** A free loopback port (bound, read, released). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** The services `batchwire dev` moves with `--<name>-port N` (Pub/Sub aside: the run's emulator serves it). */
export const PLATFORM_PORT_NAMES = [
  'storage',
  'batch',
  'workflows',
  'run',
  'on-upload',
  'on-schedule',
  'on-complete',
  'scheduler',
  'console',
] as const;

/** `--<name>-port N` for each name, each N a free loopback port, and the ports by name. */
export async function freePortArgs(
  names: readonly string[],
): Promise<{ args: string[]; ports: Record<string, number> }> {
  const args: string[] = [];
  const ports: Record<string, number> = {};
  for (const name of names) {
    ports[name] = await freePort();
    args.push(`--${name}-port`, String(ports[name]));
  }
  return { args, ports };
}

export interface CliPlatform {
  env: Record<string, string>;
  /** Everything the dev process printed so far. */
  output(): string;
  workDir: string;
  envFile: string;
  /** Ctrl-C, as a user stops it; resolves with the exit code. Safe to call twice. */
  stop(interrupts?: number): Promise<number | null>;
  /** SIGTERM, as a process manager or CI stops it; resolves with the exit code. */
  terminate(): Promise<number | null>;
  /** The `--*-port` arguments it was started with: pass them to a restart to keep its addresses. */
  portArgs: string[];
  /** The `batchwire dev` process id. */
  pid: number;
  /** Resolves with the exit code once the process exited, however it was stopped. */
  exited: Promise<number | null>;
  /** Stops (if running) and removes the working directory. */
  dispose(): Promise<void>;
}

/**
 * Starts the platform exactly as a user does — `batchwire dev` (the built CLI) in its own
 * process — on free ports, in a fresh working directory, and waits for `.batchwire/env`,
 * which the platform writes only once everything answers.
 */
export async function startCliPlatform(options: {
  config: string;
  extraArgs?: string[];
  timeoutMs?: number;
  /** Let the platform start (and stop) its own Pub/Sub emulator instead of the test run's. */
  ownPubSub?: boolean;
  /** Reuse a working directory (default: a fresh one). */
  workDir?: string;
  /** Reuse these `--*-port` arguments (a restart on the same addresses) instead of free ports. */
  portArgs?: string[];
  /** Run it as the leader of its own process group (its `pid` is then the group id). */
  detached?: boolean;
}): Promise<CliPlatform> {
  const workDir = options.workDir ?? mkdtempSync(join(tmpdir(), 'batchwire-e2e-'));
  const envFile = join(workDir, '.batchwire', 'env');
  const portArgs = options.portArgs ? [...options.portArgs] : (await freePortArgs(PLATFORM_PORT_NAMES)).args;
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    BATCHWIRE_CONFIG: options.config,
    METADATA_SERVER_DETECTION: 'none',
  };
  if (options.ownPubSub) {
    delete childEnv.PUBSUB_EMULATOR_HOST;
    if (!portArgs.includes('--pubsub-port')) portArgs.push('--pubsub-port', String(await freePort()));
  }
  let output = '';
  const child: ChildProcess = spawn(
    process.execPath,
    [CLI, 'dev', '--json', ...portArgs, ...(options.extraArgs ?? [])],
    {
      cwd: workDir,
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: options.detached ?? false,
    },
  );
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });

  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  while (!existsSync(envFile)) {
    if (hasExited) throw new Error(`batchwire dev exited before it was ready:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGINT');
      throw new Error(`batchwire dev was not ready in time:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const env = parseEnvFile(readFileSync(envFile, 'utf8'));
  return {
    env,
    workDir,
    envFile,
    output: () => output,
    async stop(interrupts = 1) {
      for (let i = 0; i < interrupts && !hasExited; i++) child.kill('SIGINT');
      return exited;
    },
    async terminate() {
      if (!hasExited) child.kill('SIGTERM');
      return exited;
    },
    portArgs,
    pid: child.pid as number,
    exited,
    async dispose() {
      if (!hasExited) child.kill('SIGINT');
      await exited;
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}
