import { z } from 'zod';
import type { ObjectStore } from '../clients/ports.js';
import { type Config, ID_PATTERN } from '../config/schema.js';
import { outputTopic } from '../plan/names.js';
import { MalformedEventError, NotFoundError, PermanentError } from '../runtime/errors.js';
import { type BatchJobs, readTaskContract } from './batch-job.js';
import {
  type FinalJobState,
  isFinalJobState,
  isJobWorded,
  isTaskState,
  mentionsTaskFailure,
  parseExitCode,
  parseJobTransition,
  parseTaskIndex,
} from './batch-states.js';
import { objectUri, parseObjectUri } from './object-path.js';
import {
  type FlowResultData,
  flowResultEvent,
  type InferenceResultData,
  inferenceResultEvent,
  OUTPUTS_MANIFEST_FILE,
  type OutputsManifest,
  type PublishOnceDeps,
  type PublishOutcome,
  publishOnce,
  type ResultOutputs,
} from './output-event.js';

/**
 * What arrives on the completion topic, and what onComplete makes of it.
 *
 * Two kinds of message share the topic, told apart by the `Type` attribute:
 *
 * - `JOB_STATE_CHANGED`: Cloud Batch's job notification. The attributes are the contract
 *   (`JobName`, `JobUID`, `NewJobState`, `Region`); the body is free text and ignored. It
 *   carries no labels, so GetJob recovers product, client, input and output.
 * - `FLOW_COMPLETED`: published by a flow's last step (see {@link FlowCompletionSchema}).
 */

/** One Pub/Sub message, as the trigger hands it over. */
export interface CompletionMessage {
  data: Buffer;
  attributes: Record<string, string>;
  messageId: string;
  publishTime?: string;
}

/**
 * Reads the Pub/Sub message out of a `google.cloud.pubsub.topic.v1.messagePublished` event's
 * data: `{ message: { data (base64), attributes, messageId, publishTime }, subscription }`.
 * Eventarc sends exactly that; functions-framework turns a raw push (to a path
 * `/projects/P/topics/T`) into the same shape, with `@type` added and `subscription` dropped.
 */
export function messageFromEventData(data: unknown): CompletionMessage {
  const parsed = typeof data === 'string' ? safeJson(data) : data;
  const message = (parsed as { message?: unknown } | undefined)?.message as
    | Record<string, unknown>
    | undefined;
  if (!message || typeof message !== 'object') {
    throw new MalformedEventError('not a Pub/Sub messagePublished event: no `message` in the event data');
  }
  const attributes: Record<string, string> = {};
  if (message.attributes && typeof message.attributes === 'object') {
    for (const [key, value] of Object.entries(message.attributes as Record<string, unknown>)) {
      if (typeof value === 'string') attributes[key] = value;
    }
  }
  const body = typeof message.data === 'string' ? Buffer.from(message.data, 'base64') : Buffer.alloc(0);
  const messageId = String(message.messageId ?? message.message_id ?? '');
  const publishTime = message.publishTime ?? message.publish_time;
  return {
    data: body,
    attributes,
    messageId,
    ...(typeof publishTime === 'string' ? { publishTime } : {}),
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Batch job notifications

/** How onComplete treats a job state. */
export type JobDisposition =
  /** SUCCEEDED, FAILED, CANCELLED: the job is over, publish its result. */
  | 'final'
  /** DELETION_IN_PROGRESS: a failure if the job had not finished, else nothing. */
  | 'deleted'
  /** QUEUED, SCHEDULED, RUNNING, CANCELLATION_IN_PROGRESS…: not over yet. */
  | 'ignore';

export interface JobStateNotification {
  kind: 'job-state';
  /** `JobName` as sent: a full resource name or a bare job id. */
  jobName: string;
  jobUid: string;
  newState: string;
  region: string | null;
  disposition: JobDisposition;
}

/** The completion message of a flow (version 1), published by a flow's last step. */
export const FlowCompletionSchema = z.object({
  type: z.literal('flow'),
  version: z.literal(1),
  flow: z.string().regex(ID_PATTERN),
  product: z.string().regex(ID_PATTERN),
  /** The client the flow ran for; null for a product-scoped flow (every client is told). */
  client: z.string().regex(ID_PATTERN).nullable(),
  /** `projects/P/locations/L/workflows/W/executions/E`, or a Cloud Run operation name. */
  execution: z.string().min(1).max(1024),
  state: z.enum(['SUCCEEDED', 'FAILED']),
  startedAt: z.iso.datetime({ offset: true }),
  finishedAt: z.iso.datetime({ offset: true }),
  outputs: z
    .object({ prefix: z.string().regex(/^gs:\/\/[^/]+\//, 'a gs://bucket/prefix/ URI') })
    .nullable()
    .default(null),
  /** What went wrong, when state is FAILED. */
  error: z.string().nullable().default(null),
});

export type FlowCompletion = z.infer<typeof FlowCompletionSchema>;

export interface FlowCompletionMessage {
  kind: 'flow';
  completion: FlowCompletion;
}

export interface OtherMessage {
  kind: 'other';
  /** The `Type` attribute, e.g. TASK_STATE_CHANGED. */
  type: string;
}

export type ClassifiedMessage = JobStateNotification | FlowCompletionMessage | OtherMessage;

export const JOB_STATE_CHANGED = 'JOB_STATE_CHANGED';
export const FLOW_COMPLETED = 'FLOW_COMPLETED';

/**
 * A job name as Batch writes it in `JobName` (`projects/{project id or number}/locations/
 * {region}/jobs/{job id}`), or a bare job id; Batch job ids are `^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`.
 */
export const JOB_NAME_PATTERN =
  /^(?:projects\/[a-z0-9][a-z0-9-]{0,62}\/locations\/[a-z0-9-]{1,63}\/jobs\/)?[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** Batch's job uid (the job id with a suffix), bounded. */
const JOB_UID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
/** A `google.cloud.batch.v1.JobStatus.State` name. */
const JOB_STATE_PATTERN = /^[A-Z_]{1,64}$/;
const REGION_PATTERN = /^[a-z0-9-]{1,63}$/;

/** The job state a notification announces, and what onComplete does with it. */
export function jobDisposition(state: string): JobDisposition {
  if (isFinalJobState(state)) return 'final';
  return state === 'DELETION_IN_PROGRESS' ? 'deleted' : 'ignore';
}

/**
 * Classifies a completion message by its `Type` attribute. Throws a MalformedEventError
 * (acked with an ERROR log) when the type is missing, a job notification lacks an attribute,
 * or a flow completion is not valid JSON of the documented shape.
 */
export function classifyMessage(message: CompletionMessage): ClassifiedMessage {
  const attribute = (name: string) => readAttribute(message.attributes, name);
  const type = attribute('Type');
  if (!type) {
    throw new MalformedEventError(
      `completion message ${message.messageId} has no Type attribute (expected ${JOB_STATE_CHANGED} or ${FLOW_COMPLETED})`,
    );
  }
  if (type === JOB_STATE_CHANGED) {
    const jobName = attribute('JobName');
    const jobUid = attribute('JobUID');
    const newState = attribute('NewJobState');
    const missing = [
      ['JobName', jobName],
      ['JobUID', jobUid],
      ['NewJobState', newState],
    ]
      .filter(([, value]) => !value)
      .map(([name]) => name);
    if (!jobName || !jobUid || !newState) {
      throw new MalformedEventError(
        `job notification ${message.messageId} lacks attribute(s) ${missing.join(', ')}`,
      );
    }
    // Checked before GetJob: a name Batch never writes (100 KB, slashes in the id…) would make
    // the call fail in ways that look transient (a reset stream) and be retried for a day.
    const region = attribute('Region');
    const bad = [
      ['JobName', jobName, JOB_NAME_PATTERN],
      ['JobUID', jobUid, JOB_UID_PATTERN],
      ['NewJobState', newState, JOB_STATE_PATTERN],
      ['Region', region, REGION_PATTERN],
    ] as const;
    for (const [name, value, pattern] of bad) {
      if (value !== undefined && !pattern.test(value)) {
        throw new MalformedEventError(
          `job notification ${message.messageId} has an invalid ${name} (${value.length} characters: ${JSON.stringify(value.slice(0, 80))}${value.length > 80 ? '…' : ''}); expected ${pattern}`,
        );
      }
    }
    return {
      kind: 'job-state',
      jobName,
      jobUid,
      newState,
      region: attribute('Region') ?? null,
      disposition: jobDisposition(newState),
    };
  }
  if (type === FLOW_COMPLETED) {
    return { kind: 'flow', completion: parseFlowCompletion(message.data) };
  }
  return { kind: 'other', type };
}

/** Parses and validates a flow completion body. Throws MalformedEventError naming every bad field. */
export function parseFlowCompletion(body: Buffer | string): FlowCompletion {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new MalformedEventError(`flow completion is not JSON: ${text.slice(0, 200)}`);
  }
  const result = FlowCompletionSchema.safeParse(raw);
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new MalformedEventError(`invalid flow completion: ${issues.join('; ')}`);
  }
  return result.data;
}

/** Batch spells the attributes in PascalCase; accept any case so a hand-written test message works too. */
function readAttribute(attributes: Record<string, string>, name: string): string | undefined {
  if (attributes[name]) return attributes[name];
  const lower = name.toLowerCase();
  for (const [key, value] of Object.entries(attributes)) {
    if (key.toLowerCase() === lower && value) return value;
  }
  return undefined;
}

/**
 * The job's full resource name. Batch sends `JobName` as the full name; a bare id (as some
 * tools send it) is completed with the notification's region, else the configured one.
 */
export function fullJobName(
  jobName: string,
  region: string | null,
  config: Pick<Config, 'project' | 'region'>,
): string {
  if (jobName.startsWith('projects/')) return jobName;
  return `projects/${config.project}/locations/${region ?? config.region}/jobs/${jobName}`;
}

// ---------------------------------------------------------------------------------------------
// Reading a finished job

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

function sumCounts(job: FinishedJobResource, state: string): number | null {
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
export function jobTimings(job: FinishedJobResource, finalStates: string[]): InferenceResultData['timings'] {
  const transitions = jobTransitions(job);
  const started = transitions.find((t) => t.to === 'RUNNING')?.time ?? null;
  const finished =
    [...transitions].reverse().find((t) => finalStates.includes(t.to))?.time ??
    timestampToIso(job.updateTime);
  return {
    created: timestampToIso(job.createTime),
    started,
    finished,
    runDurationSeconds: durationSeconds(job.status?.runDuration),
  };
}

// ---------------------------------------------------------------------------------------------
// Handling

/** A notification for a job Batchwire did not create, or whose client is not configured: acked. */
export class ForeignJobError extends PermanentError {}

export interface CompletionDeps extends PublishOnceDeps {
  config: Pick<Config, 'project' | 'region' | 'bucket' | 'products'>;
  /** Batch (only GetJob is used). Throws NotFoundError / TransientError. */
  jobs: Pick<BatchJobs, 'getJob'>;
  store: ObjectStore;
}

/** What handling one message did (logged, and asserted by tests). */
export type CompletionOutcome =
  | { kind: 'ignored'; reason: string }
  | { kind: 'published'; results: Array<{ topic: string; eventId: string; outcome: PublishOutcome }> };

/**
 * The core of onComplete: classify the message, and for a finished job or flow publish its
 * result (once) to the client's output topic. Throws a PermanentError for what no retry cures
 * (the wrapper acks it with an ERROR log) and lets transient faults (Batch, Pub/Sub or Storage
 * unreachable, output topic missing) propagate so the trigger retries.
 */
export async function handleCompletion(
  message: CompletionMessage,
  deps: CompletionDeps,
): Promise<CompletionOutcome> {
  const classified = classifyMessage(message);
  switch (classified.kind) {
    case 'other':
      deps.log.debug({ type: classified.type }, 'completion message ignored: not a job state or flow');
      return { kind: 'ignored', reason: `type ${classified.type}` };
    case 'flow':
      return handleFlowCompletion(classified.completion, message.messageId, deps);
    case 'job-state':
      return handleJobState(classified, message, deps);
  }
}

async function handleJobState(
  notification: JobStateNotification,
  message: CompletionMessage,
  deps: CompletionDeps,
): Promise<CompletionOutcome> {
  const log = deps.log.child({ job: notification.jobName, jobUid: notification.jobUid });
  if (notification.disposition === 'ignore') {
    // No GetJob: Batch sends several of these per job and none of them ends it.
    log.debug({ state: notification.newState }, 'job not finished yet; nothing to publish');
    return { kind: 'ignored', reason: `state ${notification.newState}` };
  }

  const name = fullJobName(notification.jobName, notification.region, deps.config);
  let job: FinishedJobResource;
  try {
    job = (await deps.jobs.getJob(name)) as FinishedJobResource;
  } catch (err) {
    if (err instanceof NotFoundError) {
      // Without the job there are no labels to route by, nor an input to report.
      throw new ForeignJobError(
        `job ${name} (${notification.newState}) no longer exists; its result cannot be routed to a client`,
        { cause: err },
      );
    }
    throw err;
  }
  if (job.uid && job.uid !== notification.jobUid) {
    // A job re-created under the same id: this notification is about the old one, now gone.
    throw new ForeignJobError(
      `job ${name} now has uid ${job.uid}, not ${notification.jobUid}; the notified job no longer exists`,
    );
  }

  const { product, client } = routeJob(job, deps.config);
  const jobLog = log.child({ product, client });

  let ending: JobEnding;
  if (notification.disposition === 'deleted') {
    const finished = jobTransitions(job).some((t) => isFinalJobState(t.to));
    if (finished) {
      jobLog.debug('job deleted after it finished; its result came with the final state');
      return { kind: 'ignored', reason: 'deleted after finishing' };
    }
    ending = 'DELETED';
  } else {
    ending = notification.newState as JobEnding;
  }

  const contract = readTaskContract(job as unknown as Parameters<typeof readTaskContract>[0]);
  if (!contract) {
    throw new ForeignJobError(`job ${name} has no Batchwire task contract (BATCHWIRE_INPUT_URI…)`);
  }
  const jobName = job.name || name;
  const outputs = await recordOutputs(
    contract.outputUri,
    { name: jobName, uid: notification.jobUid },
    { ...deps, log: jobLog },
  );
  const succeeded = ending === 'SUCCEEDED';
  const data: InferenceResultData = {
    version: 2,
    status: succeeded ? 'succeeded' : 'failed',
    product,
    client,
    input: { uri: contract.inputUri, generation: contract.inputGeneration ?? null },
    outputs,
    job: { name: jobName, uid: notification.jobUid, taskCount: jobTaskCount(job), state: ending },
    timings: jobTimings(job, ending === 'DELETED' ? ['DELETION_IN_PROGRESS'] : [ending]),
    reason: succeeded ? null : failureReason(job, ending as Exclude<JobEnding, 'SUCCEEDED'>),
  };
  // The event's time must not depend on when this runs (a republish must be identical).
  const time =
    data.timings.finished ?? message.publishTime ?? data.timings.created ?? new Date(0).toISOString();
  const event = inferenceResultEvent(deps.config.project, data, { time });
  const topic = outputTopic(product, client);
  const outcome = await publishOnce(event, topic, message.messageId, { ...deps, log: jobLog });
  return { kind: 'published', results: [{ topic, eventId: event.id, outcome }] };
}

/**
 * Product and client of a job, from its labels, checked against the config: a job without them,
 * or for a client that is not configured, is not Batchwire's to report.
 */
export function routeJob(
  job: Pick<FinishedJobResource, 'name' | 'labels'>,
  config: Pick<Config, 'products'>,
): { product: string; client: string } {
  const product = job.labels?.product;
  const client = job.labels?.client;
  if (!product || !client) {
    throw new ForeignJobError(`job ${job.name} has no product/client labels: not a Batchwire job`);
  }
  if (!config.products[product]?.clients.includes(client)) {
    throw new ForeignJobError(
      `job ${job.name} is for ${product}/${client}, which is not a configured client`,
    );
  }
  return { product, client };
}

/**
 * What a job wrote, for its result: the objects under its output prefix (when that is in the
 * platform's bucket) are listed once into a manifest object next to them
 * ({@link OUTPUTS_MANIFEST_FILE}, created only if absent), and the event carries its URI and
 * counts. A result thus stays a few kilobytes however many objects the job wrote.
 *
 * Safe to run twice: a redelivery finds the manifest and reports what it says, so a republished
 * result is identical to the first. A manifest left by another job of the same id (deleted and
 * created again) is not trusted: the counts then come from a fresh listing, without a manifest.
 */
export async function recordOutputs(
  outputUri: string,
  job: OutputsManifest['job'],
  deps: Pick<CompletionDeps, 'config' | 'store' | 'log'>,
): Promise<ResultOutputs> {
  const parsed = parseObjectUri(outputUri);
  if (!parsed || parsed.bucket !== deps.config.bucket) {
    return { prefix: outputUri, manifest: null, objectCount: 0, totalBytes: 0 };
  }
  const folder = parsed.name.endsWith('/') || parsed.name === '' ? parsed.name : `${parsed.name}/`;
  const manifestName = `${folder}${OUTPUTS_MANIFEST_FILE}`;
  const manifestUri = objectUri(parsed.bucket, manifestName);

  const stored = parseManifest(await deps.store.readText(manifestName));
  if (stored?.job.uid === job.uid) return outputsOf(outputUri, manifestUri, stored);

  const objects = (await deps.store.list(parsed.name))
    .filter((o) => o.name !== manifestName)
    .map((o) => ({ name: o.name, uri: objectUri(parsed.bucket, o.name), size: o.size }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const manifest: OutputsManifest = {
    kind: 'batchwire.outputs-manifest',
    version: 1,
    job,
    prefix: outputUri,
    objectCount: objects.length,
    totalBytes: objects.reduce((sum, o) => sum + o.size, 0),
    objects,
  };
  if (stored) {
    deps.log.warn(
      { manifest: manifestUri, manifestJobUid: stored.job.uid },
      'outputs manifest belongs to another job of the same id; reporting a fresh listing without it',
    );
    return { ...outputsOf(outputUri, null, manifest) };
  }
  const created = await deps.store.createIfAbsent(manifestName, JSON.stringify(manifest), 'application/json');
  if (!created) {
    // Another delivery wrote it between our read and our create: its listing is the one reported.
    const winner = parseManifest(await deps.store.readText(manifestName));
    if (winner?.job.uid === job.uid) return outputsOf(outputUri, manifestUri, winner);
  }
  return outputsOf(outputUri, manifestUri, manifest);
}

function outputsOf(prefix: string, manifest: string | null, listed: OutputsManifest): ResultOutputs {
  return { prefix, manifest, objectCount: listed.objectCount, totalBytes: listed.totalBytes };
}

function parseManifest(text: string | undefined): OutputsManifest | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as Partial<OutputsManifest>;
    return value.kind === 'batchwire.outputs-manifest' &&
      typeof value.job?.uid === 'string' &&
      typeof value.objectCount === 'number' &&
      typeof value.totalBytes === 'number'
      ? (value as OutputsManifest)
      : undefined;
  } catch {
    return undefined;
  }
}

async function handleFlowCompletion(
  completion: FlowCompletion,
  deliveryId: string,
  deps: CompletionDeps,
): Promise<CompletionOutcome> {
  const product = deps.config.products[completion.product];
  const log = deps.log.child({
    flow: completion.flow,
    product: completion.product,
    execution: completion.execution,
  });
  if (!product) throw new ForeignJobError(`flow completion for unknown product ${completion.product}`);
  if (!product.flows[completion.flow]) {
    throw new ForeignJobError(`flow ${completion.flow} is not configured for product ${completion.product}`);
  }
  if (completion.client !== null && !product.clients.includes(completion.client)) {
    throw new ForeignJobError(
      `flow completion for ${completion.product}/${completion.client}: not a configured client`,
    );
  }
  // A product-scoped flow concerns every client of the product: each gets its own event (own id).
  const clients = completion.client !== null ? [completion.client] : [...product.clients];
  const succeeded = completion.state === 'SUCCEEDED';
  const results: Array<{ topic: string; eventId: string; outcome: PublishOutcome }> = [];
  // Sequential and stopping at the first failure: a retry skips the clients already served.
  for (const client of clients) {
    const data: FlowResultData = {
      version: 1,
      status: succeeded ? 'succeeded' : 'failed',
      product: completion.product,
      client,
      scope: completion.client === null ? 'product' : 'client',
      flow: completion.flow,
      execution: completion.execution,
      timings: {
        started: new Date(completion.startedAt).toISOString(),
        finished: new Date(completion.finishedAt).toISOString(),
      },
      outputs: completion.outputs,
      reason: succeeded
        ? null
        : completion.error?.trim() ||
          `flow ${completion.flow} failed without an error message; see the logs of execution ${completion.execution}`,
    };
    const event = flowResultEvent(deps.config.project, data);
    const topic = outputTopic(completion.product, client);
    const outcome = await publishOnce(event, topic, deliveryId, { ...deps, log: log.child({ client }) });
    results.push({ topic, eventId: event.id, outcome });
  }
  return { kind: 'published', results };
}
