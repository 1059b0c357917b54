import type { JobRow } from './api-types.js';

/**
 * Every Batch job as rows, from one listJobs call shared by every reader (the Jobs page, the
 * Overview, the task-slot sampler, each open tab). The platform's activity feed marks it stale
 * (a job created, a state changed); the next read then makes one call, however many readers
 * ask at once. Without a feed, rows older than `maxAgeMs` are read again.
 */
export function createJobsCache(options: { list: () => Promise<JobRow[]>; maxAgeMs?: number }) {
  const maxAge = options.maxAgeMs ?? 5_000;
  let rows: JobRow[] | undefined;
  let readAt = 0;
  let stale = true;
  let inFlight: Promise<JobRow[]> | undefined;

  // Each read gets a number; only the newest one's rows are kept, so a read that started
  // before a change can never overwrite rows read after it.
  let generation = 0;
  const refresh = (): Promise<JobRow[]> => {
    if (inFlight) return inFlight;
    const mine = ++generation;
    stale = false;
    const started = Date.now();
    const read: Promise<JobRow[]> = options.list().then(
      (fresh) => {
        if (mine === generation) {
          rows = fresh;
          readAt = started;
        }
        if (inFlight === read) inFlight = undefined;
        return fresh;
      },
      (err: unknown) => {
        if (mine === generation) stale = true;
        if (inFlight === read) inFlight = undefined;
        throw err;
      },
    );
    inFlight = read;
    return read;
  };

  return {
    async rows(): Promise<JobRow[]> {
      if (rows && !stale && Date.now() - readAt < maxAge) return rows;
      return refresh();
    },
    /** Something changed: the next read asks Batch again (a read already under way may predate it). */
    invalidate(): void {
      stale = true;
      // A read in flight started before this change: the next read starts a fresh one.
      inFlight = undefined;
    },
  };
}
