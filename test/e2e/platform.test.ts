import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchServiceClient } from '@google-cloud/batch';
import { type Message, PubSub, type Subscription } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClientOptions } from '#shared/clients/endpoints.js';
import { parseConfig } from '#shared/config/load.js';
import { outputTopic } from '#shared/plan/names.js';
import { CLI, type CliPlatform, REPO_ROOT, startCliPlatform } from '../helpers/platform.js';

/**
 * The whole platform through its public entry points: `batchwire dev` started as a user starts
 * it, uploads with the real Storage client, results received with the real Pub/Sub client on
 * each client's topic, outputs read back from the bucket.
 */

const CONFIG_PATH = join(REPO_ROOT, 'test', 'fixtures', 'e2e', 'batchwire.yaml');
const config = parseConfig(readFileSync(CONFIG_PATH, 'utf8'), CONFIG_PATH);

interface Received {
  type: string;
  id: string;
  data: Record<string, unknown> & { job?: { name: string; taskCount: number; state: string } };
}

/** Every event a client's topic receives during the run. */
class TopicRecorder {
  readonly events: Received[] = [];
  constructor(readonly subscription: Subscription) {
    subscription.on('message', (message: Message) => {
      this.events.push({
        type: message.attributes['ce-type'] ?? '',
        id: message.attributes['ce-id'] ?? '',
        data: JSON.parse(message.data.toString('utf8')),
      });
      message.ack();
    });
  }

  /** Waits for the first event that matches. */
  async next(match: (event: Received) => boolean, timeoutMs = 60_000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = this.events.find(match);
      if (found) return found;
      await sleep(100);
    }
    throw new Error(
      `no matching event within ${timeoutMs} ms; received: ${JSON.stringify(this.events.map((e) => e.type))}`,
    );
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const aboutJob = (jobId: string) => (event: Received) =>
  event.data.job?.name.endsWith(`/jobs/${jobId}`) ?? false;

let platform: CliPlatform;
let storage: Storage;
let pubsub: PubSub;
let batch: BatchServiceClient;
const topics: Record<string, TopicRecorder> = {};
const workDir = mkdtempSync(join(tmpdir(), 'batchwire-e2e-inputs-'));

/** Uploads `content` as a client does; resolves with what onUpload will derive the job from. */
async function upload(product: string, client: string, file: string, content: string) {
  const name = `${product}/${client}/inputs/${file}`;
  const path = join(workDir, file);
  writeFileSync(path, content);
  const [object] = await storage.bucket(config.bucket).upload(path, { destination: name });
  return { name, generation: String(object.metadata.generation), size: String(object.metadata.size) };
}

async function jobsFor(inputName: string): Promise<string[]> {
  const [jobs] = await batch.listJobs({ parent: `projects/${config.project}/locations/${config.region}` });
  return jobs
    .filter((job) =>
      job.taskGroups?.[0]?.taskSpec?.environment?.variables?.BATCHWIRE_INPUT_URI?.endsWith(`/${inputName}`),
    )
    .map((job) => job.name as string);
}

function records(count: number, tag: string): string {
  return Array.from({ length: count }, (_, i) =>
    JSON.stringify({ id: `${tag}-${String(i).padStart(4, '0')}`, text: `review ${i} of ${tag}, fits well` }),
  ).join('\n');
}

beforeAll(async () => {
  platform = await startCliPlatform({ config: CONFIG_PATH });
  storage = new Storage({ apiEndpoint: platform.env.STORAGE_EMULATOR_HOST, projectId: config.project });
  pubsub = new PubSub({ projectId: config.project });
  batch = new BatchServiceClient(
    await grpcClientOptions('batch', { BATCH_EMULATOR_HOST: platform.env.BATCH_EMULATOR_HOST }),
  );
  for (const [product, client] of [
    ['mlops-template', 'acme'],
    ['mlops-template', 'globex'],
    ['broken-model', 'initech'],
  ] as const) {
    const [subscription] = await pubsub
      .topic(outputTopic(product, client))
      .createSubscription(`e2e-${client}-${Date.now()}`);
    topics[client] = new TopicRecorder(subscription);
  }
});

afterAll(async () => {
  await Promise.all(Object.values(topics).map((t) => t.subscription.delete().catch(() => {})));
  await pubsub?.close();
  await batch?.close();
  await platform?.dispose();
  rmSync(workDir, { recursive: true, force: true });
});

describe('batchwire dev, end to end', () => {
  it('writes .batchwire/env with every address once ready, and refuses a second start', () => {
    for (const key of [
      'STORAGE_EMULATOR_HOST',
      'PUBSUB_EMULATOR_HOST',
      'BATCH_EMULATOR_HOST',
      'WORKFLOWS_EMULATOR_HOST',
      'RUN_EMULATOR_HOST',
      'BATCHWIRE_ON_UPLOAD_URL',
      'BATCHWIRE_ON_SCHEDULE_URL',
      'BATCHWIRE_ON_COMPLETE_URL',
    ]) {
      expect(platform.env[key], key).toMatch(/127\.0\.0\.1:\d+/);
    }

    const second = spawnSync(process.execPath, [CLI, 'dev'], {
      cwd: platform.workDir,
      env: { ...process.env, BATCHWIRE_CONFIG: CONFIG_PATH },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(second.status).not.toBe(0);
    expect(second.stderr).toMatch(/already running/);
  });

  it('runs a sharded input across tasks: every record once, in order, upper-cased', async () => {
    const input = records(150, 'acme'); // ~10 KB at shardBytes 4096 → 3 tasks
    const object = await upload('mlops-template', 'acme', 'sharded.jsonl', input);

    const event = await topics.acme.next(
      (e) =>
        e.type === 'dev.batchwire.inference.succeeded' && JSON.stringify(e.data).includes('sharded.jsonl'),
    );
    expect(event.data.job?.taskCount).toBe(3);
    const prefix = (event.data.outputs as { prefix: string }).prefix.replace(`gs://${config.bucket}/`, '');
    const [files] = await storage.bucket(config.bucket).getFiles({ prefix });
    const parts = files
      .filter((f) => /part-\d+\.jsonl$/.test(f.name))
      .sort((a, b) => a.name.localeCompare(b.name));
    expect(parts).toHaveLength(3);
    const output: Array<{ id: string; text: string }> = [];
    for (const part of parts) {
      const [content] = await part.download();
      output.push(
        ...content
          .toString('utf8')
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line)),
      );
    }
    const expected = input.split('\n').map((line) => JSON.parse(line) as { id: string; text: string });
    expect(output.map((r) => r.id)).toEqual(expected.map((r) => r.id.toUpperCase()));
    expect(output.map((r) => r.text)).toEqual(expected.map((r) => r.text.toUpperCase()));
    expect(await jobsFor(object.name)).toHaveLength(1);
  });

  it('keeps two clients apart: each result lands only on its own topic', async () => {
    const [acme, globex] = await Promise.all([
      upload('mlops-template', 'acme', 'both-a.jsonl', records(10, 'a')),
      upload('mlops-template', 'globex', 'both-g.jsonl', records(10, 'g')),
    ]);
    const forAcme = await topics.acme.next((e) => JSON.stringify(e.data).includes(acme.name));
    const forGlobex = await topics.globex.next((e) => JSON.stringify(e.data).includes(globex.name));
    expect(forAcme.type).toBe('dev.batchwire.inference.succeeded');
    expect(forGlobex.type).toBe('dev.batchwire.inference.succeeded');
    expect(forAcme.data.client).toBe('acme');
    expect(forGlobex.data.client).toBe('globex');

    await sleep(1000);
    expect(topics.acme.events.every((e) => e.data.client === 'acme')).toBe(true);
    expect(topics.globex.events.every((e) => e.data.client === 'globex')).toBe(true);
  });

  it('starts no second job, and publishes no second result, for a duplicate finalize', async () => {
    const object = await upload('mlops-template', 'acme', 'twice.jsonl', records(5, 'twice'));
    const first = await topics.acme.next((e) => JSON.stringify(e.data).includes(object.name));
    const jobId = (first.data.job?.name ?? '').split('/').pop() as string;

    // Eventarc redelivers the same finalize (at-least-once), under a new delivery id.
    const [metadata] = await storage.bucket(config.bucket).file(object.name).getMetadata();
    const response = await fetch(platform.env.BATCHWIRE_ON_UPLOAD_URL as string, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'ce-specversion': '1.0',
        'ce-id': `redelivery-${Date.now()}`,
        'ce-type': 'google.cloud.storage.object.v1.finalized',
        'ce-source': `//storage.googleapis.com/projects/_/buckets/${config.bucket}`,
        'ce-subject': `objects/${object.name}`,
        'ce-time': new Date().toISOString(),
      },
      body: JSON.stringify(metadata),
    });
    expect(response.status).toBeLessThan(300);

    await sleep(2000);
    expect(await jobsFor(object.name)).toHaveLength(1);
    expect(topics.acme.events.filter(aboutJob(jobId))).toHaveLength(1);
  });

  it('rejects a bad upload with a rejected event and a record, and starts no job', async () => {
    const object = await upload('mlops-template', 'acme', 'notes.txt', 'not a dataset\n');
    const event = await topics.acme.next(
      (e) => e.type === 'dev.batchwire.inference.rejected' && JSON.stringify(e.data).includes(object.name),
    );
    expect(event.data.code).toBe('bad-extension');
    const [records] = await storage
      .bucket(config.bucket)
      .getFiles({ prefix: '_batchwire/rejections/mlops-template/acme/' });
    expect(records.length).toBeGreaterThan(0);
    expect(await jobsFor(object.name)).toHaveLength(0);
  });

  it('reports a failing job as a failed event with a reason a human can act on', async () => {
    const object = await upload('broken-model', 'initech', 'doomed.jsonl', records(3, 'doomed'));
    const event = await topics.initech.next((e) => JSON.stringify(e.data).includes(object.name));
    expect(event.type).toBe('dev.batchwire.inference.failed');
    expect(event.data.job?.state).toBe('FAILED');
    expect(String(event.data.reason)).toMatch(/exit(ed)? (with )?code 3/);
  });

  it('runs a scheduled flow fired through the scheduler, and reports it on the client topic', async () => {
    await upload('mlops-template', 'acme', 'training-set.jsonl', records(20, 'train'));
    const job = `projects/${config.project}/locations/${config.region}/jobs/bw-mlops-template-train-acme`;
    const fired = await fetch(`${platform.env.BATCHWIRE_SCHEDULER_URL}/v1/${job}:run`, { method: 'POST' });
    const answer = (await fired.json()) as { lastAttempt: { status: number; body: { execution: string } } };
    expect(answer.lastAttempt.status).toBe(202);

    const event = await topics.acme.next(
      (e) =>
        e.type.startsWith('dev.batchwire.flow.') && e.data.execution === answer.lastAttempt.body.execution,
      90_000,
    );
    expect(event.type).toBe('dev.batchwire.flow.succeeded');
    expect(event.data.flow).toBe('train');
    const [exists] = await storage
      .bucket(config.bucket)
      .file('mlops-template/acme/models/latest/model.json')
      .exists();
    expect(exists).toBe(true);
  });

  it('reports a flow whose job fails as a failed flow event on the client topic', async () => {
    const job = `projects/${config.project}/locations/${config.region}/jobs/bw-broken-model-train-initech`;
    const fired = await fetch(`${platform.env.BATCHWIRE_SCHEDULER_URL}/v1/${job}:run`, { method: 'POST' });
    const answer = (await fired.json()) as { lastAttempt: { status: number; body: { execution: string } } };
    expect(answer.lastAttempt.status).toBe(202);

    const event = await topics.initech.next(
      (e) =>
        e.type.startsWith('dev.batchwire.flow.') && e.data.execution === answer.lastAttempt.body.execution,
      90_000,
    );
    expect(event.type).toBe('dev.batchwire.flow.failed');
    expect(event.data.flow).toBe('train');
    expect(String(event.data.reason)).not.toBe('');
  });

  it('stops everything on Ctrl-C and removes .batchwire/env', async () => {
    const envFile = platform.envFile;
    // Under `npm start` one Ctrl-C arrives twice (from the terminal, and forwarded by npm):
    // the second must not cut the cleanup short.
    const code = await platform.stop(2);
    expect(code).toBe(0);
    expect(existsSync(envFile)).toBe(false);
    const storageGone = await fetch(platform.env.STORAGE_EMULATOR_HOST as string).then(
      () => false,
      () => true,
    );
    expect(storageGone).toBe(true);
  });
});
