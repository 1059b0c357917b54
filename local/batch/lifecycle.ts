/**
 * How a job and its tasks change state: each change appends Batch's status event (in the
 * wording the core parses), queues the job's notifications behind its earlier ones, writes the
 * record and reports the activity. Notifications of jobs failed at a restart can be held
 * until the platform has made the topics again.
 */
import { jobStateDescription, taskStateDescription } from '#shared/domain/batch-states.js';
import type { Logger } from '#shared/runtime/logger.js';
import type { ActivityListener, PlatformActivity } from '../activity.js';
import type { Clock } from '../clock.js';
import type { TaskState as ExecutorTaskState } from '../executor/index.js';
import { timestamp } from '../grpc/timestamp.js';
import type { JobWriter } from './job-writer.js';
import {
  jobStateMessages,
  type NotificationMessage,
  type NotificationPublisher,
  taskStateMessages,
} from './notifications.js';
import type { JobRecord } from './records.js';
import type { JobState } from './types.js';

export const TERMINAL: ReadonlySet<JobState> = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

export class JobLifecycle {
  /** While restoring with `holdRestartNotifications`: notifications go to `held`, in order. */
  private holding = false;
  private held: Array<{ record: JobRecord; messages: NotificationMessage[] }> = [];

  constructor(
    private readonly deps: {
      publisher: NotificationPublisher;
      writer: JobWriter;
      log: Logger;
      clock: Clock;
      onEvent?: ActivityListener;
    },
  ) {}

  /** Runs `restore` with notifications held (when `hold`) instead of published. */
  holdingNotifications(hold: boolean, restore: () => void): void {
    this.holding = hold;
    try {
      restore();
    } finally {
      this.holding = false;
    }
  }

  /** Publishes the held notifications; resolves once attempted. */
  async releaseHeld(): Promise<void> {
    const held = this.held;
    this.held = [];
    for (const { record, messages } of held) {
      record.notified = this.deps.publisher.chain(record.notified, messages);
    }
    await Promise.all(held.map(({ record }) => record.notified));
  }

  /** Drops notifications never released (at close), with a warning. */
  dropHeld(): void {
    if (this.held.length === 0) return;
    this.deps.log.warn({ notifications: this.held.length }, 'restart notifications never released: dropped');
    this.held = [];
  }

  /** Queues a job's notifications behind its earlier ones (or holds them while restoring). */
  notify(record: JobRecord, messages: NotificationMessage[]): void {
    if (messages.length === 0) return;
    if (this.holding) this.held.push({ record, messages });
    else record.notified = this.deps.publisher.chain(record.notified, messages);
  }

  emit(activity: PlatformActivity): void {
    try {
      this.deps.onEvent?.(activity);
    } catch (err) {
      this.deps.log.warn({ err }, 'onEvent listener failed');
    }
  }

  /** Moves the job to `state` (nothing if it is there already), with Batch's wording by default. */
  transition(record: JobRecord, state: JobState, description?: string): void {
    const previous = record.job.status.state;
    if (previous === state) return;
    const now = this.deps.clock.now();
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
    this.deps.writer.persist(record);
    this.deps.log.info({ job: job.name, previous, state }, 'job state changed');
    this.emit({
      kind: 'job.state',
      message: `${record.jobId} ${previous} → ${state}`,
      job: job.name,
      state,
      previous,
    });
    if (TERMINAL.has(state)) record.reachTerminal();
  }

  /** Follows the executor: task `index` is in `state`; the job turns RUNNING with its first task. */
  taskState(
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
    const now = this.deps.clock.now();
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
    this.deps.writer.persist(record, 'soon');
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

  /** Fails every task that has not ended, for `reason` (a cancel, a restart, an image with no stand-in). */
  failTasks(record: JobRecord, reason: string): void {
    const now = this.deps.clock.now();
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
}
