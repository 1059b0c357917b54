/**
 * The local Cloud Run jobs service on the wire: `google.cloud.run.v2.Jobs`, `Executions`,
 * `Tasks` and `google.longrunning.Operations` over gRPC and REST on one loopback port, with
 * test hooks. What the methods do is in jobs.ts, executions.ts and tasks.ts.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { ActivityListener } from '../activity.js';
import { systemClock } from '../clock.js';
import { defaultTaskSlots, TaskSlots } from '../executor/index.js';
import { bindLocalApi } from '../grpc/bind.js';
import {
  finishedOperation,
  type Operation,
  OperationStore,
  operationsHttpRules,
} from '../grpc/operations.js';
import { paginate } from '../grpc/paging.js';
import { loadGrpcPackage, lookup } from '../grpc/protos.js';
import type { HttpRule } from '../grpc/rest-transcoder.js';
import { timestamp } from '../grpc/timestamp.js';
import { FaultInjector, unaryHandlers } from '../grpc/unary.js';
import { RunExecutions, type RunOperation } from './executions.js';
import { RunJobs } from './jobs.js';
import {
  anyEncoder,
  type ExecutionTemplate,
  type JobResource,
  type Overrides,
  operationName,
} from './resources.js';

export type { Container, EnvVar, ExecutionTemplate, JobResource, TaskTemplate } from './resources.js';

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
  onEvent?: ActivityListener;
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

const RUN_PACKAGE = '@google-cloud/run';
const RUN_PROTOS = [
  'google/cloud/run/v2/job.proto',
  'google/cloud/run/v2/task.proto',
  'google/longrunning/operations.proto',
];

/**
 * REST bindings of `google.longrunning.Operations` in Run v2 (service config `run_v2.yaml`, as
 * `@google-cloud/run` 3.3.0 passes them to google-gax in `jobs_client.js`).
 */
const RUN_HTTP_RULES: HttpRule[] = operationsHttpRules('v2', [
  'DeleteOperation',
  'GetOperation',
  'ListOperations',
  'WaitOperation',
]);

/**
 * The local Cloud Run jobs service: gRPC `google.cloud.run.v2.Jobs` and `google.longrunning.Operations`
 * from the protos `@google-cloud/run` ships, so that the real `JobsClient` (and its
 * `operation.promise()`, which polls GetOperation) works against it. RunJob runs the job's tasks
 * as local processes with the shared executor, with Cloud Run's task variables
 * (`CLOUD_RUN_JOB`, `CLOUD_RUN_EXECUTION`, `CLOUD_RUN_TASK_INDEX`, `CLOUD_RUN_TASK_COUNT`,
 * `CLOUD_RUN_TASK_ATTEMPT`) and the run's overrides (args, env, task count) applied.
 */
export async function startRunService(options: RunServiceOptions = {}): Promise<LocalRunService> {
  const pkg = loadGrpcPackage(RUN_PACKAGE, RUN_PROTOS);
  const any = anyEncoder(pkg);
  const images = options.images ?? {};
  const emit: ActivityListener = (activity) => options.onEvent?.(activity);
  const jobs = new RunJobs(images, emit);
  // CancelOperation of a RunJob operation cancels its execution.
  const operations: OperationStore<RunOperation> = new OperationStore((op) => executions.cancelOperation(op));
  const executions = new RunExecutions({
    jobs,
    operations,
    any,
    slots: options.slots ?? new TaskSlots(defaultTaskSlots()),
    images,
    baseDir: options.baseDir ?? process.cwd(),
    logDir: options.logDir ?? mkdtempSync(join(tmpdir(), 'batchwire-run-')),
    env: options.env ?? {},
    emit,
  });
  const faults = new FaultInjector();
  const unary = unaryHandlers(faults);

  /** A done operation about `value` (a Job or Execution); kept for GetOperation unless only validated. */
  const answer = (resourceName: string, type: 'Job' | 'Execution', value: unknown, keep = true) => {
    const op: Operation = finishedOperation(operationName(resourceName), () => any(type, value), true);
    return operations.message(keep ? operations.add(op) : op);
  };

  const api = await bindLocalApi({
    pkg: RUN_PACKAGE,
    files: RUN_PROTOS,
    httpRules: RUN_HTTP_RULES,
    port: options.port,
    services: [
      {
        name: 'google.cloud.run.v2.Jobs',
        definition: lookup(pkg, 'google.cloud.run.v2.Jobs').service,
        handlers: {
          CreateJob: unary(
            'CreateJob',
            (request: { parent: string; job_id: string; job: JobResource; validate_only: boolean }) => {
              if (request.validate_only) return answer(`${request.parent}/`, 'Job', request.job, false);
              const job = jobs.create(request.parent, request.job_id, request.job);
              return answer(job.name, 'Job', job);
            },
          ),
          GetJob: unary('GetJob', (request: { name: string }) => jobs.get(request.name)),
          UpdateJob: unary(
            'UpdateJob',
            (request: { job: JobResource | null; validate_only: boolean; allow_missing: boolean }) => {
              const updated = jobs.update(request);
              return answer(updated.name, 'Job', updated, !request.validate_only);
            },
          ),
          ListJobs: unary('ListJobs', jobs.list.bind(jobs)),
          DeleteJob: unary('DeleteJob', (request: { name: string }) => {
            const job = jobs.delete(request.name);
            return answer(job.name, 'Job', { ...job, delete_time: timestamp(systemClock.now()) });
          }),
          RunJob: unary(
            'RunJob',
            (request: { name: string; overrides?: Overrides | null; validate_only?: boolean }) => {
              if (!request.validate_only) return operations.message(executions.run(request));
              jobs.get(request.name);
              return answer(request.name, 'Execution', { name: '' }, false);
            },
          ),
        },
      },
      {
        name: 'google.cloud.run.v2.Executions',
        definition: lookup(pkg, 'google.cloud.run.v2.Executions').service,
        handlers: {
          GetExecution: unary('GetExecution', (request: { name: string }) => executions.get(request.name)),
          ListExecutions: unary('ListExecutions', executions.list.bind(executions)),
          DeleteExecution: unary('DeleteExecution', (request: { name: string; validate_only: boolean }) =>
            operations.message(executions.delete(request)),
          ),
          CancelExecution: unary('CancelExecution', (request: { name: string }) =>
            operations.message(executions.cancel(request.name)),
          ),
        },
      },
      {
        name: 'google.cloud.run.v2.Tasks',
        definition: lookup(pkg, 'google.cloud.run.v2.Tasks').service,
        handlers: {
          GetTask: unary('GetTask', (request: { name: string }) => executions.tasks.get(request.name)),
          ListTasks: unary(
            'ListTasks',
            (request: { parent: string; page_size: number; page_token: string }) => {
              const all = executions.tasks.list(request.parent);
              const { page, next_page_token } = paginate(all, request, { scope: request.parent });
              return { tasks: page, next_page_token };
            },
          ),
        },
      },
      {
        name: 'google.longrunning.Operations',
        definition: lookup(pkg, 'google.longrunning.Operations').service,
        handlers: operations.handlers(unary),
      },
    ],
  });

  return {
    host: api.host,
    port: api.port,
    createJob: (parent, jobId, job) => {
      try {
        // In-process callers set max_retries without proto-loader's oneof marker; mark it as gRPC would.
        const taskTemplate = job.template?.template;
        if (taskTemplate && typeof taskTemplate.max_retries === 'number')
          taskTemplate.retries = 'max_retries';
        jobs.create(parent, jobId, job);
        return true;
      } catch (error) {
        if ((error as grpc.ServiceError).code === grpc.status.ALREADY_EXISTS) return false;
        throw error;
      }
    },
    injectFault: (method, code, times = 1) => faults.inject(method, code, times),
    waitForExecution: (name, timeoutMs) => executions.waitFor(name, timeoutMs),
    close: async () => {
      await executions.close();
      await api.close();
    },
  };
}
