import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseEnvFile } from '#local/platform/env-file.js';
import { DEFAULT_PORTS, type PortName, type Ports, portFlag } from '#local/platform/ports.js';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
export const CLI = join(REPO_ROOT, 'dist', 'scripts', 'cli.js');

/** Where `.batchwire/env` gives each service's address (`127.0.0.1:PORT` or a URL). */
const ADDRESS_VARIABLES: Record<PortName, string> = {
  pubsub: 'PUBSUB_EMULATOR_HOST',
  storage: 'STORAGE_EMULATOR_HOST',
  batch: 'BATCH_EMULATOR_HOST',
  workflows: 'WORKFLOWS_EMULATOR_HOST',
  run: 'RUN_EMULATOR_HOST',
  onUpload: 'BATCHWIRE_ON_UPLOAD_URL',
  onSchedule: 'BATCHWIRE_ON_SCHEDULE_URL',
  onComplete: 'BATCHWIRE_ON_COMPLETE_URL',
  scheduler: 'BATCHWIRE_SCHEDULER_URL',
  console: 'BATCHWIRE_CONSOLE_URL',
};

/**
 * `--<name>-port N` for each port given. N = 0 lets the service bind a port of the kernel's
 * choice: a port picked by the test and handed over could be taken by a parallel test first.
 */
export function portArgs(ports: Partial<Ports>): string[] {
  return Object.entries(ports).flatMap(([name, port]) => [portFlag(name as PortName), String(port)]);
}

/** Port 0 for each name: every service binds a port of its own choosing and reports it. */
export function anyPorts(names: readonly PortName[]): Partial<Ports> {
  return Object.fromEntries(names.map((name) => [name, 0]));
}

/** The ports a running platform bound, read from the addresses in its `.batchwire/env`. */
export function portsFromEnv(env: Record<string, string>, names: readonly PortName[]): Partial<Ports> {
  return Object.fromEntries(
    names.map((name) => {
      const address = env[ADDRESS_VARIABLES[name]] ?? '';
      const port = /:(\d+)\/?$/.exec(address)?.[1];
      if (!port)
        throw new Error(`.batchwire/env has no port for ${name}: ${ADDRESS_VARIABLES[name]}=${address}`);
      return [name, Number(port)];
    }),
  );
}

/** The services `batchwire dev` moves with `--<name>-port N` (Pub/Sub aside: the run's emulator serves it). */
export const PLATFORM_PORT_NAMES = (Object.keys(DEFAULT_PORTS) as PortName[]).filter(
  (name) => name !== 'pubsub',
);

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
  /** `--*-port` arguments with the ports it bound: pass them to a restart to keep its addresses. */
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
 * process — every service on port 0 (each binds a port of its own choosing), in a fresh working
 * directory — and waits for `.batchwire/env`, which the platform writes only once everything
 * answers, with the address of every service (written by this run: one a killed run left in a
 * reused directory does not count).
 */
export async function startCliPlatform(options: {
  config: string;
  extraArgs?: string[];
  timeoutMs?: number;
  /** Let the platform start (and stop) its own Pub/Sub emulator instead of the test run's. */
  ownPubSub?: boolean;
  /** Reuse a working directory (default: a fresh one). */
  workDir?: string;
  /** Reuse these `--*-port` arguments (a restart on the same addresses) instead of port 0. */
  portArgs?: string[];
  /** Run it as the leader of its own process group (its `pid` is then the group id). */
  detached?: boolean;
}): Promise<CliPlatform> {
  const workDir = options.workDir ?? mkdtempSync(join(tmpdir(), 'batchwire-e2e-'));
  const envFile = join(workDir, '.batchwire', 'env');
  const portNames: PortName[] = options.ownPubSub ? ['pubsub', ...PLATFORM_PORT_NAMES] : PLATFORM_PORT_NAMES;
  const args = options.portArgs ?? portArgs(anyPorts(portNames));
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    BATCHWIRE_CONFIG: options.config,
    METADATA_SERVER_DETECTION: 'none',
  };
  if (options.ownPubSub) {
    delete childEnv.PUBSUB_EMULATOR_HOST;
  }
  let output = '';
  const spawnedAt = Date.now();
  const child: ChildProcess = spawn(
    process.execPath,
    [CLI, 'dev', '--json', ...args, ...(options.extraArgs ?? [])],
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
  const writtenByThisRun = () => existsSync(envFile) && statSync(envFile).mtimeMs >= spawnedAt;
  while (!writtenByThisRun()) {
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
    portArgs: portArgs(portsFromEnv(env, portNames)),
    pid: child.pid as number,
    exited,
    async dispose() {
      if (!hasExited) child.kill('SIGINT');
      await exited;
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}

/** Processes whose working directory is `dir` (the platform runs its emulator in `--data`/pubsub). */
export function processesIn(dir: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readlinkSync(`/proc/${pid}/cwd`) === dir;
      } catch {
        return false;
      }
    })
    .map(Number);
}
