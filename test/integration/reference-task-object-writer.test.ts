import { type Bucket, Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageObjectResource } from '#local/storage/resources.js';
import { type LocalStorageServer, startStorageServer } from '#local/storage/server.js';
import { createObjectWriter } from '#reference-tasks/lib/object-writer.js';

// The real Storage client against the local Storage server: what a task's part upload sends.
const BUCKET = 'batchwire-writer-it';
let server: LocalStorageServer;
let bucket: Bucket;
const finalized = new Map<string, StorageObjectResource>();

beforeAll(async () => {
  server = await startStorageServer();
  server.onFinalize((object) => finalized.set(object.name, object));
  const storage = new Storage({ apiEndpoint: server.url, projectId: 'batchwire-local' });
  [bucket] = await storage.createBucket(BUCKET);
});

afterAll(async () => {
  await server?.close();
});

async function write(name: string, chunks: string[], singleRequestMaxBytes?: number) {
  const writer = createObjectWriter(bucket.file(name), {
    contentType: 'application/x-ndjson',
    metadata: { 'batchwire-task-count': '1' },
    ...(singleRequestMaxBytes === undefined ? {} : { singleRequestMaxBytes }),
  });
  for (const chunk of chunks) await writer.write(chunk);
  return writer.finish({ 'batchwire-records': String(chunks.length) });
}

describe('createObjectWriter', () => {
  it('creates a small object in one request, its final metadata already on it when it appears', async () => {
    // Act
    const resource = await write('small/part-00000.jsonl', ['{"a":1}\n', '{"a":2}\n']);

    // Assert: the finalize (the object's creation) already carries the counts, so no reader can
    // see the object without them; the returned resource is the stored one.
    expect(finalized.get('small/part-00000.jsonl')?.metadata).toEqual({
      'batchwire-task-count': '1',
      'batchwire-records': '2',
    });
    expect(resource).toMatchObject({ size: '16', contentType: 'application/x-ndjson' });
    const [data] = await bucket.file('small/part-00000.jsonl').download();
    expect(data.toString('utf8')).toBe('{"a":1}\n{"a":2}\n');
  });

  it('streams an object over the single-request size through a resumable upload, metadata set after', async () => {
    // Arrange: 40 chunks of 100 bytes against a 1,000-byte single-request limit.
    const chunks = Array.from({ length: 40 }, (_, i) => `${String(i).padStart(99, '0')}\n`);

    // Act
    const resource = await write('large/part-00000.jsonl', chunks, 1_000);

    // Assert: the data arrived whole; the counts came after the upload finished.
    const [data] = await bucket.file('large/part-00000.jsonl').download();
    expect(data.toString('utf8')).toBe(chunks.join(''));
    expect(finalized.get('large/part-00000.jsonl')?.metadata).toEqual({ 'batchwire-task-count': '1' });
    expect(resource.metadata).toEqual({ 'batchwire-task-count': '1', 'batchwire-records': '40' });
  });

  it('creates an empty object when nothing was written', async () => {
    const resource = await write('empty/part-00000.jsonl', []);

    expect(resource).toMatchObject({ size: '0' });
    expect(finalized.get('empty/part-00000.jsonl')?.metadata).toEqual({
      'batchwire-task-count': '1',
      'batchwire-records': '0',
    });
  });

  it('fails with the upload error, not a hang, when the object cannot be written', async () => {
    // Arrange: a bucket that does not exist.
    const storage = new Storage({ apiEndpoint: server.url, projectId: 'batchwire-local' });
    const missing = storage.bucket('batchwire-no-such-bucket');
    for (const limit of [1_000_000, 10]) {
      const writer = createObjectWriter(missing.file('x.jsonl'), {
        contentType: 'application/x-ndjson',
        singleRequestMaxBytes: limit,
      });

      // Act
      const error = await (async () => {
        await writer.write('0123456789abcdef\n');
        return writer.finish();
      })().then(
        () => undefined,
        (caught: { code?: unknown; status?: unknown }) => caught,
      );

      // Assert: the client's error (a 404 in either upload's shape), not a result.
      expect(error?.code === 404 || error?.status === 404, String(error)).toBe(true);
    }
  });
});
