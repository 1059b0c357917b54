import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { defaultTaskSlots, resolveContainer, runTaskGroup, TaskSlots } from '../executor/index.js';
import { createLocalApiServer } from '../grpc/api-server.js';
import { paginate } from '../grpc/paging.js';
import { grpcError, loadGrpcPackage, loadProtoRoot, lookup } from '../grpc/protos.js';
import type { HttpRule } from '../grpc/rest-transcoder.js';
import { RunTasks } from './tasks.js';

/** What the dev console shows. */
export interface PlatformActivity {
  kind: string;
  message: string;
  [key: string]: unknown;
}

export interface RunServiceOptions {
  port?: number;
  /** Container image → local argv (config `local.images`). */
  images?: Record<string, string[]>;
  /** Relative paths of `images` commands resolve against this folder (the config file's). */
  baseDir?: string;
  /** Extra environment of every task, e.g. STORAGE_EMULATOR_HOST. */
  env?: Record<string, string>;
  /** Task logs: `${logDir}/run/${executionId}/task-${index}-attempt-${attempt}.log`. Default: a temp dir. */
  logDir?: string;
  /**
   * The machine-wide task slots, shared with the local Batch service by the platform: an
   * execution's tasks wait for slots like a Batch job's. Default: a pool of its own.
   */
  slots?: TaskSlots;
  onEvent?: (activity: PlatformActivity) => void;
}

/** A job in the proto's shape (snake_case fields, as the client sends them). */
export type JobResource = Record<string, unknown> & { name: string; template: ExecutionTemplate };

export interface EnvVar {
  name: string;
  value?: string;
}
export interface Container {
  name?: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
}
export interface TaskTemplate {
  containers?: Container[];
  max_retries?: number;
  retries?: string;
  timeout?: { seconds?: string | number } | null;
}
export interface ExecutionTemplate {
  task_count?: number;
  parallelism?: number;
  template?: TaskTemplate;
  labels?: Record<string, string>;
}
interface Overrides {
  container_overrides?: Array<{ name?: string; args?: string[]; env?: EnvVar[]; clear_args?: boolean }>;
  task_count?: number;
}

interface ExecutionRecord {
  resource: Record<string, unknown> & { name: string };
  done: Promise<void>;
  abort: AbortController;
}

interface OperationRecord {
  name: string;
  done: boolean;
  /** Encodes the current metadata / response. */
  metadata: () => AnyMessage;
  response?: () => AnyMessage;
  error?: { code: number; message: string };
  /** The execution a RunJob operation runs (CancelOperation cancels it). */
  execution?: string;
  waiters: Array<() => void>;
}

export interface LocalRunService {
  /** `127.0.0.1:PORT`, for RUN_EMULATOR_HOST. */
  host: string;
  port: number;
  /**
   * Creates a job without a client (provisioning). `job` is in the proto's shape, e.g.
   * `{template: {task_count: 1, template: {containers: [{image}], max_retries: 0}}}`.
   * Resolves false when the job exists already.
   */
  createJob(
    parent: string,
    jobId: string,
    job: { template: ExecutionTemplate } & Record<string, unknown>,
  ): boolean;
  /** Test hook: the next `times` calls of `method` (e.g. 'RunJob') fail with gRPC `code`. */
  injectFault(method: string, code: grpc.status, times?: number): void;
  /** Resolves with the execution once it is finished (succeeded, failed or cancelled). */
  waitForExecution(name: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

/** google.protobuf.Any as proto-loader (keepCase) encodes it. */
interface AnyMessage {
  type_url: string;
  value: Buffer;
}

const TYPE_PREFIX = 'type.googleapis.com/google.cloud.run.v2.';

const RUN_PROTOS = [
  'google/cloud/run/v2/job.proto',
  'google/cloud/run/v2/task.proto',
  'google/longrunning/operations.proto',
];

/**
 * REST bindings of `google.longrunning.Operations` in Run v2 (service config `run_v2.yaml`, as
 * `@google-cloud/run` 3.3.0 passes them to google-gax in `jobs_client.js`).
 */
const RUN_HTTP_RULES: HttpRule[] = [
  {
    selector: 'google.longrunning.Operations.DeleteOperation',
    delete: '/v2/{name=projects/*/locations/*/operations/*}',
  },
  {
    selector: 'google.longrunning.Operations.GetOperation',
    get: '/v2/{name=projects/*/locations/*/operations/*}',
  },
  {
    selector: 'google.longrunning.Operations.ListOperations',
    get: '/v2/{name=projects/*/locations/*}/operations',
  },
  {
    selector: 'google.longrunning.Operations.WaitOperation',
    post: '/v2/{name=projects/*/locations/*/operations/*}:wait',
    body: '*',
  },
];
const PARENT = /^projects\/[^/]+\/locations\/[^/]+$/;
const JOB_NAME = /^projects\/[^/]+\/locations\/[^/]+\/jobs\/[^/]+$/;

function timestamp(ms = Date.now()): { seconds: string; nanos: number } {
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
}

function condition(state: string, type: string, message = '', extra: Record<string, unknown> = {}) {
  return { type, state, message, last_transition_time: timestamp(), severity: 'INFO', ...extra };
}

/**
 * The local Cloud Run jobs service: gRPC `google.cloud.run.v2.Jobs` and `google.longrunning.Operations`
 * from the protos `@google-cloud/run` ships, so that the real `JobsClient` (and its
 * `operation.promise()`, which polls GetOperation) works against it. RunJob runs the job's tasks
 * as local processes with the shared executor, with Cloud Run's task variables
 * (`CLOUD_RUN_JOB`, `CLOUD_RUN_EXECUTION`, `CLOUD_RUN_TASK_INDEX`, `CLOUD_RUN_TASK_COUNT`,
 * `CLOUD_RUN_TASK_ATTEMPT`) and the run's overrides (args, env, task count) applied.
 */
export async function startRunService(options: RunServiceOptions = {}): Promise<LocalRunService> {
  const pkg = loadGrpcPackage('@google-cloud/run', RUN_PROTOS);
  const JobsService = lookup(pkg, 'google.cloud.run.v2.Jobs');
  const ExecutionsService = lookup(pkg, 'google.cloud.run.v2.Executions');
  const OperationsService = lookup(pkg, 'google.longrunning.Operations');
  const TasksService = lookup(pkg, 'google.cloud.run.v2.Tasks');
  // The services' own serializers encode the messages that travel inside google.protobuf.Any.
  const encodeJob = JobsService.service.GetJob?.responseSerialize as (value: unknown) => Buffer;
  const encodeExecution = ExecutionsService.service.GetExecution?.responseSerialize as (
    value: unknown,
  ) => Buffer;
  const any = (type: 'Job' | 'Execution', value: unknown): AnyMessage => ({
    type_url: `${TYPE_PREFIX}${type}`,
    value: type === 'Job' ? encodeJob(value) : encodeExecution(value),
  });

  const images = options.images ?? {};
  const baseDir = options.baseDir ?? process.cwd();
  const logDir = options.logDir ?? mkdtempSync(join(tmpdir(), 'batchwire-run-'));
  const emit = (activity: PlatformActivity) => options.onEvent?.(activity);
  const slots = options.slots ?? new TaskSlots(defaultTaskSlots());

  const jobs = new Map<string, JobResource>();
  const executions = new Map<string, ExecutionRecord>();
  const operations = new Map<string, OperationRecord>();
  const faults = new Map<string, Array<grpc.status>>();
  const aborts = new Set<AbortController>();
  const tasks = new RunTasks();

  const takeFault = (method: string): grpc.ServiceError | undefined => {
    const queue = faults.get(method);
    const code = queue?.shift();
    return code === undefined ? undefined : grpcError(code, `injected fault on ${method}`);
  };

  /** A unary handler with fault injection and thrown ServiceErrors turned into answers. */
  const unary =
    <Req, Res>(
      method: string,
      handler: (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Res | Promise<Res>,
    ) =>
    async (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
      const fault = takeFault(method);
      if (fault) return callback(fault);
      try {
        callback(null, await handler(call.request, call));
      } catch (error) {
        const e = error as grpc.ServiceError;
        callback(typeof e.code === 'number' ? e : grpcError(grpc.status.INTERNAL, (error as Error).message));
      }
    };

  const locationOf = (name: string) => /^(projects\/[^/]+\/locations\/[^/]+)\//.exec(name)?.[1];

  const finishedOperation = (name: string, type: 'Job' | 'Execution', value: unknown): OperationRecord => ({
    name,
    done: true,
    metadata: () => any(type, value),
    response: () => any(type, value),
    waiters: [],
  });

  const newOperationName = (resourceName: string) => `${locationOf(resourceName)}/operations/${randomUUID()}`;

  const operationMessage = (op: OperationRecord) => {
    const message: Record<string, unknown> = { name: op.name, done: op.done, metadata: op.metadata() };
    if (op.done && op.error) message.error = { code: op.error.code, message: op.error.message, details: [] };
    else if (op.done && op.response) message.response = op.response();
    return message;
  };

  function createJob(
    parent: string,
    jobId: string,
    job: { template: ExecutionTemplate } & Record<string, unknown>,
  ): JobResource {
    if (!/^projects\/[^/]+\/locations\/[^/]+$/.test(parent)) {
      throw grpcError(grpc.status.INVALID_ARGUMENT, `parent must be projects/P/locations/L, got "${parent}"`);
    }
    if (!/^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/.test(jobId)) {
      throw grpcError(grpc.status.INVALID_ARGUMENT, `invalid job id "${jobId}"`);
    }
    const name = `${parent}/jobs/${jobId}`;
    if (jobs.has(name)) throw grpcError(grpc.status.ALREADY_EXISTS, `Resource '${jobId}' already exists.`);
    const containers = job.template?.template?.containers ?? [];
    const first = containers[0];
    if (!first?.image) {
      throw grpcError(grpc.status.INVALID_ARGUMENT, 'job.template.template.containers[0].image is required');
    }
    if (!images[first.image] && !(first.command && first.command.length > 0)) {
      // A real deploy fails on an image it cannot pull; locally, on one nothing stands in for.
      throw grpcError(
        grpc.status.INVALID_ARGUMENT,
        `image "${first.image}" has no local command: add it under local.images in batchwire.yaml`,
      );
    }
    const now = timestamp();
    const resource: JobResource = {
      ...job,
      name,
      uid: randomUUID(),
      generation: '1',
      observed_generation: '1',
      create_time: now,
      update_time: now,
      terminal_condition: condition('CONDITION_SUCCEEDED', 'Ready'),
      execution_count: 0,
      reconciling: false,
      etag: `"${randomBytes(8).toString('hex')}"`,
    } as unknown as JobResource;
    jobs.set(name, resource);
    emit({ kind: 'run.job', message: `Cloud Run job ${jobId} created`, job: name });
    return resource;
  }

  function getJobOrThrow(name: string): JobResource {
    const job = jobs.get(name);
    if (!job) throw grpcError(grpc.status.NOT_FOUND, `Resource '${name}' was not found`);
    return job;
  }

  /**
   * Run's UpdateJob: the job named by `job.name` takes the given template, labels and
   * settings; output fields stay the service's and `generation` counts the change. With
   * `allow_missing` an unknown job is created, as Run does.
   */
  function updateJob(request: {
    job: JobResource | null;
    validate_only: boolean;
    allow_missing: boolean;
  }): JobResource {
    const job = request.job;
    if (!job?.name || !JOB_NAME.test(job.name)) {
      throw grpcError(
        grpc.status.INVALID_ARGUMENT,
        `job.name must be projects/P/locations/L/jobs/J, got "${job?.name ?? ''}"`,
      );
    }
    const current = jobs.get(job.name);
    if (!current) {
      if (!request.allow_missing)
        throw grpcError(grpc.status.NOT_FOUND, `Resource '${job.name}' was not found`);
      const [parent, jobId] = job.name.split('/jobs/') as [string, string];
      return request.validate_only ? job : createJob(parent, jobId, job);
    }
    if (!job.template?.template?.containers?.[0]?.image) {
      throw grpcError(grpc.status.INVALID_ARGUMENT, 'job.template.template.containers[0].image is required');
    }
    const generation = String(Number(current.generation ?? 1) + 1);
    const changes = {
      labels: job.labels ?? current.labels,
      annotations: job.annotations ?? current.annotations,
      launch_stage: job.launch_stage ?? current.launch_stage,
      template: job.template,
      generation,
      observed_generation: generation,
      update_time: timestamp(),
      etag: `"${randomBytes(8).toString('hex')}"`,
    };
    // In place: a running execution updates this same record when it finishes.
    return request.validate_only
      ? ({ ...current, ...changes } as JobResource)
      : Object.assign(current, changes);
  }

  function runJob(request: { name: string; overrides?: Overrides | null }): OperationRecord {
    const job = getJobOrThrow(request.name);
    const template = job.template;
    const taskTemplate = template.template ?? {};
    const containers = (taskTemplate.containers ?? []).map((c) => ({
      ...c,
      env: [...(c.env ?? [])],
      args: [...(c.args ?? [])],
    }));
    for (const override of request.overrides?.container_overrides ?? []) {
      const target = override.name ? containers.find((c) => c.name === override.name) : containers[0];
      if (!target) {
        throw grpcError(
          grpc.status.INVALID_ARGUMENT,
          `no container named "${override.name}" in ${request.name}`,
        );
      }
      if (override.clear_args) target.args = [];
      if (override.args && override.args.length > 0) target.args = [...override.args];
      for (const variable of override.env ?? []) {
        const index = target.env.findIndex((e) => e.name === variable.name);
        if (index >= 0) target.env[index] = variable;
        else target.env.push(variable);
      }
    }
    const taskCount = request.overrides?.task_count || template.task_count || 1;
    const parallelism = template.parallelism || taskCount;
    // Cloud Run retries a failed task 3 times unless max_retries is set (it is a oneof, so an explicit 0 counts).
    const maxRetries = taskTemplate.retries === 'max_retries' ? (taskTemplate.max_retries ?? 0) : 3;
    const container = containers[0] as Container;

    const jobId = request.name.split('/').pop() as string;
    const executionId = `${jobId}-${randomBytes(3).toString('hex').slice(0, 5)}`;
    const executionName = `${request.name}/executions/${executionId}`;
    job.execution_count = Number(job.execution_count ?? 0) + 1;

    const resource: Record<string, unknown> & { name: string } = {
      name: executionName,
      uid: randomUUID(),
      generation: '1',
      labels: { ...(template.labels ?? {}), 'run.googleapis.com/job': jobId },
      create_time: timestamp(),
      start_time: timestamp(),
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

    const operation: OperationRecord = {
      name: newOperationName(request.name),
      done: false,
      metadata: () => any('Execution', resource),
      execution: executionName,
      waiters: [],
    };
    operations.set(operation.name, operation);

    const abort = new AbortController();
    aborts.add(abort);
    const env: Record<string, string> = { ...(options.env ?? {}) };
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
    tasks.start(resource, taskCount, String(resource.log_uri));
    let running = 0;
    const done = runTaskGroup({
      taskCount,
      parallelism,
      maxRetryCount: maxRetries,
      signal: abort.signal,
      slots,
      owner: executionName,
      taskFor: (index, attempt) => ({
        argv: argv(),
        env: { ...env, CLOUD_RUN_TASK_INDEX: String(index), CLOUD_RUN_TASK_ATTEMPT: String(attempt) },
        cwd: baseDir,
      }),
      logFile: (index, attempt) => join(logDir, 'run', executionId, `task-${index}-attempt-${attempt}.log`),
      onTaskState: (index, state, detail) => {
        tasks.update(executionName, index, state, detail);
        if (state === 'RUNNING') running++;
        if (state !== 'RUNNING' && detail?.exitCode !== undefined) running = Math.max(0, running - 1);
        if (state === 'PENDING' && detail?.exitCode !== undefined)
          resource.retried_count = Number(resource.retried_count) + 1;
        resource.running_count = running;
      },
    })
      .catch((error: Error) => ({ succeeded: 0, failed: taskCount, exitCodes: [], error }))
      .then((result) => {
        aborts.delete(abort);
        const cancelled = abort.signal.aborted;
        const failed = result.failed;
        resource.running_count = 0;
        resource.succeeded_count = result.succeeded;
        resource.failed_count = cancelled ? 0 : failed;
        resource.cancelled_count = cancelled ? taskCount - result.succeeded : 0;
        resource.completion_time = timestamp();
        resource.reconciling = false;
        const startError = 'error' in result ? (result.error as Error).message : undefined;
        let status: string;
        let message: string;
        if (cancelled) {
          status = 'EXECUTION_CANCELLED';
          message = 'Execution was cancelled';
          resource.conditions = [
            condition('CONDITION_FAILED', 'Completed', message, { execution_reason: 'CANCELLED' }),
          ];
          operation.error = { code: grpc.status.CANCELLED, message };
        } else if (failed > 0 || startError) {
          status = 'EXECUTION_FAILED';
          const codes = result.exitCodes
            .map((code, index) => `task ${index}: exit ${code}`)
            .filter((_, i) => (result.exitCodes[i] ?? 0) !== 0);
          message = startError ?? `Task(s) failed with a non-zero exit code (${codes.join(', ')}).`;
          resource.conditions = [
            condition('CONDITION_FAILED', 'Completed', message, { execution_reason: 'NON_ZERO_EXIT_CODE' }),
          ];
          operation.error = {
            code: grpc.status.FAILED_PRECONDITION,
            message: `Execution ${executionId} failed: ${message}`,
          };
        } else {
          status = 'EXECUTION_SUCCEEDED';
          message = 'Execution completed successfully';
          resource.conditions = [condition('CONDITION_SUCCEEDED', 'Completed', message)];
          operation.response = () => any('Execution', resource);
        }
        job.latest_created_execution = {
          name: executionName,
          create_time: resource.create_time,
          completion_time: resource.completion_time,
          completion_status: status,
        };
        operation.done = true;
        for (const wake of operation.waiters.splice(0)) wake();
        emit({
          kind: 'run.execution',
          message: `Cloud Run execution ${executionId}: ${status}`,
          execution: executionName,
          state: status,
        });
      });
    executions.set(executionName, { resource, done, abort });
    return operation;
  }

  const api = createLocalApiServer(loadProtoRoot('@google-cloud/run', RUN_PROTOS), RUN_HTTP_RULES);
  api.addService('google.cloud.run.v2.Jobs', JobsService.service, {
    CreateJob: unary(
      'CreateJob',
      (request: { parent: string; job_id: string; job: JobResource; validate_only: boolean }) => {
        if (request.validate_only) {
          return operationMessage(
            finishedOperation(newOperationName(`${request.parent}/`), 'Job', request.job),
          );
        }
        const job = createJob(request.parent, request.job_id, request.job);
        const op = finishedOperation(newOperationName(job.name), 'Job', job);
        operations.set(op.name, op);
        return operationMessage(op);
      },
    ),
    GetJob: unary('GetJob', (request: { name: string }) => getJobOrThrow(request.name)),
    UpdateJob: unary(
      'UpdateJob',
      (request: { job: JobResource | null; validate_only: boolean; allow_missing: boolean }) => {
        const updated = updateJob(request);
        const op = finishedOperation(newOperationName(updated.name), 'Job', updated);
        if (!request.validate_only) operations.set(op.name, op);
        return operationMessage(op);
      },
    ),
    ListJobs: unary('ListJobs', (request: { parent: string; page_size: number; page_token: string }) => {
      if (!PARENT.test(request.parent ?? '')) {
        throw grpcError(
          grpc.status.INVALID_ARGUMENT,
          `parent must be projects/P/locations/L, got "${request.parent}"`,
        );
      }
      const all = [...jobs.values()].filter((job) => job.name.startsWith(`${request.parent}/jobs/`));
      const { page, next_page_token } = paginate(all, request, { scope: request.parent });
      return { jobs: page, next_page_token };
    }),
    DeleteJob: unary('DeleteJob', (request: { name: string }) => {
      const job = getJobOrThrow(request.name);
      jobs.delete(request.name);
      const op = finishedOperation(newOperationName(job.name), 'Job', { ...job, delete_time: timestamp() });
      operations.set(op.name, op);
      return operationMessage(op);
    }),
    RunJob: unary(
      'RunJob',
      (request: { name: string; overrides?: Overrides | null; validate_only?: boolean }) => {
        if (request.validate_only) {
          getJobOrThrow(request.name);
          return operationMessage(
            finishedOperation(newOperationName(request.name), 'Execution', { name: '' }),
          );
        }
        return operationMessage(runJob(request));
      },
    ),
  });
  api.addService('google.cloud.run.v2.Executions', ExecutionsService.service, {
    GetExecution: unary('GetExecution', (request: { name: string }) => {
      const execution = executions.get(request.name);
      if (!execution) throw grpcError(grpc.status.NOT_FOUND, `Resource '${request.name}' was not found`);
      return execution.resource;
    }),
    ListExecutions: unary(
      'ListExecutions',
      (request: { parent: string; page_size: number; page_token: string }) => {
        if (!JOB_NAME.test(request.parent ?? '')) {
          throw grpcError(
            grpc.status.INVALID_ARGUMENT,
            `parent must be projects/P/locations/L/jobs/J, got "${request.parent}"`,
          );
        }
        const all = [...executions.values()]
          .map((execution) => execution.resource)
          .filter((resource) => resource.name.startsWith(`${request.parent}/executions/`))
          .reverse();
        const { page, next_page_token } = paginate(all, request, { scope: request.parent });
        return { executions: page, next_page_token };
      },
    ),
    DeleteExecution: unary('DeleteExecution', (request: { name: string; validate_only: boolean }) => {
      const execution = executions.get(request.name);
      if (!execution) throw grpcError(grpc.status.NOT_FOUND, `Resource '${request.name}' was not found`);
      const op = finishedOperation(newOperationName(request.name), 'Execution', {
        ...execution.resource,
        delete_time: timestamp(),
      });
      if (request.validate_only) return operationMessage(op);
      // A running execution is stopped first: its tasks must not outlive its record.
      execution.abort.abort();
      executions.delete(request.name);
      tasks.remove(request.name);
      operations.set(op.name, op);
      return operationMessage(op);
    }),
    CancelExecution: unary('CancelExecution', (request: { name: string }) => {
      const execution = executions.get(request.name);
      if (!execution) throw grpcError(grpc.status.NOT_FOUND, `Resource '${request.name}' was not found`);
      execution.abort.abort();
      const op = finishedOperation(newOperationName(request.name), 'Execution', execution.resource);
      operations.set(op.name, op);
      return operationMessage(op);
    }),
  });
  api.addService('google.cloud.run.v2.Tasks', TasksService.service, {
    GetTask: unary('GetTask', (request: { name: string }) => tasks.get(request.name)),
    ListTasks: unary('ListTasks', (request: { parent: string; page_size: number; page_token: string }) => {
      const { page, next_page_token } = paginate(tasks.list(request.parent), request, {
        scope: request.parent,
      });
      return { tasks: page, next_page_token };
    }),
  });
  api.addService('google.longrunning.Operations', OperationsService.service, {
    GetOperation: unary('GetOperation', (request: { name: string }) => {
      const op = operations.get(request.name);
      if (!op) throw grpcError(grpc.status.NOT_FOUND, `Operation '${request.name}' was not found`);
      return operationMessage(op);
    }),
    ListOperations: unary('ListOperations', (request: { name: string }) => ({
      operations: [...operations.values()]
        .filter((op) => op.name.startsWith(`${request.name}/`))
        .map(operationMessage),
      next_page_token: '',
    })),
    WaitOperation: unary(
      'WaitOperation',
      async (request: { name: string; timeout?: { seconds?: string } | null }) => {
        const op = operations.get(request.name);
        if (!op) throw grpcError(grpc.status.NOT_FOUND, `Operation '${request.name}' was not found`);
        if (!op.done) {
          const timeoutMs = Math.min(Number(request.timeout?.seconds ?? 60) * 1000 || 60_000, 300_000);
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, timeoutMs);
            op.waiters.push(() => {
              clearTimeout(timer);
              resolve();
            });
          });
        }
        return operationMessage(op);
      },
    ),
    DeleteOperation: unary('DeleteOperation', (request: { name: string }) => {
      operations.delete(request.name);
      return {};
    }),
    CancelOperation: unary('CancelOperation', (request: { name: string }) => {
      const op = operations.get(request.name);
      if (!op) throw grpcError(grpc.status.NOT_FOUND, `Operation '${request.name}' was not found`);
      if (op.execution) executions.get(op.execution)?.abort.abort();
      return {};
    }),
  });

  const port = await api.listen(options.port ?? 0);
  return {
    host: `127.0.0.1:${port}`,
    port,
    createJob: (parent, jobId, job) => {
      try {
        // In-process callers set max_retries without proto-loader's oneof marker; mark it as gRPC would.
        const taskTemplate = job.template?.template;
        if (taskTemplate && typeof taskTemplate.max_retries === 'number')
          taskTemplate.retries = 'max_retries';
        createJob(parent, jobId, job);
        return true;
      } catch (error) {
        if ((error as grpc.ServiceError).code === grpc.status.ALREADY_EXISTS) return false;
        throw error;
      }
    },
    injectFault: (method, code, times = 1) => {
      const queue = faults.get(method) ?? [];
      for (let i = 0; i < times; i++) queue.push(code);
      faults.set(method, queue);
    },
    waitForExecution: async (name, timeoutMs = 30_000) => {
      const started = Date.now();
      while (!executions.has(name)) {
        if (Date.now() - started > timeoutMs) throw new Error(`no execution ${name}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const execution = executions.get(name) as ExecutionRecord;
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
    },
    close: async () => {
      for (const abort of aborts) abort.abort();
      await Promise.allSettled([...executions.values()].map((e) => e.done));
      await api.close();
    },
  };
}
