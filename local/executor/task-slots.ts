import { availableParallelism, freemem } from 'node:os';

/**
 * Memory set aside per task slot when the default limit is derived: a local task is a Node
 * process (~70 MiB for the reference inference task), and a real model's task needs more.
 */
export const TASK_MEMORY_BUDGET_BYTES = 512 * 1024 * 1024;

/**
 * The default machine-wide task limit: two tasks per core (a task waits on storage and
 * Pub/Sub part of its life, so one per core leaves cores idle), but never more than half of the
 * free memory allows at {@link TASK_MEMORY_BUDGET_BYTES} each, and at least 1. On a 2-core
 * machine with 20 GB free this is 4. `--max-tasks N` (`batchwire dev`) overrides it.
 */
export function defaultTaskSlots(
  machine: { cores: number; freeBytes: number } = { cores: availableParallelism(), freeBytes: freemem() },
): number {
  const byCores = Math.max(1, Math.floor(machine.cores)) * 2;
  const byMemory = Math.floor(machine.freeBytes / 2 / TASK_MEMORY_BUDGET_BYTES);
  return Math.max(1, Math.min(byCores, byMemory));
}

/** A granted slot. `release()` gives it back; calling it again does nothing. */
export interface SlotLease {
  release(): void;
}

/** What the pool holds right now (for the console and the tests). */
export interface TaskSlotsSnapshot {
  limit: number;
  /** Slots held by running task groups. */
  inUse: number;
  /** The most slots ever held at once. */
  peak: number;
  /** Requests waiting for a slot. */
  waiting: number;
  /** Distinct owners (jobs, executions) with a request waiting, in the order they asked. */
  waitingOwners: string[];
}

interface Request {
  owner: string;
  grant: (lease: SlotLease | undefined) => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/**
 * The machine-wide pool of task slots that the local Batch and Cloud Run jobs services share,
 * as the VMs of a region's quota are shared by the jobs of a project: a task process runs only
 * while its worker holds a slot, so no burst of jobs can start more processes than `limit`.
 * Requests are granted strictly first come, first served, so jobs start in the order they were
 * submitted and a large job cannot be overtaken forever by small ones.
 *
 * @example
 * const slots = new TaskSlots(defaultTaskSlots());
 * const lease = await slots.acquire('projects/p/locations/l/jobs/j', signal);
 * if (lease) try { await runTask(); } finally { lease.release(); }
 */
export class TaskSlots {
  readonly limit: number;
  private inUse = 0;
  private peak = 0;
  private readonly queue: Request[] = [];
  private readonly listeners = new Set<(snapshot: TaskSlotsSnapshot) => void>();

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`the task slot limit must be a positive integer, got ${limit}`);
    }
    this.limit = limit;
  }

  /**
   * Waits for a slot, behind every earlier request. Resolves with the lease, or with undefined
   * when `signal` aborts first (the job was cancelled or deleted while it waited: it leaves the
   * queue and never holds a slot).
   */
  acquire(owner: string, signal?: AbortSignal): Promise<SlotLease | undefined> {
    if (signal?.aborted) return Promise.resolve(undefined);
    if (this.queue.length === 0 && this.inUse < this.limit) {
      const lease = this.take();
      this.changed();
      return Promise.resolve(lease);
    }
    return new Promise((resolve) => {
      const request: Request = {
        owner,
        grant: resolve,
        signal,
        onAbort: () => {
          const index = this.queue.indexOf(request);
          if (index < 0) return;
          this.queue.splice(index, 1);
          resolve(undefined);
          this.changed();
        },
      };
      signal?.addEventListener('abort', request.onAbort, { once: true });
      this.queue.push(request);
      this.changed();
    });
  }

  snapshot(): TaskSlotsSnapshot {
    return {
      limit: this.limit,
      inUse: this.inUse,
      peak: this.peak,
      waiting: this.queue.length,
      waitingOwners: [...new Set(this.queue.map((request) => request.owner))],
    };
  }

  /** Called after every change of {@link snapshot}; returns the unsubscribe function. */
  onChange(listener: (snapshot: TaskSlotsSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Counts a slot as held; the caller reports the change. */
  private take(): SlotLease {
    this.inUse++;
    this.peak = Math.max(this.peak, this.inUse);
    let released = false;
    const lease: SlotLease = {
      release: () => {
        if (released) return;
        released = true;
        this.inUse--;
        this.grantWaiting();
        this.changed();
      },
    };
    return lease;
  }

  private grantWaiting(): void {
    while (this.inUse < this.limit) {
      const request = this.queue.shift();
      if (!request) return;
      request.signal?.removeEventListener('abort', request.onAbort);
      request.grant(this.take());
    }
  }

  private changed(): void {
    if (this.listeners.size === 0) return;
    const snapshot = this.snapshot();
    for (const listener of this.listeners) {
      try {
        listener(snapshot);
      } catch {
        // A failing observer (the console) must not break scheduling.
      }
    }
  }
}
