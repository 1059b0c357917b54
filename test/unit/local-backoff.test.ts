import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelay } from '#local/backoff.js';

describe('backoff', () => {
  const policy = { initialDelayMs: 500, multiplier: 2, maxDelayMs: 3_000 };

  it('multiplies the delay each retry and caps it at the maximum', () => {
    const backoff = new Backoff(policy);
    expect(Array.from({ length: 5 }, () => backoff.next())).toEqual([500, 1_000, 2_000, 3_000, 3_000]);
    expect(backoff.count).toBe(5);
  });

  it('starts over after reset', () => {
    const backoff = new Backoff(policy);
    backoff.next();
    backoff.next();
    backoff.reset();
    expect(backoff.next()).toBe(500);
  });

  it('spreads each delay below its exact value by at most the jitter fraction', () => {
    const jittered = { ...policy, jitter: 0.2 };
    expect(backoffDelay(jittered, 1, () => 0)).toBe(1_000);
    expect(backoffDelay(jittered, 1, () => 0.5)).toBe(900);
    expect(backoffDelay(jittered, 1, () => 0.999)).toBeGreaterThanOrEqual(800);
  });

  it('keeps the delays exact without jitter whatever the random source says', () => {
    expect(backoffDelay(policy, 2, () => 0.7)).toBe(2_000);
  });
});
