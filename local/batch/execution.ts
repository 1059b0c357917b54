/**
 * Running a job: its runnables become one local command (see task-command.ts), its tasks run
 * with the shared executor in the machine-wide task slots, and their states drive the job's
 * (QUEUED until a slot is free, SCHEDULED, RUNNING, then SUCCEEDED or FAILED).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jobFailureDescription, jobStateDescription } from '#shared/domain/batch-states.js';
import { runTaskGroup, type TaskSlots } from '../executor/index.js';
import type { JobLifecycle } from './lifecycle.js';
import type { JobRecord } from './records.js';
import { multiRunnableArgv, runnableArgv, runnableEnvironment, taskEnvironment } from './task-command.js';
import type { TaskGroupMessage } from './types.js';
import { int } from './validate.js';

export interface ExecutionContext {
  lifecycle: JobLifecycle;
  slots: TaskSlots;
  /** Container image → local argv (config `local.images`). */
  images: Record<string, string[]>;
  /** Relative paths in `images` and script paths resolve against this. */
  baseDir: string;
  /** Task logs go to `${logDir}/${jobId}/task-${index}-attempt-${attempt}.log`. */
  logDir: string;
  /** Extra env for every task. */
  env: Record<string, string>;
}

/** Runs the job of `record` to its end; a delete or cancel (its abort signal) stops it. */
export async function executeJob(record: JobRecord, context: ExecutionContext): Promise<void> {
  const { lifecycle } = context;
  const { signal } = record.abort;
  // Let CreateJob answer first, as a queued job starts later than its creation.
  await new Promise((resolve) => setImmediate(resolve));
  if (signal.aborted) return;

  const group = record.job.task_groups[0] as TaskGroupMessage;
  const runnables = group.task_spec?.runnables ?? [];
  const { images, baseDir } = context;
  const jobLogDir = join(context.logDir, record.jobId);
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
    lifecycle.transition(record, 'SCHEDULED');
    lifecycle.failTasks(record, reason);
    lifecycle.transition(
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
  const parallelism = group.scheduling_policy === 'IN_ORDER' ? 1 : int(group.parallelism) || record.taskCount;

  const result = await runTaskGroup({
    taskCount: record.taskCount,
    parallelism,
    maxRetryCount: group.task_spec?.max_retry_count ?? 0,
    signal,
    // QUEUED ("waiting for resources", in Batch's words) until a slot is free; SCHEDULED once
    // the job holds one, RUNNING as its first task starts (see JobLifecycle.taskState).
    slots: context.slots,
    owner: record.job.name,
    onAdmitted: () => lifecycle.transition(record, 'SCHEDULED'),
    taskFor: (index, attempt) => ({
      argv,
      env: {
        ...taskEnvironment(group, {
          index,
          taskCount: record.taskCount,
          attempt,
          platformEnv: context.env,
          ...(hostsFile ? { hostsFile } : {}),
        }),
        ...single,
      },
      cwd: baseDir,
    }),
    logFile: (index, attempt) => join(jobLogDir, `task-${index}-attempt-${attempt}.log`),
    onTaskState: (index, state, detail) => lifecycle.taskState(record, index, state, detail),
  });
  if (signal.aborted) return; // deleted or cancelled: that path owns the state from here

  if (result.failed > 0) {
    const index = record.tasks.findIndex((task) => task.state === 'FAILED');
    const event = record.tasks[index]?.events.at(-1)?.description ?? 'a task failed';
    lifecycle.transition(
      record,
      'FAILED',
      jobFailureDescription('RUNNING', record.job.name, index >= 0 ? index : undefined, event),
    );
  } else {
    lifecycle.transition(record, 'SUCCEEDED');
  }
}
