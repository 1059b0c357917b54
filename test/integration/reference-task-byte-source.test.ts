import { type Bucket, Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStorageServer, startStorageServer } from '#local/storage/server.js';
import { gcsSource } from '#reference-tasks/lib/byte-source.js';
import { readFirstLine } from '#reference-tasks/lib/line-shard.js';

// The real Storage client against the local Storage server.
const BUCKET = 'batchwire-byte-source-it';
let server: LocalStorageServer;
let bucket: Bucket;

beforeAll(async () => {
  server = await startStorageServer();
  const storage = new Storage({ apiEndpoint: server.url, projectId: 'batchwire-local' });
  [bucket] = await storage.createBucket(BUCKET);
});

afterAll(async () => {
  await server?.close();
});

describe('gcsSource', () => {
  it('leaves the client able to upload right after a read that stopped early', async () => {
    // Arrange: an object far larger than the one line that is read from it.
    const text = `header\n${'x'.repeat(200_000)}\n`;
    await bucket.file('in.csv').save(text);
    const [metadata] = await bucket.file('in.csv').getMetadata();
    const source = gcsSource(
      bucket.file('in.csv', { generation: metadata.generation }),
      Number(metadata.size),
    );

    // Act: stop after the first line, then upload at once on the same client (and its sockets).
    const first = await readFirstLine(source);
    await bucket.file('out.txt').save('after\n', { resumable: false });

    // Assert
    expect(first?.bytes?.toString('utf8')).toBe('header');
    const [out] = await bucket.file('out.txt').download();
    expect(out.toString('utf8')).toBe('after\n');
  });
});
