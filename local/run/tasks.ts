import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { systemClock } from '../clock.js';
import type { TaskState } from '../executor/index.js';
import { grpcError } from '../grpc/protos.js';
import { timestamp } from '../grpc/timestamp.js';

/** `google.cloud.run.v2.Task` as proto-loader (keepCase) encodes it; the fields the service keeps. */
export type TaskResource = Record<string, unknown> & { name: string; index: number };

const EXECUTION_NAME = /^projects\/[^/]+\/locations\/[^/]+\/jobs\/[^/]+\/executions\/[^/]+$/;

/**
 * The tasks of Cloud Run executions (`google.cloud.run.v2.Tasks`): one resource per task
 * index, named `{execution}/tasks/{executionId}-task{index}` (the name's last part is local),
 * moved by the executor's task states. They go with their execution (DeleteExecution).
 */
export class RunTasks {
  private readonly byExecution = new Map<string, TaskResource[]>();

  /** Creates the PENDING tasks of a new execution. */
  start(execution: { name: string; template?: unknown }, taskCount: number, logUri: string): void {
    const executionId = execution.name.split('/').pop() as string;
    const job = execution.name.split('/executions/')[0] as string;
    const now = timestamp(systemClock.now());
    const tasks = Array.from({ length: taskCount }, (_, index) => ({
      name: `${execution.name}/tasks/${executionId}-task${index}`,
      uid: randomUUID(),
      generation: '1',
      create_time: now,
      update_time: now,
      job: job.split('/').pop(),
      execution: executionId,
      index,
      retried: 0,
      conditions: [{ type: 'Started', state: 'CONDITION_PENDING', last_transition_time: now }],
      log_uri: logUri,
      observed_generation: '1',
      ...(execution.template as Record<string, unknown>),
    }));
    this.byExecution.set(execution.name, tasks);
  }

  /** Follows the executor: attempts, retries, the last attempt's exit code and the final state. */
  update(
    executionName: string,
    index: number,
    state: TaskState,
    detail?: { exitCode?: number; attempt: number },
  ) {
    const task = this.byExecution.get(executionName)?.[index];
    if (!task) return;
    const now = timestamp(systemClock.now());
    task.update_time = now;
    if (state === 'RUNNING') {
      task.start_time = now;
      task.retried = detail?.attempt ?? 0;
      task.conditions = [{ type: 'Started', state: 'CONDITION_SUCCEEDED', last_transition_time: now }];
      return;
    }
    if (detail?.exitCode !== undefined) {
      task.last_attempt_result = {
        exit_code: detail.exitCode,
        status: {
          code: detail.exitCode === 0 ? grpc.status.OK : grpc.status.UNKNOWN,
          message:
            detail.exitCode === 0 ? '' : `The container exited with an error (exit code ${detail.exitCode}).`,
          details: [],
        },
      };
    }
    if (state === 'SUCCEEDED' || state === 'FAILED') {
      task.completion_time = now;
      task.conditions = [
        {
          type: 'Completed',
          state: state === 'SUCCEEDED' ? 'CONDITION_SUCCEEDED' : 'CONDITION_FAILED',
          last_transition_time: now,
        },
      ];
    }
  }

  get(name: string): TaskResource {
    const execution = name.split('/tasks/')[0] as string;
    const task = this.byExecution.get(execution)?.find((candidate) => candidate.name === name);
    if (!task) throw grpcError(grpc.status.NOT_FOUND, `Resource '${name}' was not found`);
    return task;
  }

  /** The tasks of `parent` (an execution), by index. */
  list(parent: string): TaskResource[] {
    if (!EXECUTION_NAME.test(parent ?? '')) {
      throw grpcError(
        grpc.status.INVALID_ARGUMENT,
        `parent must be projects/P/locations/L/jobs/J/executions/E, got "${parent}"`,
      );
    }
    return [...(this.byExecution.get(parent) ?? [])];
  }

  remove(executionName: string): void {
    this.byExecution.delete(executionName);
  }
}
