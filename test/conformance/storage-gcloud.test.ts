import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gcloudStorageEnv } from '#local/platform/env-file.js';
import { type LocalStorageServer, startStorageServer } from '#local/storage/server.js';

/**
 * gcloud's storage commands, as a client or an operator types them, against the local Cloud
 * Storage server, with only what `.batchwire/env` gives gcloud (gcloudStorageEnv) and a fresh
 * CLOUDSDK_CONFIG. Each case names the gcloud reference page it follows
 * (cloud.google.com/sdk/gcloud/reference/storage/…). gcloud starts in 1–2 s, so the cases run
 * concurrently, each under its own prefix.
 */

const PROJECT = 'conformance-project';
const BUCKET = 'conformance-bucket';

let server: LocalStorageServer;
let configDir: string;
let workDir: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `gcloud ARGS` with the local storage settings only (no CLOUDSDK_* of the caller). */
function gcloud(...args: string[]): Promise<Run> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('CLOUDSDK_') && !key.startsWith('GOOGLE_')) env[key] = value;
  }
  Object.assign(env, gcloudStorageEnv(server.url, PROJECT), {
    CLOUDSDK_CONFIG: configDir,
    METADATA_SERVER_DETECTION: 'none',
  });
  return new Promise((resolve) => {
    execFile(
      'gcloud',
      args,
      { env, timeout: 150_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** gcloud succeeded, or the test fails with what gcloud said. */
async function ok(...args: string[]): Promise<string> {
  const run = await gcloud(...args);
  expect(run.code, `gcloud ${args.join(' ')}\n${run.stderr}`).toBe(0);
  return run.stdout;
}

/** Seeds an object through the JSON API (simple upload), independent of gcloud. */
async function seed(name: string, body: string | Buffer, contentType = 'text/plain'): Promise<void> {
  const url = `${server.url}/upload/storage/v1/b/${BUCKET}/o?uploadType=media&name=${encodeURIComponent(name)}`;
  const response = await fetch(url, { method: 'POST', headers: { 'Content-Type': contentType }, body });
  expect(response.status).toBe(200);
}

/** The object's JSON API resource, or undefined when it does not exist. */
async function stat(name: string): Promise<Record<string, unknown> | undefined> {
  const response = await fetch(`${server.url}/storage/v1/b/${BUCKET}/o/${encodeURIComponent(name)}`);
  if (response.status === 404) return undefined;
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

async function bytesOf(name: string): Promise<Buffer> {
  const response = await fetch(
    `${server.url}/storage/v1/b/${BUCKET}/o/${encodeURIComponent(name)}?alt=media`,
  );
  expect(response.status).toBe(200);
  return Buffer.from(await response.arrayBuffer());
}

async function names(prefix: string): Promise<string[]> {
  const response = await fetch(`${server.url}/storage/v1/b/${BUCKET}/o?prefix=${encodeURIComponent(prefix)}`);
  const body = (await response.json()) as { items?: Array<{ name: string }> };
  return (body.items ?? []).map((item) => item.name).sort();
}

function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('base64');
}

beforeAll(async () => {
  server = await startStorageServer();
  configDir = mkdtempSync(join(tmpdir(), 'batchwire-gcloud-config-'));
  workDir = mkdtempSync(join(tmpdir(), 'batchwire-gcloud-files-'));
  const created = await fetch(`${server.url}/storage/v1/b?project=${PROJECT}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: BUCKET }),
  });
  expect(created.status).toBe(200);
});

afterAll(async () => {
  await server?.close();
  rmSync(configDir, { recursive: true, force: true });
  rmSync(workDir, { recursive: true, force: true });
});

// gcloud costs ~2 s of CPU per command: on a loaded 2-core machine a command can take 30 s.
describe.concurrent('gcloud storage against the local Cloud Storage', { timeout: 300_000 }, () => {
  it('cp uploads a small file (multipart, LF line ends, quoted boundary) — reference/storage/cp', async () => {
    const file = join(workDir, 'small.csv');
    writeFileSync(file, 'a,b\n1,2\n');

    await ok('storage', 'cp', file, `gs://${BUCKET}/cp-small/inputs/small.csv`);

    expect((await bytesOf('cp-small/inputs/small.csv')).toString()).toBe('a,b\n1,2\n');
    expect((await stat('cp-small/inputs/small.csv'))?.contentType).toBe('text/csv');
  });

  it('cp uploads a file above the resumable threshold (8 MiB) — reference/storage/cp', async () => {
    const data = randomBytes(9 * 1024 * 1024);
    const file = join(workDir, 'large.bin');
    writeFileSync(file, data);

    await ok('storage', 'cp', file, `gs://${BUCKET}/cp-large/large.bin`);

    const resource = await stat('cp-large/large.bin');
    expect(resource?.size).toBe(String(data.length));
    expect(resource?.md5Hash).toBe(md5(data));
  });

  it('cp downloads an object to a local file — reference/storage/cp', async () => {
    await seed('cp-down/report.txt', 'downloaded\n');
    const target = join(workDir, 'report-copy.txt');

    await ok('storage', 'cp', `gs://${BUCKET}/cp-down/report.txt`, target);

    expect(readFileSync(target, 'utf8')).toBe('downloaded\n');
  });

  it('ls lists a prefix, with sizes (-l) and a wildcard — reference/storage/ls', async () => {
    await Promise.all([seed('ls/a.txt', 'aaa'), seed('ls/b.csv', 'bbbbb'), seed('ls/sub/c.txt', 'c')]);

    const plain = await ok('storage', 'ls', `gs://${BUCKET}/ls/`);
    const long = await ok('storage', 'ls', '-l', `gs://${BUCKET}/ls/*.csv`);
    const recursive = await ok('storage', 'ls', `gs://${BUCKET}/ls/**`);

    expect(plain.trim().split('\n').sort()).toEqual([
      `gs://${BUCKET}/ls/a.txt`,
      `gs://${BUCKET}/ls/b.csv`,
      `gs://${BUCKET}/ls/sub/`,
    ]);
    expect(long).toMatch(new RegExp(`^\\s*5\\s+\\S+\\s+gs://${BUCKET}/ls/b\\.csv$`, 'm'));
    expect(long).not.toContain('a.txt');
    expect(recursive).toContain(`gs://${BUCKET}/ls/sub/c.txt`);
  });

  it('cat prints an object — reference/storage/cat', async () => {
    await seed('cat/hello.txt', 'hello from the local cloud\n');

    expect(await ok('storage', 'cat', `gs://${BUCKET}/cat/hello.txt`)).toBe('hello from the local cloud\n');
  });

  it('mv moves an object (getStorageLayout, rewrite, delete) — reference/storage/mv', async () => {
    await seed('mv/from.txt', 'moving');

    await ok('storage', 'mv', `gs://${BUCKET}/mv/from.txt`, `gs://${BUCKET}/mv/to.txt`);

    expect(await stat('mv/from.txt')).toBeUndefined();
    expect((await bytesOf('mv/to.txt')).toString()).toBe('moving');
  });

  it('rm deletes one object, and rm -r a whole prefix — reference/storage/rm', async () => {
    await Promise.all([
      seed('rm/one.txt', '1'),
      seed('rm/keep.txt', 'k'),
      seed('rm/tree/a.txt', 'a'),
      seed('rm/tree/deep/b.txt', 'b'),
    ]);

    await ok('storage', 'rm', `gs://${BUCKET}/rm/one.txt`);
    await ok('storage', 'rm', '-r', `gs://${BUCKET}/rm/tree`);

    expect(await names('rm/')).toEqual(['rm/keep.txt']);
  });

  it('rm of a missing object fails with a non-zero exit — reference/storage/rm', async () => {
    const run = await gcloud('storage', 'rm', `gs://${BUCKET}/rm-missing/nothing.txt`);

    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/matched no objects|not found/i);
  });

  it('du reports sizes per object and summarised (-s) — reference/storage/du', async () => {
    await Promise.all([seed('du/a.bin', Buffer.alloc(100)), seed('du/b.bin', Buffer.alloc(23))]);

    const each = await ok('storage', 'du', `gs://${BUCKET}/du/`);
    const summary = await ok('storage', 'du', '-s', `gs://${BUCKET}/du/`);

    expect(each).toMatch(new RegExp(`^100\\s+gs://${BUCKET}/du/a\\.bin$`, 'm'));
    expect(each).toMatch(new RegExp(`^23\\s+gs://${BUCKET}/du/b\\.bin$`, 'm'));
    expect(summary).toMatch(new RegExp(`^123\\s+gs://${BUCKET}/du/?$`, 'm'));
  });

  it('objects describe shows the object — reference/storage/objects/describe', async () => {
    await seed('describe/x.json', '{"k":1}', 'application/json');

    const described = JSON.parse(
      await ok('storage', 'objects', 'describe', `gs://${BUCKET}/describe/x.json`, '--format=json'),
    ) as Record<string, unknown>;

    expect(described.name).toBe('describe/x.json');
    expect(described.size).toBe(7);
    expect(described.content_type).toBe('application/json');
  });

  it('objects update sets content type and custom metadata — reference/storage/objects/update', async () => {
    await seed('update/x.txt', 'x');

    await ok(
      'storage',
      'objects',
      'update',
      `gs://${BUCKET}/update/x.txt`,
      '--content-type=text/csv',
      '--custom-metadata=owner=acme',
    );

    const resource = await stat('update/x.txt');
    expect(resource?.contentType).toBe('text/csv');
    expect(resource?.metadata).toEqual({ owner: 'acme' });
    expect(resource?.metageneration).toBe('2');
  });

  it('buckets describe shows the bucket — reference/storage/buckets/describe', async () => {
    const described = JSON.parse(
      await ok('storage', 'buckets', 'describe', `gs://${BUCKET}`, '--format=json'),
    ) as Record<string, unknown>;

    expect(described.name).toBe(BUCKET);
    expect(described.storage_url).toBe(`gs://${BUCKET}/`);
  });
});
