import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PlatformActivity } from '#local/activity.js';
import { TaskSlots } from '#local/executor/index.js';
import { followTaskSlots } from '#local/platform/console.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('followTaskSlots', () => {
  it('prints queued work at most once per interval, and once more when the queue is empty', async () => {
    // Arrange
    const slots = new TaskSlots(1);
    const lines: PlatformActivity[] = [];
    const stop = followTaskSlots(slots, (activity) => lines.push(activity), 1_000);

    // Act: one job runs, three wait; all of it within one interval
    const first = await slots.acquire('job-1');
    const waiting = ['job-2', 'job-3', 'job-4'].map((job) => slots.acquire(job));
    await vi.advanceTimersByTimeAsync(1_000);
    const afterBurst = lines.map((line) => line.message);
    first?.release();
    for (const lease of waiting) (await lease)?.release();
    await vi.advanceTimersByTimeAsync(1_000);
    stop();

    // Assert
    expect(afterBurst).toEqual(['task slots 1/1 busy, 3 jobs queued']);
    expect(lines.map((line) => line.message)).toEqual([
      'task slots 1/1 busy, 3 jobs queued',
      'task slots 0/1 busy, no job queued',
    ]);
    expect(lines[0]).toMatchObject({ kind: 'slots', limit: 1, inUse: 1, queued: 3 });
  });

  it('prints nothing while no job waits', async () => {
    // Arrange
    const slots = new TaskSlots(2);
    const lines: PlatformActivity[] = [];
    followTaskSlots(slots, (activity) => lines.push(activity), 1_000);

    // Act
    const lease = await slots.acquire('job-1');
    lease?.release();
    await vi.advanceTimersByTimeAsync(2_000);

    // Assert
    expect(lines).toEqual([]);
  });
});
