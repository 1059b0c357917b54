import { createHash } from 'node:crypto';
import { CloudEvent } from 'cloudevents';
import { BATCHWIRE_UUID_NAMESPACE, uuidV5 } from '../job-id.js';
import type { Rejection } from '../rejection.js';
import {
  DATA_SCHEMAS,
  EVENT_TYPES,
  type FlowResultData,
  type InferenceRejectionData,
  type InferenceResultData,
  MAX_REASON_CHARS,
  MAX_SUBJECT_BYTES,
  type OutputEventType,
} from './event-data.js';

/**
 * Building the result events: their deterministic ids (a republished result is the same
 * event), who they concern (`ce-source`), what they are about (`ce-subject`), bounded texts, and
 * one builder per event type. Pure: data in, a validated CloudEvent out.
 */

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
