/**
 * The local Batch's jobs and what its methods do with them: create, read, list, delete (with
 * Batch's grace period), cancel, tasks, and the operations DeleteJob and CancelJob answer
 * with. State changes go through the lifecycle, runs through the execution, records to disk
 * through the writer; this class holds the jobs and answers the requests.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { jobStateDescription } from '#shared/domain/batch-states.js';
import { createLogger, type Logger } from '#shared/runtime/logger.js';
import type { ActivityListener } from '../activity.js';
import { type Clock, systemClock } from '../clock.js';
import { defaultTaskSlots, TaskSlots } from '../executor/index.js';
import { finishedOperation, OperationStore } from '../grpc/operations.js';
import { paginate } from '../grpc/paging.js';
import { grpcError } from '../grpc/protos.js';
import { executeJob } from './execution.js';
import { JobStore } from './job-store.js';
import { JobWriter } from './job-writer.js';
import { JobLifecycle, TERMINAL } from './lifecycle.js';
import { compileJobFilter } from './list-filter.js';
import { jobStateMessages, NotificationPublisher } from './notifications.js';
import { createdRecord, type JobRecord, jobMessage, taskMessage } from './records.js';
import { restoreJobs } from './restore.js';
import type { JobMessage, TaskMessage } from './types.js';
import {
  checkCreateJob,
  checkJobName,
  invalid,
  jobOfTask,
  parseParent,
  parseTaskGroupName,
} from './validate.js';

export interface BatchServiceOptions {
  /** The service's own log (default: a pino logger at LOG_LEVEL); the dev platform passes a quieter one. */
  log?: Logger;
  port?: number;
  /** Run the jobs' tasks (default true); false only records jobs, as a dry run. */
  execute?: boolean;
  /** Container image → local argv (config `local.images`). */
  images?: Record<string, string[]>;
  /** Relative paths in `images` and script paths resolve against this (default: the cwd). */
  baseDir?: string;
  /** Task logs go here (default: a new temp dir). */
  logDir?: string;
  /** The Pub/Sub emulator for notifications (default: env PUBSUB_EMULATOR_HOST). */
  pubsubHost?: string;
  /** Extra env for every task, e.g. STORAGE_EMULATOR_HOST. */
  env?: Record<string, string>;
  /**
   * The machine-wide task slots (shared with the local Cloud Run jobs service by the platform).
   * A job stays QUEUED until its first task gets a slot, then turns SCHEDULED and RUNNING.
   * Default: a pool of this service's own, of {@link defaultTaskSlots} slots.
   */
  slots?: TaskSlots;
  onEvent?: ActivityListener;
  /**
   * Keep job records here (`${dataDir}/jobs/`) across restarts: written on every state change,
   * removed once a deleted job's grace period is over, loaded at start. Unset: jobs live in
   * memory only.
   */
  dataDir?: string;
  /**
   * How long a deleted job stays readable (GetJob, ListJobs, GetTask) in state
   * DELETION_IN_PROGRESS before it is gone, as Batch keeps a job while it cleans up its
   * resources. This is what lets onComplete read the job (its labels, its input) when it
   * handles the DELETION_IN_PROGRESS notification. Default 60_000; 0 removes it at once.
   */
  deletionGraceMs?: number;
  /**
   * Hold the notifications of jobs failed at start (see `dataDir`) until
   * `releaseRestartNotifications()`: the Pub/Sub emulator keeps topics and subscriptions in
   * memory, so a platform that restarts them must create them again before these messages can
   * be delivered. Default false: published at start like any state change.
   */
  holdRestartNotifications?: boolean;
  /** Locations ListLocations names besides those jobs live in (the platform passes its region). */
  locations?: string[];
  /** The time job events and durations are read from (default: the system's). */
  clock?: Clock;
}

/** How long a delete or cancel waits for the job's tasks to stop before it answers anyway. */
const SETTLE_TIMEOUT_MS = 10_000;
const DELETION_GRACE_MS = 60_000;

export class BatchService {
  private readonly jobs = new Map<string, JobRecord>();
  /** The long-running operations DeleteJob and CancelJob answered with. */
  readonly operations = new OperationStore();
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly publisher: NotificationPublisher;
  private readonly store: JobStore | undefined;
  private readonly writer: JobWriter;
  private readonly lifecycle: JobLifecycle;
  private readonly slots: TaskSlots;
  private readonly deletionGraceMs: number;
  readonly logDir: string;

  constructor(private readonly options: BatchServiceOptions) {
    this.deletionGraceMs = Math.max(0, options.deletionGraceMs ?? DELETION_GRACE_MS);
    this.log = options.log ?? createLogger({ name: 'local-batch' });
    this.clock = options.clock ?? systemClock;
    this.logDir = options.logDir ?? mkdtempSync(join(tmpdir(), 'batchwire-batch-logs-'));
    this.publisher = new NotificationPublisher(
      options.pubsubHost ?? process.env.PUBSUB_EMULATOR_HOST,
      this.log,
    );
    this.store = options.dataDir ? new JobStore(options.dataDir, this.log) : undefined;
    this.writer = new JobWriter(this.store, this.log, (record) => this.jobs.get(record.job.name) === record);
    this.lifecycle = new JobLifecycle({
      publisher: this.publisher,
      writer: this.writer,
      log: this.log,
      clock: this.clock,
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    });
    this.slots = options.slots ?? new TaskSlots(defaultTaskSlots());
  }

  /** Brings back the jobs of `dataDir` (see restore.ts). */
  load(): void {
    const store = this.store;
    if (!store) return;
    this.lifecycle.holdingNotifications(this.options.holdRestartNotifications === true, () =>
      restoreJobs(store, {
        lifecycle: this.lifecycle,
        writer: this.writer,
        log: this.log,
        clock: this.clock,
        deletionGraceMs: this.deletionGraceMs,
        adopt: (record) => this.jobs.set(record.job.name, record),
        scheduleRemoval: (record, delayMs) => this.scheduleRemoval(record, delayMs),
      }),
    );
  }

  releaseRestartNotifications(): Promise<void> {
    return this.lifecycle.releaseHeld();
  }

  private record(name: string): JobRecord {
    checkJobName(name);
    const record = this.jobs.get(name);
    if (!record) throw grpcError(grpc.status.NOT_FOUND, `Job ${name} not found`);
    return record;
  }

  private snapshot(record: JobRecord): JobMessage {
    return jobMessage(record, this.clock.now());
  }

  createJob(request: {
    parent: string;
    job_id: string;
    job: JobMessage | null;
    request_id: string;
  }): JobMessage {
    const { jobId, job: requested } = checkCreateJob(request);
    const name = `${request.parent}/jobs/${jobId}`;
    const existing = this.jobs.get(name);
    if (existing) {
      // Batch's requestId: a retried create (same request id) gets the job it already made.
      if (request.request_id && existing.requestId === request.request_id) return this.snapshot(existing);
      throw grpcError(grpc.status.ALREADY_EXISTS, `Job ${name} already exists`);
    }

    const now = this.clock.now();
    const record = createdRecord(name, jobId, requested, request.request_id, now);
    const { job, taskCount } = record;
    this.jobs.set(name, record);
    this.writer.persist(record);
    this.log.info({ job: name, taskCount }, 'job created');
    this.lifecycle.emit({
      kind: 'job.created',
      message: `${jobId} created (${taskCount} task${taskCount === 1 ? '' : 's'})`,
      job: name,
      uid: job.uid,
      labels: job.labels ?? {},
    });
    this.lifecycle.notify(record, jobStateMessages(job, 'STATE_UNSPECIFIED', 'QUEUED', now));
    if (this.options.execute !== false) {
      record.execution = executeJob(record, {
        lifecycle: this.lifecycle,
        slots: this.slots,
        images: this.options.images ?? {},
        baseDir: this.options.baseDir ?? process.cwd(),
        logDir: this.logDir,
        env: this.options.env ?? {},
      }).catch((err) => {
        this.log.error({ err, job: name }, 'job execution failed');
        this.lifecycle.transition(
          record,
          'FAILED',
          `${jobStateDescription(record.job.status.state, 'FAILED', name)} ${(err as Error).message}`,
        );
      });
    }
    return this.snapshot(record);
  }

  getJob(request: { name: string }): JobMessage {
    return this.snapshot(this.record(request.name));
  }

  listJobs(request: {
    parent: string;
    filter: string;
    order_by: string;
    page_size: number;
    page_token: string;
  }): {
    jobs: JobMessage[];
    next_page_token: string;
    unreachable: string[];
  } {
    const { project, location } = parseParent(request.parent);
    const matches = compileJobFilter(request.filter ?? '');
    const jobs = [...this.jobs.values()]
      .filter(({ job }) => {
        const [, jobProject, , jobLocation] = job.name.split('/');
        return jobProject === project && (location === '-' || jobLocation === location);
      })
      .map((record) => this.snapshot(record))
      .filter(matches);
    const order = (request.order_by ?? '').trim();
    if (order) {
      const [field, direction] = order.split(/\s+/);
      if (field !== 'name' && field !== 'create_time') throw invalid(`unsupported order_by: ${order}`);
      const key = (job: JobMessage) =>
        field === 'name' ? job.name : Number(job.create_time.seconds) * 1e9 + job.create_time.nanos;
      jobs.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
      if (direction === 'desc') jobs.reverse();
    }
    const { page, next_page_token } = paginate(jobs, request, { scope: request.parent });
    return { jobs: page, next_page_token, unreachable: [] };
  }

  /** The operation a DeleteJob or CancelJob answers with: done at once, with `responseType`. */
  private operation(jobName: string, responseType: string): Record<string, unknown> {
    const parent = jobName.split('/jobs/')[0];
    const name = `${parent}/operations/operation-${this.clock.now()}-${randomBytes(8).toString('hex')}`;
    // Empty and CancelJobResponse both encode to zero bytes.
    const response = { type_url: `type.googleapis.com/${responseType}`, value: Buffer.alloc(0) };
    return this.operations.message(this.operations.add(finishedOperation(name, () => response)));
  }

  /** Locations of the jobs held, for ListLocations. */
  jobLocations(): string[] {
    return [...this.jobs.keys()].map((name) => name.split('/')[3] as string);
  }

  private async settle(record: JobRecord): Promise<void> {
    await Promise.race([
      record.execution,
      new Promise((resolve) => setTimeout(resolve, SETTLE_TIMEOUT_MS).unref()),
    ]);
  }

  /**
   * Batch's delete: the job turns DELETION_IN_PROGRESS (from any state, so a consumer of the
   * notification can tell from the status events whether it had finished), its tasks are
   * killed, and it stays readable for `deletionGraceMs` before it is gone. A repeated delete
   * meanwhile is answered like the first; CreateJob with its id is ALREADY_EXISTS until then.
   */
  async deleteJob(request: { name: string }): Promise<Record<string, unknown>> {
    const record = this.record(request.name);
    if (record.job.status.state === 'DELETION_IN_PROGRESS') {
      return this.operation(request.name, 'google.protobuf.Empty');
    }
    const now = this.clock.now();
    record.deletedAt = now;
    // Its run ends here: the run duration must not grow while the job waits to be removed.
    if (record.runningSince !== undefined && record.finishedAt === undefined) record.finishedAt = now;
    this.lifecycle.transition(record, 'DELETION_IN_PROGRESS');
    // It will never reach a final state: whoever waits for one learns it now.
    record.gone(grpcError(grpc.status.NOT_FOUND, `Job ${request.name} was deleted`));
    record.abort.abort();
    await this.settle(record);
    this.scheduleRemoval(record, this.deletionGraceMs);
    return this.operation(request.name, 'google.protobuf.Empty');
  }

  private scheduleRemoval(record: JobRecord, delayMs: number): void {
    if (delayMs <= 0) {
      this.removeJob(record);
      return;
    }
    record.removal = setTimeout(() => this.removeJob(record), delayMs);
    // A pending removal must not keep a process alive; an unfinished one resumes at the next start.
    record.removal.unref();
  }

  private removeJob(record: JobRecord): void {
    const name = record.job.name;
    record.removal = undefined;
    if (this.jobs.get(name) !== record) return;
    this.jobs.delete(name);
    this.writer.remove(record);
    this.log.info({ job: name }, 'job deleted');
    this.lifecycle.emit({ kind: 'job.deleted', message: `${record.jobId} deleted`, job: name });
  }

  async cancelJob(request: { name: string }): Promise<Record<string, unknown>> {
    const record = this.record(request.name);
    if (TERMINAL.has(record.job.status.state) || record.job.status.state === 'DELETION_IN_PROGRESS') {
      throw grpcError(
        grpc.status.FAILED_PRECONDITION,
        `Job ${request.name} is ${record.job.status.state} and cannot be cancelled`,
      );
    }
    this.lifecycle.transition(record, 'CANCELLATION_IN_PROGRESS');
    record.abort.abort();
    await this.settle(record);
    this.lifecycle.failTasks(record, 'the job was cancelled');
    this.lifecycle.transition(record, 'CANCELLED');
    return this.operation(request.name, 'google.cloud.batch.v1.CancelJobResponse');
  }

  getTask(request: { name: string }): TaskMessage {
    const job = jobOfTask(request.name);
    const task = this.record(job).tasks.find((candidate) => candidate.name === request.name);
    if (!task) throw grpcError(grpc.status.NOT_FOUND, `Task ${request.name} not found`);
    return taskMessage(task);
  }

  listTasks(request: { parent: string; filter: string; page_size: number; page_token: string }): {
    tasks: TaskMessage[];
    next_page_token: string;
    unreachable: string[];
  } {
    const { job, group } = parseTaskGroupName(request.parent);
    const record = this.record(job);
    if (group !== 'group0') throw grpcError(grpc.status.NOT_FOUND, `TaskGroup ${request.parent} not found`);
    const filter = (request.filter ?? '').trim();
    const wanted = filter ? /^State\s*=\s*"?([A-Z_]+)"?$/i.exec(filter)?.[1] : undefined;
    if (filter && !wanted) throw invalid(`unsupported task filter: ${filter} (use State=RUNNING)`);
    const tasks = record.tasks.filter((task) => !wanted || task.state === wanted).map(taskMessage);
    const { page, next_page_token } = paginate(tasks, request, { scope: `${request.parent}\t${filter}` });
    return { tasks: page, next_page_token, unreachable: [] };
  }

  async waitForJob(name: string, timeoutMs = 60_000): Promise<JobMessage> {
    const record = this.record(name);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`job ${name} did not finish within ${timeoutMs} ms (state ${record.job.status.state})`),
          ),
        timeoutMs,
      );
    });
    try {
      await Promise.race([record.terminal, timeout]);
      // Resolve after the terminal notification went out, so a test can expect it delivered.
      await Promise.race([record.notified, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return this.snapshot(record);
  }

  async close(): Promise<void> {
    for (const record of this.jobs.values()) {
      // A job still in its grace period stays on disk as DELETION_IN_PROGRESS: the next start resumes it.
      if (record.removal) clearTimeout(record.removal);
      record.removal = undefined;
      record.abort.abort();
    }
    await Promise.all([...this.jobs.values()].map((record) => this.settle(record)));
    // Jobs cut short here stay as they were on disk (RUNNING…): the next start fails them.
    this.writer.close();
    this.lifecycle.dropHeld();
    await this.publisher.close();
  }
}
