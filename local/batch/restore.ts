/**
 * Bringing back the jobs of `dataDir` at start. A job that was not terminal when the previous
 * process stopped lost its tasks with that process (they ran as its children), and nothing
 * will ever finish it: it is FAILED now, with an event saying why, and its FAILED notification
 * goes out like any other so onComplete reports the failure instead of waiting forever.
 * Re-running it instead would repeat side effects of tasks that may have half-run; the caller
 * can resubmit. Two states finish what the user asked for instead: DELETION_IN_PROGRESS
 * completes the delete, CANCELLATION_IN_PROGRESS becomes CANCELLED.
 */
import * as grpc from '@grpc/grpc-js';
import { jobStateDescription } from '#shared/domain/batch-states.js';
import type { Logger } from '#shared/runtime/logger.js';
import type { Clock } from '../clock.js';
import { grpcError } from '../grpc/protos.js';
import { millis } from '../grpc/timestamp.js';
import type { JobStore } from './job-store.js';
import type { JobWriter } from './job-writer.js';
import { type JobLifecycle, TERMINAL } from './lifecycle.js';
import { fromStored, type JobRecord } from './records.js';

export interface RestoreContext {
  lifecycle: JobLifecycle;
  writer: JobWriter;
  log: Logger;
  clock: Clock;
  deletionGraceMs: number;
  /** Makes `record` one of the service's jobs. */
  adopt(record: JobRecord): void;
  /** Removes a deleted job `delayMs` from now. */
  scheduleRemoval(record: JobRecord, delayMs: number): void;
}

export function restoreJobs(store: JobStore, context: RestoreContext): void {
  const { lifecycle, log } = context;
  for (const saved of store.loadAll()) {
    const record = fromStored(saved);
    const { name, status } = record.job;
    if (status.state === 'DELETION_IN_PROGRESS') {
      // Its tasks died with the previous process; only the rest of its grace period is left.
      const left = (record.deletedAt ?? 0) + context.deletionGraceMs - context.clock.now();
      if (left > 0) {
        context.adopt(record);
        record.gone(grpcError(grpc.status.NOT_FOUND, `Job ${name} was deleted`));
        context.scheduleRemoval(record, left);
      } else {
        store.remove(name);
        log.info({ job: name }, 'finished the delete of a job the previous process was deleting');
      }
      continue;
    }
    context.adopt(record);
    if (TERMINAL.has(status.state)) {
      record.reachTerminal();
      continue;
    }
    // The last moment the job is known to have run: its run duration must not count the downtime.
    const lastSeen = millis(record.job.update_time);
    if (status.state === 'CANCELLATION_IN_PROGRESS') {
      lifecycle.failTasks(record, 'the job was cancelled');
      lifecycle.transition(record, 'CANCELLED');
    } else {
      const reason = 'the local platform stopped while the job ran, which stopped its tasks';
      log.warn({ job: name, state: status.state }, `failing job: ${reason}`);
      lifecycle.failTasks(record, reason);
      lifecycle.transition(
        record,
        'FAILED',
        `${jobStateDescription(status.state, 'FAILED', name)} The local platform stopped while the job ran, which stopped its tasks.`,
      );
    }
    if (lastSeen !== undefined && record.runningSince !== undefined) {
      record.finishedAt = Math.max(record.runningSince, lastSeen);
      context.writer.persist(record);
    }
  }
}
