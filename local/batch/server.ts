import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  jobFailureDescription,
  jobStateDescription,
  taskStateDescription,
} from '../../shared/domain/batch-states.js';
import { createLogger, type Logger } from '../../shared/runtime/logger.js';
import {
  defaultTaskSlots,
  type TaskState as ExecutorTaskState,
  runTaskGroup,
  TaskSlots,
} from '../executor/index.js';
import { createLocalApiServer } from '../grpc/api-server.js';
import { createLocations } from '../grpc/locations.js';
import { paginate } from '../grpc/paging.js';
import { grpcError, loadGrpcPackage, loadProtoRoot, lookup } from '../grpc/protos.js';
import type { HttpRule } from '../grpc/rest-transcoder.js';
import { JobStore, type StoredJob } from './job-store.js';
import { compileJobFilter } from './list-filter.js';
import {
  jobStateMessages,
  type NotificationMessage,
  NotificationPublisher,
  taskStateMessages,
} from './notifications.js';
import { multiRunnableArgv, runnableArgv, runnableEnvironment, taskEnvironment } from './task-command.js';
import {
  duration,
  type JobMessage,
  type JobState,
  type PlatformActivity,
  type StatusEvent,
  type TaskGroupMessage,
  type TaskMessage,
  type TaskState,
  timestamp,
} from './types.js';

export type { PlatformActivity } from './types.js';

/** The local Cloud Batch service: `google.cloud.batch.v1.BatchService` over plaintext gRPC. */
export interface LocalBatchService {
  /** `127.0.0.1:PORT`, the value for `BATCH_EMULATOR_HOST`. */
  host: string;
  port: number;
  /** Where task logs go: `${logDir}/${jobId}/task-${index}-attempt-${attempt}.log`. */
  logDir: string;
  /** Test hook: the next `times` calls of `method` ('CreateJob'|'GetJob'|...) fail with gRPC `code`. */
  injectFault(method: string, code: number, times?: number): void;
  /** Resolves with the job once it is SUCCEEDED or FAILED (and its notifications were published). */
  waitForJob(name: string, timeoutMs?: number): Promise<unknown>;
  /**
   * With `holdRestartNotifications`: publishes the notifications of the jobs that were failed
   * at start because the previous process stopped while they ran. Resolves once attempted.
   */
  releaseRestartNotifications(): Promise<void>;
  close(): Promise<void>;
}

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
  onEvent?: (e: PlatformActivity) => void;
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
}

const BATCH_PROTOS = ['google/cloud/batch/v1/batch.proto', 'google/cloud/location/locations.proto'];

/**
 * REST bindings of the mixins Batch serves (service config `batch_v1.yaml`, as
 * `@google-cloud/batch` 2.5.0 passes them to google-gax in `batch_service_client.js`).
 */
const BATCH_HTTP_RULES: HttpRule[] = [
  { selector: 'google.cloud.location.Locations.GetLocation', get: '/v1/{name=projects/*/locations/*}' },
  { selector: 'google.cloud.location.Locations.ListLocations', get: '/v1/{name=projects/*}/locations' },
  {
    selector: 'google.longrunning.Operations.CancelOperation',
    post: '/v1/{name=projects/*/locations/*/operations/*}:cancel',
    body: '*',
  },
  {
    selector: 'google.longrunning.Operations.DeleteOperation',
    delete: '/v1/{name=projects/*/locations/*/operations/*}',
  },
  {
    selector: 'google.longrunning.Operations.GetOperation',
    get: '/v1/{name=projects/*/locations/*/operations/*}',
  },
  {
    selector: 'google.longrunning.Operations.ListOperations',
    get: '/v1/{name=projects/*/locations/*}/operations',
  },
];
const OPERATION_NAME = /^projects\/[^/]+\/locations\/[^/]+\/operations\/[^/]+$/;

const PARENT = /^projects\/([^/]+)\/locations\/([^/]+)$/;
const JOB_NAME = /^(projects\/[^/]+\/locations\/[^/]+)\/jobs\/([^/]+)$/;
const TASK_GROUP_NAME = /^(projects\/[^/]+\/locations\/[^/]+\/jobs\/[^/]+)\/taskGroups\/([^/]+)$/;
const TASK_NAME = /^(projects\/[^/]+\/locations\/[^/]+\/jobs\/[^/]+)\/taskGroups\/([^/]+)\/tasks\/(\d+)$/;
const JOB_ID = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
const TOPIC = /^projects\/[^/]+\/topics\/[^/]+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TERMINAL: ReadonlySet<JobState> = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);
const SETTLE_TIMEOUT_MS = 10_000;
const DELETION_GRACE_MS = 60_000;

interface TaskRecord {
  name: string;
  uid: string;
  state: TaskState;
  events: StatusEvent[];
}

interface JobRecord {
  job: JobMessage;
  jobId: string;
  requestId: string;
  taskCount: number;
  tasks: TaskRecord[];
  abort: AbortController;
  execution: Promise<void>;
  /** Notifications of this job, published in order. */
  notified: Promise<void>;
  runningSince?: number;
  finishedAt?: number;
  /** When DeleteJob was called: the job is removed `deletionGraceMs` later. */
  deletedAt?: number;
  /** The pending removal of a deleted job. */
  removal?: NodeJS.Timeout;
  terminal: Promise<void>;
  reachTerminal: () => void;
  gone: (error: Error) => void;
}

type RecordFields = Pick<
  JobRecord,
  'job' | 'jobId' | 'requestId' | 'taskCount' | 'tasks' | 'runningSince' | 'finishedAt' | 'deletedAt'
>;

/** A job record with fresh runtime handles (abort, promises) around its stored fields. */
function newRecord(fields: RecordFields): JobRecord {
  let reachTerminal = () => {};
  let gone: (error: Error) => void = () => {};
  const terminal = new Promise<void>((resolve, reject) => {
    reachTerminal = resolve;
    gone = reject;
  });
  terminal.catch(() => {}); // a deleted job nobody waits for is not an unhandled rejection
  return {
    ...fields,
    abort: new AbortController(),
    execution: Promise.resolve(),
    notified: Promise.resolve(),
    terminal,
    reachTerminal,
    gone,
  };
}

/** The part of a record that is written to disk. */
function stored(record: JobRecord): StoredJob {
  return {
    version: 1,
    job: record.job,
    jobId: record.jobId,
    requestId: record.requestId,
    taskCount: record.taskCount,
    tasks: record.tasks,
    ...(record.runningSince === undefined ? {} : { runningSince: record.runningSince }),
    ...(record.finishedAt === undefined ? {} : { finishedAt: record.finishedAt }),
    ...(record.deletedAt === undefined ? {} : { deletedAt: record.deletedAt }),
  };
}

function millis(time: { seconds: string; nanos: number } | undefined): number | undefined {
  return time ? Number(time.seconds) * 1000 + Math.floor(time.nanos / 1_000_000) : undefined;
}

function invalid(message: string): grpc.ServiceError {
  return grpcError(grpc.status.INVALID_ARGUMENT, message);
}

function int(value: string | number | undefined): number {
  const parsed = Number(value ?? 0);
  return Number.isFinite(parsed) ? Math.floor(parsed) : 0;
}

/** A uid in the shape Batch gives: the id's first 18 characters, then a random suffix. */
function jobUid(jobId: string): string {
  const hex = randomBytes(9).toString('hex');
  return `${jobId.slice(0, 18).replace(/-+$/, '')}-${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 17)}`;
}

/** Checks what Batch checks at CreateJob; throws INVALID_ARGUMENT with the field at fault. */
function validateJob(job: JobMessage): void {
  const groups = job.task_groups ?? [];
  if (groups.length === 0) throw invalid('job.task_groups is required: a job needs one task group');
  if (groups.length > 1)
    throw invalid('Only one TaskGroup is supported now (job.task_groups has more than one)');
  const group = groups[0] as TaskGroupMessage;
  const spec = group.task_spec;
  if (!spec) throw invalid('job.task_groups[0].task_spec is required');
  const runnables = spec.runnables ?? [];
  if (runnables.length === 0)
    throw invalid('job.task_groups[0].task_spec.runnables must have at least one runnable');
  runnables.forEach((runnable, index) => {
    const field = `job.task_groups[0].task_spec.runnables[${index}]`;
    if (runnable.container) {
      if (!runnable.container.image_uri) throw invalid(`${field}.container.image_uri is required`);
    } else if (runnable.script) {
      if (!runnable.script.text && !runnable.script.path) throw invalid(`${field}.script needs text or path`);
    } else if (!runnable.barrier) {
      throw invalid(`${field} needs a container, script or barrier`);
    }
  });
  const retries = spec.max_retry_count ?? 0;
  if (retries < 0 || retries > 10)
    throw invalid('job.task_groups[0].task_spec.max_retry_count must be in [0, 10]');
  if (int(group.task_count) < 0) throw invalid('job.task_groups[0].task_count must not be negative');
  if (int(group.parallelism) < 0) throw invalid('job.task_groups[0].parallelism must not be negative');
  if (group.scheduling_policy === 'IN_ORDER' && int(group.parallelism) > 1) {
    throw invalid('job.task_groups[0].parallelism must be 1 when scheduling_policy is IN_ORDER');
  }
  for (const notification of job.notifications ?? []) {
    if (!notification.pubsub_topic || !TOPIC.test(notification.pubsub_topic)) {
      throw invalid(
        `notification pubsub_topic must be projects/{project}/topics/{topic}, got "${notification.pubsub_topic ?? ''}"`,
      );
    }
  }
}

class BatchService {
  private readonly jobs = new Map<string, JobRecord>();
  /** The long-running operations DeleteJob and CancelJob answered with, by name. */
  private readonly operations = new Map<string, Record<string, unknown>>();
  private readonly faults = new Map<string, { code: number; times: number }>();
  private readonly log: Logger;
  private readonly publisher: NotificationPublisher;
  private readonly store: JobStore | undefined;
  /** Records with task changes not yet written (see `persist`). */
  private readonly dirty = new Set<JobRecord>();
  private flushTimer: NodeJS.Immediate | undefined;
  private closed = false;
  /** While loading with `holdRestartNotifications`: notifications go to `held`, in order. */
  private holding = false;
  private held: Array<{ record: JobRecord; messages: NotificationMessage[] }> = [];
  readonly logDir: string;
  private readonly deletionGraceMs: number;
  private readonly slots: TaskSlots;

  constructor(private readonly options: BatchServiceOptions) {
    this.deletionGraceMs = Math.max(0, options.deletionGraceMs ?? DELETION_GRACE_MS);
    this.log = options.log ?? createLogger({ name: 'local-batch' });
    this.logDir = options.logDir ?? mkdtempSync(join(tmpdir(), 'batchwire-batch-logs-'));
    this.publisher = new NotificationPublisher(
      options.pubsubHost ?? process.env.PUBSUB_EMULATOR_HOST,
      this.log,
    );
    this.store = options.dataDir ? new JobStore(options.dataDir, this.log) : undefined;
    this.slots = options.slots ?? new TaskSlots(defaultTaskSlots());
  }

  /**
   * Brings back the jobs of `dataDir`. A job that was not terminal when the previous process
   * stopped lost its tasks with that process (they ran as its children), and nothing will ever
   * finish it: it is FAILED now, with an event saying why, and its FAILED notification goes out
   * like any other so onComplete reports the failure instead of waiting forever. Re-running it
   * instead would repeat side effects of tasks that may have half-run; the caller can resubmit.
   * Two states finish what the user asked for instead: DELETION_IN_PROGRESS completes the
   * delete, CANCELLATION_IN_PROGRESS becomes CANCELLED.
   */
  load(): void {
    if (!this.store) return;
    this.holding = this.options.holdRestartNotifications === true;
    try {
      this.loadAll(this.store);
    } finally {
      this.holding = false;
    }
  }

  private loadAll(store: JobStore): void {
    for (const saved of store.loadAll()) {
      const record = newRecord({
        job: saved.job,
        jobId: saved.jobId,
        requestId: saved.requestId ?? '',
        taskCount: saved.taskCount,
        tasks: saved.tasks,
        ...(saved.runningSince === undefined ? {} : { runningSince: saved.runningSince }),
        ...(saved.finishedAt === undefined ? {} : { finishedAt: saved.finishedAt }),
        ...(saved.deletedAt === undefined ? {} : { deletedAt: saved.deletedAt }),
      });
      const { name, status } = record.job;
      if (status.state === 'DELETION_IN_PROGRESS') {
        // Its tasks died with the previous process; only the rest of its grace period is left.
        const left = (record.deletedAt ?? 0) + this.deletionGraceMs - Date.now();
        if (left > 0) {
          this.jobs.set(name, record);
          record.gone(grpcError(grpc.status.NOT_FOUND, `Job ${name} was deleted`));
          this.scheduleRemoval(record, left);
        } else {
          store.remove(name);
          this.log.info({ job: name }, 'finished the delete of a job the previous process was deleting');
        }
        continue;
      }
      this.jobs.set(name, record);
      if (TERMINAL.has(status.state)) {
        record.reachTerminal();
        continue;
      }
      // The last moment the job is known to have run: its run duration must not count the downtime.
      const lastSeen = millis(record.job.update_time);
      if (status.state === 'CANCELLATION_IN_PROGRESS') {
        this.failTasks(record, 'the job was cancelled');
        this.transition(record, 'CANCELLED');
      } else {
        const reason = 'the local platform stopped while the job ran, which stopped its tasks';
        this.log.warn({ job: name, state: status.state }, `failing job: ${reason}`);
        this.failTasks(record, reason);
        this.transition(
          record,
          'FAILED',
          `${jobStateDescription(status.state, 'FAILED', name)} The local platform stopped while the job ran, which stopped its tasks.`,
        );
      }
      if (lastSeen !== undefined && record.runningSince !== undefined) {
        record.finishedAt = Math.max(record.runningSince, lastSeen);
        this.persist(record);
      }
    }
  }

  async releaseRestartNotifications(): Promise<void> {
    const held = this.held;
    this.held = [];
    for (const { record, messages } of held) {
      record.notified = this.publisher.chain(record.notified, messages);
    }
    await Promise.all(held.map(({ record }) => record.notified));
  }

  /** Queues a job's notifications behind its earlier ones (or holds them while loading). */
  private notify(record: JobRecord, messages: NotificationMessage[]): void {
    if (messages.length === 0) return;
    if (this.holding) this.held.push({ record, messages });
    else record.notified = this.publisher.chain(record.notified, messages);
  }

  /**
   * Writes the record with `dataDir`: 'now' for job changes (few, and the ones a restart must
   * see), 'soon' (once per event-loop turn) for task changes. Only the record the service
   * still holds under that name is written, so a late change of a deleted job cannot bring
   * its file back.
   */
  private persist(record: JobRecord, when: 'now' | 'soon' = 'now'): void {
    if (!this.store || this.closed || this.jobs.get(record.job.name) !== record) return;
    if (when === 'soon') {
      this.dirty.add(record);
      this.flushTimer ??= setImmediate(() => this.flush());
      return;
    }
    this.dirty.delete(record);
    this.write(record);
  }

  private flush(): void {
    if (this.flushTimer) clearImmediate(this.flushTimer);
    this.flushTimer = undefined;
    const records = [...this.dirty];
    this.dirty.clear();
    for (const record of records) {
      if (this.jobs.get(record.job.name) === record) this.write(record);
    }
  }

  private write(record: JobRecord): void {
    try {
      this.store?.save(stored(record));
    } catch (err) {
      // The job itself goes on; only its survival of a restart is at stake.
      this.log.error({ err, job: record.job.name }, 'could not write Batch job record');
    }
  }

  injectFault(method: string, code: number, times = 1): void {
    this.faults.set(method, { code, times });
  }

  takeFault(method: string): void {
    const fault = this.faults.get(method);
    if (!fault || fault.times <= 0) return;
    fault.times -= 1;
    if (fault.times === 0) this.faults.delete(method);
    throw grpcError(fault.code, `injected fault in ${method}`);
  }

  private emit(activity: PlatformActivity): void {
    try {
      this.options.onEvent?.(activity);
    } catch (err) {
      this.log.warn({ err }, 'onEvent listener failed');
    }
  }

  private record(name: string): JobRecord {
    if (!JOB_NAME.test(name ?? ''))
      throw invalid(`name must be projects/*/locations/*/jobs/*, got "${name}"`);
    const record = this.jobs.get(name);
    if (!record) throw grpcError(grpc.status.NOT_FOUND, `Job ${name} not found`);
    return record;
  }

  /** A copy of the job as GetJob returns it, with live counts and run duration. */
  snapshot(record: JobRecord): JobMessage {
    const job = structuredClone(record.job);
    const counts: Record<string, number> = {};
    for (const task of record.tasks) counts[task.state] = (counts[task.state] ?? 0) + 1;
    job.status.task_groups = {
      group0: {
        counts: Object.fromEntries(Object.entries(counts).map(([state, count]) => [state, String(count)])),
        instances: [],
      },
    };
    job.status.run_duration = record.runningSince
      ? duration((record.finishedAt ?? Date.now()) - record.runningSince)
      : duration(0);
    return job;
  }

  createJob(request: {
    parent: string;
    job_id: string;
    job: JobMessage | null;
    request_id: string;
  }): JobMessage {
    const parent = PARENT.exec(request.parent ?? '');
    if (!parent)
      throw invalid(`parent must be projects/{project}/locations/{location}, got "${request.parent}"`);
    const jobId = request.job_id || `job-${randomUUID()}`;
    if (!JOB_ID.test(jobId)) {
      throw invalid(
        `job_id "${jobId}" is invalid: at most 63 characters, lowercase letters, digits and '-', starting with a letter and not ending with '-'`,
      );
    }
    if (request.request_id && (!UUID.test(request.request_id) || /^[0-]+$/.test(request.request_id))) {
      throw invalid(`request_id must be a valid non-zero UUID, got "${request.request_id}"`);
    }
    if (!request.job) throw invalid('job is required');
    validateJob(request.job);

    const name = `${request.parent}/jobs/${jobId}`;
    const existing = this.jobs.get(name);
    if (existing) {
      // Batch's requestId: a retried create (same request id) gets the job it already made.
      if (request.request_id && existing.requestId === request.request_id) return this.snapshot(existing);
      throw grpcError(grpc.status.ALREADY_EXISTS, `Job ${name} already exists`);
    }

    const now = Date.now();
    const job = structuredClone(request.job);
    const group = job.task_groups[0] as TaskGroupMessage;
    const environments = group.task_environments ?? [];
    // With task_environments, Batch ignores task_count: one task per environment.
    const taskCount = environments.length > 0 ? environments.length : Math.max(1, int(group.task_count));
    group.name = `${name}/taskGroups/group0`;
    group.task_count = String(taskCount);
    job.name = name;
    job.uid = jobUid(jobId);
    job.create_time = timestamp(now);
    job.update_time = timestamp(now);
    job.status = { state: 'QUEUED', status_events: [], task_groups: {}, run_duration: null };

    const record = newRecord({
      job,
      jobId,
      requestId: request.request_id,
      taskCount,
      tasks: Array.from({ length: taskCount }, (_, index) => ({
        name: `${group.name}/tasks/${index}`,
        uid: `${job.uid}-group0-${index}`,
        state: 'PENDING' as TaskState,
        events: [],
      })),
    });
    this.jobs.set(name, record);
    this.persist(record);
    this.log.info({ job: name, taskCount }, 'job created');
    this.emit({
      kind: 'job.created',
      message: `${jobId} created (${taskCount} task${taskCount === 1 ? '' : 's'})`,
      job: name,
      uid: job.uid,
      labels: job.labels ?? {},
    });
    this.notify(record, jobStateMessages(job, 'STATE_UNSPECIFIED', 'QUEUED', now));
    if (this.options.execute !== false) {
      record.execution = this.execute(record).catch((err) => {
        this.log.error({ err, job: name }, 'job execution failed');
        this.transition(
          record,
          'FAILED',
          `${jobStateDescription(record.job.status.state, 'FAILED', name)} ${(err as Error).message}`,
        );
      });
    }
    return this.snapshot(record);
  }

  private transition(record: JobRecord, state: JobState, description?: string): void {
    const previous = record.job.status.state;
    if (previous === state) return;
    const now = Date.now();
    const { job } = record;
    job.status.state = state;
    job.status.status_events.push({
      type: 'STATUS_CHANGED',
      description: description ?? jobStateDescription(previous, state, job.name),
      event_time: timestamp(now),
      task_execution: null,
      task_state: 'STATE_UNSPECIFIED',
    });
    job.update_time = timestamp(now);
    if (state === 'RUNNING') record.runningSince = now;
    if (TERMINAL.has(state)) record.finishedAt = now;
    this.notify(record, jobStateMessages(job, previous, state, now));
    this.persist(record);
    this.log.info({ job: job.name, previous, state }, 'job state changed');
    this.emit({
      kind: 'job.state',
      message: `${record.jobId} ${previous} → ${state}`,
      job: job.name,
      state,
      previous,
    });
    if (TERMINAL.has(state)) record.reachTerminal();
  }

  private taskState(
    record: JobRecord,
    index: number,
    state: ExecutorTaskState,
    detail: { exitCode?: number; attempt: number } | undefined,
  ): void {
    const task = record.tasks[index];
    if (!task) return;
    const previous = task.state;
    if (previous === state) return;
    if (state === 'RUNNING' && record.job.status.state === 'SCHEDULED') this.transition(record, 'RUNNING');
    const now = Date.now();
    const exitCode = state === 'RUNNING' ? undefined : detail?.exitCode;
    const region = record.job.name.split('/')[3];
    task.state = state;
    task.events.push({
      type: 'STATUS_CHANGED',
      description: taskStateDescription(
        previous,
        state,
        `zones/${region}-local/instances/localhost`,
        exitCode,
      ),
      event_time: timestamp(now),
      task_execution: exitCode === undefined ? null : { exit_code: exitCode },
      task_state: state,
    });
    record.job.update_time = timestamp(now);
    this.notify(record, taskStateMessages(record.job, task, previous, state, now));
    // Task changes come in bursts (a whole group turns PENDING at once): one write per turn.
    this.persist(record, 'soon');
    const attempt = detail?.attempt ?? 0;
    this.emit({
      kind: 'task.state',
      message: `${record.jobId} task ${index} ${state}${attempt > 0 ? ` (retry ${attempt})` : ''}${exitCode === undefined ? '' : ` exit ${exitCode}`}`,
      job: record.job.name,
      task: index,
      state,
      attempt,
      ...(exitCode === undefined ? {} : { exitCode }),
    });
  }

  private failTasks(record: JobRecord, reason: string): void {
    const now = Date.now();
    for (const task of record.tasks) {
      if (task.state === 'SUCCEEDED' || task.state === 'FAILED') continue;
      task.events.push({
        type: 'STATUS_CHANGED',
        description: `Task state is updated from ${task.state} to FAILED: ${reason}`,
        event_time: timestamp(now),
        task_execution: null,
        task_state: 'FAILED',
      });
      task.state = 'FAILED';
    }
  }

  private async execute(record: JobRecord): Promise<void> {
    const { signal } = record.abort;
    // Let CreateJob answer first, as a queued job starts later than its creation.
    await new Promise((resolve) => setImmediate(resolve));
    if (signal.aborted) return;

    const group = record.job.task_groups[0] as TaskGroupMessage;
    const runnables = group.task_spec?.runnables ?? [];
    const images = this.options.images ?? {};
    const baseDir = this.options.baseDir ?? process.cwd();
    const jobLogDir = join(this.logDir, record.jobId);
    mkdirSync(jobLogDir, { recursive: true });

    let argv: string[];
    try {
      argv =
        runnables.length === 1
          ? runnableArgv(runnables[0] as never, images, baseDir)
          : multiRunnableArgv(runnables, images, baseDir);
    } catch (err) {
      // The image has no local stand-in: as an image that cannot be pulled, the job fails
      // (without taking a slot: no process would run).
      const reason = (err as Error).message;
      this.transition(record, 'SCHEDULED');
      this.failTasks(record, reason);
      this.transition(
        record,
        'FAILED',
        `${jobStateDescription(record.job.status.state, 'FAILED', record.job.name)} ${reason}`,
      );
      return;
    }
    const single = runnables.length === 1 ? runnableEnvironment(runnables[0] as never) : {};
    let hostsFile: string | undefined;
    if (group.require_hosts_file) {
      hostsFile = join(jobLogDir, 'hosts');
      writeFileSync(hostsFile, '127.0.0.1\n');
    }
    const parallelism =
      group.scheduling_policy === 'IN_ORDER' ? 1 : int(group.parallelism) || record.taskCount;

    const result = await runTaskGroup({
      taskCount: record.taskCount,
      parallelism,
      maxRetryCount: group.task_spec?.max_retry_count ?? 0,
      signal,
      // QUEUED ("waiting for resources", in Batch's words) until a slot is free; SCHEDULED once
      // the job holds one, RUNNING as its first task starts (see taskState).
      slots: this.slots,
      owner: record.job.name,
      onAdmitted: () => this.transition(record, 'SCHEDULED'),
      taskFor: (index, attempt) => ({
        argv,
        env: {
          ...taskEnvironment(group, {
            index,
            taskCount: record.taskCount,
            attempt,
            platformEnv: this.options.env ?? {},
            ...(hostsFile ? { hostsFile } : {}),
          }),
          ...single,
        },
        cwd: baseDir,
      }),
      logFile: (index, attempt) => join(jobLogDir, `task-${index}-attempt-${attempt}.log`),
      onTaskState: (index, state, detail) => this.taskState(record, index, state, detail),
    });
    if (signal.aborted) return; // deleted or cancelled: that path owns the state from here

    if (result.failed > 0) {
      const index = record.tasks.findIndex((task) => task.state === 'FAILED');
      const event = record.tasks[index]?.events.at(-1)?.description ?? 'a task failed';
      this.transition(
        record,
        'FAILED',
        jobFailureDescription('RUNNING', record.job.name, index >= 0 ? index : undefined, event),
      );
    } else {
      this.transition(record, 'SUCCEEDED');
    }
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
    const parent = PARENT.exec(request.parent ?? '');
    if (!parent)
      throw invalid(`parent must be projects/{project}/locations/{location}, got "${request.parent}"`);
    const [, project, location] = parent;
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

  private operation(jobName: string, responseType: string): Record<string, unknown> {
    const parent = jobName.split('/jobs/')[0];
    const operation = {
      name: `${parent}/operations/operation-${Date.now()}-${randomBytes(8).toString('hex')}`,
      done: true,
      // Empty and CancelJobResponse both encode to zero bytes.
      response: { type_url: `type.googleapis.com/${responseType}`, value: Buffer.alloc(0) },
    };
    this.operations.set(operation.name, operation);
    return operation;
  }

  getOperation(request: { name: string }): Record<string, unknown> {
    if (!OPERATION_NAME.test(request.name ?? ''))
      throw invalid(`name must be projects/*/locations/*/operations/*, got "${request.name}"`);
    const operation = this.operations.get(request.name);
    if (!operation) throw grpcError(grpc.status.NOT_FOUND, `Operation ${request.name} not found`);
    return operation;
  }

  listOperations(request: { name: string; filter: string; page_size: number; page_token: string }): {
    operations: Record<string, unknown>[];
    next_page_token: string;
  } {
    if (!PARENT.test(request.name ?? ''))
      throw invalid(`name must be projects/{project}/locations/{location}, got "${request.name}"`);
    if (request.filter?.trim()) throw invalid(`operation filters are not supported: ${request.filter}`);
    const all = [...this.operations.values()].filter((op) =>
      String(op.name).startsWith(`${request.name}/operations/`),
    );
    const { page, next_page_token } = paginate(all, request, { scope: request.name });
    return { operations: page, next_page_token };
  }

  deleteOperation(request: { name: string }): Record<string, never> {
    this.getOperation(request);
    this.operations.delete(request.name);
    return {};
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
    const now = Date.now();
    record.deletedAt = now;
    // Its run ends here: the run duration must not grow while the job waits to be removed.
    if (record.runningSince !== undefined && record.finishedAt === undefined) record.finishedAt = now;
    this.transition(record, 'DELETION_IN_PROGRESS');
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
    this.dirty.delete(record);
    try {
      this.store?.remove(name);
    } catch (err) {
      this.log.error({ err, job: name }, 'could not remove Batch job record');
    }
    this.log.info({ job: name }, 'job deleted');
    this.emit({ kind: 'job.deleted', message: `${record.jobId} deleted`, job: name });
  }

  async cancelJob(request: { name: string }): Promise<Record<string, unknown>> {
    const record = this.record(request.name);
    if (TERMINAL.has(record.job.status.state) || record.job.status.state === 'DELETION_IN_PROGRESS') {
      throw grpcError(
        grpc.status.FAILED_PRECONDITION,
        `Job ${request.name} is ${record.job.status.state} and cannot be cancelled`,
      );
    }
    this.transition(record, 'CANCELLATION_IN_PROGRESS');
    record.abort.abort();
    await this.settle(record);
    this.failTasks(record, 'the job was cancelled');
    this.transition(record, 'CANCELLED');
    return this.operation(request.name, 'google.cloud.batch.v1.CancelJobResponse');
  }

  private taskMessage(task: TaskRecord): TaskMessage {
    return { name: task.name, status: { state: task.state, status_events: structuredClone(task.events) } };
  }

  getTask(request: { name: string }): TaskMessage {
    const match = TASK_NAME.exec(request.name ?? '');
    if (!match)
      throw invalid(`name must be projects/*/locations/*/jobs/*/taskGroups/*/tasks/*, got "${request.name}"`);
    const task = this.record(match[1] as string).tasks.find((candidate) => candidate.name === request.name);
    if (!task) throw grpcError(grpc.status.NOT_FOUND, `Task ${request.name} not found`);
    return this.taskMessage(task);
  }

  listTasks(request: { parent: string; filter: string; page_size: number; page_token: string }): {
    tasks: TaskMessage[];
    next_page_token: string;
    unreachable: string[];
  } {
    const match = TASK_GROUP_NAME.exec(request.parent ?? '');
    if (!match)
      throw invalid(`parent must be projects/*/locations/*/jobs/*/taskGroups/*, got "${request.parent}"`);
    const record = this.record(match[1] as string);
    if (match[2] !== 'group0')
      throw grpcError(grpc.status.NOT_FOUND, `TaskGroup ${request.parent} not found`);
    const filter = (request.filter ?? '').trim();
    const wanted = filter ? /^State\s*=\s*"?([A-Z_]+)"?$/i.exec(filter)?.[1] : undefined;
    if (filter && !wanted) throw invalid(`unsupported task filter: ${filter} (use State=RUNNING)`);
    const tasks = record.tasks
      .filter((task) => !wanted || task.state === wanted)
      .map((task) => this.taskMessage(task));
    const { page, next_page_token } = paginate(tasks, request, {
      scope: `${request.parent}\t${filter}`,
    });
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
    this.flush();
    this.closed = true;
    if (this.held.length > 0) {
      this.log.warn({ notifications: this.held.length }, 'restart notifications never released: dropped');
      this.held = [];
    }
    await this.publisher.close();
  }
}

type Handler = grpc.handleUnaryCall<unknown, unknown>;

/**
 * Starts the local Cloud Batch service on 127.0.0.1: the real `BatchServiceClient` talks to it
 * with `grpcClientOptions('batch', { BATCH_EMULATOR_HOST: host })`. Jobs run as local processes
 * (see local/executor), move QUEUED (waiting for a task slot, see `slots`) → SCHEDULED →
 * RUNNING → SUCCEEDED/FAILED, and publish Batch's job notifications to the Pub/Sub emulator.
 *
 * @example
 * const batch = await startBatchService({ images: config.local.images, baseDir, env: { STORAGE_EMULATOR_HOST } });
 * process.env.BATCH_EMULATOR_HOST = batch.host;
 */
export async function startBatchService(options: BatchServiceOptions = {}): Promise<LocalBatchService> {
  const proto = loadGrpcPackage('@google-cloud/batch', BATCH_PROTOS);
  const definition = lookup(proto, 'google.cloud.batch.v1.BatchService');
  const service = new BatchService(options);
  service.load();

  const unary =
    (method: string, handle: (request: never) => unknown): Handler =>
    (call, callback) => {
      Promise.resolve()
        .then(() => {
          service.takeFault(method);
          return handle(call.request as never);
        })
        .then(
          (response) => callback(null, response),
          (err: grpc.ServiceError) => {
            const isGrpc = typeof err?.code === 'number';
            callback(isGrpc ? err : grpcError(grpc.status.INTERNAL, (err as Error)?.message ?? String(err)));
          },
        );
    };

  const api = createLocalApiServer(loadProtoRoot('@google-cloud/batch', BATCH_PROTOS), BATCH_HTTP_RULES);
  api.addService('google.cloud.batch.v1.BatchService', definition.service, {
    CreateJob: unary('CreateJob', (request) => service.createJob(request)),
    GetJob: unary('GetJob', (request) => service.getJob(request)),
    ListJobs: unary('ListJobs', (request) => service.listJobs(request)),
    DeleteJob: unary('DeleteJob', (request) => service.deleteJob(request)),
    CancelJob: unary('CancelJob', (request) => service.cancelJob(request)),
    GetTask: unary('GetTask', (request) => service.getTask(request)),
    ListTasks: unary('ListTasks', (request) => service.listTasks(request)),
  });
  api.addService('google.longrunning.Operations', lookup(proto, 'google.longrunning.Operations').service, {
    GetOperation: unary('GetOperation', (request) => service.getOperation(request)),
    ListOperations: unary('ListOperations', (request) => service.listOperations(request)),
    DeleteOperation: unary('DeleteOperation', (request) => service.deleteOperation(request)),
    // Batch's operations are done when DeleteJob/CancelJob answer: cancelling one changes nothing.
    CancelOperation: unary('CancelOperation', (request) => service.getOperation(request) && {}),
  });
  const locations = createLocations(() => [...(options.locations ?? []), ...service.jobLocations()]);
  api.addService(
    'google.cloud.location.Locations',
    lookup(proto, 'google.cloud.location.Locations').service,
    {
      ListLocations: unary('ListLocations', (request) => locations.listLocations(request)),
      GetLocation: unary('GetLocation', (request) => locations.getLocation(request)),
    },
  );
  const port = await api.listen(options.port ?? 0);

  return {
    host: `127.0.0.1:${port}`,
    port,
    logDir: service.logDir,
    injectFault: (method, code, times) => service.injectFault(method, code, times),
    waitForJob: (name, timeoutMs) => service.waitForJob(name, timeoutMs),
    releaseRestartNotifications: () => service.releaseRestartNotifications(),
    close: async () => {
      await service.close();
      await api.close();
    },
  };
}
