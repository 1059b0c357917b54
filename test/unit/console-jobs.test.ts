import { describe, expect, it } from 'vitest';
import type { JobRow } from '#local/console/api-types.js';
import { createJobsCache } from '#local/console/jobs-cache.js';
import {
  ConsoleInputError,
  createPlatformReader,
  type PlatformClients,
  pageJobs,
  taskAttempts,
} from '#local/console/platform-reader.js';
import type { Config } from '#shared/config/schema.js';

function row(i: number, overrides: Partial<JobRow> = {}): JobRow {
  return {
    id: `bw-p-c-${i}`,
    name: `projects/p/locations/r/jobs/bw-p-c-${i}`,
    uid: `uid-${i}`,
    state: i % 3 === 0 ? 'FAILED' : 'SUCCEEDED',
    product: 'p',
    client: i % 2 === 0 ? 'acme' : 'globex',
    flow: '',
    trigger: 'upload',
    created: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(),
    taskCount: 1,
    taskCounts: {},
    runDurationSeconds: null,
    reason: '',
    ...overrides,
  };
}

const timestamp = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });

describe('the console jobs page (pageJobs)', () => {
  const rows = Array.from({ length: 120 }, (_, i) => row(119 - i)); // newest first, as Batch orders them

  it('pages 50 at a time with an offset token, and says how many match', () => {
    const first = pageJobs(rows, { pageSize: 50 });
    expect(first.jobs).toHaveLength(50);
    expect(first.total).toBe(120);
    const last = pageJobs(rows, { pageSize: 50, pageToken: '100' });
    expect(last.jobs).toHaveLength(20);
    expect(last.nextPageToken).toBe('');
    expect(first.nextPageToken).toBe('50');
  });

  it('filters by client, state and creation time together', () => {
    const since = new Date(Date.UTC(2026, 0, 1, 0, 60)).toISOString();
    const page = pageJobs(rows, { pageSize: 200, client: 'acme', state: 'FAILED', since });
    expect(page.jobs.length).toBeGreaterThan(0);
    for (const job of page.jobs) {
      expect(job.client).toBe('acme');
      expect(job.state).toBe('FAILED');
      expect(Date.parse(job.created)).toBeGreaterThanOrEqual(Date.parse(since));
    }
    expect(page.total).toBe(
      rows.filter((j) => j.client === 'acme' && j.state === 'FAILED' && j.created >= since).length,
    );
  });

  it.each([
    [{ state: 'RUNNING" OR name:"x' }, /not a valid state/],
    [{ since: 'yesterday-ish' }, /not a date and time/],
    [{ pageToken: '-5' }, /invalid page token/],
  ])('answers bad input %j with a precise error', (filter, message) => {
    expect(() => pageJobs(rows, { pageSize: 50, ...filter })).toThrow(ConsoleInputError);
    expect(() => pageJobs(rows, { pageSize: 50, ...filter })).toThrow(message);
  });
});

describe('task attempts for the timeline (taskAttempts)', () => {
  it('makes one bar per run of a task, a retry included, with the exit code that ended it', () => {
    const t0 = Date.UTC(2026, 0, 1);
    const event = (offset: number, taskState: string, exitCode?: number) => ({
      eventTime: timestamp(t0 + offset),
      taskState,
      description: `to ${taskState}`,
      ...(exitCode === undefined ? {} : { taskExecution: { exitCode } }),
    });
    const { row: task, attempts } = taskAttempts(2, {
      name: 'projects/p/locations/r/jobs/j/taskGroups/group0/tasks/2',
      status: {
        state: 'SUCCEEDED',
        statusEvents: [
          event(0, 'PENDING'),
          event(100, 'RUNNING'),
          event(1_100, 'FAILED', 3),
          event(1_200, 'RUNNING'),
          event(2_200, 'SUCCEEDED', 0),
        ],
      },
    } as never);
    expect(attempts).toEqual([
      {
        task: 2,
        attempt: 0,
        state: 'FAILED',
        start: new Date(t0 + 100).toISOString(),
        end: new Date(t0 + 1_100).toISOString(),
        exitCode: 3,
      },
      {
        task: 2,
        attempt: 1,
        state: 'SUCCEEDED',
        start: new Date(t0 + 1_200).toISOString(),
        end: new Date(t0 + 2_200).toISOString(),
        exitCode: 0,
      },
    ]);
    expect(task).toMatchObject({ index: 2, state: 'SUCCEEDED', attempts: 2, exitCode: 0 });
  });
});

describe('the shared job list (createJobsCache)', () => {
  it('makes one listJobs call for many readers at once, and a new one only after a change', async () => {
    let calls = 0;
    const cache = createJobsCache({
      list: async () => {
        calls++;
        return [row(calls)];
      },
    });
    await Promise.all([cache.rows(), cache.rows(), cache.rows()]);
    expect(calls).toBe(1);
    await cache.rows();
    expect(calls).toBe(1);
    cache.invalidate();
    expect((await cache.rows())[0]?.id).toBe('bw-p-c-2');
    expect(calls).toBe(2);
  });

  it('never lets a read that started before a change overwrite rows read after it', async () => {
    const pending: Array<(rows: JobRow[]) => void> = [];
    const cache = createJobsCache({ list: () => new Promise((resolve) => pending.push(resolve)) });
    const before = cache.rows();
    cache.invalidate();
    const after = cache.rows();
    pending[1]?.([row(2)]);
    await after;
    pending[0]?.([row(1)]);
    await before;
    expect((await cache.rows())[0]?.id).toBe('bw-p-c-2');
    expect(pending).toHaveLength(2);
  });
});

describe('the task-slot sample (runningTasks)', () => {
  it('asks Batch for running jobs only, and counts their running tasks', async () => {
    // Arrange: a Batch client that records what it is asked and answers two running jobs.
    const requests: Array<{ parent?: string; filter?: string }> = [];
    const running = (id: string, counts: Record<string, number>) => ({
      name: `projects/p/locations/r/jobs/${id}`,
      status: { state: 'RUNNING', taskGroups: { group0: { counts } } },
    });
    const batch = {
      async listJobs(request: { parent?: string; filter?: string }) {
        requests.push(request);
        return [[running('a', { RUNNING: 3, SUCCEEDED: 1 }), running('b', { RUNNING: 1, PENDING: 4 })]];
      },
    };
    const reader = createPlatformReader(
      { project: 'p', region: 'r' } as Config,
      {
        batch,
      } as unknown as PlatformClients,
    );

    // Act
    const count = await reader.runningTasks();

    // Assert: one call, filtered to running jobs, whatever the number of jobs kept.
    expect(count).toBe(4);
    expect(requests).toEqual([
      expect.objectContaining({ parent: 'projects/p/locations/r', filter: 'status.state="RUNNING"' }),
    ]);
  });
});
