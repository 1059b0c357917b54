/**
 * The index of buckets and objects and the GCS semantics over it: generations, metagenerations,
 * preconditions, versioning, finalize, the rebuild after a restart, and object-name rules.
 * Listing pages are cut in listing.ts; bytes live in a backend (store.ts).
 */
import type { Readable } from 'node:stream';
import type { ObjectHashes } from './hashes.js';
import {
  type BucketPage,
  bucketPage,
  type ListBucketsQuery,
  type ListObjectsQuery,
  type ObjectPage,
  objectPage,
} from './listing.js';
import {
  applyObjectFields,
  type BucketRecord,
  bucketNotFound,
  ECHOED_BUCKET_FIELDS,
  invalidArgument,
  type MutableObjectFields,
  notModified,
  type ObjectRecord,
  objectNotFound,
  preconditionFailed,
  StorageApiError,
} from './resources.js';
import type { CommittedBlob, StorageBackend } from './store.js';

/** The four GCS preconditions, as query parameters carry them (already checked to be integers). */
export interface Preconditions {
  ifGenerationMatch?: number;
  ifGenerationNotMatch?: number;
  ifMetagenerationMatch?: number;
  ifMetagenerationNotMatch?: number;
}

/** Everything a finalize needs besides the bytes. */
export interface FinalizeRequest {
  bucket: string;
  name: string;
  fields: MutableObjectFields;
  preconditions: Preconditions;
  /** Hashes the client declared (metadata `crc32c`/`md5Hash` or `x-goog-hash`); checked like GCS does. */
  expected?: Partial<ObjectHashes>;
  componentCount?: number;
}

interface BucketState {
  record: BucketRecord;
  live: Map<string, ObjectRecord>;
  /** Older generations, kept only while the bucket has versioning enabled. */
  noncurrent: Map<string, ObjectRecord[]>;
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;

/**
 * The server's index of buckets and objects, and the GCS semantics over it: generations,
 * metagenerations, preconditions, versioning, listing. Index updates are synchronous, so a
 * precondition check and the swap it guards can never interleave with another request.
 */
export class Catalog {
  private readonly buckets = new Map<string, BucketState>();
  private lastGeneration = 0;

  private constructor(
    readonly backend: StorageBackend,
    private readonly onFinalize: (record: ObjectRecord) => void,
  ) {}

  /** Rebuilds the index from the backend (empty for memory). */
  static async open(backend: StorageBackend, onFinalize: (record: ObjectRecord) => void): Promise<Catalog> {
    const catalog = new Catalog(backend, onFinalize);
    const { buckets, objects } = await backend.load();
    for (const record of buckets) {
      catalog.buckets.set(record.name, { record, live: new Map(), noncurrent: new Map() });
    }
    const byName = new Map<string, ObjectRecord[]>();
    for (const object of objects) {
      const key = `${object.bucket}\u0000${object.name}`;
      byName.set(key, [...(byName.get(key) ?? []), object]);
      catalog.lastGeneration = Math.max(catalog.lastGeneration, object.generation);
    }
    for (const versions of byName.values()) {
      versions.sort((a, b) => a.generation - b.generation);
      const state = catalog.buckets.get((versions[0] as ObjectRecord).bucket);
      if (!state) {
        for (const orphan of versions) await backend.deleteObject(orphan);
        continue;
      }
      const newest = versions[versions.length - 1] as ObjectRecord;
      if (!newest.timeDeleted) state.live.set(newest.name, newest);
      const older = newest.timeDeleted ? versions : versions.slice(0, -1);
      // A crash between writing a new generation and retiring the old one leaves two live
      // records: the newest wins, the others are retired now.
      for (const version of older) {
        if (!state.record.versioning) await backend.deleteObject(version);
        else if (!version.timeDeleted) {
          version.timeDeleted = newest.timeCreated;
          await backend.saveObject(version);
        }
      }
      if (state.record.versioning) {
        const kept = older.filter((version) => version.timeDeleted);
        if (kept.length > 0) state.noncurrent.set(newest.name, kept);
      }
    }
    return catalog;
  }

  /** Generations are microsecond timestamps, strictly increasing (as in GCS, in practice). */
  private nextGeneration(): number {
    this.lastGeneration = Math.max(this.lastGeneration + 1, Date.now() * 1000);
    return this.lastGeneration;
  }

  // ---- buckets ----

  bucket(name: string): BucketRecord {
    const state = this.buckets.get(name);
    if (!state) throw bucketNotFound();
    return state.record;
  }

  private state(name: string): BucketState {
    const state = this.buckets.get(name);
    if (!state) throw bucketNotFound();
    return state;
  }

  async createBucket(project: string, body: Record<string, unknown>): Promise<BucketRecord> {
    const name = body.name;
    if (typeof name !== 'string' || !BUCKET_NAME.test(name) || name.includes('..')) {
      throw invalidArgument(`Invalid bucket name: '${String(name)}'`);
    }
    if (this.buckets.has(name)) {
      throw new StorageApiError(
        409,
        'conflict',
        'Your previous request to create the named bucket succeeded and you already own it.',
      );
    }
    const now = new Date().toISOString();
    const record: BucketRecord = {
      name,
      project,
      metageneration: 1,
      timeCreated: now,
      updated: now,
      location: typeof body.location === 'string' ? body.location.toUpperCase() : 'US-CENTRAL1',
      storageClass: typeof body.storageClass === 'string' ? body.storageClass : 'STANDARD',
      versioning: false,
      labels: {},
      extra: {},
    };
    this.applyBucketFields(record, body);
    this.buckets.set(name, { record, live: new Map(), noncurrent: new Map() });
    await this.backend.saveBucket(record);
    return record;
  }

  private applyBucketFields(record: BucketRecord, body: Record<string, unknown>): void {
    if (body.versioning !== undefined) {
      const versioning = body.versioning as { enabled?: unknown } | null;
      record.versioning = versioning?.enabled === true;
    }
    if (body.labels !== undefined) {
      if (body.labels === null) record.labels = {};
      else if (typeof body.labels === 'object') {
        for (const [key, value] of Object.entries(body.labels as Record<string, unknown>)) {
          if (value === null) delete record.labels[key];
          else record.labels[key] = String(value);
        }
      } else throw invalidArgument('Invalid value for labels.');
    }
    if (typeof body.storageClass === 'string') record.storageClass = body.storageClass;
    for (const key of ECHOED_BUCKET_FIELDS) {
      if (!(key in body)) continue;
      if (body[key] === null) delete record.extra[key];
      else record.extra[key] = body[key];
    }
  }

  listBuckets(query: ListBucketsQuery): BucketPage {
    return bucketPage(
      [...this.buckets.values()].map((state) => state.record),
      query,
    );
  }

  private checkBucketPreconditions(record: BucketRecord, conditions: Preconditions): void {
    if (
      conditions.ifMetagenerationMatch !== undefined &&
      record.metageneration !== conditions.ifMetagenerationMatch
    ) {
      throw preconditionFailed();
    }
    if (
      conditions.ifMetagenerationNotMatch !== undefined &&
      record.metageneration === conditions.ifMetagenerationNotMatch
    ) {
      throw preconditionFailed();
    }
  }

  async patchBucket(
    name: string,
    body: Record<string, unknown>,
    conditions: Preconditions,
  ): Promise<BucketRecord> {
    const record = this.bucket(name);
    this.checkBucketPreconditions(record, conditions);
    this.applyBucketFields(record, body);
    record.metageneration += 1;
    record.updated = new Date().toISOString();
    await this.backend.saveBucket(record);
    return record;
  }

  async deleteBucket(name: string, conditions: Preconditions): Promise<void> {
    const state = this.state(name);
    this.checkBucketPreconditions(state.record, conditions);
    if (state.live.size > 0 || state.noncurrent.size > 0) {
      throw new StorageApiError(409, 'conflict', 'The bucket you tried to delete is not empty.');
    }
    this.buckets.delete(name);
    await this.backend.deleteBucket(name);
  }

  // ---- objects ----

  /**
   * Checks the four preconditions against the current live version. Reads answer 304 for a
   * failed *NotMatch (as GCS does for GET); everything else answers 412.
   */
  checkPreconditions(current: ObjectRecord | undefined, conditions: Preconditions, read = false): void {
    const { ifGenerationMatch, ifGenerationNotMatch, ifMetagenerationMatch, ifMetagenerationNotMatch } =
      conditions;
    const generation = current?.generation ?? 0;
    if (ifGenerationMatch !== undefined && generation !== ifGenerationMatch) throw preconditionFailed();
    if (ifMetagenerationMatch !== undefined && current?.metageneration !== ifMetagenerationMatch) {
      throw preconditionFailed();
    }
    if (ifGenerationNotMatch !== undefined && generation === ifGenerationNotMatch) {
      throw read ? notModified() : preconditionFailed();
    }
    if (
      ifMetagenerationNotMatch !== undefined &&
      current !== undefined &&
      current.metageneration === ifMetagenerationNotMatch
    ) {
      throw read ? notModified() : preconditionFailed();
    }
  }

  /** The live version, or `generation` (live or noncurrent) when given. Throws 404. */
  getObject(bucket: string, name: string, generation?: number): ObjectRecord {
    const state = this.state(bucket);
    const live = state.live.get(name);
    if (generation === undefined || live?.generation === generation) {
      if (!live) throw objectNotFound(bucket, name);
      return live;
    }
    const version = state.noncurrent.get(name)?.find((candidate) => candidate.generation === generation);
    if (!version) throw objectNotFound(bucket, name);
    return version;
  }

  /** The live version or undefined; throws 404 only when the bucket is missing. */
  current(bucket: string, name: string): ObjectRecord | undefined {
    return this.state(bucket).live.get(name);
  }

  /**
   * Makes committed bytes the new live generation of an object, if the bucket still exists,
   * the declared hashes match and the preconditions hold; otherwise drops the bytes and throws.
   * Every successful finalize is offered to the finalize listener.
   */
  async finalize(request: FinalizeRequest, blob: CommittedBlob): Promise<ObjectRecord> {
    let record: ObjectRecord;
    let previous: ObjectRecord | undefined;
    let state: BucketState;
    try {
      state = this.state(request.bucket);
      validateName(request.name);
      checkHashes(request.expected, blob);
      previous = state.live.get(request.name);
      this.checkPreconditions(previous, request.preconditions);
      const now = new Date().toISOString();
      record = {
        bucket: request.bucket,
        name: request.name,
        generation: this.nextGeneration(),
        metageneration: 1,
        blobId: blob.blobId,
        size: blob.size,
        md5Hash: blob.md5Hash,
        crc32c: blob.crc32c,
        storageClass: state.record.storageClass,
        timeCreated: now,
        updated: now,
        timeStorageClassUpdated: now,
        fields: { ...request.fields },
        ...(request.componentCount !== undefined ? { componentCount: request.componentCount } : {}),
      };
      state.live.set(request.name, record);
    } catch (error) {
      await this.backend.deleteBlob(blob.blobId);
      throw error;
    }
    await this.backend.saveObject(record);
    if (previous) await this.retire(state, previous, record.timeCreated);
    this.onFinalize(record);
    return record;
  }

  private async retire(state: BucketState, previous: ObjectRecord, when: string): Promise<void> {
    if (!state.record.versioning) {
      await this.backend.deleteObject(previous);
      return;
    }
    previous.timeDeleted = when;
    state.noncurrent.set(previous.name, [...(state.noncurrent.get(previous.name) ?? []), previous]);
    await this.backend.saveObject(previous);
  }

  /**
   * Patch (merge, `null` clears) or update (replace all mutable fields) an object version's
   * metadata; metageneration goes up by one.
   */
  async updateObject(
    bucket: string,
    name: string,
    body: Record<string, unknown>,
    options: { generation?: number; preconditions: Preconditions; replace: boolean },
  ): Promise<ObjectRecord> {
    const record = this.getObject(bucket, name, options.generation);
    this.checkPreconditions(record, options.preconditions);
    const fields: MutableObjectFields = options.replace ? {} : { ...record.fields };
    applyObjectFields(fields, body);
    record.fields = fields;
    record.metageneration += 1;
    record.updated = new Date().toISOString();
    await this.backend.saveObject(record);
    return record;
  }

  async deleteObject(
    bucket: string,
    name: string,
    options: { generation?: number; preconditions: Preconditions },
  ): Promise<void> {
    const state = this.state(bucket);
    const record = this.getObject(bucket, name, options.generation);
    this.checkPreconditions(record, options.preconditions);
    if (state.live.get(name) === record) {
      state.live.delete(name);
      if (state.record.versioning) {
        await this.retire(state, record, new Date().toISOString());
        return;
      }
    } else {
      const versions = (state.noncurrent.get(name) ?? []).filter((version) => version !== record);
      if (versions.length > 0) state.noncurrent.set(name, versions);
      else state.noncurrent.delete(name);
    }
    await this.backend.deleteObject(record);
  }

  /** A ranged read of a version's bytes; 404 if the bytes vanished under a concurrent delete. */
  async read(record: ObjectRecord, start: number, end: number): Promise<Readable> {
    try {
      return await this.backend.openBlob(record.blobId, start, end);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        throw objectNotFound(record.bucket, record.name);
      throw error;
    }
  }

  /** Objects.list: prefix/delimiter, offsets, versions, and pages of at most `maxResults` entries. */
  listObjects(bucket: string, query: ListObjectsQuery): ObjectPage {
    const state = this.state(bucket);
    const candidates: ObjectRecord[] = [...state.live.values()];
    if (query.versions) for (const versions of state.noncurrent.values()) candidates.push(...versions);
    return objectPage(candidates, query);
  }
}

/** GCS object names: 1–1024 bytes of UTF-8, no CR/LF, not `.` or `..`. */
export function validateName(name: string): void {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0 || bytes > 1024 || /[\r\n]/.test(name) || name === '.' || name === '..') {
    throw invalidArgument(`Invalid object name: '${name}'`);
  }
  if (name.startsWith('.well-known/acme-challenge/')) throw invalidArgument(`Invalid object name: '${name}'`);
}

function checkHashes(expected: Partial<ObjectHashes> | undefined, actual: ObjectHashes): void {
  if (expected?.crc32c !== undefined && expected.crc32c !== actual.crc32c) {
    throw invalidArgument(
      `Provided CRC32C "${expected.crc32c}" doesn't match calculated CRC32C "${actual.crc32c}".`,
    );
  }
  if (expected?.md5Hash !== undefined && expected.md5Hash !== actual.md5Hash) {
    throw invalidArgument(
      `Provided MD5 hash "${expected.md5Hash}" doesn't match calculated MD5 hash "${actual.md5Hash}".`,
    );
  }
}
