import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '#shared/runtime/logger.js';
import { readJsonRecords, writeFileAtomically } from '../atomic-file.js';
import type { JobMessage, StatusEvent, TaskState } from './types.js';

/** What survives a restart of one job: everything the service answers about it. */
export interface StoredJob {
  version: 1;
  job: JobMessage;
  jobId: string;
  /** The CreateJob request id, so a retried create after a restart still gets this job. */
  requestId: string;
  taskCount: number;
  tasks: Array<{ name: string; uid: string; state: TaskState; events: StatusEvent[] }>;
  runningSince?: number;
  finishedAt?: number;
  /** When DeleteJob was called (state DELETION_IN_PROGRESS): its grace period runs from here. */
  deletedAt?: number;
}

const SUFFIX = '.json';

/**
 * Job records on disk, one JSON file per job under `${dataDir}/jobs/`. A job's resource name
 * holds slashes, so the file is named by its URI-encoded name (one flat folder, no nesting to
 * walk or prune). Writes go to a temp file in the same folder and are renamed over the record:
 * a crash mid-write leaves the previous record whole, never a torn one.
 *
 * The I/O is synchronous on purpose: a write happens inside the state change that causes it,
 * so records are written in the order the states changed and a delete can never be overtaken
 * by a late write of the same job. The files are small and this is a local dev service.
 */
export class JobStore {
  private readonly dir: string;

  constructor(
    dataDir: string,
    private readonly log: Logger,
  ) {
    this.dir = join(dataDir, 'jobs');
    mkdirSync(this.dir, { recursive: true });
  }

  private file(name: string): string {
    return join(this.dir, `${encodeURIComponent(name)}${SUFFIX}`);
  }

  /** Replaces the record of `stored.job.name` atomically. */
  save(stored: StoredJob): void {
    const target = this.file(stored.job.name);
    writeFileAtomically(target, JSON.stringify(stored));
  }

  remove(name: string): void {
    rmSync(this.file(name), { force: true });
  }

  /** Every readable record; leftovers of interrupted writes are removed, unreadable files skipped. */
  loadAll(): StoredJob[] {
    return readJsonRecords(
      this.dir,
      (value) => {
        const stored = value as StoredJob;
        if (stored?.version !== 1 || typeof stored.job?.name !== 'string' || !Array.isArray(stored.tasks)) {
          throw new Error('not a job record of this version');
        }
        return stored;
      },
      (file, err) => this.log.warn({ err, file }, 'skipping unreadable Batch job record'),
    );
  }
}
