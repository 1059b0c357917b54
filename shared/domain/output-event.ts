import { CloudEvent, HTTP } from 'cloudevents';
import type { ObjectStore, Publisher } from '../clients/ports.js';
import type { Config } from '../config/schema.js';
import { outputTopic } from '../plan/names.js';
import { TransientError } from '../runtime/errors.js';
import type { Logger } from '../runtime/logger.js';
import { BATCHWIRE_UUID_NAMESPACE, uuidV5 } from './job-id.js';
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

/** `dataschema` of each data type: the `$id` of its JSON Schema. */
export const DATA_SCHEMAS = {
  inferenceResult: `${SCHEMA_BASE_URL}inference-result.schema.json`,
  inferenceRejection: `${SCHEMA_BASE_URL}inference-rejection.schema.json`,
  flowResult: `${SCHEMA_BASE_URL}flow-result.schema.json`,
} as const;

/** An object written by a job, with its size in bytes. */
export interface OutputObject {
  /** Object name in the bucket, e.g. `mlops-template/acme/outputs/<job-id>/part-0.jsonl`. */
  name: string;
  /** `gs://bucket/name`. */
  uri: string;
  size: number;
}

/** Data of `dev.batchwire.inference.succeeded` and `dev.batchwire.inference.failed`. */
export interface InferenceResultData {
  version: 1;
  status: 'succeeded' | 'failed';
  product: string;
  client: string;
  input: { uri: string; generation: string | null };
  outputs: { prefix: string; objects: OutputObject[] };
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
    subject: envelope.subject,
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
    data,
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
    data,
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
    reason: rejection.message,
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

/** Where the platform records that a result is being, or has been, published. */
export function claimObjectName(eventId: string): string {
  return `_batchwire/claims/results/${eventId}.json`;
}

export function publishedObjectName(eventId: string): string {
  return `_batchwire/claims/results/${eventId}.published.json`;
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

interface ClaimRecord {
  eventId: string;
  type: string;
  topic: string;
  state: 'publishing';
  claimedAt: string;
  /** The Pub/Sub message (delivery) that holds the claim: its own redelivery may take over at once. */
  deliveryId: string;
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

  if ((await deps.store.readText(publishedObjectName(event.id))) !== undefined) {
    log.info('result already published; nothing to do');
    return 'already-published';
  }

  const claim: ClaimRecord = {
    eventId: event.id,
    type: event.type,
    topic,
    state: 'publishing',
    claimedAt: now().toISOString(),
    deliveryId,
  };
  const created = await deps.store.createIfAbsent(
    claimObjectName(event.id),
    JSON.stringify(claim),
    'application/json',
  );
  if (!created) {
    const existing = parseClaim(await deps.store.readText(claimObjectName(event.id)));
    const ageMs = existing ? now().getTime() - Date.parse(existing.claimedAt) : Number.POSITIVE_INFINITY;
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
  await deps.store.createIfAbsent(
    publishedObjectName(event.id),
    JSON.stringify({
      eventId: event.id,
      topic,
      state: 'published',
      messageId,
      publishedAt: now().toISOString(),
    }),
    'application/json',
  );
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

function parseClaim(text: string | undefined): ClaimRecord | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as Partial<ClaimRecord>;
    return typeof value.claimedAt === 'string' && typeof value.deliveryId === 'string'
      ? (value as ClaimRecord)
      : undefined;
  } catch {
    return undefined;
  }
}
