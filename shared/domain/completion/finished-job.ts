import {
  type FinalJobState,
  isJobWorded,
  isTaskState,
  type JobState,
  mentionsTaskFailure,
  parseExitCode,
  parseJobTransition,
  parseTaskIndex,
  type TaskState,
} from '../batch-states.js';
import type { InferenceResultData } from '../results/event-data.js';

/**
 * Reading a finished job as GetJob returns it: when it was created, started and finished, how
 * many tasks it had, which of them failed and how, and a reason a human can act on. Pure: the
 * job resource in, plain values out.
 */

/** A protobuf Timestamp / Duration as the client returns it (int64 seconds as a string). */
interface SecondsLike {
  seconds?: number | string | { toString(): string } | null;
  nanos?: number | null;
}

interface StatusEventLike {
  type?: string | null;
  description?: string | null;
  eventTime?: SecondsLike | null;
  taskExecution?: { exitCode?: number | null } | null;
  taskState?: string | null;
}

/**
 * The fields of GetJob's answer that onComplete reads (camelCase, as `@google-cloud/batch`
 * returns them). Structural, so the Batch adapter's `BatchJobResource` fits it.
 */
export interface FinishedJobResource {
  name: string;
  uid: string;
  labels?: Record<string, string> | null;
  taskGroups?: Array<{
    taskCount?: number | string | null;
    taskSpec?: {
      maxRetryCount?: number | null;
      environment?: { variables?: Record<string, string> | null } | null;
    } | null;
  }> | null;
  status?: {
    state?: string | null;
    statusEvents?: StatusEventLike[] | null;
    taskGroups?: Record<string, { counts?: Record<string, number | string> | null }> | null;
    runDuration?: SecondsLike | null;
  } | null;
  createTime?: SecondsLike | null;
  updateTime?: SecondsLike | null;
}

/** A Timestamp as ISO 8601, or null when unset (the client fills unset messages with null). */
export function timestampToIso(value: SecondsLike | string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string')
    return Number.isNaN(Date.parse(value)) ? null : new Date(value).toISOString();
  const seconds = Number(String(value.seconds ?? '0'));
  const nanos = value.nanos ?? 0;
  if (!Number.isFinite(seconds) || (seconds === 0 && nanos === 0)) return null;
  return new Date(seconds * 1000 + Math.floor(nanos / 1e6)).toISOString();
}

function durationSeconds(value: SecondsLike | null | undefined): number | null {
  if (!value) return null;
  const seconds = Number(String(value.seconds ?? '0'));
  if (!Number.isFinite(seconds)) return null;
  return seconds + (value.nanos ?? 0) / 1e9;
}

/** A job-level state change found in the status events. */
export interface JobTransition {
  from: string;
  to: string;
  time: string | null;
}

/** The job-level transitions in a job's status events, in order. */
export function jobTransitions(job: FinishedJobResource): JobTransition[] {
  const transitions: JobTransition[] = [];
  for (const event of job.status?.statusEvents ?? []) {
    if (isTaskEvent(event) && !isJobWorded(event.description ?? '')) continue;
    const transition = parseJobTransition(event.description ?? '');
    if (transition) transitions.push({ ...transition, time: timestampToIso(event.eventTime) });
  }
  return transitions;
}

function isTaskEvent(event: StatusEventLike): boolean {
  return isTaskState(event.taskState ?? '') || (event.taskExecution ?? null) !== null;
}

/** A task failure found in the status events. */
export interface TaskFailure {
  index: number | null;
  exitCode: number | null;
  description: string;
}

/**
 * Task failures reported in the job's status events. Batch words them as "Task state is
 * updated from RUNNING to FAILED … with exit code 3" (task-level events) or names the task in a
 * job-level event ("task with index 2 failed …"); the exit code is in `taskExecution`.
 */
export function taskFailures(job: FinishedJobResource): TaskFailure[] {
  const failures: TaskFailure[] = [];
  for (const event of job.status?.statusEvents ?? []) {
    const description = event.description ?? '';
    const exitCode = event.taskExecution?.exitCode ?? parseExitCode(description);
    const failedTask =
      event.taskState === 'FAILED' ||
      (exitCode !== null && exitCode !== 0) ||
      mentionsTaskFailure(description);
    if (!failedTask) continue;
    const index = parseTaskIndex(description);
    failures.push({ index, exitCode: exitCode === 0 ? null : exitCode, description });
  }
  return failures;
}

/** What Batch's reserved exit codes mean (https://cloud.google.com/batch/docs/troubleshooting). */
const RESERVED_EXIT_CODES: Record<number, string> = {
  50001: 'the VM was preempted',
  50002: 'Batch lost contact with the VM',
  50003: 'the VM was rebooted while the task ran',
  50004: 'the task stopped responding',
  50005: 'the task ran longer than maxRunDuration',
  50006: 'the VM was recreated while the task ran',
};

function sumCounts(job: FinishedJobResource, state: TaskState): number | null {
  const groups = Object.values(job.status?.taskGroups ?? {});
  if (groups.length === 0) return null;
  return groups.reduce((sum, group) => sum + Number(group.counts?.[state] ?? 0), 0);
}

/** Tasks in the job (all task groups). */
export function jobTaskCount(job: FinishedJobResource): number {
  return (job.taskGroups ?? []).reduce((sum, group) => sum + Number(group.taskCount ?? 1), 0);
}

function jobId(job: FinishedJobResource): string {
  return job.name.slice(job.name.lastIndexOf('/') + 1);
}

/** How a job ended, for the result. */
export type JobEnding = FinalJobState | 'DELETED';

/**
 * A reason a human can act on, for a job that did not succeed: how many tasks failed, which
 * one first, with what exit code (and what Batch's reserved codes mean), after how many
 * attempts, and where its logs are.
 *
 * @example
 * failureReason(job, 'FAILED')
 * // '2 of 3 tasks failed; task 1 exited with code 3 after 2 attempts; see the task logs of job
 * //  bw-…-9f2c (Cloud Logging: labels.job_uid="…")'
 */
export function failureReason(job: FinishedJobResource, ending: Exclude<JobEnding, 'SUCCEEDED'>): string {
  const id = jobId(job);
  const logs = `see the task logs of job ${id} (Cloud Logging: labels.job_uid="${job.uid}")`;
  if (ending === 'DELETED') {
    return `job ${id} was deleted before it finished, so its outputs may be incomplete; upload the input again to run it anew`;
  }
  if (ending === 'CANCELLED') {
    return `job ${id} was cancelled before it finished, so its outputs may be incomplete; upload the input again to run it anew; ${logs}`;
  }
  const parts: string[] = [];
  const total = jobTaskCount(job);
  const failures = taskFailures(job);
  const failedCount = sumCounts(job, 'FAILED') ?? new Set(failures.map((f) => f.index)).size;
  if (failedCount > 0) parts.push(`${failedCount} of ${total} task${total === 1 ? '' : 's'} failed`);
  const first = failures.find((f) => f.exitCode !== null) ?? failures[0];
  if (first) {
    const attempts = (job.taskGroups?.[0]?.taskSpec?.maxRetryCount ?? 0) + 1;
    const who = first.index !== null ? `task ${first.index}` : 'a task';
    if (first.exitCode !== null) {
      const meaning = RESERVED_EXIT_CODES[first.exitCode];
      parts.push(
        `${who} exited with code ${first.exitCode}${meaning ? ` (${meaning})` : ''} after ${attempts} attempt${attempts === 1 ? '' : 's'}`,
      );
    } else {
      parts.push(`${who} failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${first.description}`);
    }
  }
  if (parts.length === 0) {
    const last = [...(job.status?.statusEvents ?? [])].reverse().find((e) => e.description);
    parts.push(`job ${id} failed${last?.description ? `: ${last.description}` : ''}`);
  }
  parts.push(logs);
  return parts.join('; ');
}

/**
 * The timings of a job: created (createTime), started (first transition to RUNNING), finished
 * (transition to the final state, else the last update), and Batch's runDuration.
 */
export function jobTimings(
  job: FinishedJobResource,
  finalStates: readonly JobState[],
): InferenceResultData['timings'] {
  const transitions = jobTransitions(job);
  const started = transitions.find((t) => t.to === 'RUNNING')?.time ?? null;
  const finished =
    [...transitions].reverse().find((t) => finalStates.some((state) => state === t.to))?.time ??
    timestampToIso(job.updateTime);
  return {
    created: timestampToIso(job.createTime),
    started,
    finished,
    runDurationSeconds: durationSeconds(job.status?.runDuration),
  };
}
