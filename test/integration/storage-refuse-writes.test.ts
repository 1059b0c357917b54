import { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type LocalStorageServer,
  type StorageObjectResource,
  startStorageServer,
} from '#local/storage/server.js';

/**
 * A stopping platform refuses new uploads that would become jobs (503 + Retry-After, which
 * Google's clients retry) instead of acknowledging ones it may never act on; reads go on, and
 * so do the writes it let through (its own bookkeeping while deliveries drain).
 */

const BUCKET = 'refusing-bucket';
const isInput = (bucket: string, name: string) => bucket === BUCKET && name.includes('/inputs/');
let server: LocalStorageServer;
let storage: Storage;
const finalized: StorageObjectResource[] = [];

beforeAll(async () => {
  server = await startStorageServer();
  server.onFinalize((object) => finalized.push(object));
  // Retries off: the test looks at the first answer.
  storage = new Storage({ apiEndpoint: server.url, projectId: 'p', retryOptions: { autoRetry: false } });
  await storage.createBucket(BUCKET);
});

afterAll(async () => {
  await server.close();
});

describe('a storage server refusing writes', () => {
  it('answers new uploads of inputs with 503 and Retry-After; reads and other writes go on', async () => {
    // Arrange: an input stored before the stop, and a resumable upload of another one begun.
    const bucket = storage.bucket(BUCKET);
    await bucket.file('p/c/inputs/before.jsonl').save('{"n":1}\n', { resumable: false });
    const [session] = await bucket.file('p/c/inputs/half-way.jsonl').createResumableUpload();

    // Act
    server.refuseWrites('the platform is stopping', isInput);
    const simple = await fetch(
      `${server.url}/upload/storage/v1/b/${BUCKET}/o?uploadType=media&name=${encodeURIComponent('p/c/inputs/new.jsonl')}`,
      { method: 'POST', body: '{"n":2}\n' },
    );
    const resumed = await fetch(session, { method: 'PUT', body: '{"n":3}\n' });
    const copied = await fetch(
      `${server.url}/storage/v1/b/${BUCKET}/o/${encodeURIComponent('p/c/inputs/before.jsonl')}/copyTo/b/${BUCKET}/o/${encodeURIComponent('p/c/inputs/copy.jsonl')}`,
      { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } },
    );
    const nodeClient = await bucket
      .file('p/c/inputs/client.jsonl')
      .save('{"n":4}\n', { resumable: false })
      .then(
        () => 'stored',
        (err: { code?: number }) => err.code,
      );

    // Assert: every write of an input refused, with the reason and a Retry-After; none stored.
    for (const response of [simple, resumed, copied]) {
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(await response.text()).toContain('the platform is stopping');
    }
    expect(nodeClient).toBe(503);
    expect(finalized.map((object) => object.name)).toEqual(['p/c/inputs/before.jsonl']);
    // Reads go on, and so does a write the refusal does not cover.
    const [kept] = await bucket.file('p/c/inputs/before.jsonl').download();
    expect(kept.toString()).toBe('{"n":1}\n');
    const [listed] = await bucket.getFiles({ prefix: 'p/c/inputs/' });
    expect(listed.map((file) => file.name)).toEqual(['p/c/inputs/before.jsonl']);
    await bucket.file('_batchwire/claims/results/x.json').save('{}', { resumable: false });
    expect(finalized.map((object) => object.name)).toContain('_batchwire/claims/results/x.json');
  });
});
