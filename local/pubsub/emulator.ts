import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { PermanentError } from '#shared/runtime/errors.js';

/** A running Pub/Sub emulator (Google's own, from the gcloud SDK). */
export interface PubSubEmulator {
  /** `127.0.0.1:PORT`, the value for `PUBSUB_EMULATOR_HOST`. */
  host: string;
  port: number;
  /** The emulator's process, when this process started it (not for one named by PUBSUB_EMULATOR_HOST). */
  pid?: number;
  stop(): Promise<void>;
}

/** Google's Pub/Sub emulator (or the Java it runs on) is not installed on this machine. */
export class PubSubEmulatorMissingError extends PermanentError {}

const INSTALL_HINT =
  'Install it with `gcloud components install pubsub-emulator` (or, where gcloud comes from apt, ' +
  '`sudo apt-get install google-cloud-cli-pubsub-emulator`), and Java 17 or newer ' +
  '(e.g. `sudo apt-get install openjdk-17-jre-headless`). ' +
  'Alternatively start an emulator yourself and set PUBSUB_EMULATOR_HOST=host:port.';

const EMULATOR_RELATIVE = join('platform', 'pubsub-emulator', 'bin', 'cloud-pubsub-emulator');

/**
 * JVM options for the emulator, passed through its launcher's own variable
 * (`CLOUD_PUBSUB_EMULATOR_OPTS`, read by the launcher script after `JAVA_OPTS`) unless the user
 * set that variable. The JVM's defaults are sized for a long-running server that owns the
 * machine: a heap starting at 1/64 of RAM, G1, and two JIT tiers whose C2 compiles cost more CPU
 * than a local emulator's short life repays. Measured with 9,000 messages through 6 topics
 * (publish, streaming pull, ack): peak RSS 197 → 138 MiB, CPU under load 4.0 → 2.7 s.
 * - `-Xms16m -Xmx256m`: the heap grows from small as messages need it, with a bound far above
 *   what a local burst holds (its messages are small and acked within seconds);
 * - `-XX:+UseSerialGC`: no GC threads or G1 regions for a heap this size;
 * - `-XX:TieredStopAtLevel=1`: C1 only, the compiler that pays off in minutes, not hours;
 * - `-Xss512k`: its gRPC threads need no 1 MiB stacks.
 */
export const EMULATOR_JVM_OPTIONS = '-Xms16m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k';
const READY_TIMEOUT_MS = 60_000;

function onPath(program: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, program);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** SDK roots to look in, cheapest first; `gcloud info` (a Python start, ~1 s) only as a last resort. */
function* sdkRoots(): Generator<string> {
  if (process.env.CLOUDSDK_ROOT_DIR) yield process.env.CLOUDSDK_ROOT_DIR;
  const gcloud = onPath('gcloud');
  if (gcloud) {
    // `gcloud` is SDK_ROOT/bin/gcloud, usually reached through a symlink such as /usr/bin/gcloud.
    yield dirname(dirname(realpathSync(gcloud)));
  }
  yield '/usr/lib/google-cloud-sdk';
  yield '/usr/share/google-cloud-sdk';
  yield join(homedir(), 'google-cloud-sdk');
  if (gcloud) {
    try {
      const root = execFileSync(gcloud, ['info', '--format=value(installation.sdk_root)'], {
        encoding: 'utf8',
        timeout: 15_000,
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
      if (root) yield root;
    } catch {
      // gcloud is broken or slow: the roots above were all we could find.
    }
  }
}

function javaAvailable(): boolean {
  if (process.env.JAVA_HOME && existsSync(join(process.env.JAVA_HOME, 'bin', 'java'))) return true;
  return onPath('java') !== undefined;
}

/**
 * The path of Google's `cloud-pubsub-emulator` launcher inside the installed gcloud SDK.
 *
 * @throws PubSubEmulatorMissingError with install instructions when gcloud, the emulator
 *   component or Java is missing.
 */
export function findPubSubEmulator(): string {
  let binary: string | undefined;
  for (const root of sdkRoots()) {
    const candidate = join(root, EMULATOR_RELATIVE);
    if (existsSync(candidate)) {
      binary = candidate;
      break;
    }
  }
  if (!binary) {
    const why = onPath('gcloud')
      ? 'the gcloud SDK is installed but its Pub/Sub emulator component is not'
      : 'the gcloud SDK (gcloud) was not found';
    throw new PubSubEmulatorMissingError(`Google's Pub/Sub emulator is missing: ${why}. ${INSTALL_HINT}`);
  }
  if (!javaAvailable()) {
    throw new PubSubEmulatorMissingError(
      `Google's Pub/Sub emulator is installed (${binary}) but Java was not found on PATH or JAVA_HOME. ${INSTALL_HINT}`,
    );
  }
  return binary;
}

/**
 * Why the emulator is handed a port rather than asked for port 0: it binds port 0 (Netty takes
 * it) but only ever prints "listening on 0", so nobody could learn the port it got. A port
 * picked here (bound, read, released) can be taken by another process before the emulator binds
 * it, e.g. by a parallel test run; a start that finds it taken tries another port
 * ({@link START_ATTEMPTS} in all). This is the repository's only hand-picked port: every other
 * server, and every other child process, binds 0 and reports the port it got.
 */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Ports a start tries when the one it picked turns out to be taken (see {@link freePort}). */
const START_ATTEMPTS = 5;

/**
 * The emulator's own ready line, once its server is bound (emulator 0.8.20 logs
 * `INFO: Server started, listening on 8085`). Its own line, not an answer on the port: the
 * answer could come from another emulator that holds the same port.
 */
const READY_LINE = /Server started, listening on (\d+)/;
/**
 * A failed bind: Java prints the exception and the JVM keeps running (other threads are still
 * up), so the process has to be stopped here.
 */
const PORT_TAKEN = /java\.net\.BindException: Address already in use/;

/** The emulator could not bind its port; `code` and `port` as Node's own listen() errors give them. */
export class PubSubEmulatorPortInUseError extends PermanentError {
  readonly code = 'EADDRINUSE';
  constructor(
    readonly port: number,
    output: string,
  ) {
    super(`Pub/Sub emulator: port ${port} is already in use:\n${output}`);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Emulators started by this process, killed if the process exits without stopping them. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: a plain SIGKILL is all that can be done here, and a
  // Java process left behind would hold its port and keep CI machines busy.
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

/**
 * Starts Google's Pub/Sub emulator on 127.0.0.1 and resolves once it listens, or reuses the
 * emulator named by `PUBSUB_EMULATOR_HOST` (then `stop()` does nothing, since someone else owns it).
 *
 * The launcher script execs Java, so the spawned pid is the emulator itself: one pid to stop.
 * Topic and subscription names must have at least 3 characters on the emulator.
 *
 * @example
 * const emulator = await startPubSubEmulator();
 * process.env.PUBSUB_EMULATOR_HOST = emulator.host;
 * // …
 * await emulator.stop();
 */
export async function startPubSubEmulator(
  options: {
    port?: number;
    project?: string;
    dataDir?: string;
    /**
     * Run it in a process group of its own, so that a signal to the caller's group (what a
     * process manager or CI sends on stop) leaves it running for the caller to save its state
     * and then stop it. It is still killed when the caller exits.
     */
    ownProcessGroup?: boolean;
  } = {},
): Promise<PubSubEmulator> {
  const existing = process.env.PUBSUB_EMULATOR_HOST;
  if (existing) {
    const port = Number(existing.split(':').pop());
    return { host: existing, port, stop: async () => {} };
  }

  const binary = findPubSubEmulator();
  // The emulator keeps topics in memory; dataDir only gives it a working directory of its own.
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(binary, options.port || (await freePort()), options);
    } catch (err) {
      // A port the caller named is theirs to free; only a port picked here is swapped for another.
      const retry = err instanceof PubSubEmulatorPortInUseError && !options.port && attempt < START_ATTEMPTS;
      if (!retry) throw err;
    }
  }
}

/** One start on `port`: resolves once the emulator says it listens, rejects if it cannot. */
async function launch(
  binary: string,
  port: number,
  options: { project?: string; dataDir?: string; ownProcessGroup?: boolean },
): Promise<PubSubEmulator> {
  const child = spawn(binary, [`--host=127.0.0.1`, `--port=${port}`], {
    cwd: options.dataDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      CLOUD_PUBSUB_EMULATOR_OPTS: process.env.CLOUD_PUBSUB_EMULATOR_OPTS ?? EMULATOR_JVM_OPTIONS,
      ...(options.project ? { PUBSUB_PROJECT_ID: options.project } : {}),
    },
    detached: options.ownProcessGroup ?? false,
  });
  running.add(child);
  installExitHook();

  let exited: string | undefined;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = `exited with ${signal ?? `code ${code}`}`;
      running.delete(child);
      resolve();
    });
    child.once('error', (error) => {
      exited = `failed to start: ${error.message}`;
      running.delete(child);
      resolve();
    });
  });

  const stop = async (): Promise<void> => {
    if (exited) return;
    child.kill('SIGTERM');
    const killed = await Promise.race([exitedPromise.then(() => true), sleep(5_000).then(() => false)]);
    if (!killed) {
      child.kill('SIGKILL');
      await exitedPromise;
    }
  };

  // Keep the tail of its output: the ready line is in it, and when it fails to start, that is
  // the only explanation there is.
  let output = '';
  let outcome: 'ready' | 'port taken' | undefined;
  let settle: () => void = () => {};
  const settled = new Promise<void>((resolve) => {
    settle = resolve;
  });
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4_000);
    if (outcome) return;
    if (PORT_TAKEN.test(output)) outcome = 'port taken';
    else if (READY_LINE.test(output)) outcome = 'ready';
    if (outcome) settle();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, READY_TIMEOUT_MS);
  });
  await Promise.race([settled, exitedPromise, timedOut]);
  clearTimeout(timer);
  if (outcome !== 'ready') {
    await stop();
    if (outcome === 'port taken') throw new PubSubEmulatorPortInUseError(port, output);
    throw new Error(
      exited
        ? `Pub/Sub emulator ${exited} before it listened on port ${port}:\n${output}`
        : `Pub/Sub emulator did not listen on port ${port} within ${READY_TIMEOUT_MS} ms:\n${output}`,
    );
  }
  // Once up, its output is noise; stop buffering but keep draining the pipes so it never blocks.
  child.stdout?.off('data', keep);
  child.stderr?.off('data', keep);
  child.stdout?.resume();
  child.stderr?.resume();
  return { host: `127.0.0.1:${port}`, port, ...(child.pid ? { pid: child.pid } : {}), stop };
}
