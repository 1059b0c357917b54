/**
 * A job as the local Batch holds it (`JobRecord`): the Job message, its tasks, the times its
 * run duration counts from, and the runtime handles of its execution. This module makes
 * records (from a CreateJob, from disk), turns them into what is stored and what GetJob and
 * GetTask answer, and nothing else.
 */
import { randomBytes } from 'node:crypto';
import { duration, timestamp } from '../grpc/timestamp.js';
import type { StoredJob } from './job-store.js';
import type { JobMessage, StatusEvent, TaskGroupMessage, TaskMessage, TaskState } from './types.js';
import { int } from './validate.js';

export interface TaskRecord {
  name: string;
  uid: string;
  state: TaskState;
  events: StatusEvent[];
}

export interface JobRecord {
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

/** The fields of a record that outlive a restart. */
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

/** The optional times of a record, only those set (the stored JSON has no `undefined`). */
function times(source: Pick<RecordFields, 'runningSince' | 'finishedAt' | 'deletedAt'>) {
  return {
    ...(source.runningSince === undefined ? {} : { runningSince: source.runningSince }),
    ...(source.finishedAt === undefined ? {} : { finishedAt: source.finishedAt }),
    ...(source.deletedAt === undefined ? {} : { deletedAt: source.deletedAt }),
  };
}

/** The part of a record that is written to disk. */
export function toStored(record: JobRecord): StoredJob {
  return {
    version: 1,
    job: record.job,
    jobId: record.jobId,
    requestId: record.requestId,
    taskCount: record.taskCount,
    tasks: record.tasks,
    ...times(record),
  };
}

/** A record brought back from disk. */
export function fromStored(saved: StoredJob): JobRecord {
  return newRecord({
    job: saved.job,
    jobId: saved.jobId,
    requestId: saved.requestId ?? '',
    taskCount: saved.taskCount,
    tasks: saved.tasks,
    ...times(saved),
  });
}

/** A uid in the shape Batch gives: the id's first 18 characters, then a random suffix. */
function jobUid(jobId: string): string {
  const hex = randomBytes(9).toString('hex');
  return `${jobId.slice(0, 18).replace(/-+$/, '')}-${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 17)}`;
}

/** The QUEUED record of a job CreateJob accepted as `name`, its tasks PENDING. */
export function createdRecord(
  name: string,
  jobId: string,
  requested: JobMessage,
  requestId: string,
  now: number,
): JobRecord {
  const job = structuredClone(requested);
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
  return newRecord({
    job,
    jobId,
    requestId,
    taskCount,
    tasks: Array.from({ length: taskCount }, (_, index) => ({
      name: `${group.name}/tasks/${index}`,
      uid: `${job.uid}-group0-${index}`,
      state: 'PENDING' as TaskState,
      events: [],
    })),
  });
}

/** A copy of the job as GetJob returns it at `now`, with live counts and run duration. */
export function jobMessage(record: JobRecord, now: number): JobMessage {
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
    ? duration((record.finishedAt ?? now) - record.runningSince)
    : duration(0);
  return job;
}

/** A task as GetTask returns it. */
export function taskMessage(task: TaskRecord): TaskMessage {
  return { name: task.name, status: { state: task.state, status_events: structuredClone(task.events) } };
}
