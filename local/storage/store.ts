/**
 * Where bytes and records live: the backend port, in memory or in a directory (durable, rebuilt
 * after a restart), and the blob writer that hashes bytes on their way in.
 */
import { randomUUID } from 'node:crypto';
import {
  type FileHandle,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ObjectHasher, type ObjectHashes } from './hashes.js';
import type { BucketRecord, ObjectRecord } from './resources.js';

/** Bytes written so far, made durable by `commit()`; hashes are computed on the way in. */
export interface BlobWriter {
  /** Bytes written so far. */
  readonly size: number;
  write(chunk: Uint8Array): Promise<void>;
  /** Makes the blob readable under its id; the writer is unusable afterwards. */
  commit(): Promise<CommittedBlob>;
  /** Discards the bytes. Safe to call more than once, and after a failed commit. */
  abort(): Promise<void>;
}

export interface CommittedBlob extends ObjectHashes {
  blobId: string;
  size: number;
}

/**
 * Where buckets, object metadata and object bytes live. The server keeps its index in memory in
 * both modes; a backend only has to hold bytes and, if persistent, mirror the index so `load()`
 * can rebuild it after a restart.
 */
export interface StorageBackend {
  readonly persistent: boolean;
  load(): Promise<{ buckets: BucketRecord[]; objects: ObjectRecord[] }>;
  saveBucket(bucket: BucketRecord): Promise<void>;
  deleteBucket(name: string): Promise<void>;
  /** Writes (or rewrites) an object version's metadata. */
  saveObject(object: ObjectRecord): Promise<void>;
  /** Removes an object version: its metadata and its bytes. */
  deleteObject(object: ObjectRecord): Promise<void>;
  createBlob(): BlobWriter;
  /** Bytes `start..end` (inclusive) of a committed blob. Rejects with code ENOENT when it is gone. */
  openBlob(blobId: string, start: number, end: number): Promise<Readable>;
  /** Drops a committed blob no object refers to (a finalize that lost its precondition). */
  deleteBlob(blobId: string): Promise<void>;
  close(): Promise<void>;
}

/** Fills a new blob and commits it; aborts it if filling fails half-way (a client hung up, a bad body). */
export async function writeBlob(
  backend: StorageBackend,
  fill: (writer: BlobWriter) => Promise<void>,
): Promise<CommittedBlob> {
  const writer = backend.createBlob();
  try {
    await fill(writer);
    return await writer.commit();
  } catch (error) {
    await writer.abort();
    throw error;
  }
}

function enoent(blobId: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`blob ${blobId} not found`);
  error.code = 'ENOENT';
  return error;
}

/** Keeps everything in process memory; buffers each object whole. */
export class MemoryBackend implements StorageBackend {
  readonly persistent = false;
  private readonly blobs = new Map<string, Buffer>();

  async load(): Promise<{ buckets: BucketRecord[]; objects: ObjectRecord[] }> {
    return { buckets: [], objects: [] };
  }
  async saveBucket(): Promise<void> {}
  async deleteBucket(): Promise<void> {}
  async saveObject(): Promise<void> {}
  async deleteObject(object: ObjectRecord): Promise<void> {
    this.blobs.delete(object.blobId);
  }
  async deleteBlob(blobId: string): Promise<void> {
    this.blobs.delete(blobId);
  }

  createBlob(): BlobWriter {
    const chunks: Buffer[] = [];
    const hasher = new ObjectHasher();
    let size = 0;
    return {
      get size() {
        return size;
      },
      write: async (chunk) => {
        const copy = Buffer.from(chunk);
        hasher.update(copy);
        chunks.push(copy);
        size += copy.length;
      },
      commit: async () => {
        const blobId = randomUUID();
        this.blobs.set(blobId, Buffer.concat(chunks, size));
        chunks.length = 0;
        return { blobId, size, ...hasher.digest() };
      },
      abort: async () => {
        chunks.length = 0;
      },
    };
  }

  async openBlob(blobId: string, start: number, end: number): Promise<Readable> {
    const data = this.blobs.get(blobId);
    if (!data) throw enoent(blobId);
    // One chunk per 64 KiB so that a slow reader gets backpressure, not one huge write.
    const slice = data.subarray(start, end + 1);
    return Readable.from(
      (function* () {
        for (let at = 0; at < slice.length; at += 65_536) yield slice.subarray(at, at + 65_536);
      })(),
    );
  }

  async close(): Promise<void> {
    this.blobs.clear();
  }
}

/**
 * Keeps everything under `dataDir` so a restart finds the same buckets and objects:
 *
 *   buckets/<bucket>.json     bucket records (bucket names are file-name safe)
 *   objects/<blobId>.json     one file per object version (object names never become paths)
 *   blobs/<blobId>            the bytes, streamed to disk; memory stays flat for big objects
 *   tmp/                      uploads in progress; emptied at start
 *
 * Metadata writes are atomic (write + rename) and serialised through one queue, so a rewrite
 * never races a delete of the same file.
 */
export class DirectoryBackend implements StorageBackend {
  readonly persistent = true;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly openWriters = new Set<BlobWriter>();

  constructor(private readonly dataDir: string) {}

  private dir(kind: 'buckets' | 'objects' | 'blobs' | 'tmp'): string {
    return join(this.dataDir, kind);
  }

  private enqueue<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.queue.then(operation);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async writeJson(path: string, value: unknown): Promise<void> {
    const temporary = join(this.dir('tmp'), `${randomUUID()}.json`);
    await writeFile(temporary, JSON.stringify(value));
    await rename(temporary, path);
  }

  async load(): Promise<{ buckets: BucketRecord[]; objects: ObjectRecord[] }> {
    for (const kind of ['buckets', 'objects', 'blobs', 'tmp'] as const) {
      await mkdir(this.dir(kind), { recursive: true });
    }
    // Leftovers of uploads that were in progress when the last process stopped.
    for (const entry of await readdir(this.dir('tmp')))
      await rm(join(this.dir('tmp'), entry), { force: true });
    const buckets = await this.readAll<BucketRecord>('buckets');
    const objects = await this.readAll<ObjectRecord>('objects');
    return { buckets, objects };
  }

  private async readAll<T>(kind: 'buckets' | 'objects'): Promise<T[]> {
    const records: T[] = [];
    for (const entry of await readdir(this.dir(kind))) {
      if (!entry.endsWith('.json')) continue;
      try {
        records.push(JSON.parse(await readFile(join(this.dir(kind), entry), 'utf8')) as T);
      } catch {
        // A torn or foreign file: skip it rather than refuse to start.
      }
    }
    return records;
  }

  saveBucket(bucket: BucketRecord): Promise<void> {
    return this.enqueue(() => this.writeJson(join(this.dir('buckets'), `${bucket.name}.json`), bucket));
  }

  deleteBucket(name: string): Promise<void> {
    return this.enqueue(() => rm(join(this.dir('buckets'), `${name}.json`), { force: true }));
  }

  saveObject(object: ObjectRecord): Promise<void> {
    return this.enqueue(() => this.writeJson(join(this.dir('objects'), `${object.blobId}.json`), object));
  }

  deleteObject(object: ObjectRecord): Promise<void> {
    return this.enqueue(async () => {
      await rm(join(this.dir('objects'), `${object.blobId}.json`), { force: true });
      await rm(join(this.dir('blobs'), object.blobId), { force: true });
    });
  }

  deleteBlob(blobId: string): Promise<void> {
    return this.enqueue(() => rm(join(this.dir('blobs'), blobId), { force: true }));
  }

  createBlob(): BlobWriter {
    const blobId = randomUUID();
    const temporary = join(this.dir('tmp'), blobId);
    const hasher = new ObjectHasher();
    let handle: Promise<FileHandle> | undefined;
    let size = 0;
    let done = false;
    const writers = this.openWriters;
    const writer: BlobWriter = {
      get size() {
        return size;
      },
      write: async (chunk) => {
        if (done) throw new Error('blob writer is closed');
        handle ??= open(temporary, 'w');
        const file = await handle;
        hasher.update(chunk);
        size += chunk.length;
        await file.write(chunk);
      },
      commit: async () => {
        handle ??= open(temporary, 'w');
        const file = await handle;
        await file.close();
        done = true;
        writers.delete(writer);
        await rename(temporary, join(this.dir('blobs'), blobId));
        return { blobId, size, ...hasher.digest() };
      },
      abort: async () => {
        writers.delete(writer);
        if (done) return;
        done = true;
        if (handle) await (await handle.catch(() => undefined))?.close().catch(() => undefined);
        await unlink(temporary).catch(() => undefined);
      },
    };
    writers.add(writer);
    return writer;
  }

  async openBlob(blobId: string, start: number, end: number): Promise<Readable> {
    // Opened before answering: once open, a concurrent overwrite that unlinks the file no
    // longer affects this read.
    const file = await open(join(this.dir('blobs'), blobId), 'r');
    if (end < start) {
      await file.close();
      return Readable.from([]);
    }
    return file.createReadStream({ start, end, autoClose: true });
  }

  async close(): Promise<void> {
    await Promise.all([...this.openWriters].map((writer) => writer.abort()));
    await this.queue;
  }
}
