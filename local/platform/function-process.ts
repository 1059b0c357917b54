import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { Backoff } from '../backoff.js';
import type { ListeningMessage } from './function-preload.js';

const require = createRequire(import.meta.url);

/** The functions-framework CLI, exactly what `npx functions-framework` runs. */
export function functionsFrameworkMain(): string {
  return join(dirname(require.resolve('@google-cloud/functions-framework')), 'main.js');
}

/**
 * V8 flags of each function process. `--optimize-for-size` makes V8 grow its heap in smaller
 * steps and collect sooner: a function instance mostly waits on its clients, and three of them
 * run beside the platform on a developer's machine. Measured in the same 200-upload burst
 * (`BENCH_BURST_N=200 node dist/bench/run.js burst`, two runs side by side): peak RSS onComplete
 * 165 → 122 MiB, onUpload 125 → 106, onSchedule 86 → 71; their CPU per result unchanged
 * within the 0.01 s the bench resolves.
 */
export const FUNCTION_NODE_FLAGS: readonly string[] = ['--optimize-for-size'];

export interface FunctionProcess {
  name: string;
  url: string;
  /** The port it listens on: the one asked for, or the kernel's choice when asked for 0. */
  port: number;
  pid: number | undefined;
  /** Resolves when the process exits, for whatever reason. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
}

/**
 * How long a start may take: a cold start loads the whole package, and on a busy machine (three
 * of them start at once) that can take tens of seconds; a process that dies is noticed at once.
 */
const START_TIMEOUT_MS = 60_000;

/**
 * Runs one function in its own functions-framework process, as Cloud Functions runs each
 * function as its own service: `functions-framework --target=NAME --port=PORT --source=ROOT`.
 * `port` 0 lets the process bind a port of the kernel's choice; either way it resolves once the
 * framework's server listens, with the port it got (the preload reports it over IPC).
 * Each stdout line (the function's JSON logs) goes to `onLine`.
 */
export async function startFunctionProcess(options: {
  name: string;
  port: number;
  sourceDir: string;
  env: Record<string, string>;
  onLine: (line: string) => void;
}): Promise<FunctionProcess> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...FUNCTION_NODE_FLAGS,
      '--import',
      new URL('./function-preload.js', import.meta.url).href,
      functionsFrameworkMain(),
      `--target=${options.name}`,
      `--port=${options.port}`,
      `--source=${options.sourceDir}`,
    ],
    { env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe', 'ipc'] },
  );
  let exited = false;
  // A process killed by a signal exits with `code === null` and the signal set: both are kept,
  // so that a `kill -9` is reported as such rather than as a clean exit.
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = true;
      resolve({ code, signal });
    }),
  );
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) createInterface({ input: stream }).on('line', options.onLine);
  }
  const what = `${options.name} (functions-framework${options.port ? ` on port ${options.port}` : ''})`;
  let port: number;
  try {
    port = await listeningPort(child, exit, what);
  } catch (err) {
    if (!exited) child.kill('SIGKILL');
    await exit;
    throw err;
  }
  return {
    name: options.name,
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid,
    exited: exit,
    async stop() {
      if (!exited) child.kill('SIGTERM');
      await exit;
    },
  };
}

/**
 * The port the child's framework server listens on, as its preload reports it; rejects if the
 * child exits first or says nothing within {@link START_TIMEOUT_MS}. The IPC channel is closed
 * once the port is known: nothing else travels on it.
 */
function listeningPort(child: ChildProcess, exit: Promise<unknown>, what: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${what} did not listen within ${START_TIMEOUT_MS} ms`));
    }, START_TIMEOUT_MS);
    const onMessage = (message: Partial<ListeningMessage>) => {
      const port = message?.listening?.port;
      if (typeof port !== 'number') return;
      done();
      if (child.connected) child.disconnect();
      resolve(port);
    };
    child.on('message', onMessage);
    void exit.then(() => {
      done();
      reject(new Error(`${what} exited before it listened`));
    });
    function done() {
      clearTimeout(timer);
      child.off('message', onMessage);
    }
  });
}

/** How a supervised function is doing, as the console shows it. */
export type FunctionState = 'starting' | 'up' | 'restarting' | 'crashed' | 'stopped';

export interface FunctionHealth {
  name: string;
  /**
   * `restarting`: it exited and is being started again; `crashed`: several starts in a row
   * failed (it is still retried, at the longest backoff).
   */
  state: FunctionState;
  /** Restarts since the platform started. */
  restarts: number;
  pid?: number;
  /** The last unexpected exit: `code` is null when a signal (`signal`) ended it. */
  lastExit?: { code: number | null; signal: NodeJS.Signals | null; at: string };
}

export interface SupervisedFunction {
  name: string;
  url: string;
  /** Its port, kept across restarts: the one asked for, or the first start's when asked for 0. */
  port: number;
  health(): FunctionHealth;
  stop(): Promise<void>;
}

export interface SupervisionPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
  /** Consecutive failed starts after which the function is reported `crashed`. */
  crashedAfter: number;
  /** A process that stayed up this long starts the backoff over on its next exit. */
  healthyAfterMs: number;
}

export const SUPERVISION: SupervisionPolicy = {
  initialDelayMs: 250,
  maxDelayMs: 30_000,
  crashedAfter: 5,
  healthyAfterMs: 30_000,
};

/**
 * Runs one function as Cloud Functions runs an instance: when its process exits or is killed
 * (not stopped by us), it is started again on the same port (with `port` 0, the one its first
 * start got: the router and `.batchwire/env` know the function by that URL), with exponential backoff, and
 * `onEvent` gets one line each time. Events that fail meanwhile are the trigger's to retry
 * (the router's backoff), as Eventarc retries an instance that crashed.
 *
 * Resolves once the first start answers; a first start that fails rejects (the platform then
 * does not start), later ones are retried for as long as the platform runs.
 */
export async function superviseFunction(options: {
  name: string;
  port: number;
  sourceDir: string;
  env: Record<string, string>;
  onLine: (line: string) => void;
  onEvent: (message: string) => void;
  onHealth?: (health: FunctionHealth) => void;
  /** Asked before each restart: false once the platform is stopping (a process-group signal). */
  shouldRestart?: () => boolean;
  policy?: Partial<SupervisionPolicy>;
}): Promise<SupervisedFunction> {
  const policy = { ...SUPERVISION, ...options.policy };
  const health: FunctionHealth = { name: options.name, state: 'starting', restarts: 0 };
  const changed = () => options.onHealth?.({ ...health });
  let stopping = false;
  let current: FunctionProcess | undefined;
  let wake: (() => void) | undefined;
  let loop: Promise<void> = Promise.resolve();
  let port = options.port;

  const start = () =>
    startFunctionProcess({
      name: options.name,
      port,
      sourceDir: options.sourceDir,
      env: options.env,
      onLine: options.onLine,
    });

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      wake = done;
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
    });

  const watch = (proc: FunctionProcess) => {
    current = proc;
    health.state = 'up';
    health.pid = proc.pid;
    changed();
    const upSince = Date.now();
    loop = proc.exited.then(async ({ code, signal }) => {
      if (stopping || options.shouldRestart?.() === false) return;
      current = undefined;
      health.lastExit = { code, signal, at: new Date().toISOString() };
      health.state = 'restarting';
      health.pid = undefined;
      changed();
      const backoff = new Backoff({
        initialDelayMs: policy.initialDelayMs,
        multiplier: 2,
        maxDelayMs: policy.maxDelayMs,
      });
      let delay = Date.now() - upSince >= policy.healthyAfterMs ? 0 : backoff.next();
      let failures = 0;
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      options.onEvent(`${options.name} ${how}; restarting${delay ? ` in ${delay} ms` : ''}`);
      while (!stopping) {
        if (delay > 0) await sleep(delay);
        if (stopping) return;
        try {
          const next = await start();
          if (stopping) {
            await next.stop();
            return;
          }
          health.restarts += 1;
          options.onEvent(`${options.name} restarted (pid ${next.pid}, restart ${health.restarts})`);
          watch(next);
          return;
        } catch (err) {
          failures += 1;
          delay = backoff.next();
          if (failures >= policy.crashedAfter && health.state !== 'crashed') {
            health.state = 'crashed';
            changed();
          }
          options.onEvent(
            `${options.name} did not start (${(err as Error).message}); ${health.state}, next try in ${delay} ms`,
          );
        }
      }
    });
  };

  const first = await start();
  port = first.port;
  watch(first);
  return {
    name: options.name,
    url: first.url,
    port,
    health: () => ({ ...health }),
    async stop() {
      stopping = true;
      wake?.();
      await current?.stop();
      await loop;
      health.state = 'stopped';
      health.pid = undefined;
      changed();
    },
  };
}
