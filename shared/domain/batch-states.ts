/**
 * Cloud Batch's job and task states, and the English it words their changes in. Batch reports
 * a job's history only as `status.statusEvents[].description` text, so the core reads
 * transitions, exit codes and failed task indexes out of that text. The writers here produce
 * the same wording (the local Batch service writes its events with them) and the parsers read
 * it; test/unit/batch-states.test.ts checks the parsers against a status captured from real
 * Batch output.
 */

/** `google.cloud.batch.v1.JobStatus.State` names (STATE_UNSPECIFIED aside). */
export const JOB_STATES = [
  'QUEUED',
  'SCHEDULED',
  'RUNNING',
  'SUCCEEDED',
  'FAILED',
  'DELETION_IN_PROGRESS',
  'CANCELLATION_IN_PROGRESS',
  'CANCELLED',
] as const;
export type JobState = (typeof JOB_STATES)[number];

/** The states a job ends in: a result is published for each. */
export const FINAL_JOB_STATES = ['SUCCEEDED', 'FAILED', 'CANCELLED'] as const;
export type FinalJobState = (typeof FINAL_JOB_STATES)[number];

/** `google.cloud.batch.v1.TaskStatus.State` names (STATE_UNSPECIFIED aside). */
export const TASK_STATES = ['PENDING', 'ASSIGNED', 'RUNNING', 'FAILED', 'SUCCEEDED', 'UNEXECUTED'] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** Whether `state` is one a job ends in. */
export function isFinalJobState(state: string): state is FinalJobState {
  return (FINAL_JOB_STATES as readonly string[]).includes(state);
}

/** Whether `state` names a task state. */
export function isTaskState(state: string): state is TaskState {
  return (TASK_STATES as readonly string[]).includes(state);
}

// ── Writers: Batch's wording ────────────────────────────────────────────────────────────────

/** "Job state is set from RUNNING to SUCCEEDED for job projects/…/jobs/J." */
export function jobStateDescription(from: string, to: string, jobName: string): string {
  return `Job state is set from ${from} to ${to} for job ${jobName}.`;
}

/**
 * "Task state is updated from RUNNING to FAILED on zones/Z/instances/I with exit code 3."
 * (no exit code while a task starts).
 */
export function taskStateDescription(from: string, to: string, instance: string, exitCode?: number): string {
  const code = exitCode === undefined ? '' : ` with exit code ${exitCode}`;
  return `Task state is updated from ${from} to ${to} on ${instance}${code}.`;
}

/**
 * The job's FAILED event as Batch words it, naming the failed task and quoting its event (no
 * space after the job name's period, as Batch writes it):
 * `…for job J.Job failed due to task failure. Specifically, task with index 0 failed due to the
 * following task event: "Task state is updated from RUNNING to FAILED on … with exit code 127."`
 *
 * @param taskIndex the failed task's index, when known
 */
export function jobFailureDescription(
  from: string,
  jobName: string,
  taskIndex: number | undefined,
  taskEvent: string,
): string {
  const who = taskIndex === undefined ? 'one of the tasks' : `task with index ${taskIndex}`;
  return (
    `Job state is set from ${from} to FAILED for job ${jobName}.Job failed due to task failure. ` +
    `Specifically, ${who} failed due to the following task event: "${taskEvent}"`
  );
}

// ── Parsers ────────────────────────────────────────────────────────────────────────────────

const JOB_STATE_ALTERNATIVES = JOB_STATES.join('|');
const JOB_TRANSITION = new RegExp(
  `\\bjob state\\b.*?\\bfrom (${JOB_STATE_ALTERNATIVES}) to (${JOB_STATE_ALTERNATIVES})\\b`,
  'i',
);

/** The job transition a description announces ("Job state is set from X to Y …"), if any. */
export function parseJobTransition(description: string): { from: JobState; to: JobState } | undefined {
  const match = JOB_TRANSITION.exec(description);
  if (!match) return undefined;
  return {
    from: (match[1] as string).toUpperCase() as JobState,
    to: (match[2] as string).toUpperCase() as JobState,
  };
}

/** Whether a description is worded as a job-level event (it starts with "Job"). */
export function isJobWorded(description: string): boolean {
  return /^\s*job\b/i.test(description);
}

/** The exit code a description names ("with exit code 3", "exited with code 3"), if any. */
export function parseExitCode(description: string): number | null {
  return numberFrom(/\bexit(?:ed with)? code:? (-?\d+)/i.exec(description));
}

/** Whether a description says that a task failed. */
export function mentionsTaskFailure(description: string): boolean {
  return /\btask\b[^.]*\bfailed\b/i.test(description);
}

/**
 * The task index a description names: "task with index 2", a `…/tasks/2` name, a
 * `group0-2` task id, or "task 2"; null when it names none.
 */
export function parseTaskIndex(description: string): number | null {
  return numberFrom(
    /\btask (?:with )?index (\d+)/i.exec(description) ??
      /\/tasks\/(\d+)\b/.exec(description) ??
      /\bgroup\d+-(\d+)\b/.exec(description) ??
      /\btask (\d+)\b/i.exec(description),
  );
}

function numberFrom(match: RegExpExecArray | null): number | null {
  return match ? Number(match[1]) : null;
}
