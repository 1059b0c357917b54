/**
 * The executions of the local Cloud Run service: RunJob (the job's template with the run's
 * overrides, its tasks run with the shared executor in the machine-wide task slots, the
 * operation answered at once and completed when the execution ends), and
 * `google.cloud.run.v2.Executions` (get, list, delete, cancel).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { ActivityListener } from '../activity.js';
import { systemClock } from '../clock.js';
import { resolveContainer, runTaskGroup, type TaskGroupResult, type TaskSlots } from '../executor/index.js';
import { finishedOperation, type Operation, type OperationStore } from '../grpc/operations.js';
import { paginate } from '../grpc/paging.js';
import { grpcError } from '../grpc/protos.js';
import { timestamp } from '../grpc/timestamp.js';
import type { RunJobs } from './jobs.js';
import { JOB_NAME } from './jobs.js';
import {
  type AnyEncoder,
  type Container,
  condition,
  type ExecutionResource,
  type Overrides,
  operationName,
} from './resources.js';
import { RunTasks } from './tasks.js';

/** A RunJob operation: CancelOperation cancels its execution. */
export interface RunOperation extends Operation {
  execution?: string;
}

interface ExecutionRecord {
  resource: ExecutionResource;
  done: Promise<void>;
  abort: AbortController;
}

export interface ExecutionsContext {
  jobs: RunJobs;
  operations: OperationStore<RunOperation>;
  any: AnyEncoder;
  slots: TaskSlots;
  images: Record<string, string[]>;
  baseDir: string;
  /** Task logs go to `${logDir}/run/${executionId}/task-${index}-attempt-${attempt}.log`. */
  logDir: string;
  /** Extra environment of every task. */
  env: Record<string, string>;
  emit: ActivityListener;
}

export class RunExecutions {
  private readonly executions = new Map<string, ExecutionRecord>();
  private readonly aborts = new Set<AbortController>();
  readonly tasks = new RunTasks();

  constructor(private readonly context: ExecutionsContext) {}

  /** Starts an execution of job `request.name`; answers with its (not yet done) operation. */
  run(request: { name: string; overrides?: Overrides | null }): RunOperation {
    const { jobs, operations, any, images, baseDir, logDir, emit } = this.context;
    const job = jobs.get(request.name);
    const template = job.template;
    const taskTemplate = template.template ?? {};
    const containers = withOverrides(taskTemplate.containers ?? [], request.overrides, request.name);
    const taskCount = request.overrides?.task_count || template.task_count || 1;
    const parallelism = template.parallelism || taskCount;
    // Cloud Run retries a failed task 3 times unless max_retries is set (it is a oneof, so an explicit 0 counts).
    const maxRetries = taskTemplate.retries === 'max_retries' ? (taskTemplate.max_retries ?? 0) : 3;
    const container = containers[0] as Container;

    const jobId = request.name.split('/').pop() as string;
    const executionId = `${jobId}-${randomBytes(3).toString('hex').slice(0, 5)}`;
    const executionName = `${request.name}/executions/${executionId}`;
    job.execution_count = Number(job.execution_count ?? 0) + 1;

    const now = timestamp(systemClock.now());
    const resource: ExecutionResource = {
      name: executionName,
      uid: randomUUID(),
      generation: '1',
      labels: { ...(template.labels ?? {}), 'run.googleapis.com/job': jobId },
      create_time: now,
      start_time: now,
      job: jobId,
      parallelism,
      task_count: taskCount,
      template: { ...taskTemplate, containers },
      reconciling: true,
      conditions: [condition('CONDITION_RECONCILING', 'Completed', 'Started execution')],
      observed_generation: '1',
      running_count: 0,
      succeeded_count: 0,
      failed_count: 0,
      cancelled_count: 0,
      retried_count: 0,
      log_uri: `file://${join(logDir, 'run', executionId)}`,
      etag: `"${randomBytes(8).toString('hex')}"`,
    };
    job.latest_created_execution = {
      name: executionName,
      create_time: resource.create_time,
      completion_status: 'EXECUTION_RUNNING',
    };

    const operation = operations.add<RunOperation>({
      name: operationName(request.name),
      done: false,
      metadata: () => any('Execution', resource),
      execution: executionName,
    });

    const abort = new AbortController();
    this.aborts.add(abort);
    const env: Record<string, string> = { ...this.context.env };
    for (const variable of container.env ?? []) env[variable.name] = variable.value ?? '';
    Object.assign(env, {
      CLOUD_RUN_JOB: jobId,
      CLOUD_RUN_EXECUTION: executionId,
      CLOUD_RUN_TASK_COUNT: String(taskCount),
    });
    const argv = (): string[] =>
      container.command && container.command.length > 0
        ? resolveContainer(images, baseDir, {
            imageUri: container.image,
            entrypoint: container.command[0] as string,
            commands: [...container.command.slice(1), ...(container.args ?? [])],
          })
        : resolveContainer(images, baseDir, { imageUri: container.image, commands: container.args ?? [] });

    emit({
      kind: 'run.execution',
      message: `Cloud Run execution ${executionId} started (${taskCount} task(s))`,
      execution: executionName,
      state: 'RUNNING',
    });
    this.tasks.start(resource, taskCount, String(resource.log_uri));
    let running = 0;
    const done = runTaskGroup({
      taskCount,
      parallelism,
      maxRetryCount: maxRetries,
      signal: abort.signal,
      slots: this.context.slots,
      owner: executionName,
      taskFor: (index, attempt) => ({
        argv: argv(),
        env: { ...env, CLOUD_RUN_TASK_INDEX: String(index), CLOUD_RUN_TASK_ATTEMPT: String(attempt) },
        cwd: baseDir,
      }),
      logFile: (index, attempt) => join(logDir, 'run', executionId, `task-${index}-attempt-${attempt}.log`),
      onTaskState: (index, state, detail) => {
        this.tasks.update(executionName, index, state, detail);
        if (state === 'RUNNING') running++;
        if (state !== 'RUNNING' && detail?.exitCode !== undefined) running = Math.max(0, running - 1);
        if (state === 'PENDING' && detail?.exitCode !== undefined)
          resource.retried_count = Number(resource.retried_count) + 1;
        resource.running_count = running;
      },
    })
      .catch((error: Error) => ({ succeeded: 0, failed: taskCount, exitCodes: [], error }))
      .then((result) => {
        this.aborts.delete(abort);
        const { status, outcome } = settleExecution(resource, result, abort.signal.aborted, executionId);
        operations.complete(
          operation,
          outcome.error ? outcome : { response: () => any('Execution', resource) },
        );
        job.latest_created_execution = {
          name: executionName,
          create_time: resource.create_time,
          completion_time: resource.completion_time,
          completion_status: status,
        };
        emit({
          kind: 'run.execution',
          message: `Cloud Run execution ${executionId}: ${status}`,
          execution: executionName,
          state: status,
        });
      });
    this.executions.set(executionName, { resource, done, abort });
    return operation;
  }

  private record(name: string): ExecutionRecord {
    const execution = this.executions.get(name);
    if (!execution) throw grpcError(grpc.status.NOT_FOUND, `Resource '${name}' was not found`);
    return execution;
  }

  get(name: string): ExecutionResource {
    return this.record(name).resource;
  }

  list(request: { parent: string; page_size: number; page_token: string }) {
    if (!JOB_NAME.test(request.parent ?? '')) {
      throw grpcError(
        grpc.status.INVALID_ARGUMENT,
        `parent must be projects/P/locations/L/jobs/J, got "${request.parent}"`,
      );
    }
    const all = [...this.executions.values()]
      .map((execution) => execution.resource)
      .filter((resource) => resource.name.startsWith(`${request.parent}/executions/`))
      .reverse();
    const { page, next_page_token } = paginate(all, request, { scope: request.parent });
    return { executions: page, next_page_token };
  }

  /** Deletes an execution (a running one is stopped first: its tasks must not outlive its record). */
  delete(request: { name: string; validate_only: boolean }): Operation {
    const execution = this.record(request.name);
    const deleted = { ...execution.resource, delete_time: timestamp(systemClock.now()) };
    const op = finishedOperation(
      operationName(request.name),
      () => this.context.any('Execution', deleted),
      true,
    );
    if (request.validate_only) return op;
    execution.abort.abort();
    this.executions.delete(request.name);
    this.tasks.remove(request.name);
    return this.context.operations.add(op);
  }

  cancel(name: string): Operation {
    const execution = this.record(name);
    execution.abort.abort();
    const op = finishedOperation(
      operationName(name),
      () => this.context.any('Execution', execution.resource),
      true,
    );
    return this.context.operations.add(op);
  }

  /** Stops the execution of a RunJob operation (CancelOperation). */
  cancelOperation(operation: RunOperation): void {
    if (operation.execution) this.executions.get(operation.execution)?.abort.abort();
  }

  /** Resolves with the execution once it is finished (succeeded, failed or cancelled). */
  async waitFor(name: string, timeoutMs = 30_000): Promise<ExecutionResource> {
    const started = Date.now();
    while (!this.executions.has(name)) {
      if (Date.now() - started > timeoutMs) throw new Error(`no execution ${name}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const execution = this.executions.get(name) as ExecutionRecord;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      execution.done,
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`execution ${name} did not finish within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    return execution.resource;
  }

  /** Stops every execution and waits for their tasks to end. */
  async close(): Promise<void> {
    for (const abort of this.aborts) abort.abort();
    await Promise.allSettled([...this.executions.values()].map((e) => e.done));
  }
}

/** The job's containers with a run's overrides applied (args, env), copied. */
function withOverrides(containers: Container[], overrides: Overrides | null | undefined, jobName: string) {
  const copies = containers.map((c) => ({ ...c, env: [...(c.env ?? [])], args: [...(c.args ?? [])] }));
  for (const override of overrides?.container_overrides ?? []) {
    const target = override.name ? copies.find((c) => c.name === override.name) : copies[0];
    if (!target) {
      throw grpcError(grpc.status.INVALID_ARGUMENT, `no container named "${override.name}" in ${jobName}`);
    }
    if (override.clear_args) target.args = [];
    if (override.args && override.args.length > 0) target.args = [...override.args];
    for (const variable of override.env ?? []) {
      const index = target.env.findIndex((e) => e.name === variable.name);
      if (index >= 0) target.env[index] = variable;
      else target.env.push(variable);
    }
  }
  return copies;
}

/**
 * Writes an ended execution's counts, completion time and condition; returns its completion
 * status and its operation's error (none when it succeeded).
 */
function settleExecution(
  resource: ExecutionResource,
  result: TaskGroupResult & { error?: Error },
  cancelled: boolean,
  executionId: string,
): { status: string; outcome: { error?: { code: number; message: string } } } {
  const taskCount = Number(resource.task_count);
  const failed = result.failed;
  resource.running_count = 0;
  resource.succeeded_count = result.succeeded;
  resource.failed_count = cancelled ? 0 : failed;
  resource.cancelled_count = cancelled ? taskCount - result.succeeded : 0;
  resource.completion_time = timestamp(systemClock.now());
  resource.reconciling = false;
  const startError = result.error?.message;
  if (cancelled) {
    const message = 'Execution was cancelled';
    resource.conditions = [
      condition('CONDITION_FAILED', 'Completed', message, { execution_reason: 'CANCELLED' }),
    ];
    return { status: 'EXECUTION_CANCELLED', outcome: { error: { code: grpc.status.CANCELLED, message } } };
  }
  if (failed > 0 || startError) {
    const codes = result.exitCodes
      .map((code, index) => `task ${index}: exit ${code}`)
      .filter((_, i) => (result.exitCodes[i] ?? 0) !== 0);
    const message = startError ?? `Task(s) failed with a non-zero exit code (${codes.join(', ')}).`;
    resource.conditions = [
      condition('CONDITION_FAILED', 'Completed', message, { execution_reason: 'NON_ZERO_EXIT_CODE' }),
    ];
    return {
      status: 'EXECUTION_FAILED',
      outcome: {
        error: {
          code: grpc.status.FAILED_PRECONDITION,
          message: `Execution ${executionId} failed: ${message}`,
        },
      },
    };
  }
  resource.conditions = [condition('CONDITION_SUCCEEDED', 'Completed', 'Execution completed successfully')];
  return { status: 'EXECUTION_SUCCEEDED', outcome: {} };
}
