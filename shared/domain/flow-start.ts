import { createHash, randomBytes } from 'node:crypto';
import { Cron } from 'croner';
import type { ObjectStore } from '../clients/ports.js';
import type { Config } from '../config/schema.js';
import {
  flowWorkflowId,
  flowImage as imageOfFlow,
  flowJobId as jobIdOfFlow,
  RUN_JOB_WORKFLOW,
} from '../plan/names.js';
import { InProgressError } from '../runtime/errors.js';
import { TASK_ENV } from './batch-job.js';
import {
  claimAgeMs,
  type FlowClaimRecord,
  type FlowStartedRecord,
  readClaim,
  readDone,
  recordDone,
  takeClaim,
} from './claims.js';
import type { FlowRequest } from './flow-request.js';
import { labelValue } from './inference-job.js';
import {
  type ClaimScope,
  claimDoneObjectName,
  claimObjectName,
  flowOutputPrefix,
  objectUri,
} from './object-path.js';

/**
 * Starting a scheduled flow, exactly once per Scheduler tick.
 *
 * Every flow runs as a Cloud Workflows execution:
 * - a `{workflow: W}` target runs `workflows/W.workflows.yaml`;
 * - a `{runJob: J, args}` target runs the generic `run-job` workflow, which runs Cloud Run job J
 *   with the container overrides (googleapis.run.v2 connector, which waits for the job's
 *   long-running operation) and then publishes the flow result.
 *
 * Why a Run job is wrapped in a workflow rather than started with `JobsClient.runJob` here: the
 * run's outcome is only known when its long-running operation ends, minutes to hours later, and
 * something has to hold that wait and then publish the result. This function cannot (an HTTP
 * function times out after at most 60 minutes, a Scheduler attempt after 30); an audit-log
 * trigger on the operation's last entry would hand onComplete a LogEntry without the flow's
 * product, client or output prefix; a job that publishes its own result says nothing when it
 * crashes or is killed. A Workflows execution waits cheaply for up to a year, its `except`
 * branch sees every failure of the job, and its last step publishes the same FLOW_COMPLETED
 * message as every other flow, so onComplete keeps a single flow contract.
 */

/** The generic workflow that runs a Cloud Run job target and reports its outcome (named in shared/plan/names.ts). */
export { RUN_JOB_WORKFLOW };

/** Label carrying the dedupe key on an execution, so that a retry can find what a crashed attempt started. */
export const CLAIM_LABEL = 'batchwire-claim';

/** What identifies one run of a flow: a Scheduler tick, a caller's idempotency key, or nothing. */
export type FlowTrigger =
  | { kind: 'scheduler'; jobName: string; scheduleTime: string }
  | { kind: 'manual'; idempotencyKey: string }
  | { kind: 'none' };

type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  const first = Array.isArray(value) ? value[0] : value;
  const trimmed = first?.trim();
  return trimmed ? trimmed : undefined;
}

/** The flow's schedule, as configured (`flows.<id>.schedule` and `timeZone`). */
export interface FlowSchedule {
  schedule?: string | undefined;
  timeZone: string;
}

/**
 * The trigger of a request from its headers: Cloud Scheduler's `X-CloudScheduler-JobName` and
 * `X-CloudScheduler-ScheduleTime`, else an `Idempotency-Key`, else none (then every call starts
 * a new run).
 *
 * Scheduler documents `X-CloudScheduler-ScheduleTime` for App Engine targets only; an HTTP
 * target may get `X-CloudScheduler: true` and the job name without it. Then the tick is derived
 * from the flow's own cron schedule and time zone (its latest fire time at or before `now`), so
 * that a retry of the same tick (which comes before the next one fires) finds the same key.
 */
export function triggerFromHeaders(
  headers: Headers,
  flow?: FlowSchedule,
  now: Date = new Date(),
): FlowTrigger {
  const jobName = header(headers, 'x-cloudscheduler-jobname');
  const scheduleTime = header(headers, 'x-cloudscheduler-scheduletime');
  if (jobName && scheduleTime) return { kind: 'scheduler', jobName, scheduleTime };
  const fromScheduler = jobName !== undefined || header(headers, 'x-cloudscheduler') === 'true';
  if (fromScheduler && flow?.schedule) {
    const tick = latestFireTime(flow.schedule, flow.timeZone, now);
    if (tick) return { kind: 'scheduler', jobName: jobName ?? '', scheduleTime: tick.toISOString() };
  }
  const idempotencyKey = header(headers, 'idempotency-key');
  if (idempotencyKey) return { kind: 'manual', idempotencyKey };
  return { kind: 'none' };
}

/**
 * The latest time a cron schedule fires at or before `now`, in the schedule's time zone (unix
 * cron, as Cloud Scheduler reads it), or undefined when it never fired (or cannot be read).
 *
 * @example
 * latestFireTime('0 4 * * *', 'Europe/London', new Date('2025-07-01T05:00:00Z'))
 * // 2025-07-01T03:00:00.000Z (04:00 BST)
 */
export function latestFireTime(schedule: string, timeZone: string, now: Date): Date | undefined {
  try {
    const cron = new Cron(schedule, { timezone: timeZone, paused: true });
    // croner's previousRuns leaves out a fire time within the reference's own second: ask from
    // one second later and keep the latest that is not after `now`.
    return cron.previousRuns(2, new Date(now.getTime() + 1000)).find((at) => at.getTime() <= now.getTime());
  } catch {
    return undefined;
  }
}

/**
 * The dedupe key of a run (sha256, hex), or undefined when the trigger carries none. The
 * flow, product and client are part of it so that one idempotency key reused for another flow,
 * or a Scheduler job whose body was edited, never answers with somebody else's execution.
 */
export function dedupeKey(
  trigger: FlowTrigger,
  request: Pick<FlowRequest, 'flow' | 'product' | 'client'>,
): string | undefined {
  if (trigger.kind === 'none') return undefined;
  const source =
    trigger.kind === 'scheduler'
      ? ['scheduler', trigger.jobName, trigger.scheduleTime]
      : ['manual', trigger.idempotencyKey];
  const material = JSON.stringify([...source, request.flow, request.product, request.client]);
  return createHash('sha256').update(material).digest('hex');
}

/** The claim scope of flow ticks, and what its done record says (see claims.ts). */
const SCHEDULE: ClaimScope = 'schedule';
const STARTED = 'started';

/** The claim the first attempt of a dedupe key takes (see claims.ts). */
export function scheduleClaimObjectName(key: string): string {
  return claimObjectName(SCHEDULE, key);
}

/** The record of what the claim's holder started, written once the execution exists. */
export function startedObjectName(key: string): string {
  return claimDoneObjectName(SCHEDULE, key, STARTED);
}

/** The argument every flow workflow receives (JSON in `Execution.argument`). */
export interface FlowArgument {
  flow: string;
  product: string;
  /** The client of a client-scoped flow; null for a product-scoped one. */
  client: string | null;
  /** The product's clients (a product-scoped flow such as metadata works on all of them). */
  clients: string[];
  params: Record<string, unknown>;
  project: string;
  region: string;
  bucket: string;
  /** Full topic name the workflow publishes its FLOW_COMPLETED message to. */
  completionTopic: string;
  /** Where the flow writes its results: `gs://bucket/{product}/{client|_flows}/…/{runId}/`. */
  outputPrefix: string;
  /** Unique per run, deterministic per dedupe key; usable as a job id suffix. */
  runId: string;
  /** Container image of the flow's task: `params.image`, else `<inference image's repository>/<flow>:latest`. */
  image: string;
  /** Full name of the Cloud Run job the flow runs (a runJob target's job, else `{product}-{flow}`). */
  job: string;
  /** Service account that the flow's jobs run as, when configured. */
  serviceAccount: string | null;
  /** For the run-job workflow: the RunJobRequest overrides, in the REST (camelCase) shape. */
  overrides?: RunJobOverrides;
}

export interface RunJobOverrides {
  containerOverrides: Array<{ args: string[]; env: Array<{ name: string; value: string }> }>;
  taskCount?: number;
}

/** What to execute for a flow request. */
export interface FlowStartPlan {
  /** Full workflow name: `projects/P/locations/R/workflows/W`. */
  workflow: string;
  argument: FlowArgument;
  labels: Record<string, string>;
}

/** The image of a flow's task: flow images sit next to the product's inference image, named after the flow. */
export function flowImage(request: Pick<FlowRequest, 'flow' | 'params' | 'productConfig'>): string {
  return imageOfFlow(request.productConfig.inference.image, request.flow, request.params);
}

/** The Cloud Run job id a flow runs: its runJob target, else `{product}-{flow}` (both fit Run's job id rules). */
export function flowJobId(request: Pick<FlowRequest, 'flow' | 'product' | 'flowConfig'>): string {
  return jobIdOfFlow(request.product, request.flow, request.flowConfig.target);
}

/** Every Cloud Run job the configured flows may run, with its image: what provisioning creates. */
export function configuredFlowJobs(
  config: Config,
): Array<{ jobId: string; image: string; product: string; flow: string }> {
  const jobs = new Map<string, { jobId: string; image: string; product: string; flow: string }>();
  for (const [product, productConfig] of Object.entries(config.products)) {
    for (const [flow, flowConfig] of Object.entries(productConfig.flows)) {
      const request = { flow, product, flowConfig, productConfig, params: flowConfig.params };
      const jobId = flowJobId(request);
      if (!jobs.has(jobId)) jobs.set(jobId, { jobId, image: flowImage(request), product, flow });
    }
  }
  return [...jobs.values()];
}

/** A run id: `YYYYMMDDThhmmss-<8 hex>`, from the tick's time and the dedupe key when there is one. */
export function runIdFor(trigger: FlowTrigger, key: string | undefined, now: Date): string {
  const at =
    trigger.kind === 'scheduler' && !Number.isNaN(Date.parse(trigger.scheduleTime))
      ? new Date(trigger.scheduleTime)
      : now;
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, '')
    .toLowerCase();
  return `${stamp}-${(key ?? randomBytes(16).toString('hex')).slice(0, 8)}`;
}

/**
 * Builds what to execute for a validated request: the workflow, its argument (flow, product,
 * client, params and where results go) and the execution's labels.
 */
export function planFlowStart(
  request: FlowRequest,
  config: Config,
  run: { runId: string; key?: string },
): FlowStartPlan {
  const target = request.flowConfig.target;
  const workflowId = flowWorkflowId(target);
  const outputPrefix = objectUri(
    config.bucket,
    flowOutputPrefix(request.product, request.client, request.flow, run.runId),
  );
  const argument: FlowArgument = {
    flow: request.flow,
    product: request.product,
    client: request.client,
    clients: [...request.productConfig.clients],
    params: request.params,
    project: config.project,
    region: config.region,
    bucket: config.bucket,
    completionTopic: `projects/${config.project}/topics/${config.completionTopic}`,
    outputPrefix,
    runId: run.runId,
    image: flowImage(request),
    job: `projects/${config.project}/locations/${config.region}/jobs/${flowJobId(request)}`,
    serviceAccount: request.productConfig.serviceAccount ?? null,
  };
  if ('runJob' in target) argument.overrides = runJobOverrides(request, argument, target.args);

  const labels: Record<string, string> = {
    product: labelValue(request.product),
    flow: labelValue(request.flow),
    trigger: 'schedule',
  };
  if (request.client) labels.client = labelValue(request.client);
  if (run.key) labels[CLAIM_LABEL] = claimLabelValue(run.key);
  return {
    workflow: `projects/${config.project}/locations/${config.region}/workflows/${workflowId}`,
    argument,
    labels,
  };
}

/** The claim label's value: a prefix of the key (label values hold at most 63 characters). */
export function claimLabelValue(key: string): string {
  return key.slice(0, 40);
}

/**
 * The overrides of a Cloud Run job run: the configured args, and the task contract in env.
 * A positive integer `params.taskCount` overrides the job's task count.
 */
export function runJobOverrides(
  request: FlowRequest,
  argument: FlowArgument,
  args: string[],
): RunJobOverrides {
  const env: Record<string, string> = {
    [TASK_ENV.flow]: request.flow,
    [TASK_ENV.product]: request.product,
    [TASK_ENV.clients]: argument.clients.join(','),
    [TASK_ENV.bucket]: argument.bucket,
    [TASK_ENV.outputUri]: argument.outputPrefix,
    [TASK_ENV.runId]: argument.runId,
    [TASK_ENV.params]: JSON.stringify(request.params),
  };
  if (request.client) env[TASK_ENV.client] = request.client;
  const overrides: RunJobOverrides = {
    containerOverrides: [
      { args: [...args], env: Object.entries(env).map(([name, value]) => ({ name, value })) },
    ],
  };
  const taskCount = request.params.taskCount;
  if (typeof taskCount === 'number' && Number.isInteger(taskCount) && taskCount > 0)
    overrides.taskCount = taskCount;
  return overrides;
}

/** Starting workflow executions (implemented over `@google-cloud/workflows` in shared/clients/workflows.ts). */
export interface FlowExecutions {
  /** Starts an execution of `workflow` (full name); resolves with the execution's full name. */
  start(workflow: string, argument: string, labels: Record<string, string>): Promise<string>;
  /** Names of the executions of `workflow` that carry label `key=value`, newest first. */
  findByLabel(workflow: string, key: string, value: string): Promise<string[]>;
}

/** A claim is held by an attempt that has not recorded an execution yet: try again shortly. */
export class FlowStartInProgressError extends InProgressError {
  constructor(retryAfterSeconds: number) {
    super(
      'a run for this schedule tick is being started by another attempt; retry shortly',
      retryAfterSeconds,
    );
  }
}

export interface FlowStartDeps {
  config: Config;
  executions: FlowExecutions;
  /** The platform's bucket. */
  store: ObjectStore;
  now?: () => Date;
  /**
   * How long a claim without a recorded execution is presumed in flight (default 30 s): after
   * that, its holder is presumed to have crashed before starting anything, and a retry takes over.
   */
  claimLeaseMs?: number;
}

export interface FlowStartResult {
  /** `started`: this call started the execution; `deduped`: an earlier attempt did. */
  status: 'started' | 'deduped';
  execution: string;
  runId: string;
  key?: string;
}

/**
 * Starts the flow of a validated request, at most once per dedupe key.
 *
 * The order, and what a crash at each point leaves behind:
 *
 * ```
 * claim (ifGenerationMatch: 0) ──▶ start execution (labelled with the key) ──▶ record execution
 *        crash here: the claim          crash here: the execution runs,          a retry reads the
 *        exists, nothing runs;          unrecorded; a retry finds it by           record: 200 with
 *        a retry after the lease        its label and records it                  the same execution
 *        finds no labelled execution
 *        and starts it
 * ```
 *
 * Workflows chooses execution ids itself (CreateExecution takes none), so the id cannot carry the
 * key; the label does, and ListExecutions filters by label. While the lease runs, a retry that
 * finds the claim but neither a record nor a labelled execution answers "in progress" (the first
 * attempt may be between its claim and its start) rather than risk a second run.
 */
export async function startFlow(
  { request, trigger }: { request: FlowRequest; trigger: FlowTrigger },
  deps: FlowStartDeps,
): Promise<FlowStartResult> {
  const now = deps.now ?? (() => new Date());
  const requestedAt = now();
  const key = dedupeKey(trigger, request);
  const runId = runIdFor(trigger, key, requestedAt);

  if (!key) {
    const plan = planFlowStart(request, deps.config, { runId });
    const execution = await deps.executions.start(plan.workflow, JSON.stringify(plan.argument), plan.labels);
    return { status: 'started', execution, runId };
  }

  const claim: FlowClaimRecord = {
    version: 1,
    key,
    trigger,
    flow: request.flow,
    product: request.product,
    client: request.client,
    params: request.params,
    runId,
    requestedAt: requestedAt.toISOString(),
  };
  if (await takeClaim(deps.store, SCHEDULE, key, claim)) {
    const plan = planFlowStart(request, deps.config, { runId, key });
    const execution = await deps.executions.start(plan.workflow, JSON.stringify(plan.argument), plan.labels);
    await recordStarted(deps.store, key, execution, now());
    return { status: 'started', execution, runId, key };
  }

  // The key was claimed before: by an attempt that finished, one still running, or one that crashed.
  const recorded = await readDone<FlowStartedRecord>(deps.store, SCHEDULE, key, STARTED);
  const held = (await readClaim<FlowClaimRecord>(deps.store, SCHEDULE, key)) ?? claim;
  if (recorded?.execution)
    return { status: 'deduped', execution: recorded.execution, runId: held.runId, key };

  // Flow, product and client are part of the key, so only the params can differ from the
  // claimed request (a manual retry reusing its Idempotency-Key with other params, a Scheduler
  // job whose body was edited between attempts): the claimed request is the one that runs.
  const claimed: FlowRequest = { ...request, params: held.params ?? request.params };
  const plan = planFlowStart(claimed, deps.config, { runId: held.runId, key });
  const [found] = await deps.executions.findByLabel(plan.workflow, CLAIM_LABEL, claimLabelValue(key));
  if (found) {
    await recordStarted(deps.store, key, found, now());
    return { status: 'deduped', execution: found, runId: held.runId, key };
  }

  const leaseMs = deps.claimLeaseMs ?? 30_000;
  const age = claimAgeMs(held.requestedAt, now());
  if (Number.isNaN(age) || age < leaseMs) {
    throw new FlowStartInProgressError(
      Math.max(1, Math.ceil((leaseMs - (Number.isNaN(age) ? 0 : age)) / 1000)),
    );
  }
  // The claim's holder died before its execution existed: take over, with the run id it chose.
  const execution = await deps.executions.start(plan.workflow, JSON.stringify(plan.argument), plan.labels);
  await recordStarted(deps.store, key, execution, now());
  return { status: 'started', execution, runId: held.runId, key };
}

async function recordStarted(store: ObjectStore, key: string, execution: string, at: Date): Promise<void> {
  const record: FlowStartedRecord = { version: 1, key, execution, startedAt: at.toISOString() };
  await recordDone(store, SCHEDULE, key, STARTED, record);
}
