import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32cBase64 } from '#local/storage/hashes.js';
import {
  type LocalStorageServer,
  type StorageObjectResource,
  startStorageServer,
} from '#local/storage/server.js';

const PROJECT = 'test-project';

function clientFor(server: LocalStorageServer): Storage {
  return new Storage({ apiEndpoint: server.url, projectId: PROJECT });
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The status and JSON body of a failed client call. */
async function failure(
  promise: Promise<unknown>,
): Promise<{ code: unknown; errors: unknown; message: string }> {
  try {
    await promise;
  } catch (error) {
    const e = error as { code?: unknown; errors?: unknown; message: string };
    return { code: e.code, errors: e.errors, message: e.message };
  }
  throw new Error('expected the call to fail');
}

describe('local storage server with the real @google-cloud/storage client (memory)', () => {
  let server: LocalStorageServer;
  let storage: Storage;
  const finalized: StorageObjectResource[] = [];

  beforeAll(async () => {
    server = await startStorageServer();
    server.onFinalize((object) => finalized.push(object));
    storage = clientFor(server);
    await storage.createBucket('data-bucket');
  });

  afterAll(async () => {
    await server.close();
  });

  it('creates, gets and lists buckets, and refuses a duplicate with 409', async () => {
    // Act
    const [bucket] = await storage.createBucket('another-bucket');
    const [metadata] = await bucket.getMetadata();
    const [buckets] = await storage.getBuckets();
    const duplicate = await failure(storage.createBucket('another-bucket'));

    // Assert
    expect(metadata.name).toBe('another-bucket');
    expect(buckets.map((b) => b.name)).toEqual(expect.arrayContaining(['data-bucket', 'another-bucket']));
    expect(duplicate.code).toBe(409);
  });

  it('saves a small file with a multipart upload and reads it back with validation', async () => {
    // Arrange
    const file = storage.bucket('data-bucket').file('small/hello.txt');
    const before = finalized.length;

    // Act
    await file.save('hello, world', {
      resumable: false,
      contentType: 'text/plain',
      metadata: { metadata: { a: '1' } },
    });
    const [content] = await file.download({ validation: 'crc32c' });
    const [md5Content] = await file.download({ validation: 'md5' });
    const [metadata] = await file.getMetadata();

    // Assert
    expect(content.toString()).toBe('hello, world');
    expect(md5Content.toString()).toBe('hello, world');
    expect(metadata.contentType).toBe('text/plain');
    expect(metadata.metadata).toEqual({ a: '1' });
    expect(metadata.crc32c).toBe(crc32cBase64(Buffer.from('hello, world')));
    expect(metadata.size).toBe('12');
    expect(finalized.length - before).toBe(1);
  });

  it('uploads >5 MB resumably in several chunks, and downloads it whole and by range', async () => {
    // Arrange
    const data = randomBytes(5 * 1024 * 1024 + 123_457);
    const file = storage.bucket('data-bucket').file('big/blob.bin');
    const before = finalized.length;
    const chunkStatuses: number[] = [];

    // Act
    const upload = file.createWriteStream({ resumable: true, chunkSize: 1024 * 1024, validation: 'crc32c' });
    upload.on('response', (response: { status: number }) => chunkStatuses.push(response.status));
    await pipeline(Readable.from([data]), upload);
    const [whole] = await file.download();
    const ranged = await readAll(file.createReadStream({ start: 1_000_000, end: 3_000_000 }));
    const tail = await readAll(file.createReadStream({ start: data.length - 10 }));

    // Assert
    expect(whole.equals(data)).toBe(true);
    expect(ranged.equals(data.subarray(1_000_000, 3_000_001))).toBe(true);
    expect(tail.equals(data.subarray(data.length - 10))).toBe(true);
    const events = finalized.slice(before);
    expect(events).toHaveLength(1);
    expect(events[0]?.size).toBe(String(data.length));
    // Five full 1 MiB chunks answered 308 (Resume Incomplete), then the last one 200.
    expect(chunkStatuses).toEqual([308, 308, 308, 308, 308, 200]);
  });

  it('answers resumable status queries and chunk PUTs with 308 and a Range header', async () => {
    // Arrange: a session started by the client itself.
    const file = storage.bucket('data-bucket').file('manual/resumable.bin');
    const [sessionUri] = await file.createResumableUpload();
    const data = randomBytes(600 * 1024);

    // Act
    const empty = await fetch(sessionUri, { method: 'PUT', headers: { 'Content-Range': 'bytes */*' } });
    const first = await fetch(sessionUri, {
      method: 'PUT',
      headers: { 'Content-Range': `bytes 0-${256 * 1024 - 1}/*` },
      body: data.subarray(0, 256 * 1024),
    });
    const status = await fetch(sessionUri, {
      method: 'PUT',
      headers: { 'Content-Range': `bytes */${data.length}` },
    });
    // The retried chunk overlaps the persisted bytes; only the new ones are kept.
    const last = await fetch(sessionUri, {
      method: 'PUT',
      headers: { 'Content-Range': `bytes ${128 * 1024}-${data.length - 1}/${data.length}` },
      body: data.subarray(128 * 1024),
    });
    const resource = (await last.json()) as StorageObjectResource;
    const [downloaded] = await file.download();

    // Assert
    expect(empty.status).toBe(308);
    expect(empty.headers.get('range')).toBeNull();
    expect(first.status).toBe(308);
    expect(first.headers.get('range')).toBe(`bytes=0-${256 * 1024 - 1}`);
    expect(status.status).toBe(308);
    expect(status.headers.get('range')).toBe(`bytes=0-${256 * 1024 - 1}`);
    expect(last.status).toBe(200);
    expect(resource.size).toBe(String(data.length));
    expect(downloaded.equals(data)).toBe(true);
  });

  it('lists with prefix and delimiter, and pages with maxResults', async () => {
    // Arrange
    const bucket = storage.bucket('data-bucket');
    for (const name of ['list/a.txt', 'list/b.txt', 'list/sub/c.txt', 'list/sub/d.txt', 'list/z/e.txt']) {
      await bucket.file(name).save(name, { resumable: false });
    }

    // Act
    const [files, , response] = await bucket.getFiles({
      prefix: 'list/',
      delimiter: '/',
      autoPaginate: false,
    });
    const [firstPage, nextQuery] = await bucket.getFiles({
      prefix: 'list/',
      maxResults: 2,
      autoPaginate: false,
    });
    const [secondPage] = await bucket.getFiles({ ...(nextQuery as object), autoPaginate: false });
    const [all] = await bucket.getFiles({ prefix: 'list/' });

    // Assert
    expect(files.map((f) => f.name)).toEqual(['list/a.txt', 'list/b.txt']);
    expect((response as { prefixes?: string[] }).prefixes).toEqual(['list/sub/', 'list/z/']);
    expect(firstPage.map((f) => f.name)).toEqual(['list/a.txt', 'list/b.txt']);
    expect(secondPage.map((f) => f.name)).toEqual(['list/sub/c.txt', 'list/sub/d.txt']);
    expect(all).toHaveLength(5);
  });

  it('patches metadata, bumping metageneration but not generation', async () => {
    // Arrange
    const file = storage.bucket('data-bucket').file('meta/object.json');
    await file.save('{}', {
      resumable: false,
      contentType: 'application/json',
      metadata: { metadata: { keep: 'x' } },
    });
    const [before] = await file.getMetadata();

    // Act
    await file.setMetadata({ metadata: { added: 'y', keep: null }, cacheControl: 'no-cache' });
    const [after] = await file.getMetadata();

    // Assert
    expect(after.metageneration).toBe('2');
    expect(after.generation).toBe(before.generation);
    expect(after.metadata).toEqual({ added: 'y' });
    expect(after.cacheControl).toBe('no-cache');
    expect(after.contentType).toBe('application/json');
  });

  it('copies an object (rewrite) and fires one finalize for the copy', async () => {
    // Arrange
    const source = storage.bucket('data-bucket').file('copy/source.txt');
    await source.save('copy me', { resumable: false, metadata: { metadata: { origin: 'source' } } });
    const before = finalized.length;

    // Act
    const [copy] = await source.copy(storage.bucket('another-bucket').file('copy/dest.txt'));
    const [content] = await copy.download();
    const [metadata] = await copy.getMetadata();

    // Assert
    expect(content.toString()).toBe('copy me');
    expect(metadata.metadata).toEqual({ origin: 'source' });
    expect(finalized.slice(before).map((o) => `${o.bucket}/${o.name}`)).toEqual([
      'another-bucket/copy/dest.txt',
    ]);
  });

  it('composes objects', async () => {
    // Arrange
    const bucket = storage.bucket('data-bucket');
    await bucket.file('compose/1').save('abc', { resumable: false });
    await bucket.file('compose/2').save('def', { resumable: false });

    // Act
    const [composed] = await bucket.combine(['compose/1', 'compose/2'], 'compose/all');
    const [content] = await composed.download();
    const [metadata] = await composed.getMetadata();

    // Assert
    expect(content.toString()).toBe('abcdef');
    expect(metadata.componentCount).toBe(2);
  });

  it('deletes objects, answering 404 with a GCS error body afterwards', async () => {
    // Arrange
    const file = storage.bucket('data-bucket').file('delete/me.txt');
    await file.save('bye', { resumable: false });

    // Act
    await file.delete();
    const [exists] = await file.exists();
    const missing = await failure(file.download());

    // Assert
    expect(exists).toBe(false);
    expect(missing.code).toBe(404);
    expect(missing.message).toContain('No such object: data-bucket/delete/me.txt');
  });

  it('honours ifGenerationMatch: 0 (second create is a 412 conditionNotMet)', async () => {
    // Arrange
    const file = storage.bucket('data-bucket').file('claims/once');

    // Act
    await file.save('first', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });
    const second = await failure(
      file.save('second', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } }),
    );
    const [content] = await file.download();

    // Assert
    expect(second.code).toBe(412);
    expect(second.errors).toEqual([expect.objectContaining({ reason: 'conditionNotMet' })]);
    expect(content.toString()).toBe('first');
  });

  it('applies preconditions to resumable uploads and metadata patches', async () => {
    // Arrange
    const file = storage.bucket('data-bucket').file('claims/resumable');
    await file.save('first', { resumable: true, preconditionOpts: { ifGenerationMatch: 0 } });

    // Act
    const second = await failure(
      file.save('second', { resumable: true, preconditionOpts: { ifGenerationMatch: 0 } }),
    );
    const stalePatch = await failure(
      file.setMetadata({ metadata: { x: '1' } }, { ifMetagenerationMatch: 7 }),
    );
    const [patched] = await file.setMetadata({ metadata: { x: '2' } }, { ifMetagenerationMatch: 1 });

    // Assert
    expect(second.code).toBe(412);
    expect(stalePatch.code).toBe(412);
    expect(patched.metadata).toEqual({ x: '2' });
  });

  it('answers a raw 412 with the GCS-shaped JSON error body', async () => {
    // Arrange
    await storage.bucket('data-bucket').file('claims/raw').save('x', { resumable: false });

    // Act
    const response = await fetch(
      `${server.url}/upload/storage/v1/b/data-bucket/o?uploadType=media&name=claims%2Fraw&ifGenerationMatch=0`,
      { method: 'POST', body: 'y' },
    );

    // Assert
    expect(response.status).toBe(412);
    expect(await response.json()).toEqual({
      error: {
        code: 412,
        message: 'At least one of the pre-conditions you specified did not hold.',
        errors: [expect.objectContaining({ reason: 'conditionNotMet', domain: 'global' })],
      },
    });
  });

  it('gives a new generation on overwrite and serves x-goog headers', async () => {
    // Arrange
    const file = storage.bucket('data-bucket').file('gen/object');
    await file.save('one', { resumable: false });
    const [first] = await file.getMetadata();

    // Act
    await file.save('two', { resumable: false });
    const [second] = await file.getMetadata();
    const response = await fetch(`${server.url}/download/storage/v1/b/data-bucket/o/gen%2Fobject?alt=media`);

    // Assert
    expect(BigInt(second.generation as string)).toBeGreaterThan(BigInt(first.generation as string));
    expect(second.metageneration).toBe('1');
    expect(response.headers.get('x-goog-generation')).toBe(second.generation);
    expect(response.headers.get('x-goog-hash')).toBe(`crc32c=${second.crc32c},md5=${second.md5Hash}`);
    expect(await response.text()).toBe('two');
  });

  it('reports each finalize once, with int64 fields as strings', async () => {
    // Arrange
    const received: StorageObjectResource[] = [];
    const unsubscribe = server.onFinalize((object) => received.push(object));

    // Act
    await storage.bucket('data-bucket').file('events/x.csv').save('1,2,3', { resumable: false });
    await storage.bucket('data-bucket').file('events/y.csv').save('4,5,6', { resumable: true });
    unsubscribe();
    await storage.bucket('data-bucket').file('events/z.csv').save('7', { resumable: false });

    // Assert
    expect(received.map((o) => o.name)).toEqual(['events/x.csv', 'events/y.csv']);
    for (const object of received) {
      expect(object).toMatchObject({
        kind: 'storage#object',
        bucket: 'data-bucket',
        size: '5',
        metageneration: '1',
      });
      expect(object.generation).toMatch(/^\d+$/);
      expect(object.id).toBe(`data-bucket/${object.name}/${object.generation}`);
    }
  });

  it('stores empty objects through every upload path', async () => {
    // Arrange
    const bucket = storage.bucket('data-bucket');

    // Act
    await bucket.file('empty/multipart').save('', { resumable: false });
    await bucket.file('empty/resumable').save('', { resumable: true });
    await bucket.file('empty/chunked').save('', { resumable: true, chunkSize: 256 * 1024 });
    const sizes = await Promise.all(
      ['multipart', 'resumable', 'chunked'].map(async (kind) => {
        const [content] = await bucket.file(`empty/${kind}`).download();
        const [metadata] = await bucket.file(`empty/${kind}`).getMetadata();
        return [content.length, metadata.size, metadata.crc32c];
      }),
    );

    // Assert
    expect(sizes).toEqual([
      [0, '0', 'AAAAAA=='],
      [0, '0', 'AAAAAA=='],
      [0, '0', 'AAAAAA=='],
    ]);
  });

  it('serves gzip-stored objects so that the client can validate and decompress them', async () => {
    // Arrange
    const file = storage.bucket('data-bucket').file('gzip/data.txt');
    const text = 'compress me '.repeat(1000);

    // Act
    await file.save(text, { resumable: false, gzip: true });
    const [content] = await file.download();
    const [metadata] = await file.getMetadata();
    const plain = await fetch(`${server.url}/storage/v1/b/data-bucket/o/gzip%2Fdata.txt?alt=media`, {
      headers: { 'Accept-Encoding': 'identity' },
    });

    // Assert
    expect(metadata.contentEncoding).toBe('gzip');
    expect(Number(metadata.size)).toBeLessThan(text.length);
    expect(content.toString()).toBe(text);
    expect(await plain.text()).toBe(text);
  });

  it('handles object names with any characters', async () => {
    // Arrange
    const names = [
      'weird/ä ö #?&=+%/..',
      'space name',
      'dots/../x',
      './a',
      'emoji/😀/file',
      'a//b',
      '%2F%zz',
    ];
    const bucket = storage.bucket('data-bucket');

    // Act
    for (const name of names) await bucket.file(name).save(name, { resumable: false });
    const contents = await Promise.all(
      names.map(async (name) => (await bucket.file(name).download())[0].toString()),
    );

    const dotDot = await failure(bucket.file('..').save('x', { resumable: false }));

    // Assert
    expect(contents).toEqual(names);
    expect(dotDot.code).toBe(400);
  });

  it('answers malformed requests with 400 in the GCS error shape', async () => {
    // Act
    const badJson = await fetch(`${server.url}/storage/v1/b?project=${PROJECT}`, {
      method: 'POST',
      body: '{nope',
    });
    const badEncoding = await fetch(`${server.url}/storage/v1/b/data-bucket/o/%E0%A4%A`);
    const badRange = await fetch(
      `${server.url}/upload/storage/v1/b/data-bucket/o?uploadType=resumable&name=r`,
      {
        method: 'POST',
      },
    ).then((res) =>
      fetch(res.headers.get('location') as string, {
        method: 'PUT',
        headers: { 'Content-Range': 'bytes x' },
      }),
    );
    const badMultipart = await fetch(
      `${server.url}/upload/storage/v1/b/data-bucket/o?uploadType=multipart&name=m`,
      {
        method: 'POST',
        headers: { 'Content-Type': 'multipart/related; boundary=zz' },
        body: 'garbage',
      },
    );

    // Assert
    for (const response of [badJson, badEncoding, badRange, badMultipart]) {
      expect(response.status).toBe(400);
      const body = (await response.json()) as { error: { code: number; errors: unknown[] } };
      expect(body.error.code).toBe(400);
      expect(body.error.errors).toHaveLength(1);
    }
  });

  it('works through STORAGE_EMULATOR_HOST, where the client drops the /storage/v1 prefix', async () => {
    // Arrange
    const previous = process.env.STORAGE_EMULATOR_HOST;
    process.env.STORAGE_EMULATOR_HOST = server.url;
    try {
      const viaEnv = new Storage({ projectId: PROJECT });
      const file = viaEnv.bucket('data-bucket').file('env/file.txt');

      // Act
      await file.save('via env', { resumable: false });
      const [content] = await file.download();
      const [files] = await viaEnv.bucket('data-bucket').getFiles({ prefix: 'env/' });

      // Assert
      expect(content.toString()).toBe('via env');
      expect(files.map((f) => f.name)).toEqual(['env/file.txt']);
    } finally {
      if (previous === undefined) delete process.env.STORAGE_EMULATOR_HOST;
      else process.env.STORAGE_EMULATOR_HOST = previous;
    }
  });
});

describe('local storage server with a data directory', () => {
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'storage-server-'));
  });

  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps buckets and objects across a restart', async () => {
    // Arrange
    const data = randomBytes(3 * 1024 * 1024);
    const first = await startStorageServer({ dataDir });
    const before = clientFor(first);
    await before.createBucket('persisted');
    await before
      .bucket('persisted')
      .file('dir/big.bin')
      .save(data, { resumable: true, chunkSize: 1024 * 1024 });
    await before.bucket('persisted').file('dir/small.txt').save('small', { resumable: false });
    await before
      .bucket('persisted')
      .file('dir/small.txt')
      .setMetadata({ metadata: { k: 'v' } });
    const [original] = await before.bucket('persisted').file('dir/small.txt').getMetadata();
    await first.close();

    // Act
    const second = await startStorageServer({ dataDir });
    try {
      const after = clientFor(second);
      const [exists] = await after.bucket('persisted').exists();
      const [big] = await after.bucket('persisted').file('dir/big.bin').download();
      const [metadata] = await after.bucket('persisted').file('dir/small.txt').getMetadata();
      const [files] = await after.bucket('persisted').getFiles();
      await after.bucket('persisted').file('dir/small.txt').save('newer', { resumable: false });
      const [newer] = await after.bucket('persisted').file('dir/small.txt').getMetadata();

      // Assert
      expect(exists).toBe(true);
      expect(big.equals(data)).toBe(true);
      expect(metadata).toMatchObject({
        generation: original.generation,
        metageneration: '2',
        metadata: { k: 'v' },
      });
      expect(files.map((f) => f.name)).toEqual(['dir/big.bin', 'dir/small.txt']);
      expect(BigInt(newer.generation as string)).toBeGreaterThan(BigInt(original.generation as string));
    } finally {
      await second.close();
    }
  });
});
