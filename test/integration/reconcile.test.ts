import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BatchServiceClient } from '@google-cloud/batch';
import { type Message, PubSub } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type LocalBatchService, startBatchService } from '#local/batch/server.js';
import { reconcile } from '#local/platform/reconcile.js';
import {
  type LocalStorageServer,
  type StorageObjectResource,
  startStorageServer,
} from '#local/storage/server.js';
import { grpcClientOptions } from '#shared/clients/endpoints.js';
import { parseConfig } from '#shared/config/load.js';
import { jobIdFor, objectVersionHash } from '#shared/domain/job-id.js';
import { inferenceResultId } from '#shared/domain/results/build-events.js';
import { publishedObjectName } from '#shared/domain/results/publish-once.js';
import { REPO_ROOT } from '../helpers/platform.js';

/**
 * Start-up reconciliation against the real local Cloud Storage and Batch, with the real clients
 * and the Pub/Sub emulator: inputs without a job (nor a rejection) get their finalize event
 * again; finished jobs without a published result get their notification again; nothing else.
 */

const base = parseConfig(
  readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'e2e', 'batchwire.yaml'), 'utf8'),
  'batchwire.yaml',
);
const config = { ...base, project: `reconcile-${randomUUID().slice(0, 8)}` };
const PRODUCT = 'mlops-template';
const CLIENT = 'acme';
const topicName = `projects/${config.project}/topics/completions`;

let storageServer: LocalStorageServer;
let batch: LocalBatchService;
let batchClient: BatchServiceClient;
let storage: Storage;
let pubsub: PubSub;

beforeAll(async () => {
  storageServer = await startStorageServer();
  batch = await startBatchService();
  batchClient = new BatchServiceClient(await grpcClientOptions('batch', { BATCH_EMULATOR_HOST: batch.host }));
  storage = new Storage({ apiEndpoint: storageServer.url, projectId: config.project });
  await storage.createBucket(config.bucket);
  pubsub = new PubSub({ projectId: config.project });
  await pubsub.createTopic('completions');
});

afterAll(async () => {
  await Promise.allSettled([batchClient?.close(), pubsub?.close()]);
  await batch?.close();
  await storageServer?.close();
});

async function upload(name: string): Promise<{ bucket: string; name: string; generation: string }> {
  const file = storage.bucket(config.bucket).file(name);
  await file.save('{"text":"x"}\n');
  const [metadata] = await file.getMetadata();
  return { bucket: config.bucket, name, generation: String(metadata.generation) };
}

/** A job that succeeds at once and notifies the completion topic, as onUpload builds them. */
async function finishedJob(jobId: string): Promise<{ name: string; uid: string }> {
  const [job] = await batchClient.createJob({
    parent: `projects/${config.project}/locations/${config.region}`,
    jobId,
    job: {
      taskGroups: [{ taskSpec: { runnables: [{ script: { text: 'exit 0' } }] } }],
      notifications: [{ pubsubTopic: topicName, message: { type: 'JOB_STATE_CHANGED' } }],
    },
  });
  await batch.waitForJob(job.name as string);
  return { name: job.name as string, uid: job.uid as string };
}

describe('reconcile', () => {
  it('sends again only what has no job, no rejection and no published result', {
    timeout: 60_000,
  }, async () => {
    // Arrange: four inputs (one without a job, one with a job whose result is not published,
    // one whose job's result is published, one rejected) and a non-input.
    const orphan = await upload(`${PRODUCT}/${CLIENT}/inputs/orphan.jsonl`);
    const unpublished = await upload(`${PRODUCT}/${CLIENT}/inputs/unpublished.jsonl`);
    const published = await upload(`${PRODUCT}/${CLIENT}/inputs/published.jsonl`);
    const rejected = await upload(`${PRODUCT}/${CLIENT}/inputs/rejected.jsonl`);
    await upload(`${PRODUCT}/${CLIENT}/outputs/job/part-0.jsonl`);
    const unpublishedJob = await finishedJob(jobIdFor(unpublished, PRODUCT, CLIENT));
    const publishedJob = await finishedJob(jobIdFor(published, PRODUCT, CLIENT));
    await storage
      .bucket(config.bucket)
      .file(publishedObjectName(inferenceResultId(publishedJob.uid, 'SUCCEEDED')))
      .save('{}');
    const key = objectVersionHash(rejected).slice(0, 32);
    await storage
      .bucket(config.bucket)
      .file(`_batchwire/rejections/${PRODUCT}/${CLIENT}/${key}.json`)
      .save('{}');
    // Subscribed only now: what the jobs published while they ran is not counted.
    const [subscription] = await pubsub.topic('completions').createSubscription(`reconcile-${randomUUID()}`);
    const notified: Message[] = [];
    subscription.on('message', (message: Message) => {
      notified.push(message);
      message.ack();
    });

    // Act
    const redelivered: StorageObjectResource[] = [];
    const report = await reconcile(config, {
      storageUrl: storageServer.url,
      batchHost: batch.host,
      redeliverFinalize: (object) => redelivered.push(object),
      startedAt: Date.now(),
    });

    // Assert
    expect(report.inputsRedelivered).toEqual([orphan.name]);
    expect(redelivered.map((o) => [o.name, String(o.generation)])).toEqual([
      [orphan.name, orphan.generation],
    ]);
    expect(report.jobsRenotified).toEqual([unpublishedJob.name]);
    await vi.waitFor(() => expect(notified).toHaveLength(1), { timeout: 15_000 });
    expect(notified[0]?.attributes).toMatchObject({
      Type: 'JOB_STATE_CHANGED',
      JobName: unpublishedJob.name,
      JobUID: unpublishedJob.uid,
      NewJobState: 'SUCCEEDED',
    });
    await subscription.close();
  });
});
