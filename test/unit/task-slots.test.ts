import { describe, expect, it } from 'vitest';
import {
  type AttemptRunner,
  defaultTaskSlots,
  runTaskGroup,
  TASK_MEMORY_BUDGET_BYTES,
  type TaskGroupRun,
  TaskSlots,
} from '#local/executor/index.js';

/**
 * A hand-written stand-in for the process runner: every attempt waits until the test finishes
 * it, so the test sees exactly which tasks run at once. No process is spawned.
 */
function fakeRunner() {
  const running: Array<{ owner: string; index: number; finish: (exitCode: number) => void }> = [];
  const started: string[] = [];
  let concurrent = 0;
  let peak = 0;
  const runnerFor =
    (owner: string): AttemptRunner =>
    (spec, _logFile, signal) =>
      new Promise<number>((resolve) => {
        const index = Number(spec.env.INDEX);
        concurrent++;
        peak = Math.max(peak, concurrent);
        started.push(`${owner}:${index}`);
        const entry = {
          owner,
          index,
          finish: (exitCode: number) => {
            const at = running.indexOf(entry);
            if (at < 0) return;
            running.splice(at, 1);
            concurrent--;
            resolve(exitCode);
          },
        };
        running.push(entry);
        // An aborted task is killed: it ends with SIGTERM's status.
        signal?.addEventListener('abort', () => entry.finish(143), { once: true });
      });
  /** Finishes the oldest running attempt of `owner` (any owner when omitted). */
  const finishNext = (exitCode = 0, owner?: string) => {
    const entry = running.find((candidate) => owner === undefined || candidate.owner === owner);
    if (!entry) throw new Error(`nothing of ${owner ?? 'anyone'} is running`);
    entry.finish(exitCode);
  };
  return {
    runnerFor,
    finishNext,
    started,
    running,
    peak: () => peak,
  };
}

function group(
  slots: TaskSlots,
  owner: string,
  runner: AttemptRunner,
  overrides: Partial<TaskGroupRun> = {},
): TaskGroupRun {
  return {
    taskCount: 1,
    parallelism: 1,
    maxRetryCount: 0,
    slots,
    owner,
    runAttempt: runner,
    taskFor: (index) => ({ argv: ['task'], env: { INDEX: String(index) }, cwd: '/' }),
    logFile: () => '/dev/null',
    ...overrides,
  };
}

/** Lets every pending promise callback run (the pool hands slots over in microtasks). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('TaskSlots', () => {
  it('grants up to the limit at once and the rest first come, first served as slots are released', async () => {
    // Arrange
    const slots = new TaskSlots(2);
    const granted: string[] = [];
    const ask = (owner: string) =>
      slots.acquire(owner).then((lease) => {
        granted.push(owner);
        return lease;
      });

    // Act
    const a = ask('a');
    const b = ask('b');
    const c = ask('c');
    const d = ask('d');
    await settle();
    const grantedAtFirst = [...granted];
    (await a)?.release();
    await settle();
    const afterOneRelease = [...granted];
    (await b)?.release();
    await settle();

    // Assert
    expect(grantedAtFirst).toEqual(['a', 'b']);
    expect(afterOneRelease).toEqual(['a', 'b', 'c']);
    expect(granted).toEqual(['a', 'b', 'c', 'd']);
    expect(slots.snapshot()).toMatchObject({ limit: 2, inUse: 2, peak: 2, waiting: 0 });
    (await c)?.release();
    (await d)?.release();
  });

  it('counts a twice-released lease once', async () => {
    // Arrange
    const slots = new TaskSlots(1);
    const lease = await slots.acquire('a');

    // Act
    lease?.release();
    lease?.release();

    // Assert
    expect(slots.snapshot().inUse).toBe(0);
  });

  it('lets a request whose signal aborts leave the queue without ever holding a slot', async () => {
    // Arrange
    const slots = new TaskSlots(1);
    const held = await slots.acquire('running');
    const abort = new AbortController();
    const cancelled = slots.acquire('cancelled', abort.signal);
    const next = slots.acquire('next');

    // Act
    abort.abort();
    const cancelledLease = await cancelled;
    const waitingAfterAbort = slots.snapshot().waitingOwners;
    held?.release();
    const nextLease = await next;

    // Assert
    expect(cancelledLease).toBeUndefined();
    expect(waitingAfterAbort).toEqual(['next']);
    expect(nextLease).toBeDefined();
    expect(slots.snapshot()).toMatchObject({ inUse: 1, waiting: 0 });
  });

  it('tells its observers what is busy and who waits', async () => {
    // Arrange
    const slots = new TaskSlots(1);
    const seen: Array<{ inUse: number; waiting: number }> = [];
    slots.onChange(({ inUse, waiting }) => seen.push({ inUse, waiting }));

    // Act
    const first = await slots.acquire('a');
    const second = slots.acquire('b');
    first?.release();
    (await second)?.release();

    // Assert
    expect(seen).toEqual([
      { inUse: 1, waiting: 0 },
      { inUse: 1, waiting: 1 },
      { inUse: 1, waiting: 0 },
      { inUse: 0, waiting: 0 },
    ]);
  });

  it('rejects a limit that is not a positive integer', () => {
    expect(() => new TaskSlots(0)).toThrow(RangeError);
    expect(() => new TaskSlots(1.5)).toThrow(RangeError);
  });

  it('derives the default limit from the cores, capped by free memory, and at least 1', () => {
    expect(defaultTaskSlots({ cores: 2, freeBytes: 20 * 1024 ** 3 })).toBe(4);
    expect(defaultTaskSlots({ cores: 16, freeBytes: 4 * TASK_MEMORY_BUDGET_BYTES })).toBe(2);
    expect(defaultTaskSlots({ cores: 1, freeBytes: 0 })).toBe(1);
  });
});

describe('runTaskGroup with task slots', () => {
  it('starts jobs in submission order and never runs more tasks than the limit', async () => {
    // Arrange
    const slots = new TaskSlots(2);
    const fake = fakeRunner();
    const admitted: string[] = [];
    const jobs = ['a', 'b', 'c'].map((owner) =>
      runTaskGroup(
        group(slots, owner, fake.runnerFor(owner), {
          taskCount: 2,
          parallelism: 2,
          onAdmitted: () => admitted.push(owner),
        }),
      ),
    );
    await settle();
    const startedAtFirst = [...fake.started];

    // Act: finish whatever runs, oldest first, until every job is done
    while (fake.running.length > 0) {
      fake.finishNext(0);
      await settle();
    }
    const results = await Promise.all(jobs);

    // Assert
    expect(startedAtFirst).toEqual(['a:0', 'a:1']);
    expect(admitted).toEqual(['a', 'b', 'c']);
    expect(fake.started).toEqual(['a:0', 'a:1', 'b:0', 'b:1', 'c:0', 'c:1']);
    expect(fake.peak()).toBe(2);
    expect(results.map((result) => result.succeeded)).toEqual([2, 2, 2]);
    expect(slots.snapshot()).toMatchObject({ inUse: 0, waiting: 0, peak: 2 });
  });

  it("honours each group's parallelism below the limit, leaving the other slots to the next job", async () => {
    // Arrange
    const slots = new TaskSlots(3);
    const fake = fakeRunner();
    const first = runTaskGroup(group(slots, 'a', fake.runnerFor('a'), { taskCount: 4, parallelism: 1 }));
    const second = runTaskGroup(group(slots, 'b', fake.runnerFor('b'), { taskCount: 4, parallelism: 2 }));
    await settle();

    // Act
    const runningAtFirst = fake.running.map(({ owner, index }) => `${owner}:${index}`);
    let peakOfA = 0;
    while (fake.running.length > 0) {
      peakOfA = Math.max(peakOfA, fake.running.filter(({ owner }) => owner === 'a').length);
      fake.finishNext(0);
      await settle();
    }
    await Promise.all([first, second]);

    // Assert
    expect(runningAtFirst).toEqual(['a:0', 'b:0', 'b:1']);
    expect(peakOfA).toBe(1);
    expect(fake.peak()).toBe(3);
  });

  it('gives the slot back when a task fails, so the next job starts', async () => {
    // Arrange
    const slots = new TaskSlots(1);
    const fake = fakeRunner();
    const failing = runTaskGroup(group(slots, 'a', fake.runnerFor('a')));
    const next = runTaskGroup(group(slots, 'b', fake.runnerFor('b')));
    await settle();

    // Act
    fake.finishNext(1, 'a');
    const failed = await failing;
    await settle();
    const startedAfterFailure = [...fake.started];
    fake.finishNext(0, 'b');

    // Assert
    expect(failed).toMatchObject({ succeeded: 0, failed: 1 });
    expect(startedAfterFailure).toEqual(['a:0', 'b:0']);
    expect(await next).toMatchObject({ succeeded: 1 });
    expect(slots.snapshot().inUse).toBe(0);
  });

  it('keeps the slot through a retry of the same task', async () => {
    // Arrange
    const slots = new TaskSlots(1);
    const fake = fakeRunner();
    const retried = runTaskGroup(group(slots, 'a', fake.runnerFor('a'), { maxRetryCount: 1 }));
    const next = runTaskGroup(group(slots, 'b', fake.runnerFor('b')));
    await settle();

    // Act
    fake.finishNext(1, 'a');
    await settle();
    const startedAfterFirstAttempt = [...fake.started];
    fake.finishNext(0, 'a');
    await retried;
    await settle();
    fake.finishNext(0, 'b');
    await next;

    // Assert
    expect(startedAfterFirstAttempt).toEqual(['a:0', 'a:0']);
    expect(fake.started).toEqual(['a:0', 'a:0', 'b:0']);
  });

  it('releases the slots of a cancelled or deleted job, running or still queued', async () => {
    // Arrange
    const slots = new TaskSlots(1);
    const fake = fakeRunner();
    const runningAbort = new AbortController();
    const queuedAbort = new AbortController();
    const admitted: string[] = [];
    const running = runTaskGroup(
      group(slots, 'running', fake.runnerFor('running'), {
        signal: runningAbort.signal,
        onAdmitted: () => admitted.push('running'),
      }),
    );
    const queued = runTaskGroup(
      group(slots, 'queued', fake.runnerFor('queued'), {
        signal: queuedAbort.signal,
        onAdmitted: () => admitted.push('queued'),
      }),
    );
    const last = runTaskGroup(group(slots, 'last', fake.runnerFor('last')));
    await settle();

    // Act
    queuedAbort.abort();
    await queued;
    const waitingAfterQueuedCancel = slots.snapshot().waitingOwners;
    runningAbort.abort();
    const killed = await running;
    await settle();
    const startedAfterCancel = [...fake.started];
    fake.finishNext(0, 'last');
    await last;

    // Assert
    expect(waitingAfterQueuedCancel).toEqual(['last']);
    expect(killed.exitCodes).toEqual([143]);
    expect(admitted).toEqual(['running']);
    expect(startedAfterCancel).toEqual(['running:0', 'last:0']);
    expect(slots.snapshot()).toMatchObject({ inUse: 0, waiting: 0 });
  });
});
