import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Bucket, Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStorageServer, startStorageServer } from '#local/storage/server.js';
import { ensureBuilt } from '../helpers/dist.js';
import { REPO_ROOT } from '../helpers/platform.js';
import { runTask } from '../helpers/tasks.js';

// The task image holds only package.json and dist/tasks/ (reference-tasks/Dockerfile): no node_modules.
// A copy laid out the same way, outside the repository, proves the bundles carry every
// dependency they load, lazily loaded chunks included.
const BUCKET = 'batchwire-bundle-it';
let app: string;
let server: LocalStorageServer;
let bucket: Bucket;

beforeAll(async () => {
  await ensureBuilt();
  app = mkdtempSync(join(tmpdir(), 'batchwire-task-image-'));
  cpSync(join(REPO_ROOT, 'package.json'), join(app, 'package.json'));
  cpSync(join(REPO_ROOT, 'dist', 'tasks'), join(app, 'dist', 'tasks'), { recursive: true });
  server = await startStorageServer();
  const storage = new Storage({ apiEndpoint: server.url, projectId: 'batchwire-local' });
  [bucket] = await storage.createBucket(BUCKET);
}, 120_000);

afterAll(async () => {
  await server?.close();
  if (app) rmSync(app, { recursive: true, force: true });
});

describe('bundled tasks', () => {
  it('run from a copy with no node_modules in reach, as the task image runs them', async () => {
    // Arrange: the copy cannot resolve the Storage client from node_modules.
    expect(() =>
      createRequire(join(app, 'dist', 'tasks', 'inference.js')).resolve('@google-cloud/storage'),
    ).toThrow();
    await bucket.file('mlops-template/acme/inputs/texts.jsonl').save('{"text":"hello"}\n{"text":"world"}\n');

    // Act
    const run = await runTask(join(app, 'dist', 'tasks', 'inference.js'), {
      STORAGE_EMULATOR_HOST: server.url,
      BATCHWIRE_INPUT_URI: `gs://${BUCKET}/mlops-template/acme/inputs/texts.jsonl`,
      BATCHWIRE_OUTPUT_URI: `gs://${BUCKET}/mlops-template/acme/outputs/bundle/`,
    });

    // Assert: the whole path ran (ranged read, single-request upload, manifest precondition)
    expect(run, run.stderr).toMatchObject({ code: 0 });
    const [part] = await bucket.file('mlops-template/acme/outputs/bundle/part-00000.jsonl').download();
    const texts = part
      .toString('utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line).text);
    expect(texts).toEqual(['HELLO', 'WORLD']);
    const [manifest] = await bucket.file('mlops-template/acme/outputs/bundle/manifest.json').download();
    expect(JSON.parse(manifest.toString('utf8'))).toMatchObject({ taskCount: 1, records: 2, rejects: 0 });
  });

  it('stream a part too large for one request through a resumable upload (its lazily loaded fetch)', async () => {
    // Arrange: 80,000 records, whose output (over 5 MB) goes through a resumable upload.
    const lines = Array.from({ length: 80_000 }, (_, i) => JSON.stringify({ text: `line ${i}` }));
    await bucket.file('mlops-template/acme/inputs/large.jsonl').save(`${lines.join('\n')}\n`);

    // Act
    const run = await runTask(join(app, 'dist', 'tasks', 'inference.js'), {
      STORAGE_EMULATOR_HOST: server.url,
      BATCHWIRE_INPUT_URI: `gs://${BUCKET}/mlops-template/acme/inputs/large.jsonl`,
      BATCHWIRE_OUTPUT_URI: `gs://${BUCKET}/mlops-template/acme/outputs/large/`,
    });

    // Assert
    expect(run, run.stderr).toMatchObject({ code: 0 });
    const [metadata] = await bucket.file('mlops-template/acme/outputs/large/part-00000.jsonl').getMetadata();
    expect(Number(metadata.size)).toBeGreaterThan(5_000_000);
    expect(metadata.metadata).toMatchObject({ 'batchwire-records': '80000' });
    const [manifest] = await bucket.file('mlops-template/acme/outputs/large/manifest.json').download();
    expect(JSON.parse(manifest.toString('utf8'))).toMatchObject({ records: 80_000 });
  });
});
