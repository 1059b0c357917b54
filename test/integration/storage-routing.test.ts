import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStorageServer, startStorageServer } from '#local/storage/server.js';

/**
 * Which handler each method and path reach, over raw HTTP: `node:http` sends the path exactly as
 * written (fetch would normalise `/./` and decode nothing), so these cases pin the routing rules
 * the real clients rely on: the API prefixes, `%2F` inside a name, unnormalised names, which
 * shapes answer 404, 405 or 501.
 */

const BUCKET = 'route-bucket';

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: () => Record<string, unknown>;
}

let server: LocalStorageServer;

function raw(
  method: string,
  path: string,
  options: { body?: string; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: server.port, method, path, headers: options.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json: () => JSON.parse(text) as Record<string, unknown>,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

async function upload(name: string, content: string): Promise<void> {
  const response = await raw(
    'POST',
    `/upload/storage/v1/b/${BUCKET}/o?uploadType=media&name=${encodeURIComponent(name)}`,
    { body: content, headers: { 'Content-Type': 'text/plain' } },
  );
  expect(response.status).toBe(200);
}

describe('local storage server routing', () => {
  beforeAll(async () => {
    server = await startStorageServer();
    const created = await raw('POST', '/storage/v1/b?project=p', {
      body: JSON.stringify({ name: BUCKET }),
      headers: { 'Content-Type': 'application/json' },
    });
    expect(created.status).toBe(200);
    await upload('plain.txt', 'plain');
    await upload('a/compose', 'an object named like the compose action');
    await upload('a/./b', 'a name with a dot segment');
  });

  afterAll(async () => {
    await server.close();
  });

  it.each([
    ['GET', '/storage/v1/b?project=p', 'storage#buckets'],
    ['GET', '/storage/v1/b/?project=p', 'storage#buckets'],
    ['GET', '/b?project=p', 'storage#buckets'],
    ['GET', `/storage/v1/b/${BUCKET}`, 'storage#bucket'],
    ['GET', `/storage/v1/b/${BUCKET}/`, 'storage#bucket'],
    ['GET', `/b/${BUCKET}`, 'storage#bucket'],
    ['GET', `/storage/v1/b/${BUCKET}/storageLayout`, 'storage#storageLayout'],
    ['GET', `/storage/v1/b/${BUCKET}/o`, 'storage#objects'],
    ['GET', `/download/storage/v1/b/${BUCKET}/o`, 'storage#objects'],
    ['GET', `/storage/v1/b/${BUCKET}/o/plain.txt`, 'storage#object'],
    ['GET', '/storage/v1/projects/p/serviceAccount', 'storage#serviceAccount'],
  ])('%s %s answers 200 with a %s resource', async (method, path, kind) => {
    // Act
    const response = await raw(method, path);

    // Assert
    expect(response.status).toBe(200);
    expect(response.json().kind).toBe(kind);
  });

  it.each([
    ['an encoded slash', `/storage/v1/b/${BUCKET}/o/a%2Fcompose`, 'a/compose'],
    ['an unencoded slash (compose is POST only)', `/storage/v1/b/${BUCKET}/o/a/compose`, 'a/compose'],
    ['a dot segment, never normalised', `/storage/v1/b/${BUCKET}/o/a/./b`, 'a/./b'],
    ['an encoded dot segment', `/storage/v1/b/${BUCKET}/o/a%2F.%2Fb`, 'a/./b'],
  ])('reads the object named by the rest of the path, with %s', async (_case, path, name) => {
    // Act
    const response = await raw('GET', path);

    // Assert
    expect(response.status).toBe(200);
    expect(response.json().name).toBe(name);
  });

  it.each([
    ['the download API', `/download/storage/v1/b/${BUCKET}/o/plain.txt`],
    ['alt=media', `/storage/v1/b/${BUCKET}/o/plain.txt?alt=media`],
    ['alt=media without /storage/v1', `/b/${BUCKET}/o/plain.txt?alt=media`],
  ])('serves the bytes through %s', async (_case, path) => {
    // Act
    const response = await raw('GET', path);

    // Assert
    expect(response.status).toBe(200);
    expect(response.text).toBe('plain');
  });

  it.each([
    ['POST', '/storage/v1/projects/p/serviceAccount'],
    ['PUT', '/storage/v1/b'],
    ['POST', `/storage/v1/b/${BUCKET}`],
    ['POST', `/storage/v1/b/${BUCKET}/storageLayout`],
    ['POST', `/storage/v1/b/${BUCKET}/o`],
    ['POST', `/storage/v1/b/${BUCKET}/o/plain.txt`],
    ['GET', `/storage/v1/b/${BUCKET}/o/plain.txt/copyTo/b/${BUCKET}/o/copy.txt`],
    ['DELETE', `/storage/v1/b/${BUCKET}/o/plain.txt/rewriteTo/b/${BUCKET}/o/copy.txt`],
    ['GET', `/upload/storage/v1/b/${BUCKET}/o`],
    ['DELETE', `/upload/storage/v1/b/${BUCKET}/o`],
    ['GET', `/upload/storage/v1/b/${BUCKET}/o?upload_id=any`],
  ])('%s %s answers 405', async (method, path) => {
    // Act
    const response = await raw(method, path);

    // Assert
    expect(response.status).toBe(405);
    expect(response.json()).toMatchObject({ error: { code: 405 } });
  });

  it.each([
    ['GET', '/storage/v1/other'],
    ['GET', '/storage/v1/projects/p/serviceAccount/more'],
    ['GET', '/upload/storage/v1/projects/p/serviceAccount'],
    ['POST', `/upload/storage/v1/b/${BUCKET}`],
    ['POST', `/upload/storage/v1/b/${BUCKET}/o/name`],
    ['POST', '/upload/storage/v1/other'],
    ['GET', `/storage/v1/b/${BUCKET}/o/missing`],
    ['GET', '/storage/v1/b/missing-bucket/o'],
    ['PUT', `/upload/storage/v1/b/${BUCKET}/o?upload_id=unknown`],
  ])('%s %s answers 404', async (method, path) => {
    // Act
    const response = await raw(method, path);

    // Assert
    expect(response.status).toBe(404);
    expect(response.json()).toMatchObject({ error: { code: 404 } });
  });

  it.each([
    ['GET', `/storage/v1/b/${BUCKET}/acl`],
    ['GET', `/storage/v1/b/${BUCKET}/storageLayout/more`],
  ])('%s %s (an API this server lacks) answers 501', async (method, path) => {
    // Act
    const response = await raw(method, path);

    // Assert
    expect(response.status).toBe(501);
    expect(response.json()).toMatchObject({ error: { code: 501 } });
  });

  it.each([
    ['malformed percent-encoding', 'GET', `/storage/v1/b/${BUCKET}/o/%E0%A4%A`],
    ['an upload without uploadType', 'POST', `/upload/storage/v1/b/${BUCKET}/o?name=x`],
    ['a malformed fields= selector', 'GET', `/storage/v1/b/${BUCKET}/o?fields=items(name`],
    ['a non-integer generation', 'GET', `/storage/v1/b/${BUCKET}/o/plain.txt?generation=x`],
    ['a non-boolean versions', 'GET', `/storage/v1/b/${BUCKET}/o?versions=yes`],
  ])('answers 400 to %s', async (_case, method, path) => {
    // Act
    const response = await raw(method, path);

    // Assert
    expect(response.status).toBe(400);
    expect(response.json()).toMatchObject({ error: { code: 400 } });
  });

  it('refuses a malformed fields= selector before an upload lands', async () => {
    // Act
    const response = await raw(
      'POST',
      `/upload/storage/v1/b/${BUCKET}/o?uploadType=media&name=refused.txt&fields=name)`,
      { body: 'never stored' },
    );
    const after = await raw('GET', `/storage/v1/b/${BUCKET}/o/refused.txt`);

    // Assert
    expect(response.status).toBe(400);
    expect(after.status).toBe(404);
  });

  it('copies and rewrites to a destination whose name keeps its unencoded slashes', async () => {
    // Act
    const copied = await raw('POST', `/storage/v1/b/${BUCKET}/o/plain.txt/copyTo/b/${BUCKET}/o/copies/one`);
    const rewritten = await raw(
      'POST',
      `/storage/v1/b/${BUCKET}/o/plain.txt/rewriteTo/b/${BUCKET}/o/copies/two`,
    );

    // Assert
    expect(copied.status).toBe(200);
    expect(copied.json()).toMatchObject({ kind: 'storage#object', name: 'copies/one' });
    expect(rewritten.status).toBe(200);
    expect(rewritten.json()).toMatchObject({
      kind: 'storage#rewriteResponse',
      done: true,
      resource: { name: 'copies/two' },
    });
  });

  it('starts a resumable upload on the /resumable/upload path gcloud uses, and cancels it with 499', async () => {
    // Act
    const started = await raw(
      'POST',
      `/resumable/upload/storage/v1/b/${BUCKET}/o?uploadType=resumable&name=resumed.txt`,
      { body: '{}', headers: { 'Content-Type': 'application/json' } },
    );
    const uploadId = String(started.headers['x-guploader-uploadid']);
    const cancelled = await raw('DELETE', `/upload/storage/v1/b/${BUCKET}/o?upload_id=${uploadId}`);
    const cancelledAgain = await raw('DELETE', `/upload/storage/v1/b/${BUCKET}/o?upload_id=${uploadId}`);

    // Assert
    expect(started.status).toBe(200);
    expect(String(started.headers.location)).toBe(
      `http://127.0.0.1:${server.port}/upload/storage/v1/b/${BUCKET}/o?uploadType=resumable&name=resumed.txt&upload_id=${uploadId}`,
    );
    expect(cancelled.status).toBe(499);
    expect(cancelledAgain.status).toBe(404);
  });

  it('answers HEAD on an object with headers and no body', async () => {
    // Act
    const metadata = await raw('HEAD', `/storage/v1/b/${BUCKET}/o/plain.txt`);
    const media = await raw('HEAD', `/storage/v1/b/${BUCKET}/o/plain.txt?alt=media`);

    // Assert
    expect(metadata.status).toBe(200);
    expect(metadata.text).toBe('');
    expect(media.status).toBe(200);
    expect(media.headers['content-length']).toBe('5');
    expect(media.text).toBe('');
  });

  it('patches, then deletes, an object through its path', async () => {
    // Arrange
    await upload('short-lived.txt', 'soon gone');

    // Act
    const patched = await raw('PATCH', `/storage/v1/b/${BUCKET}/o/short-lived.txt`, {
      body: JSON.stringify({ metadata: { k: 'v' } }),
      headers: { 'Content-Type': 'application/json' },
    });
    const deleted = await raw('DELETE', `/storage/v1/b/${BUCKET}/o/short-lived.txt`);
    const after = await raw('GET', `/storage/v1/b/${BUCKET}/o/short-lived.txt`);

    // Assert
    expect(patched.status).toBe(200);
    expect(patched.json()).toMatchObject({ metageneration: '2', metadata: { k: 'v' } });
    expect(deleted.status).toBe(204);
    expect(after.status).toBe(404);
  });
});
