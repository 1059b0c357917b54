import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStorageServer, startStorageServer } from '#local/storage/server.js';

/**
 * The Cloud Storage JSON API as its reference documents it, spoken with curl (Google's Python
 * client is not packaged for Debian, so curl stands in for "a client nobody here wrote"). Each
 * case names the reference page it follows, relative to cloud.google.com/storage/docs/.
 */

const PROJECT = 'curl-project';
const BUCKET = 'curl-bucket';
const VERSIONED = 'curl-versioned';

let server: LocalStorageServer;
let workDir: string;
let sequence = 0;

interface Answer {
  status: number;
  headers: Record<string, string>;
  text: string;
  json: () => Record<string, unknown>;
}

/** Runs curl with ARGS against the server (URL paths are relative to it). */
function curl(...args: string[]): Promise<Answer> {
  sequence += 1;
  const headerFile = join(workDir, `h${sequence}`);
  const bodyFile = join(workDir, `b${sequence}`);
  const expanded = args.map((arg) => (arg.startsWith('/') ? `${server.url}${arg}` : arg));
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      ['-sS', '-D', headerFile, '-o', bodyFile, '-w', '%{http_code}', ...expanded],
      { timeout: 60_000 },
      (error, stdout) => {
        if (error) return reject(error);
        const headers: Record<string, string> = {};
        for (const line of readFileSync(headerFile, 'utf8').split('\r\n')) {
          const at = line.indexOf(':');
          if (at > 0) headers[line.slice(0, at).toLowerCase()] = line.slice(at + 1).trim();
        }
        const text = readFileSync(bodyFile, 'utf8');
        resolve({ status: Number(stdout), headers, text, json: () => JSON.parse(text) });
      },
    );
  });
}

function write(name: string, content: string): string {
  const path = join(workDir, name);
  writeFileSync(path, content);
  return path;
}

async function upload(bucket: string, name: string, content: string): Promise<Record<string, unknown>> {
  const answer = await curl(
    '-X',
    'POST',
    '--data-binary',
    `@${write(`up-${sequence}`, content)}`,
    '-H',
    'Content-Type: text/plain',
    `/upload/storage/v1/b/${bucket}/o?uploadType=media&name=${encodeURIComponent(name)}`,
  );
  expect(answer.status, answer.text).toBe(200);
  return answer.json();
}

beforeAll(async () => {
  server = await startStorageServer();
  workDir = mkdtempSync(join(tmpdir(), 'batchwire-curl-'));
  for (const body of [{ name: BUCKET }, { name: VERSIONED, versioning: { enabled: true } }]) {
    const answer = await curl(
      '-X',
      'POST',
      '-H',
      'Content-Type: application/json',
      '--data',
      JSON.stringify(body),
      `/storage/v1/b?project=${PROJECT}`,
    );
    expect(answer.status, answer.text).toBe(200);
  }
});

afterAll(async () => {
  await server?.close();
  rmSync(workDir, { recursive: true, force: true });
});

describe.concurrent('the JSON API with curl, case by case from the reference', () => {
  it('uploads with uploadType=media — uploading-objects (JSON API), json_api/v1/objects/insert', async () => {
    const resource = await upload(BUCKET, 'media/a.txt', 'hello');

    expect(resource).toMatchObject({ kind: 'storage#object', name: 'media/a.txt', size: '5' });
    expect(resource.md5Hash).toBe(createHash('md5').update('hello').digest('base64'));
  });

  it('uploads with uploadType=multipart — uploading-objects (JSON API, multipart upload)', async () => {
    const body = [
      '--separator_string',
      'Content-Type: application/json; charset=UTF-8',
      '',
      '{"name": "multipart/m.txt", "metadata": {"owner": "acme"}}',
      '',
      '--separator_string',
      'Content-Type: text/plain',
      '',
      'multipart body',
      '--separator_string--',
      '',
    ].join('\n');

    const answer = await curl(
      '-X',
      'POST',
      '--data-binary',
      `@${write('multipart.txt', body)}`,
      '-H',
      'Content-Type: multipart/related; boundary=separator_string',
      `/upload/storage/v1/b/${BUCKET}/o?uploadType=multipart`,
    );

    expect(answer.status, answer.text).toBe(200);
    expect(answer.json()).toMatchObject({
      name: 'multipart/m.txt',
      size: '14',
      contentType: 'text/plain',
      metadata: { owner: 'acme' },
    });
  });

  it('uploads resumably: initiate, then PUT to the session URI — performing-resumable-uploads', async () => {
    const initiated = await curl(
      '-X',
      'POST',
      '-H',
      'Content-Type: application/json',
      '-H',
      'X-Upload-Content-Type: text/csv',
      '--data',
      JSON.stringify({ name: 'resumable/r.csv' }),
      `/upload/storage/v1/b/${BUCKET}/o?uploadType=resumable`,
    );
    expect(initiated.status, initiated.text).toBe(200);
    const session = initiated.headers.location as string;

    const put = await curl('-X', 'PUT', '--data-binary', `@${write('r.csv', 'a,b\n1,2\n')}`, session);

    expect(put.status, put.text).toBe(200);
    expect(put.json()).toMatchObject({ name: 'resumable/r.csv', size: '8', contentType: 'text/csv' });
  });

  it('downloads a byte range with alt=media — downloading-objects, json_api/v1/objects/get', async () => {
    await upload(BUCKET, 'range/digits.txt', '0123456789');

    const answer = await curl(
      '-H',
      'Range: bytes=2-5',
      `/storage/v1/b/${BUCKET}/o/range%2Fdigits.txt?alt=media`,
    );

    expect(answer.status).toBe(206);
    expect(answer.text).toBe('2345');
    expect(answer.headers['content-range']).toBe('bytes 2-5/10');
  });

  it('lists by matchGlob — listing-objects (filter by object glob), json_api/v1/objects/list', async () => {
    await Promise.all(
      ['glob/a/x.csv', 'glob/a/b/y.csv', 'glob/a/z.json', 'glob/top.csv'].map((name) =>
        upload(BUCKET, name, name),
      ),
    );
    const list = async (glob: string) => {
      const answer = await curl(`/storage/v1/b/${BUCKET}/o?matchGlob=${encodeURIComponent(glob)}`);
      expect(answer.status, answer.text).toBe(200);
      return ((answer.json().items ?? []) as Array<{ name: string }>).map((item) => item.name).sort();
    };

    expect(await list('glob/a/*.csv')).toEqual(['glob/a/x.csv']);
    expect(await list('glob/**.csv')).toEqual(['glob/a/b/y.csv', 'glob/a/x.csv', 'glob/top.csv']);
    expect(await list('glob/a/*.{csv,json}')).toEqual(['glob/a/x.csv', 'glob/a/z.json']);
    expect(await list('glob/a/?.json')).toEqual(['glob/a/z.json']);
    expect(await list('glob/a/??.json')).toEqual([]);
  });

  it('refuses a malformed matchGlob with 400 instead of listing everything — json_api/v1/objects/list', async () => {
    const answer = await curl(`/storage/v1/b/${BUCKET}/o?matchGlob=${encodeURIComponent('glob/[a')}`);

    expect(answer.status).toBe(400);
    expect(answer.json()).toMatchObject({ error: { code: 400 } });
  });

  it('reads versions=True as true — json_api/v1/objects/list (versions: boolean)', async () => {
    await upload(VERSIONED, 'v.txt', 'one');
    await upload(VERSIONED, 'v.txt', 'two');

    const upper = await curl(`/storage/v1/b/${VERSIONED}/o?versions=True`);
    const lower = await curl(`/storage/v1/b/${VERSIONED}/o?versions=false`);
    const bad = await curl(`/storage/v1/b/${VERSIONED}/o?versions=maybe`);

    expect((upper.json().items as unknown[]).length).toBe(2);
    expect((lower.json().items as unknown[]).length).toBe(1);
    expect(bad.status).toBe(400);
  });

  it('reads includeTrailingDelimiter=True — json_api/v1/objects/list', async () => {
    await Promise.all([upload(BUCKET, 'trail/dir/', ''), upload(BUCKET, 'trail/dir/f.txt', 'f')]);

    const answer = await curl(
      `/storage/v1/b/${BUCKET}/o?prefix=trail/&delimiter=/&includeTrailingDelimiter=True`,
    );

    expect(answer.json()).toMatchObject({ prefixes: ['trail/dir/'], items: [{ name: 'trail/dir/' }] });
  });

  it('answers fields= with a partial response — performance (partial response)', async () => {
    await upload(BUCKET, 'fields/f.txt', 'partial');

    const object = await curl(`/storage/v1/b/${BUCKET}/o/fields%2Ff.txt?fields=name,size`);
    const list = await curl(
      `/storage/v1/b/${BUCKET}/o?prefix=fields/&fields=items(name,contentType),nextPageToken`,
    );
    const bad = await curl(`/storage/v1/b/${BUCKET}/o?fields=items(name`);

    expect(object.json()).toEqual({ name: 'fields/f.txt', size: '7' });
    expect(list.json()).toEqual({ items: [{ name: 'fields/f.txt', contentType: 'text/plain' }] });
    expect(bad.status).toBe(400);
  });

  it('composes with "generation": null sources — json_api/v1/objects/compose', async () => {
    await Promise.all([upload(BUCKET, 'compose/1', 'ab'), upload(BUCKET, 'compose/2', 'cd')]);
    const body = {
      sourceObjects: [
        { name: 'compose/1', generation: null },
        { name: 'compose/2', generation: null, objectPreconditions: null },
      ],
      destination: { contentType: 'text/plain' },
    };

    const answer = await curl(
      '-X',
      'POST',
      '-H',
      'Content-Type: application/json',
      '--data',
      JSON.stringify(body),
      `/storage/v1/b/${BUCKET}/o/compose%2Fall/compose`,
    );
    const content = await curl(`/storage/v1/b/${BUCKET}/o/compose%2Fall?alt=media`);

    expect(answer.status, answer.text).toBe(200);
    expect(answer.json()).toMatchObject({ name: 'compose/all', size: '4', componentCount: 2 });
    expect(content.text).toBe('abcd');
  });

  it('gets the storage layout — json_api/v1/buckets/getStorageLayout', async () => {
    const answer = await curl(`/storage/v1/b/${BUCKET}/storageLayout`);
    const missing = await curl('/storage/v1/b/no-such-bucket/storageLayout');

    expect(answer.status).toBe(200);
    expect(answer.json()).toMatchObject({
      kind: 'storage#storageLayout',
      bucket: BUCKET,
      locationType: 'region',
      hierarchicalNamespace: { enabled: false },
    });
    expect(typeof answer.json().location).toBe('string');
    expect(missing.status).toBe(404);
  });

  it('answers a missing object with 404 in the JSON error shape — json_api/v1/status-codes', async () => {
    const answer = await curl(`/storage/v1/b/${BUCKET}/o/nothing-here`);

    expect(answer.status).toBe(404);
    expect(answer.json()).toMatchObject({
      error: { code: 404, errors: [{ domain: 'global', reason: 'notFound' }] },
    });
  });
});
