/**
 * When job records reach the disk (with `dataDir`): job changes at once (few, and the ones a
 * restart must see), task changes once per event-loop turn (they come in bursts: a whole
 * group turns PENDING at once). Only the record the service still holds under its name is
 * written, so a late change of a deleted job cannot bring its file back. A failed write is
 * logged: the job goes on, only its survival of a restart is at stake.
 */
import type { Logger } from '#shared/runtime/logger.js';
import type { JobStore } from './job-store.js';
import { type JobRecord, toStored } from './records.js';

export class JobWriter {
  /** Records with task changes not yet written. */
  private readonly dirty = new Set<JobRecord>();
  private flushTimer: NodeJS.Immediate | undefined;
  private closed = false;

  constructor(
    private readonly store: JobStore | undefined,
    private readonly log: Logger,
    /** Whether `record` is the one the service holds under its name. */
    private readonly isCurrent: (record: JobRecord) => boolean,
  ) {}

  /** Writes the record: 'now' for job changes, 'soon' (once per turn) for task changes. */
  persist(record: JobRecord, when: 'now' | 'soon' = 'now'): void {
    if (!this.store || this.closed || !this.isCurrent(record)) return;
    if (when === 'soon') {
      this.dirty.add(record);
      this.flushTimer ??= setImmediate(() => this.flush());
      return;
    }
    this.dirty.delete(record);
    this.write(record);
  }

  /** Writes every record with changes pending. */
  flush(): void {
    if (this.flushTimer) clearImmediate(this.flushTimer);
    this.flushTimer = undefined;
    const records = [...this.dirty];
    this.dirty.clear();
    for (const record of records) {
      if (this.isCurrent(record)) this.write(record);
    }
  }

  /** Removes the record of a job that is gone. */
  remove(record: JobRecord): void {
    this.dirty.delete(record);
    try {
      this.store?.remove(record.job.name);
    } catch (err) {
      this.log.error({ err, job: record.job.name }, 'could not remove Batch job record');
    }
  }

  /** Writes what is pending; nothing is written after. */
  close(): void {
    this.flush();
    this.closed = true;
  }

  private write(record: JobRecord): void {
    try {
      this.store?.save(toStored(record));
    } catch (err) {
      this.log.error({ err, job: record.job.name }, 'could not write Batch job record');
    }
  }
}
