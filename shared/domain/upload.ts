import { z } from 'zod';
import type { ObjectStore, Publisher } from '../clients/ports.js';
import type { Config } from '../config/schema.js';
import { AlreadyExistsError, MalformedEventError } from '../runtime/errors.js';
import type { Logger } from '../runtime/logger.js';
import type { BatchJob, BatchJobs } from './batch-job.js';
import { buildInferenceJob } from './inference-job.js';
import { jobIdFor, objectVersionHash, requestIdFor } from './job-id.js';
import { objectUri, parseObjectName } from './object-path.js';
import {
  type Rejection,
  type RejectionReason,
  rejectionRecordName,
  serializeRejection,
} from './rejection.js';
import { publishRejection } from './results/publish-once.js';

/**
 * The decision core of onUpload: from one finalized object to exactly one of
 * ignored / rejected / a Batch job (submitted now, or already there).
 *
 * ```
 * object ─▶ decideUpload (pure) ─▶ ignore ─────────────────────────▶ {kind:'ignored'}   DEBUG log
 *                                ─▶ reject ─▶ record (createIfAbsent) ▶ {kind:'rejected'}  ERROR log
 *                                ─▶ submit ─▶ createJob ─┬──────────▶ {kind:'submitted'} INFO log
 *                                                        └ ALREADY_EXISTS {kind:'exists'} (a duplicate event)
 * ```
 *
 * Transient errors from Batch or Storage propagate (the event wrapper fails the event, so
 * Eventarc redelivers); every step is safe to repeat.
 */

/** The fields of a GCS object that onUpload uses. */
export interface UploadObject {
  bucket: string;
  name: string;
  /** Decimal string (GCS int64). */
  generation: string;
  size: number;
  contentType?: string;
}

/** GCS's default (and hard) limit on an object name, in UTF-8 bytes. */
export const GCS_MAX_NAME_BYTES = 1024;

export interface UploadLimits {
  /** Longest accepted object name, in UTF-8 bytes. Defaults to GCS's own limit, 1024. */
  maxNameBytes: number;
}

/** Why an object is ignored (not ours to act on). */
export type IgnoreReason =
  | 'other-bucket'
  | 'bookkeeping'
  | 'folder-placeholder'
  | 'not-inputs'
  | 'unknown-product';

export type UploadDecision =
  | { kind: 'ignore'; reason: IgnoreReason }
  | { kind: 'reject'; product: string; client: string; reason: RejectionReason; message: string }
  | { kind: 'submit'; product: string; client: string; jobId: string; requestId: string; job: BatchJob };

export type UploadOutcome =
  | { kind: 'ignored'; reason: IgnoreReason }
  | {
      kind: 'rejected';
      rejection: Rejection;
      recordName: string;
      /** False when the record existed already (a repeated event). */
      recorded: boolean;
    }
  | { kind: 'submitted'; jobId: string; requestId: string; jobName: string; jobUid: string }
  | { kind: 'exists'; jobId: string; requestId: string };

export interface UploadDeps {
  config: Config;
  batch: BatchJobs;
  /** The platform bucket (`config.bucket`), for rejection records. */
  store: ObjectStore;
  /**
   * Sends every recorded rejection, repeats included (so that a publish that failed is retried
   * with the event), to the client's topic; {@link publishRejection} dedupes by its key.
   */
  publisher: Publisher;
  /** Bound to the event; the core adds product, client and job id as it learns them. */
  log: Logger;
  limits?: Partial<UploadLimits>;
  now?: () => Date;
}

/** A GCS int64: a decimal string as GCS sends it, or a (safe) JSON number; normalised to the string. */
const int64 = z
  .union([
    z.string().regex(/^\d{1,19}$/, 'a decimal int64 string'),
    z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  ])
  .transform(String);

/**
 * The GCS object resource as Eventarc delivers it in `google.cloud.storage.object.v1.finalized`
 * (int64 fields as strings, although `@google/events` types them as numbers; both accepted).
 * Unknown fields pass through unchecked.
 */
export const StorageObjectDataSchema = z.looseObject({
  bucket: z.string().min(1),
  name: z.string().min(1),
  generation: int64,
  size: int64.refine((value) => Number.isSafeInteger(Number(value)), 'a size in bytes'),
  metageneration: int64.optional(),
  contentType: z.string().optional(),
});

/**
 * Validates a finalize event's data into an {@link UploadObject}. Data that arrives as JSON
 * text or bytes (a sender that mislabelled the content type) is parsed first. Throws
 * {@link MalformedEventError} naming the bad fields.
 */
export function parseUploadEventData(data: unknown): UploadObject {
  const value = decodeData(data);
  const result = StorageObjectDataSchema.safeParse(value);
  if (!result.success) {
    const problems = result.error.issues
      .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : 'data'}: ${issue.message}`)
      .join('; ');
    throw new MalformedEventError(`not a storage object event: ${problems}`);
  }
  const { bucket, name, generation, size, contentType } = result.data;
  return { bucket, name, generation, size: Number(size), ...(contentType ? { contentType } : {}) };
}

function decodeData(data: unknown): unknown {
  if (data === undefined || data === null) throw new MalformedEventError('the event has no data');
  const text =
    typeof data === 'string'
      ? data
      : data instanceof Uint8Array
        ? Buffer.from(data).toString('utf8')
        : undefined;
  if (text === undefined) return data;
  try {
    return JSON.parse(text);
  } catch {
    throw new MalformedEventError('the event data is not JSON');
  }
}

// C0 and C1 control characters, and DEL.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point.
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Decides what to do with one finalized object, without I/O: ignore it, reject it (and why),
 * or submit which job. Checks in this order, so the reason given is the most fundamental one:
 * bucket → bookkeeping → folder placeholder → `{product}/{client}/inputs/` shape → known
 * product (unknown → ignore: a prefix not configured is not ours) → known client (unknown →
 * reject) → name → extension → empty → size.
 */
export function decideUpload(
  object: UploadObject,
  config: Config,
  limits: Partial<UploadLimits> = {},
): UploadDecision {
  if (object.bucket !== config.bucket) return { kind: 'ignore', reason: 'other-bucket' };
  const parsed = parseObjectName(object.name);
  if (parsed.kind === 'not-input' && parsed.reason === 'bookkeeping') {
    return { kind: 'ignore', reason: 'bookkeeping' };
  }
  // The console's "create folder" writes a zero-byte object whose name ends in '/'.
  if (object.name.endsWith('/') && object.size === 0) return { kind: 'ignore', reason: 'folder-placeholder' };
  if (parsed.kind === 'not-input') return { kind: 'ignore', reason: parsed.reason };

  const { product, client, path } = parsed;
  const productConfig = Object.hasOwn(config.products, product) ? config.products[product] : undefined;
  if (!productConfig) return { kind: 'ignore', reason: 'unknown-product' };
  const reject = (reason: RejectionReason, message: string): UploadDecision => ({
    kind: 'reject',
    product,
    client,
    reason,
    message,
  });

  if (!productConfig.clients.includes(client)) {
    return reject('unknown-client', `client "${client}" is not onboarded for product ${product}`);
  }

  const nameProblem = checkName(object.name, path, limits.maxNameBytes ?? GCS_MAX_NAME_BYTES);
  if (nameProblem) return reject('bad-name', nameProblem);

  const { acceptedExtensions, maxFileBytes } = productConfig.inference;
  const extension = extensionOf(path);
  if (!acceptedExtensions.includes(extension)) {
    return reject(
      'bad-extension',
      `${extension ? `extension ${extension}` : 'a file without an extension'} is not accepted; ` +
        `product ${product} accepts ${acceptedExtensions.join(', ')}`,
    );
  }
  if (object.size === 0) return reject('empty', 'the file is empty');
  if (object.size > maxFileBytes) {
    return reject('too-large', `the file is ${object.size} bytes; the limit is ${maxFileBytes} bytes`);
  }

  const jobId = jobIdFor(object, product, client);
  const job = buildInferenceJob(config, {
    product,
    client,
    bucket: object.bucket,
    name: object.name,
    generation: object.generation,
    size: object.size,
    jobId,
  });
  return { kind: 'submit', product, client, jobId, requestId: requestIdFor(object), job };
}

/** What is wrong with an input's name, or undefined when it is acceptable. */
function checkName(name: string, path: string, maxNameBytes: number): string | undefined {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > maxNameBytes) return `the name is ${bytes} bytes long; the limit is ${maxNameBytes}`;
  if (CONTROL_CHARACTERS.test(name)) return 'the name contains control characters';
  // Any '..' is refused, not only a '..' segment: names travel into job environments and
  // local paths, and no legitimate upload needs it.
  if (name.includes('..')) return 'the name contains ".."';
  if (name.includes('//')) return 'the name contains "//"';
  if (path === '' || path.endsWith('/')) return 'the name does not end in a file name';
  return undefined;
}

/** The lowercased extension of the last segment (`.jsonl`), or '' (dot files have none). */
function extensionOf(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot).toLowerCase() : '';
}

/** One finalized object, as delivered. */
export interface UploadInput {
  object: UploadObject;
  /** The triggering delivery (the CloudEvent id), to tell a redelivery from a concurrent duplicate. */
  deliveryId?: string;
}

/**
 * Handles one finalized object end to end: decides, then records the rejection or submits the
 * job. Returns what happened; throws only what a retry may cure (or a permanent Batch error,
 * which the event wrapper logs and acks).
 *
 * @example
 * const outcome = await handleUpload({ object, deliveryId: event.id }, deps);
 * if (outcome.kind === 'submitted') log.info({ jobId: outcome.jobId }, 'started');
 */
export async function handleUpload(
  { object, deliveryId }: UploadInput,
  deps: UploadDeps,
): Promise<UploadOutcome> {
  const { log } = deps;
  const decision = decideUpload(object, deps.config, deps.limits);
  switch (decision.kind) {
    case 'ignore': {
      // Another bucket means a trigger that is wired wrong, worth a WARNING; the rest is routine.
      const level = decision.reason === 'other-bucket' ? 'warn' : 'debug';
      log[level](
        { object: object.name, bucket: object.bucket, reason: decision.reason },
        `object ignored (${decision.reason})`,
      );
      return { kind: 'ignored', reason: decision.reason };
    }
    case 'reject':
      return reject(
        object,
        decision,
        deps,
        log.child({ product: decision.product, client: decision.client }),
        deliveryId,
      );
    case 'submit':
      return submit(decision, deps, log.child({ product: decision.product, client: decision.client }));
  }
}

async function reject(
  object: UploadObject,
  decision: Extract<UploadDecision, { kind: 'reject' }>,
  deps: UploadDeps,
  log: Logger,
  deliveryId: string | undefined,
): Promise<UploadOutcome> {
  const fresh: Rejection = {
    version: 1,
    key: objectVersionHash(object).slice(0, 32),
    product: decision.product,
    client: decision.client,
    bucket: object.bucket,
    name: object.name,
    objectUri: objectUri(object.bucket, object.name),
    generation: object.generation,
    size: object.size,
    reason: decision.reason,
    message: decision.message,
    rejectedAt: (deps.now?.() ?? new Date()).toISOString(),
  };
  const recordName = rejectionRecordName(fresh);
  // First record wins: a repeated event neither overwrites it nor logs a second ERROR, and
  // what goes out to the client is the stored record, so every copy of it says the same.
  const recorded = await deps.store.createIfAbsent(recordName, serializeRejection(fresh), 'application/json');
  const rejection = recorded
    ? fresh
    : (parseRejection(await deps.store.readText(recordName), fresh.key) ?? fresh);
  const fields = {
    reason: rejection.reason,
    object: rejection.objectUri,
    generation: rejection.generation,
    recordName,
  };
  if (recorded) log.error(fields, `upload rejected: ${rejection.message}`);
  else log.info(fields, 'upload rejected (already recorded: a repeated event)');
  await publishRejection(rejection, {
    config: deps.config,
    store: deps.store,
    publisher: deps.publisher,
    log,
    ...(deliveryId ? { deliveryId } : {}),
    ...(deps.now ? { now: deps.now } : {}),
  });
  return { kind: 'rejected', rejection, recordName, recorded };
}

/** A stored rejection record, if it is one for this key (else undefined: the fresh one stands). */
function parseRejection(text: string | undefined, key: string): Rejection | undefined {
  if (text === undefined) return undefined;
  try {
    const stored = JSON.parse(text) as Rejection;
    return stored.version === 1 && stored.key === key ? stored : undefined;
  } catch {
    return undefined;
  }
}

async function submit(
  decision: Extract<UploadDecision, { kind: 'submit' }>,
  deps: UploadDeps,
  log: Logger,
): Promise<UploadOutcome> {
  const { jobId, requestId, job } = decision;
  const jobLog = log.child({ jobId });
  try {
    const created = await deps.batch.createJob({ jobId, job, requestId });
    jobLog.info({ jobName: created.name, taskCount: job.taskGroups[0]?.taskCount }, 'batch job created');
    return { kind: 'submitted', jobId, requestId, jobName: created.name, jobUid: created.uid };
  } catch (err) {
    // The id is derived from the object version, so "exists" means this upload was submitted
    // by an earlier delivery of the same event (or the same object under another event id).
    if (err instanceof AlreadyExistsError) {
      jobLog.info('batch job exists already (a repeated event): nothing to do');
      return { kind: 'exists', jobId, requestId };
    }
    throw err;
  }
}
