import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname } from 'node:path';
import type { TaskState as BatchTaskState } from '#shared/domain/batch-states.js';
import type { TaskSlots } from './task-slots.js';

/** One attempt of one task: what to run, with which environment, where. */
export interface TaskSpec {
  argv: string[];
  /** Variables for the task, layered over a small base environment (see {@link baseEnvironment}). */
  env: Record<string, string>;
  cwd: string;
}

/** The task states a local task passes through (Batch's names, from the one states module). */
export type TaskState = Extract<BatchTaskState, 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED'>;

/** A group of `taskCount` tasks run as local processes, Batch-style. */
export interface TaskGroupRun {
  taskCount: number;
  /** How many tasks run at once (at least 1). */
  parallelism: number;
  /** A failed task is run again up to this many times (Batch's `maxRetryCount`, 0 = never). */
  maxRetryCount: number;
  taskFor(index: number, attempt: number): TaskSpec;
  /** Where the attempt's stdout and stderr go (both into one file, in the order written). */
  logFile(index: number, attempt: number): string;
  /**
   * Called on every change: RUNNING when an attempt starts; PENDING when a failed attempt will be
   * retried; SUCCEEDED or FAILED once the task is final. `exitCode` is set for finished attempts.
   */
  onTaskState?(index: number, state: TaskState, detail?: { exitCode?: number; attempt: number }): void;
  /** Aborting kills every running task's process group; tasks not yet started never start. */
  signal?: AbortSignal;
  /**
   * The machine-wide pool this group takes its slots from (see {@link TaskSlots}): each of the
   * group's workers (at most `parallelism`) holds one slot while it runs tasks, one after
   * another, as a Batch VM runs the tasks given to it. Without it, `parallelism` alone limits.
   */
  slots?: TaskSlots;
  /** Who waits for slots, as the pool shows it (a job or execution name). */
  owner?: string;
  /** Called once, when the group holds its first slot and before its first task starts. */
  onAdmitted?(): void;
  /** Runs one attempt; resolves with its exit status. Default: a local child process. */
  runAttempt?: AttemptRunner;
}

/** Runs one attempt of a task to completion and resolves with its exit status (never rejects). */
export type AttemptRunner = (
  spec: TaskSpec,
  logFile: string,
  signal: AbortSignal | undefined,
) => Promise<number>;

export interface TaskGroupResult {
  succeeded: number;
  failed: number;
  /** Exit code of each task's last attempt, by index (-1 for a task that never ran). */
  exitCodes: number[];
}

/** Exit code recorded when the program cannot be started at all (as a shell reports it). */
export const EXIT_NOT_RUNNABLE = 127;
/** How long a task may take to stop after SIGTERM before it gets SIGKILL. */
const KILL_GRACE_MS = 2_000;

/**
 * Variables every task inherits from this process. A Batch task starts on a fresh VM, not in the
 * caller's shell, so the rest of this process's environment (credentials, emulator hosts of the
 * test run, …) is not leaked into tasks: what a task needs is passed in `TaskSpec.env`.
 */
export function baseEnvironment(): Record<string, string> {
  const keep = ['PATH', 'HOME', 'USER', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'SHELL', 'NODE_OPTIONS'];
  const env: Record<string, string> = { METADATA_SERVER_DETECTION: 'none' };
  for (const name of keep) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/** Exit status of a child as a shell reports it: the code, or 128 + signal number. */
function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const number = signal ? constants.signals[signal] : undefined;
  return 128 + (number ?? 9);
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    // Negative pid: the whole process group, so `bash -c "a | b"` and its children all stop.
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** Runs one attempt as a child process; resolves with its exit status (never rejects). */
export function runProcessAttempt(
  spec: TaskSpec,
  logFile: string,
  signal: AbortSignal | undefined,
): Promise<number> {
  mkdirSync(dirname(logFile), { recursive: true });
  const fd = openSync(logFile, 'a');
  return new Promise<number>((resolve) => {
    let settled = false;
    const finish = (status: number) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      closeSync(fd);
      resolve(status);
    };
    const [program, ...args] = spec.argv;
    if (!program) {
      writeSync(fd, 'batchwire executor: empty command\n');
      finish(EXIT_NOT_RUNNABLE);
      return;
    }
    // The child writes straight into the log file (no pipe through this process), and runs in a
    // process group of its own (detached) so that abort can kill everything it started.
    const child = spawn(program, args, {
      cwd: spec.cwd,
      env: { ...baseEnvironment(), ...spec.env },
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    let killTimer: NodeJS.Timeout | undefined;
    function onAbort() {
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS);
      killTimer.unref();
    }
    child.once('error', (error) => {
      writeSync(fd, `batchwire executor: cannot run ${program}: ${error.message}\n`);
      finish(EXIT_NOT_RUNNABLE);
    });
    child.once('exit', (code, exitSignal) => {
      if (killTimer) clearTimeout(killTimer);
      // The group may still hold background children of the task; they end with the attempt, as
      // they would when Batch tears down a task's container.
      killGroup(child.pid, 'SIGKILL');
      finish(exitStatus(code, exitSignal));
    });
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs a task group as local child processes, the way Cloud Batch runs a task group on VMs:
 * at most `parallelism` tasks at once, in index order; a failing task (non-zero exit) is retried
 * up to `maxRetryCount` times; each attempt's output goes to its own log file.
 *
 * Shared by the local Batch service and the local Cloud Run jobs service.
 *
 * @example
 * const result = await runTaskGroup({
 *   taskCount: 3, parallelism: 2, maxRetryCount: 1,
 *   taskFor: (index) => ({ argv: ['bash', '-c', 'echo $I'], env: { I: String(index) }, cwd: '/tmp' }),
 *   logFile: (index, attempt) => `/tmp/logs/task-${index}-attempt-${attempt}.log`,
 * });
 */
export async function runTaskGroup(run: TaskGroupRun): Promise<TaskGroupResult> {
  const taskCount = Math.max(0, Math.floor(run.taskCount));
  const parallelism = Math.max(1, Math.floor(run.parallelism) || 1);
  const maxRetryCount = Math.max(0, Math.floor(run.maxRetryCount) || 0);
  const exitCodes = new Array<number>(taskCount).fill(-1);
  let succeeded = 0;
  let failed = 0;

  for (let index = 0; index < taskCount; index++) run.onTaskState?.(index, 'PENDING', { attempt: 0 });

  let next = 0;
  let admitted = false;
  const runAttempt = run.runAttempt ?? runProcessAttempt;
  // Once every task is claimed, workers still waiting for a slot leave the queue: the group
  // needs no more slots, and the next job in line should get them.
  const claimedAll = new AbortController();
  const stopWaiting = run.signal ? AbortSignal.any([run.signal, claimedAll.signal]) : claimedAll.signal;
  const claim = (): number | undefined => {
    if (next >= taskCount || run.signal?.aborted) return undefined;
    const index = next++;
    if (next >= taskCount) claimedAll.abort();
    return index;
  };
  const worker = async (): Promise<void> => {
    const lease = run.slots ? await run.slots.acquire(run.owner ?? 'task group', stopWaiting) : undefined;
    if (run.slots && !lease) return;
    try {
      if (!admitted && next < taskCount && !run.signal?.aborted) {
        admitted = true;
        run.onAdmitted?.();
      }
      for (let index = claim(); index !== undefined; index = claim()) {
        for (let attempt = 0; ; attempt++) {
          run.onTaskState?.(index, 'RUNNING', { attempt });
          const exitCode = await runAttempt(
            run.taskFor(index, attempt),
            run.logFile(index, attempt),
            run.signal,
          );
          exitCodes[index] = exitCode;
          if (exitCode === 0) {
            succeeded++;
            run.onTaskState?.(index, 'SUCCEEDED', { exitCode, attempt });
            break;
          }
          if (attempt < maxRetryCount && !run.signal?.aborted) {
            run.onTaskState?.(index, 'PENDING', { exitCode, attempt });
            continue;
          }
          failed++;
          run.onTaskState?.(index, 'FAILED', { exitCode, attempt });
          break;
        }
      }
    } finally {
      // Released on success, failure and abort alike: a slot outlives no task.
      lease?.release();
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallelism, taskCount) }, worker));
  return { succeeded, failed, exitCodes };
}
