import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT_NOT_RUNNABLE, runTaskGroup, type TaskGroupRun } from '#local/executor/index.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'executor-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const logFile = (index: number, attempt: number) => join(dir, `task-${index}-attempt-${attempt}.log`);
const bash = (script: string, env: Record<string, string> = {}) => ({
  argv: ['bash', '-c', script],
  env,
  cwd: dir,
});

function group(overrides: Partial<TaskGroupRun> & Pick<TaskGroupRun, 'taskFor'>): TaskGroupRun {
  return { taskCount: 1, parallelism: 1, maxRetryCount: 0, logFile, ...overrides };
}

describe('runTaskGroup', () => {
  it('runs every task with its own environment and writes stdout and stderr to its log', async () => {
    // Arrange
    const run = group({
      taskCount: 3,
      parallelism: 3,
      taskFor: (index) => bash('echo "out $TASK"; echo "err $TASK" >&2', { TASK: String(index) }),
    });

    // Act
    const result = await runTaskGroup(run);

    // Assert
    expect(result).toEqual({ succeeded: 3, failed: 0, exitCodes: [0, 0, 0] });
    for (const index of [0, 1, 2]) {
      expect(readFileSync(logFile(index, 0), 'utf8')).toBe(`out ${index}\nerr ${index}\n`);
    }
  });

  it('never runs more than `parallelism` tasks at once', async () => {
    // Arrange: each task appends start/end markers to a shared file, sleeping in between.
    const trace = join(dir, 'trace');
    const run = group({
      taskCount: 5,
      parallelism: 2,
      taskFor: (index) =>
        bash(`echo "+$I" >> "${trace}"; sleep 0.15; echo "-$I" >> "${trace}"`, { I: String(index) }),
    });

    // Act
    await runTaskGroup(run);

    // Assert: replay the trace and track concurrency.
    let current = 0;
    let peak = 0;
    for (const line of readFileSync(trace, 'utf8').trim().split('\n')) {
      current += line.startsWith('+') ? 1 : -1;
      peak = Math.max(peak, current);
    }
    expect(peak).toBe(2);
  });

  it('retries a failing task up to maxRetryCount times, with one log per attempt', async () => {
    // Arrange
    const attempts: number[] = [];
    const run = group({
      maxRetryCount: 2,
      taskFor: (_index, attempt) => {
        attempts.push(attempt);
        return bash(`echo "attempt ${attempt}"; exit 3`);
      },
    });

    // Act
    const result = await runTaskGroup(run);

    // Assert
    expect(attempts).toEqual([0, 1, 2]);
    expect(result).toEqual({ succeeded: 0, failed: 1, exitCodes: [3] });
    expect(readFileSync(logFile(0, 2), 'utf8')).toBe('attempt 2\n');
  });

  it('stops retrying once an attempt succeeds', async () => {
    // Arrange: the first attempt fails, the second succeeds.
    const run = group({
      maxRetryCount: 5,
      taskFor: (_index, attempt) => bash(`exit ${attempt === 0 ? 1 : 0}`),
    });
    const states: string[] = [];
    run.onTaskState = (index, state, detail) =>
      states.push(`${index}:${state}:${detail?.attempt}:${detail?.exitCode}`);

    // Act
    const result = await runTaskGroup(run);

    // Assert
    expect(result.succeeded).toBe(1);
    expect(states).toEqual([
      '0:PENDING:0:undefined',
      '0:RUNNING:0:undefined',
      '0:PENDING:0:1',
      '0:RUNNING:1:undefined',
      '0:SUCCEEDED:1:0',
    ]);
  });

  it('records exit codes per task, including a program that cannot start', async () => {
    // Arrange
    const run = group({
      taskCount: 3,
      parallelism: 3,
      taskFor: (index) =>
        index === 2 ? { argv: [join(dir, 'no-such-program')], env: {}, cwd: dir } : bash(`exit ${index * 7}`),
    });

    // Act
    const result = await runTaskGroup(run);

    // Assert
    expect(result).toEqual({ succeeded: 1, failed: 2, exitCodes: [0, 7, EXIT_NOT_RUNNABLE] });
    expect(readFileSync(logFile(2, 0), 'utf8')).toContain('cannot run');
  });

  it('does not leak this process environment into tasks, but keeps PATH', async () => {
    // Arrange
    process.env.BATCHWIRE_SECRET_FOR_TEST = 'leak';
    const run = group({
      taskFor: () =>
        bash('echo "[$BATCHWIRE_SECRET_FOR_TEST] [$OWN]"; command -v bash >/dev/null', { OWN: 'x' }),
    });

    // Act
    const result = await runTaskGroup(run);
    delete process.env.BATCHWIRE_SECRET_FOR_TEST;

    // Assert
    expect(result.exitCodes).toEqual([0]);
    expect(readFileSync(logFile(0, 0), 'utf8')).toBe('[] [x]\n');
  });

  it('kills the whole process group of running tasks on abort and starts no more tasks', async () => {
    // Arrange: a task that spawns a grandchild which would write a marker after 1.5 s.
    const marker = join(dir, 'grandchild-survived');
    const controller = new AbortController();
    const started: number[] = [];
    const run = group({
      taskCount: 3,
      parallelism: 1,
      signal: controller.signal,
      taskFor: (index) => {
        started.push(index);
        return bash(`(sleep 1.5; touch "${marker}") & sleep 30`);
      },
      onTaskState: (_index, state) => {
        if (state === 'RUNNING') setTimeout(() => controller.abort(), 100);
      },
    });

    // Act
    const begin = Date.now();
    const result = await runTaskGroup(run);
    await new Promise((resolve) => setTimeout(resolve, 1_800));

    // Assert
    expect(Date.now() - begin).toBeLessThan(5_000);
    expect(started).toEqual([0]);
    expect(result.failed).toBe(1);
    expect(result.exitCodes[0]).toBe(128 + 15);
    expect(() => readFileSync(marker)).toThrow();
  });
});
