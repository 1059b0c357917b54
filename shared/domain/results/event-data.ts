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

/**
 * What a job wrote, as the event carries it: where, how much, and the manifest object that
 * lists every object (the list itself would make a message grow with the job's output).
 */
export interface ResultOutputs {
  /** `gs://bucket/{product}/{client}/outputs/{job-id}/`. */
  prefix: string;
  /** `gs://…/{job-id}/_batchwire-outputs.json` (an outputs manifest); null when nothing could be listed. */
  manifest: string | null;
  /** Objects under the prefix when the job finished (the manifest itself not counted). */
  objectCount: number;
  /** Their total size in bytes. */
  totalBytes: number;
}

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
