import { describe, expect, it } from 'vitest';
import { systemClock } from '#local/workflows/execute.js';

describe('systemClock.sleep', () => {
  it('waits out a sleep longer than a Node timer can hold (~24.8 days) instead of firing at once', async () => {
    // Arrange: 30 days, as a connector timeout may ask.
    const aborter = new AbortController();
    let settled = 'pending';
    const sleeping = systemClock.sleep(30 * 24 * 3600 * 1000, aborter.signal).then(
      () => {
        settled = 'resolved';
      },
      () => {
        settled = 'aborted';
      },
    );

    // Act
    await new Promise((resolve) => setTimeout(resolve, 50));
    const before = settled;
    aborter.abort();
    await sleeping;

    // Assert
    expect(before).toBe('pending');
    expect(settled).toBe('aborted');
  });

  it('resolves a short sleep after its time', async () => {
    const started = Date.now();
    await systemClock.sleep(30);
    expect(Date.now() - started).toBeGreaterThanOrEqual(29);
  });
});
