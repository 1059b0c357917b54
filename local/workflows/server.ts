import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { ActivityListener } from '../activity.js';
import { bindLocalApi } from '../grpc/bind.js';
import { paginate } from '../grpc/paging.js';
import { grpcError, loadGrpcPackage, lookup } from '../grpc/protos.js';
import { type Duration, duration, millis, type Timestamp, timestamp } from '../grpc/timestamp.js';
import { unaryHandlers } from '../grpc/unary.js';
import { CallbackHub } from './callbacks.js';
import { createLocalConnectors, httpError } from './connectors.js';
import { WorkflowCancelledError, WorkflowRuntimeError, WorkflowSyntaxError } from './errors.js';
import { executeWorkflow, systemClock } from './execute.js';
import { parseWorkflow } from './parse.js';
import { LOST_WITH_THE_PROCESS, lostExecution, RunningExecutionStore } from './running-store.js';
import type { Clock, ConnectorRegistry, WorkflowProgram } from './types.js';
import { toJsonValue } from './values.js';

export interface WorkflowsServiceOptions {
  port?: number;
  /** Where `<id>.workflows.yaml` files live; a workflow's id is the file's stem. */
  workflowsDir: string;
  project: string;
  region: string;
  /** Extra variables `sys.get_env` reads (besides GOOGLE_CLOUD_PROJECT_ID, …_WORKFLOW_EXECUTION_ID, …). */
  env?: Record<string, string>;
  /** Connectors; default `createLocalConnectors` (the real Google clients at the *_EMULATOR_HOST services). */
  connectors?: ConnectorRegistry;
  clock?: Clock;
  onEvent?: ActivityListener;
  /**
   * Keep a record of each ACTIVE execution here (`<dataDir>/running/<id>.json`), so that the
   * executions a process killed without a stop was running are known to the next start
   * ({@link LocalWorkflowsService.lostWithLastProcess}). Without it, nothing is written.
   */
  dataDir?: string;
}

export interface LocalWorkflowsService {
  /** `127.0.0.1:PORT`, for WORKFLOWS_EMULATOR_HOST. */
  host: string;
  port: number;
  /** Resolves with the execution (proto shape) once it is no longer ACTIVE. */
  waitForExecution(name: string, timeoutMs?: number): Promise<ExecutionResource>;
  /**
   * Cancels what still runs and stops; resolves with the executions it cut short (now
   * CANCELLED). With `dataDir`, their records stay until {@link forgetInterrupted}: a caller
   * that reports them, and stops before it could, has them again as `lostWithLastProcess`.
   */
  close(): Promise<ExecutionResource[]>;
  /**
   * With `dataDir`: the executions found still recorded as running at this start, which the
   * previous process was running when it ended without a stop (a crash, a kill). They are
   * FAILED (listed and answered as such), and recorded until {@link forgetInterrupted}.
   */
  readonly lostWithLastProcess: readonly ExecutionResource[];
  /** Removes the records of executions cut short (by `close()` or before this start) once reported. */
  forgetInterrupted(executions: readonly ExecutionResource[]): void;
}

/** google.cloud.workflows.executions.v1.Execution, as proto-loader (keepCase) encodes it. */
export interface ExecutionResource {
  name: string;
  start_time: Timestamp;
  end_time: Timestamp | null;
  duration: Duration | null;
  state: 'ACTIVE' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';
  argument: string;
  result: string;
  error: {
    payload: string;
    context: string;
    stack_trace: {
      elements: Array<{
        step: string;
        routine: string;
        position: { line: string; column: string; length: string };
      }>;
    };
  } | null;
  workflow_revision_id: string;
  call_log_level: string;
  status: { current_steps: Array<{ routine: string; step: string }> } | null;
  labels: Record<string, string>;
}

interface ExecutionRecord {
  resource: ExecutionResource;
  workflow: string;
  createdAt: number;
  abort: AbortController;
  done: Promise<void>;
}

const EXTENSION = '.workflows.yaml';
const WORKFLOWS_PACKAGE = '@google-cloud/workflows';

/** A workflow's revision id as Workflows shows it: `000001-` and a short hash of the source. */
function revisionId(source: string): string {
  let hash = 0;
  for (let i = 0; i < source.length; i++) hash = (hash * 31 + source.charCodeAt(i)) >>> 0;
  return `000001-${hash.toString(16).padStart(8, '0').slice(0, 3)}`;
}

/**
 * One term of an AIP-160 filter as Workflows accepts them: `state="FAILED"`,
 * `labels.key="value"`, `executionId="…"`, joined with AND.
 */
function compileFilter(filter: string): (record: ExecutionRecord) => boolean {
  const text = filter.trim();
  if (!text) return () => true;
  const terms = text.split(/\s+AND\s+/);
  const predicates = terms.map((term) => {
    const match =
      /^\s*(labels\.[A-Za-z0-9_-]+|state|executionId|workflowRevisionId)\s*(=|!=)\s*"([^"]*)"\s*$/.exec(term);
    if (!match) throw grpcError(grpc.status.INVALID_ARGUMENT, `unsupported filter term: ${term}`);
    const [, field, op, value] = match as unknown as [string, string, string, string];
    const read = (record: ExecutionRecord): string => {
      if (field.startsWith('labels.')) return record.resource.labels[field.slice('labels.'.length)] ?? '';
      if (field === 'state') return record.resource.state;
      if (field === 'executionId') return record.resource.name.split('/').pop() ?? '';
      return record.resource.workflow_revision_id;
    };
    return (record: ExecutionRecord) => (op === '=' ? read(record) === value : read(record) !== value);
  });
  return (record) => predicates.every((predicate) => predicate(record));
}

/**
 * The local Cloud Workflows executions service: gRPC `google.cloud.workflows.executions.v1.Executions`
 * (CreateExecution, GetExecution, ListExecutions, CancelExecution) from the protos
 * `@google-cloud/workflows` ships. Workflows are the files of `workflowsDir`, read at each
 * CreateExecution (an edit takes effect on the next execution, like a redeploy); executions run
 * with the local interpreter and report state, result and error as Workflows does.
 */
export async function startWorkflowsService(
  options: WorkflowsServiceOptions,
): Promise<LocalWorkflowsService> {
  const files = ['google/cloud/workflows/executions/v1/executions.proto'];
  const pkg = loadGrpcPackage(WORKFLOWS_PACKAGE, files);
  const ExecutionsService = lookup(pkg, 'google.cloud.workflows.executions.v1.Executions');
  const connectors =
    options.connectors ?? createLocalConnectors({ project: options.project, region: options.region });
  const clock = options.clock ?? systemClock;
  const emit: ActivityListener = (activity) => options.onEvent?.(activity);
  const executions = new Map<string, ExecutionRecord>();
  /** `events.create_callback_endpoint` URLs of every execution, on one loopback server. */
  const callbacks = new CallbackHub();
  const location = `projects/${options.project}/locations/${options.region}`;
  const running = options.dataDir
    ? new RunningExecutionStore(join(options.dataDir, 'running'), (file, err) =>
        emit({
          kind: 'workflow.execution',
          message: `skipping unreadable running-execution record ${file}: ${(err as Error).message}`,
          file,
        }),
      )
    : undefined;
  /** Set by close(): the executions it cancels from then on keep their records for the caller. */
  let closing = false;

  function loadWorkflow(parent: string): { id: string; program: WorkflowProgram; revision: string } {
    const match = /^projects\/([^/]+)\/locations\/([^/]+)\/workflows\/([^/]+)$/.exec(parent);
    if (!match)
      throw grpcError(
        grpc.status.INVALID_ARGUMENT,
        `parent must be projects/P/locations/L/workflows/W, got "${parent}"`,
      );
    const id = match[3] as string;
    const file = join(options.workflowsDir, `${id}${EXTENSION}`);
    if (
      `projects/${match[1]}/locations/${match[2]}` !== location ||
      !/^[a-z][a-z0-9_-]{0,63}$/i.test(id) ||
      !existsSync(file)
    ) {
      throw grpcError(grpc.status.NOT_FOUND, `Resource '${parent}' was not found`);
    }
    const source = readFileSync(file, 'utf8');
    try {
      return { id, program: parseWorkflow(source, file), revision: revisionId(source) };
    } catch (error) {
      if (error instanceof WorkflowSyntaxError) {
        // A real deploy would have refused this file; say so instead of running it.
        throw grpcError(
          grpc.status.FAILED_PRECONDITION,
          `workflow ${id} is not deployable: ${error.message}`,
        );
      }
      throw error;
    }
  }

  function finish(
    record: ExecutionRecord,
    state: ExecutionResource['state'],
    fields: Partial<ExecutionResource>,
  ): void {
    // A cancelled execution is final the moment CancelExecution answers; the interpreter's own end comes later.
    if (record.resource.state !== 'ACTIVE') return;
    const end = clock.now();
    const elapsed = Math.max(0, end - record.createdAt);
    Object.assign(record.resource, fields, {
      state,
      end_time: timestamp(end),
      // `status.currentSteps` keeps the last step attempted once the execution has ended, as Google documents.
      duration: duration(elapsed),
    });
    // Cut short by close(): reported by the caller, which removes the record once it has.
    if (!(closing && state === 'CANCELLED')) running?.remove(record.resource.name);
    emit({
      kind: 'workflow.execution',
      message: `workflow ${record.workflow} execution ${record.resource.name.split('/').pop()}: ${state}`,
      execution: record.resource.name,
      state,
    });
  }

  function createExecution(request: {
    parent: string;
    execution?: Partial<ExecutionResource> | null;
  }): ExecutionResource {
    const { id, program, revision } = loadWorkflow(request.parent);
    const argumentText = request.execution?.argument ?? '';
    let argument: unknown = null;
    if (argumentText.trim() !== '') {
      try {
        argument = JSON.parse(argumentText);
      } catch (error) {
        throw grpcError(
          grpc.status.INVALID_ARGUMENT,
          `argument is not valid JSON: ${(error as Error).message}`,
        );
      }
    }
    const executionId = randomUUID();
    const name = `${request.parent}/executions/${executionId}`;
    const createdAt = clock.now();
    const resource: ExecutionResource = {
      name,
      start_time: timestamp(createdAt),
      end_time: null,
      duration: null,
      state: 'ACTIVE',
      argument: argumentText,
      result: '',
      error: null,
      workflow_revision_id: revision,
      call_log_level: request.execution?.call_log_level ?? 'CALL_LOG_LEVEL_UNSPECIFIED',
      status: { current_steps: [] },
      labels: { ...(request.execution?.labels ?? {}) },
    };
    const abort = new AbortController();
    const record: ExecutionRecord = { resource, workflow: id, createdAt, abort, done: Promise.resolve() };
    // Recorded before CreateExecution answers: an execution its caller knows of is never lost unreported.
    running?.add(resource);
    executions.set(name, record);
    emit({
      kind: 'workflow.execution',
      message: `workflow ${id} execution ${executionId} started`,
      execution: name,
      state: 'ACTIVE',
    });

    const env: Record<string, string> = {
      ...(options.env ?? {}),
      GOOGLE_CLOUD_PROJECT_ID: options.project,
      GOOGLE_CLOUD_PROJECT_NUMBER: '000000000000',
      GOOGLE_CLOUD_LOCATION: options.region,
      GOOGLE_CLOUD_WORKFLOW_ID: id,
      GOOGLE_CLOUD_WORKFLOW_REVISION_ID: revision,
      GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID: executionId,
    };
    // Started on the next turn, so CreateExecution answers before the first step runs, as Workflows does.
    record.done = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() =>
        executeWorkflow(program, argument, {
          connectors,
          env,
          clock,
          signal: abort.signal,
          callbacks,
          onStep: (step) => {
            if (record.resource.state === 'ACTIVE') record.resource.status = { current_steps: [step] };
          },
          // `experimental.executions.map`: children run in this process (not listed as executions).
          runWorkflow: (childId, childArgument, signal) => {
            let child: WorkflowProgram;
            try {
              child = loadWorkflow(`${location}/workflows/${childId}`).program;
            } catch (err) {
              throw httpError(404, (err as Error).message.replace(/^\d+ [A-Z_]+: /, ''), 'NOT_FOUND');
            }
            return executeWorkflow(child, childArgument, {
              connectors,
              env: { ...env, GOOGLE_CLOUD_WORKFLOW_ID: childId },
              clock,
              callbacks,
              signal: signal ?? abort.signal,
            });
          },
          log: (entry) =>
            emit({
              kind: 'workflow.log',
              message: `${id}: ${typeof entry.data === 'string' ? entry.data : JSON.stringify(entry.data)}`,
              severity: entry.severity,
            }),
        }),
      )
      .then(
        (result) => finish(record, 'SUCCEEDED', { result: JSON.stringify(toJsonValue(result)) }),
        (error: unknown) => {
          if (error instanceof WorkflowCancelledError || abort.signal.aborted) {
            finish(record, 'CANCELLED', {});
          } else if (error instanceof WorkflowRuntimeError) {
            finish(record, 'FAILED', {
              error: {
                payload: JSON.stringify(error.payload),
                context: error.context,
                stack_trace: {
                  elements: error.frames.map((frame) => ({
                    step: frame.step,
                    routine: frame.routine,
                    position: { line: String(frame.line), column: '0', length: '0' },
                  })),
                },
              },
            });
          } else {
            // An unsupported construct or an interpreter fault: fail the execution, naming it.
            const message = error instanceof Error ? error.message : String(error);
            finish(record, 'FAILED', {
              error: {
                payload: JSON.stringify({ message, tags: ['UnsupportedError'] }),
                context: message,
                stack_trace: { elements: [] },
              },
            });
          }
        },
      );
    return resource;
  }

  // What the previous process was running when it died: FAILED now, listed like any execution.
  const lostWithLastProcess = (running?.loadAll() ?? []).map((recorded) => {
    const lost = lostExecution(recorded, clock.now());
    const workflow = /\/workflows\/([^/]+)\/executions\//.exec(lost.name)?.[1] ?? '';
    executions.set(lost.name, {
      resource: lost,
      workflow,
      createdAt: millis(lost.start_time) ?? clock.now(),
      abort: new AbortController(),
      done: Promise.resolve(),
    });
    emit({
      kind: 'workflow.execution',
      message: `workflow ${workflow} execution ${lost.name.split('/').pop()}: FAILED (${LOST_WITH_THE_PROCESS})`,
      execution: lost.name,
      state: lost.state,
    });
    return lost;
  });

  const getRecord = (name: string): ExecutionRecord => {
    const record = executions.get(name);
    if (!record) throw grpcError(grpc.status.NOT_FOUND, `Resource '${name}' was not found`);
    return record;
  };

  const basicView = (resource: ExecutionResource): ExecutionResource => ({
    ...resource,
    argument: '',
    result: '',
  });

  const unary = unaryHandlers();
  const handlers: grpc.UntypedServiceImplementation = {
    CreateExecution: unary('CreateExecution', createExecution),
    GetExecution: unary('GetExecution', (request: { name: string; view?: string }) => {
      const { resource } = getRecord(request.name);
      return request.view === 'BASIC' ? basicView(resource) : resource;
    }),
    ListExecutions: unary(
      'ListExecutions',
      (request: {
        parent: string;
        page_size?: number;
        page_token?: string;
        filter?: string;
        view?: string;
      }) => {
        loadWorkflow(request.parent);
        const matches = compileFilter(request.filter ?? '');
        const all = [...executions.values()]
          .filter(
            (record) => record.resource.name.startsWith(`${request.parent}/executions/`) && matches(record),
          )
          // Newest first; executions created in the same millisecond keep their creation order
          // reversed (the map holds them in creation order; the sort is stable).
          .reverse()
          .sort((a, b) => b.createdAt - a.createdAt);
        // Workflows' page sizes: default 100, at most 100 in the FULL view and 1000 in BASIC.
        const { page, next_page_token } = paginate(all, request, {
          scope: `${request.parent}\t${request.filter ?? ''}`,
          defaultSize: 100,
          max: request.view === 'FULL' ? 100 : 1000,
        });
        return {
          executions: page.map((record) =>
            request.view === 'FULL' ? record.resource : basicView(record.resource),
          ),
          next_page_token,
        };
      },
    ),
    CancelExecution: unary('CancelExecution', (request: { name: string }) => {
      const record = getRecord(request.name);
      if (record.resource.state !== 'ACTIVE') {
        throw grpcError(
          grpc.status.FAILED_PRECONDITION,
          `execution ${request.name} is not active (${record.resource.state})`,
        );
      }
      record.abort.abort(new WorkflowCancelledError());
      // Workflows answers with the execution already CANCELLED; the interpreter stops at its next step.
      finish(record, 'CANCELLED', {});
      return record.resource;
    }),
  };
  const api = await bindLocalApi({
    pkg: WORKFLOWS_PACKAGE,
    files,
    port: options.port,
    services: [
      {
        name: 'google.cloud.workflows.executions.v1.Executions',
        definition: ExecutionsService.service,
        handlers,
      },
    ],
  });

  return {
    host: api.host,
    port: api.port,
    waitForExecution: async (name, timeoutMs = 30_000) => {
      const started = Date.now();
      while (Date.now() - started < timeoutMs) {
        const record = executions.get(name);
        if (record && record.resource.state !== 'ACTIVE') return record.resource;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      throw new Error(`execution ${name} still active after ${timeoutMs} ms`);
    },
    lostWithLastProcess,
    forgetInterrupted: (cutShort) => {
      for (const execution of cutShort) running?.remove(execution.name);
    },
    close: async () => {
      closing = true;
      const active = [...executions.values()].filter((record) => record.resource.state === 'ACTIVE');
      for (const record of active) record.abort.abort(new WorkflowCancelledError());
      await Promise.allSettled([...executions.values()].map((record) => record.done));
      await callbacks.close();
      await api.close();
      // One that reached its end on its own meanwhile was not cut short.
      return active
        .filter((record) => record.resource.state === 'CANCELLED')
        .map((record) => record.resource);
    },
  };
}

/** The ids of the workflows in a folder (file stems of `*.workflows.yaml`). */
export function listWorkflowIds(workflowsDir: string): string[] {
  return readdirSync(workflowsDir)
    .filter((file) => file.endsWith(EXTENSION))
    .map((file) => basename(file, EXTENSION));
}
