import { createHash } from 'node:crypto';
import { CloudEvent, HTTP } from 'cloudevents';
import type { ObjectStore, Publisher } from '../clients/ports.js';
import type { Config } from '../config/schema.js';
import { outputTopic } from '../plan/names.js';
import { PermanentError, TransientError } from '../runtime/errors.js';
import type { Logger } from '../runtime/logger.js';
import {
  claimAgeMs,
  isDone,
  type ResultClaimRecord,
  type ResultPublishedRecord,
  readClaim,
  recordDone,
  takeClaim,
} from './claims.js';
import { BATCHWIRE_UUID_NAMESPACE, uuidV5 } from './job-id.js';
import { type ClaimScope, claimDoneObjectName, claimObjectName } from './object-path.js';
import type { Rejection } from './rejection.js';

/**
 * The output contract: what a downstream system receives on `batch-{product}-{client}-outputs`.
 * Every result is a CloudEvent 1.0 in the Pub/Sub binary content mode (Google's "Pub/Sub
 * protocol binding for CloudEvents"): `ce-*` attributes, `content-type: application/json`, the
 * JSON data as the message body. The data shapes below are mirrored one-to-one by the JSON
 * Schemas in `shared/contracts/schemas/` (tests check every emitted event against them); a
 * change here is a change of the contract: bump `version` and the schema's URL for a breaking one.
 */

export const EVENT_TYPES = {
  inferenceSucceeded: 'dev.batchwire.inference.succeeded',
  inferenceFailed: 'dev.batchwire.inference.failed',
  inferenceRejected: 'dev.batchwire.inference.rejected',
  flowSucceeded: 'dev.batchwire.flow.succeeded',
  flowFailed: 'dev.batchwire.flow.failed',
} as const;

export type OutputEventType = (typeof EVENT_TYPES)[keyof typeof EVENT_TYPES];

/** Base URL of the schemas; the files are `shared/contracts/schemas/<name>` in this repository. */
export const SCHEMA_BASE_URL = 'https://batchwire.dev/schemas/v1/';

/**
 * `dataschema` of each data type: the `$id` of its JSON Schema. The inference result is at
 * version 2 (its outputs are a manifest's URI and counts, no longer the list itself).
 */
export const DATA_SCHEMAS = {
  inferenceResult: 'https://batchwire.dev/schemas/v2/inference-result.schema.json',
  inferenceRejection: `${SCHEMA_BASE_URL}inference-rejection.schema.json`,
  flowResult: `${SCHEMA_BASE_URL}flow-result.schema.json`,
} as const;

/**
 * Pub/Sub's limits (https://cloud.google.com/pubsub/quotas#resource_limits): a message is at
 * most 10 MB, an attribute value at most 1,024 bytes. A result stays far under both whatever
 * the job wrote: the list of its outputs goes to a manifest object, long texts are cut.
 */
export const PUBSUB_MAX_ATTRIBUTE_BYTES = 1024;

/** `ce-subject` is cut to this many UTF-8 bytes (an object name alone may take 1,024). */
export const MAX_SUBJECT_BYTES = 512;

/** A `reason` is cut to this many characters: enough for a human, bounded for the message. */
export const MAX_REASON_CHARS = 4096;

/** An object written by a job, with its size in bytes. */
export interface OutputObject {
  /** Object name in the bucket, e.g. `mlops-template/acme/outputs/<job-id>/part-0.jsonl`. */
  name: string;
  /** `gs://bucket/name`. */
  uri: string;
  size: number;
}

/**
 * What a job wrote, as the event carries it: where, how much, and the manifest object that
 * lists every object (the list itself would make a message grow with the job's output).
 */
export interface ResultOutputs {
  /** `gs://bucket/{product}/{client}/outputs/{job-id}/`. */
  prefix: string;
  /** `gs://…/{job-id}/_batchwire-outputs.json` ({@link OutputsManifest}); null when nothing could be listed. */
  manifest: string | null;
  /** Objects under the prefix when the job finished (the manifest itself not counted). */
  objectCount: number;
  /** Their total size in bytes. */
  totalBytes: number;
}

/** The manifest object onComplete writes once per job under its output prefix. */
export interface OutputsManifest {
  kind: 'batchwire.outputs-manifest';
  version: 1;
  /** The job it lists: `projects/P/locations/L/jobs/J` and its uid. */
  job: { name: string; uid: string };
  prefix: string;
  objectCount: number;
  totalBytes: number;
  /** Every object under the prefix when the job finished, sorted by name. */
  objects: OutputObject[];
}

/** The name of a job's outputs manifest: next to what it lists, where the client may read it. */
export const OUTPUTS_MANIFEST_FILE = '_batchwire-outputs.json';

/** Data of `dev.batchwire.inference.succeeded` and `dev.batchwire.inference.failed` (version 2). */
export interface InferenceResultData {
  version: 2;
  status: 'succeeded' | 'failed';
  product: string;
  client: string;
  input: { uri: string; generation: string | null };
  outputs: ResultOutputs;
  job: {
    /** `projects/P/locations/L/jobs/J`. */
    name: string;
    uid: string;
    taskCount: number;
    /** How the job ended: Batch's final state, or DELETED when it was deleted before finishing. */
    state: 'SUCCEEDED' | 'FAILED' | 'CANCELLED' | 'DELETED';
  };
  timings: {
    created: string | null;
    started: string | null;
    finished: string | null;
    runDurationSeconds: number | null;
  };
  /** Failed only: what went wrong, worded for a human who must act on it. */
  reason: string | null;
}

/** Data of `dev.batchwire.inference.rejected`: an upload that never became a job. */
export interface InferenceRejectionData {
  version: 1;
  product: string;
  client: string;
  input: { uri: string; generation: string; size: number };
  /** Stable machine-readable cause: `bad-name`, `bad-extension`, `too-large` or `empty`. */
  code: string;
  reason: string;
  rejectedAt: string;
}

/** Data of `dev.batchwire.flow.succeeded` and `dev.batchwire.flow.failed`. */
export interface FlowResultData {
  version: 1;
  status: 'succeeded' | 'failed';
  product: string;
  client: string;
  /** Whether the flow ran for this client alone or for the whole product (then every client gets it). */
  scope: 'client' | 'product';
  flow: string;
  /** Workflows execution name or Cloud Run operation name. */
  execution: string;
  timings: { started: string; finished: string };
  outputs: { prefix: string } | null;
  reason: string | null;
}

/** The fields every result event shares besides its data. */
interface EventEnvelope {
  project: string;
  product: string;
  client: string;
  subject: string;
  time: string;
}

/**
 * The CloudEvent id of an inference result: one per (job uid, final state). A deleted or
 * cancelled job counts as FAILED here, so however it ended there is at most one failed result.
 */
export function inferenceResultId(jobUid: string, finalState: 'SUCCEEDED' | 'FAILED'): string {
  return uuidV5(`inference-result/${jobUid}/${finalState}`, BATCHWIRE_UUID_NAMESPACE);
}

/** The CloudEvent id of a flow result: one per (execution, final state, client receiving it). */
export function flowResultId(execution: string, state: 'SUCCEEDED' | 'FAILED', client: string): string {
  return uuidV5(`flow-result/${execution}/${state}/${client}`, BATCHWIRE_UUID_NAMESPACE);
}

/** The CloudEvent id of a rejection: one per uploaded object version (the rejection record's key). */
export function rejectionId(rejectionKey: string): string {
  return uuidV5(`inference-rejection/${rejectionKey}`, BATCHWIRE_UUID_NAMESPACE);
}

/** `ce-source` of every event about a client: who it concerns, in Batchwire's own URI space. */
export function eventSource(project: string, product: string, client: string): string {
  return `//batchwire/projects/${project}/products/${product}/clients/${client}`;
}

/**
 * `text` cut to at most `maxBytes` UTF-8 bytes, on a character boundary. A cut text ends with
 * `…#` and 16 hex digits of its full text's SHA-256, so that two long texts that share a
 * beginning (two object names in one deep folder) still differ.
 *
 * @example
 * boundedUtf8(`objects/${'a'.repeat(2000)}`, 512) // 'objects/aaaa…#3f1c0a9e7b5d2c4e' (512 bytes)
 */
export function boundedUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  const suffix = `…#${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
  const budget = maxBytes - Buffer.byteLength(suffix, 'utf8');
  let kept = '';
  let bytes = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char, 'utf8');
    if (bytes + size > budget) break;
    kept += char;
    bytes += size;
  }
  return `${kept}${suffix}`;
}

/** A human-readable reason cut to {@link MAX_REASON_CHARS} characters (null stays null). */
export function boundedReason(reason: string | null): string | null {
  if (reason === null || reason.length <= MAX_REASON_CHARS) return reason;
  const marker = ' … (cut; see the logs for the rest)';
  return `${reason.slice(0, MAX_REASON_CHARS - marker.length)}${marker}`;
}

function buildEvent<T>(
  envelope: EventEnvelope,
  fields: { id: string; type: OutputEventType; dataschema: string },
  data: T,
): CloudEvent<T> {
  // Strict mode: the SDK validates the envelope (id, source as URI-reference, RFC 3339 time).
  return new CloudEvent<T>({
    specversion: '1.0',
    id: fields.id,
    type: fields.type,
    source: eventSource(envelope.project, envelope.product, envelope.client),
    // An attribute may hold 1,024 bytes, and `objects/` + an object name can take more.
    subject: boundedUtf8(envelope.subject, MAX_SUBJECT_BYTES),
    time: envelope.time,
    datacontenttype: 'application/json',
    dataschema: fields.dataschema,
    data,
  });
}

/** The last path segment of a resource name (`projects/P/locations/L/jobs/J` → `J`). */
function lastSegment(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

/**
 * Builds the result event of a finished inference job. `time` is when the job finished, not
 * when this runs, so a republished event is identical to the first.
 */
export function inferenceResultEvent(
  project: string,
  data: InferenceResultData,
  options: { time: string },
): CloudEvent<InferenceResultData> {
  const finalState = data.status === 'succeeded' ? 'SUCCEEDED' : 'FAILED';
  return buildEvent(
    {
      project,
      product: data.product,
      client: data.client,
      subject: `jobs/${lastSegment(data.job.name)}`,
      time: options.time,
    },
    {
      id: inferenceResultId(data.job.uid, finalState),
      type: data.status === 'succeeded' ? EVENT_TYPES.inferenceSucceeded : EVENT_TYPES.inferenceFailed,
      dataschema: DATA_SCHEMAS.inferenceResult,
    },
    { ...data, reason: boundedReason(data.reason) },
  );
}

/** Builds the result event of a finished flow for one client. */
export function flowResultEvent(project: string, data: FlowResultData): CloudEvent<FlowResultData> {
  return buildEvent(
    {
      project,
      product: data.product,
      client: data.client,
      subject: `flows/${data.flow}/executions/${lastSegment(data.execution)}`,
      time: data.timings.finished,
    },
    {
      id: flowResultId(data.execution, data.status === 'succeeded' ? 'SUCCEEDED' : 'FAILED', data.client),
      type: data.status === 'succeeded' ? EVENT_TYPES.flowSucceeded : EVENT_TYPES.flowFailed,
      dataschema: DATA_SCHEMAS.flowResult,
    },
    { ...data, reason: boundedReason(data.reason) },
  );
}

/**
 * Builds the `dev.batchwire.inference.rejected` event of an upload onUpload rejected, from its
 * rejection record: `code` is the record's stable `reason`, `reason` its human sentence.
 */
export function rejectionEvent(project: string, rejection: Rejection): CloudEvent<InferenceRejectionData> {
  const data: InferenceRejectionData = {
    version: 1,
    product: rejection.product,
    client: rejection.client,
    input: { uri: rejection.objectUri, generation: rejection.generation, size: rejection.size },
    code: rejection.reason,
    reason: boundedReason(rejection.message) ?? '',
    rejectedAt: rejection.rejectedAt,
  };
  return buildEvent(
    {
      project,
      product: rejection.product,
      client: rejection.client,
      subject: `objects/${rejection.name}`,
      time: rejection.rejectedAt,
    },
    {
      id: rejectionId(rejection.key),
      type: EVENT_TYPES.inferenceRejected,
      dataschema: DATA_SCHEMAS.inferenceRejection,
    },
    data,
  );
}

/** A message ready for `Publisher.publish`. */
export interface PubSubMessage {
  data: Buffer;
  attributes: Record<string, string>;
}

/**
 * Maps an event to a Pub/Sub message in the binary content mode. The SDK's HTTP binary
 * serializer already produces exactly the binding's attribute names (lower-case `ce-` + the
 * attribute, and `content-type` for `datacontenttype`, §3.1.1 of the Pub/Sub binding), so its
 * headers become the message attributes and its body the message data.
 */
export function toPubSubMessage(event: CloudEvent<unknown>): PubSubMessage {
  const { headers, body } = HTTP.binary(event);
  const attributes: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (value !== undefined && value !== null) attributes[key.toLowerCase()] = String(value);
  }
  // The SDK's default content type carries a charset; the contract says plain application/json.
  attributes['content-type'] = event.datacontenttype ?? 'application/json';
  for (const [key, value] of Object.entries(attributes)) {
    // The builders keep every attribute short; this stops a future one from being refused by Pub/Sub.
    if (Buffer.byteLength(value, 'utf8') > PUBSUB_MAX_ATTRIBUTE_BYTES) {
      throw new PermanentError(
        `result event ${event.id}: attribute ${key} has ${Buffer.byteLength(value, 'utf8')} bytes, over Pub/Sub's ${PUBSUB_MAX_ATTRIBUTE_BYTES}`,
      );
    }
  }
  return { data: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8'), attributes };
}

/**
 * Reads a binary-mode message back into a CloudEvent: what a consumer does (and the tests).
 * Throws when the message is not a CloudEvent.
 */
export function fromPubSubMessage<T = unknown>(message: {
  data: Buffer | string;
  attributes: Record<string, string>;
}): CloudEvent<T> {
  const body = typeof message.data === 'string' ? message.data : message.data.toString('utf8');
  return HTTP.toEvent<T>({ headers: message.attributes, body }) as CloudEvent<T>;
}

/** The claim scope of results, and what its done record says. */
const RESULTS: ClaimScope = 'results';
const PUBLISHED = 'published';

/** The claim a delivery takes before publishing result `eventId` (see {@link publishOnce}). */
export function resultClaimObjectName(eventId: string): string {
  return claimObjectName(RESULTS, eventId);
}

/** The record that result `eventId` was published: its presence makes every later delivery a no-op. */
export function publishedObjectName(eventId: string): string {
  return claimDoneObjectName(RESULTS, eventId, PUBLISHED);
}

export interface PublishOnceDeps {
  store: ObjectStore;
  publisher: Publisher;
  log: Logger;
  now?: () => Date;
  /**
   * How long a claim by another delivery is trusted to be in progress (default 60 s). Within it,
   * a second delivery retries later instead of publishing too; after it, the claim is presumed
   * abandoned and taken over.
   */
  claimLeaseMs?: number;
}

export type PublishOutcome = 'published' | 'already-published';

/**
 * Publishes `event` to `topic` once per event id, as far as the platform can make it so.
 *
 * Two objects under `_batchwire/claims/results/`: the claim `<id>.json` ("publishing", created
 * with `ifGenerationMatch: 0`) and the marker `<id>.published.json` written after the publish.
 * Claiming alone before publishing would lose the event when the publish fails after the claim;
 * publishing before claiming would let two concurrent deliveries both publish. So:
 *
 * ```
 *  delivery A (message m1)                delivery B (duplicate m2, or m1 redelivered)
 *  marker? no
 *  create claim {holder: m1}    ✓
 *  publish ce-id=X              ─────▶   marker? no
 *                                        create claim ✗ exists, holder m1, within lease
 *                                          → m2: TransientError, retry later
 *                                          → m1 redelivered: A failed or crashed, publish again
 *  create marker                ✓
 *                                        (retry) marker? yes → done, nothing published
 * ```
 *
 * A claim older than the lease is taken over by anyone (its holder died and its message may
 * never come back). The one window left is a crash between the publish and the marker: the
 * redelivery publishes again, with the same deterministic `ce-id`, so consumers dedupe it.
 *
 * @param deliveryId the Pub/Sub message id (or event id) of the triggering delivery
 */
export async function publishOnce(
  event: CloudEvent<unknown>,
  topic: string,
  deliveryId: string,
  deps: PublishOnceDeps,
): Promise<PublishOutcome> {
  const now = deps.now ?? (() => new Date());
  const leaseMs = deps.claimLeaseMs ?? 60_000;
  const log = deps.log.child({ resultEventId: event.id, resultType: event.type, topic });

  if (await isDone(deps.store, RESULTS, event.id, PUBLISHED)) {
    log.info('result already published; nothing to do');
    return 'already-published';
  }

  const claim: ResultClaimRecord = {
    eventId: event.id,
    type: event.type,
    topic,
    state: 'publishing',
    claimedAt: now().toISOString(),
    deliveryId,
  };
  if (!(await takeClaim(deps.store, RESULTS, event.id, claim))) {
    const existing = validClaim(await readClaim<Partial<ResultClaimRecord>>(deps.store, RESULTS, event.id));
    const ageMs = existing ? claimAgeMs(existing.claimedAt, now()) : Number.POSITIVE_INFINITY;
    const ownClaim = existing?.deliveryId === deliveryId;
    if (!ownClaim && ageMs < leaseMs) {
      throw new TransientError(
        `result ${event.id} is being published by delivery ${existing?.deliveryId}; retrying later`,
      );
    }
    log.warn(
      { holder: existing?.deliveryId, ageMs: Math.round(ageMs), ownClaim },
      'taking over an unfinished result claim; publishing again with the same event id',
    );
  }

  const { data, attributes } = toPubSubMessage(event);
  const messageId = await deps.publisher.publish(topic, data, attributes);
  const published: ResultPublishedRecord = {
    eventId: event.id,
    topic,
    state: 'published',
    messageId,
    publishedAt: now().toISOString(),
  };
  await recordDone(deps.store, RESULTS, event.id, PUBLISHED, published);
  log.info({ messageId }, 'result published');
  return 'published';
}

/**
 * Sends onUpload's rejection to the client's topic as `dev.batchwire.inference.rejected`, once
 * per uploaded object version. An upload for a client that is not configured has no topic to go
 * to (its rejection record under `_batchwire/rejections/` is all there is): `skipped`.
 * A missing topic or unreachable Pub/Sub throws a TransientError, so onUpload's trigger retries.
 *
 * @param deliveryId the triggering event's id (defaults to the rejection key)
 */
export async function publishRejection(
  rejection: Rejection,
  deps: PublishOnceDeps & { config: Pick<Config, 'project' | 'products'>; deliveryId?: string },
): Promise<PublishOutcome | 'skipped'> {
  if (!deps.config.products[rejection.product]?.clients.includes(rejection.client)) {
    deps.log.warn(
      { product: rejection.product, client: rejection.client, reason: rejection.reason },
      'rejection not published: no output topic for an unconfigured client',
    );
    return 'skipped';
  }
  const event = rejectionEvent(deps.config.project, rejection);
  return publishOnce(
    event,
    outputTopic(rejection.product, rejection.client),
    deps.deliveryId ?? rejection.key,
    deps,
  );
}

/** A claim record that names its holder and time, else undefined (an unreadable claim is taken over). */
function validClaim(value: Partial<ResultClaimRecord> | undefined): ResultClaimRecord | undefined {
  return typeof value?.claimedAt === 'string' && typeof value.deliveryId === 'string'
    ? (value as ResultClaimRecord)
    : undefined;
}
