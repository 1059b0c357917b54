/**
 * The time the local services read. Services take a `Clock` so tests that fake time (the
 * scheduler's, the workflow interpreter's) hand in their own; everything else uses
 * {@link systemClock}. Services that also wait extend it (`SchedulerClock`, the workflow `Clock`).
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** The real time. */
export const systemClock: Clock = { now: () => Date.now() };
