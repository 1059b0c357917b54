/**
 * The records the server keeps (objects, buckets), the JSON API resources made from them, the
 * fields a client may set, and the GCS-shaped errors (StorageApiError and its common cases).
 */
import { createHash } from 'node:crypto';
import { PermanentError } from '#shared/runtime/errors.js';

/** The object fields a client may set on upload, patch, update, copy or compose. */
export interface MutableObjectFields {
  contentType?: string;
  contentEncoding?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  cacheControl?: string;
  customTime?: string;
  temporaryHold?: boolean;
  eventBasedHold?: boolean;
  metadata?: Record<string, string>;
}

/**
 * The GCS JSON API object resource (int64 fields generation/metageneration/size as STRINGS, as
 * GCS and Eventarc send them). Optional fields appear only when set, as in GCS responses.
 */
export interface StorageObjectResource extends MutableObjectFields {
  kind: 'storage#object';
  id: string;
  selfLink: string;
  mediaLink: string;
  name: string;
  bucket: string;
  generation: string;
  metageneration: string;
  /** Always present on a resource: `application/octet-stream` when the client set none. */
  contentType: string;
  storageClass: string;
  size: string;
  md5Hash: string;
  crc32c: string;
  etag: string;
  timeCreated: string;
  updated: string;
  timeStorageClassUpdated: string;
  componentCount?: number;
  timeDeleted?: string;
  timeFinalized?: string;
}

const STRING_FIELDS = [
  'contentType',
  'contentEncoding',
  'contentDisposition',
  'contentLanguage',
  'cacheControl',
  'customTime',
] as const;
const BOOLEAN_FIELDS = ['temporaryHold', 'eventBasedHold'] as const;
/** Every key of {@link MutableObjectFields}: a request body naming any of them sets object fields. */
export const MUTABLE_OBJECT_KEYS = [
  ...STRING_FIELDS,
  ...BOOLEAN_FIELDS,
  'metadata',
] as const satisfies ReadonlyArray<keyof MutableObjectFields>;

/** What the server keeps per object version (persisted as JSON in directory mode). */
export interface ObjectRecord {
  bucket: string;
  name: string;
  generation: number;
  metageneration: number;
  /** The backend's key for the bytes; a new blob per generation. */
  blobId: string;
  size: number;
  md5Hash: string;
  crc32c: string;
  storageClass: string;
  timeCreated: string;
  updated: string;
  timeStorageClassUpdated: string;
  /** Set when a newer generation replaced this one in a versioned bucket. */
  timeDeleted?: string;
  componentCount?: number;
  fields: MutableObjectFields;
}

/** What the server keeps per bucket. `extra` echoes settings the server stores but does not act on. */
export interface BucketRecord {
  name: string;
  project: string;
  metageneration: number;
  timeCreated: string;
  updated: string;
  location: string;
  storageClass: string;
  versioning: boolean;
  labels: Record<string, string>;
  extra: Record<string, unknown>;
}

/** Settings stored and echoed but not acted on. */
export const ECHOED_BUCKET_FIELDS = [
  'lifecycle',
  'cors',
  'website',
  'logging',
  'defaultEventBasedHold',
  'billing',
  'encryption',
  'iamConfiguration',
  'retentionPolicy',
  'softDeletePolicy',
  'hierarchicalNamespace',
  'autoclass',
  'rpo',
  'customPlacementConfig',
] as const;

function etagOf(...parts: Array<string | number>): string {
  // Opaque to clients; stable for a given (generation, metageneration), like GCS etags.
  return createHash('md5').update(parts.join('/')).digest('base64').slice(0, 16);
}

/** The JSON API resource of an object version. `baseUrl` is the server's own `http://host:port`. */
export function objectResource(record: ObjectRecord, baseUrl: string): StorageObjectResource {
  const bucket = encodeURIComponent(record.bucket);
  const name = encodeURIComponent(record.name);
  const generation = String(record.generation);
  const resource: StorageObjectResource = {
    kind: 'storage#object',
    id: `${record.bucket}/${record.name}/${generation}`,
    selfLink: `${baseUrl}/storage/v1/b/${bucket}/o/${name}`,
    mediaLink: `${baseUrl}/download/storage/v1/b/${bucket}/o/${name}?generation=${generation}&alt=media`,
    name: record.name,
    bucket: record.bucket,
    generation,
    metageneration: String(record.metageneration),
    contentType: record.fields.contentType ?? 'application/octet-stream',
    storageClass: record.storageClass,
    size: String(record.size),
    md5Hash: record.md5Hash,
    crc32c: record.crc32c,
    etag: etagOf(record.generation, record.metageneration),
    timeCreated: record.timeCreated,
    updated: record.updated,
    timeStorageClassUpdated: record.timeStorageClassUpdated,
    timeFinalized: record.timeCreated,
  };
  for (const key of STRING_FIELDS) {
    const value = record.fields[key];
    if (key !== 'contentType' && value !== undefined) resource[key] = value;
  }
  for (const key of BOOLEAN_FIELDS) {
    if (record.fields[key] !== undefined) resource[key] = record.fields[key];
  }
  if (record.fields.metadata && Object.keys(record.fields.metadata).length > 0) {
    resource.metadata = { ...record.fields.metadata };
  }
  if (record.componentCount !== undefined) resource.componentCount = record.componentCount;
  if (record.timeDeleted !== undefined) resource.timeDeleted = record.timeDeleted;
  return resource;
}

/** The JSON API resource of a bucket. */
export function bucketResource(record: BucketRecord, baseUrl: string): Record<string, unknown> {
  return {
    kind: 'storage#bucket',
    id: record.name,
    selfLink: `${baseUrl}/storage/v1/b/${encodeURIComponent(record.name)}`,
    projectNumber: '0',
    name: record.name,
    timeCreated: record.timeCreated,
    updated: record.updated,
    metageneration: String(record.metageneration),
    location: record.location,
    locationType: 'region',
    storageClass: record.storageClass,
    etag: etagOf(record.name, record.metageneration),
    ...(record.versioning ? { versioning: { enabled: true } } : {}),
    ...(Object.keys(record.labels).length > 0 ? { labels: { ...record.labels } } : {}),
    ...record.extra,
  };
}

/**
 * Applies client-supplied object fields (from an upload's metadata, a patch, a copy body) onto
 * `target`. As in GCS patches, `null` clears a field, and inside `metadata` clears one key.
 * Read-only fields (name, size, hashes…) are ignored. Throws 400 on values of the wrong type.
 */
export function applyObjectFields(target: MutableObjectFields, input: Record<string, unknown>): void {
  for (const key of STRING_FIELDS) {
    if (!(key in input)) continue;
    const value = input[key];
    if (value === null || value === undefined) delete target[key];
    else if (typeof value === 'string') target[key] = value;
    else throw invalidArgument(`Invalid value for ${key}: expected a string.`);
  }
  for (const key of BOOLEAN_FIELDS) {
    if (!(key in input)) continue;
    const value = input[key];
    if (value === null || value === undefined) delete target[key];
    else if (typeof value === 'boolean') target[key] = value;
    else throw invalidArgument(`Invalid value for ${key}: expected a boolean.`);
  }
  if ('metadata' in input) {
    const metadata = input.metadata;
    if (metadata === null || metadata === undefined) {
      delete target.metadata;
    } else if (typeof metadata === 'object' && !Array.isArray(metadata)) {
      const merged = { ...(target.metadata ?? {}) };
      for (const [key, value] of Object.entries(metadata as Record<string, unknown>)) {
        if (value === null || value === undefined) delete merged[key];
        else merged[key] = typeof value === 'string' ? value : JSON.stringify(value);
      }
      target.metadata = merged;
    } else {
      throw invalidArgument('Invalid value for metadata: expected an object.');
    }
  }
}

/**
 * An error answered in the GCS JSON API shape:
 * `{ error: { code, message, errors: [{ domain: 'global', reason, message }] } }`.
 */
export class StorageApiError extends PermanentError {
  readonly status: number;
  readonly reason: string;
  readonly headers: Record<string, string>;

  constructor(status: number, reason: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.reason = reason;
    this.headers = headers;
  }

  /** The JSON body GCS sends for this error. */
  body(): { error: { code: number; message: string; errors: Array<Record<string, string>> } } {
    const detail: Record<string, string> = { domain: 'global', reason: this.reason, message: this.message };
    if (this.status === 412) {
      detail.locationType = 'header';
      detail.location = 'If-Match';
    }
    return { error: { code: this.status, message: this.message, errors: [detail] } };
  }
}

export function invalidArgument(message: string): StorageApiError {
  return new StorageApiError(400, 'invalid', message);
}

export function bucketNotFound(): StorageApiError {
  return new StorageApiError(404, 'notFound', 'The specified bucket does not exist.');
}

export function objectNotFound(bucket: string, name: string): StorageApiError {
  return new StorageApiError(404, 'notFound', `No such object: ${bucket}/${name}`);
}

export function preconditionFailed(): StorageApiError {
  return new StorageApiError(
    412,
    'conditionNotMet',
    'At least one of the pre-conditions you specified did not hold.',
  );
}

export function notModified(): StorageApiError {
  return new StorageApiError(304, 'notModified', 'Not Modified');
}
