import { createHash } from 'node:crypto';

/**
 * Deterministic identities for the work an upload starts. Everything derives from one key,
 * the object's versioned URI `gs://bucket/name#generation`: a redelivered event, or the same
 * object event under another CloudEvent id, yields the same job id and requestId (so Batch
 * answers ALREADY_EXISTS instead of making a second job), while a new generation of the same
 * name yields new ones.
 */

/** Batch job ids (and Cloud Run / Workflows ids): RFC 1035 labels of at most 63 characters. */
export const JOB_ID_PATTERN = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** The maximum length of a Batch job id. */
export const JOB_ID_MAX_LENGTH = 63;

/** Hex characters of the hash kept in a job id: 80 bits, so collisions stay out of reach. */
export const JOB_ID_HASH_LENGTH = 20;

/**
 * Namespace of Batchwire's UUIDv5 request ids. A fixed constant (generated once): changing it
 * would change every requestId and break dedupe across a deploy.
 */
export const BATCHWIRE_UUID_NAMESPACE = '6762bea3-5820-4fe3-a7ec-fa69a1d0e6a7';

/** One version of one object: what a job id is derived from. */
export interface ObjectVersion {
  bucket: string;
  name: string;
  /** The object's generation as a decimal string (GCS int64). */
  generation: string;
}

/**
 * The canonical key of an object version: its versioned URI, `gs://bucket/name#generation`.
 * Unambiguous because bucket names hold no `/` and the generation (after the last `#`) is digits.
 */
export function objectVersionKey(object: ObjectVersion): string {
  return `gs://${object.bucket}/${object.name}#${object.generation}`;
}

/** sha256 of the object version key, hex. */
export function objectVersionHash(object: ObjectVersion): string {
  return createHash('sha256').update(objectVersionKey(object), 'utf8').digest('hex');
}

/**
 * The Batch job id for an upload: `bw-{product}-{client}-{hash}`, the readable prefix cut so
 * that the whole id fits 63 characters; always matches {@link JOB_ID_PATTERN}, whatever the
 * product and client strings are (they are normalised to `[a-z0-9-]`).
 *
 * @example
 * jobIdFor({ bucket: 'b', name: 'mlops-template/acme/inputs/a.jsonl', generation: '1' }, 'mlops-template', 'acme')
 * // 'bw-mlops-template-acme-3f1c…' (20 hex characters of hash)
 */
export function jobIdFor(object: ObjectVersion, product: string, client: string): string {
  const hash = objectVersionHash(object).slice(0, JOB_ID_HASH_LENGTH);
  return readableId(['bw', product, client], hash);
}

/**
 * An id `{parts joined by -}-{suffix}` that always matches {@link JOB_ID_PATTERN}: the parts
 * are lowercased and reduced to `[a-z0-9-]`, and cut so the suffix always fits. The first part
 * must start with a letter (callers pass a fixed prefix such as `bw`).
 */
export function readableId(parts: string[], suffix: string): string {
  const prefix = parts
    .map((part) => part.toLowerCase().replace(/[^a-z0-9]+/g, '-'))
    .join('-')
    .replace(/-+/g, '-')
    .replace(/^-+/, '');
  const budget = JOB_ID_MAX_LENGTH - suffix.length - 1;
  const cut = prefix.slice(0, budget).replace(/-+$/, '');
  return `${cut}-${suffix}`;
}

/**
 * The requestId sent with CreateJob: the UUIDv5 of the same key, so a retried create of the
 * same upload is recognised by Batch as the same request.
 */
export function requestIdFor(object: ObjectVersion): string {
  return uuidV5(objectVersionKey(object), BATCHWIRE_UUID_NAMESPACE);
}

/**
 * RFC 4122 (RFC 9562) name-based UUID, version 5: SHA-1 of namespace bytes + name bytes, with
 * the version and variant bits set. node:crypto has no v5, and it is a dozen lines.
 *
 * @example
 * uuidV5('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8') // '2ed6657d-e927-568b-95e1-2665a8aea6a2'
 */
export function uuidV5(name: string, namespace: string): string {
  const ns = namespace.replace(/-/g, '');
  // A TypeError on purpose: namespaces are constants of the code, so a bad one is a bug.
  if (!/^[0-9a-f]{32}$/i.test(ns)) throw new TypeError(`not a UUID: ${namespace}`);
  const bytes = createHash('sha1')
    .update(Buffer.from(ns, 'hex'))
    .update(name, 'utf8')
    .digest()
    .subarray(0, 16);
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
