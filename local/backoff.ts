/**
 * Exponential backoff for every retry loop of the local services: the delay before retry `n`
 * (0-based) is `initialDelayMs × multiplier^n`, capped at `maxDelayMs`, optionally spread by
 * jitter so that many loops failing at once do not retry in step. Each loop keeps its own
 * policy (Eventarc's, Cloud Scheduler's, a connector's polling); this is only the arithmetic.
 */
export interface BackoffPolicy {
  initialDelayMs: number;
  multiplier: number;
  maxDelayMs: number;
  /**
   * Fraction of each delay drawn at random, in [0, 1]: 0.2 gives a delay in [0.8 d, d]. The
   * default, 0, keeps the delays exact (for loops that reproduce a service's documented
   * schedule, and for tests that step a fake clock).
   */
  jitter?: number;
}

/** The delay before retry `retry` (0 for the first retry) under `policy`. */
export function backoffDelay(
  policy: BackoffPolicy,
  retry: number,
  random: () => number = Math.random,
): number {
  const exact = Math.min(policy.initialDelayMs * policy.multiplier ** retry, policy.maxDelayMs);
  const jitter = Math.min(Math.max(policy.jitter ?? 0, 0), 1);
  return jitter === 0 ? exact : Math.round(exact * (1 - jitter * random()));
}

/**
 * The delays of one retry loop, one `next()` per retry; `reset()` starts over (after a
 * success, for a loop that lives on).
 *
 * @example
 * const backoff = new Backoff({ initialDelayMs: 500, multiplier: 2, maxDelayMs: 30_000 });
 * for (;;) { if (await attempt()) break; await sleep(backoff.next()); }
 */
export class Backoff {
  private retries = 0;

  constructor(
    private readonly policy: BackoffPolicy,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay before the next retry. */
  next(): number {
    return backoffDelay(this.policy, this.retries++, this.random);
  }

  /** How many delays `next` has handed out since the start or the last reset. */
  get count(): number {
    return this.retries;
  }

  reset(): void {
    this.retries = 0;
  }
}
