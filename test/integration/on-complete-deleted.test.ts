import { randomUUID } from 'node:crypto';
import { BatchServiceClient } from '@google-cloud/batch';
import { type Message, PubSub, type Subscription } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOnComplete } from '#functions/on-complete.js';
import { type LocalBatchService, startBatchService } from '#local/batch/server.js';
import { type LocalStorageServer, startStorageServer } from '#local/storage/server.js';
import { type BatchAdapter, createBatchAdapter } from '#shared/clients/batch.js';
import { grpcClientOptions } from '#shared/clients/endpoints.js';
import { createPubSubPublisher, type PubSubPublisher } from '#shared/clients/pubsub.js';
import { createObjectStore } from '#shared/clients/storage.js';
import { buildInferenceJob } from '#shared/domain/inference-job.js';
import { jobIdFor } from '#shared/domain/job-id.js';
import { inferenceResultId } from '#shared/domain/results/build-events.js';
import type { InferenceResultData } from '#shared/domain/results/event-data.js';
import { outputTopic } from '#shared/plan/names.js';
import { createLogger } from '#shared/runtime/logger.js';
import { testConfig } from '../helpers/config.js';
import { type FunctionServer, pubsubPublishedEvent, serveCloudEventFunction } from '../helpers/functions.js';
import { collectMessages } from '../helpers/pubsub.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A job deleted while it runs must still reach its client, as a failure: the local Batch
 * service keeps the job readable (DELETION_IN_PROGRESS) after DeleteJob, as Batch does, so
 * onComplete can GetJob it when the DELETION_IN_PROGRESS notification arrives. Real clients
 * throughout: Batch (local service), Storage (local server), Pub/Sub (emulator).
 */

// A project of its own: topics on the shared emulator never collide with other test files.
const PROJECT = `bw-deleted-${randomUUID().slice(0, 8)}`;
const REGION = 'europe-west2';
const BUCKET = 'deleted-bucket';
const COMPLETION_TOPIC = 'completions';
const IMAGE = 'europe-docker.pkg.dev/test/batchwire/inference:test';
const SETTLE_MS = 1_000;

const config = testConfig(
  `
  mlops-template:
    clients: [acme]
    inference:
      image: ${IMAGE}
      shardBytes: 1000
      maxTasks: 1
      maxRetryCount: 0
`,
  { project: PROJECT, region: REGION, bucket: BUCKET, completionTopic: COMPLETION_TOPIC },
);

let storageServer: LocalStorageServer;
let batchService: LocalBatchService;
let batchClient: BatchServiceClient;
let jobs: BatchAdapter;
let pubsub: PubSub;
let publisher: PubSubPublisher;
let fn: FunctionServer;
const notifications: Message[] = [];
const results: Message[] = [];
const subscriptions: Subscription[] = [];

beforeAll(async () => {
  storageServer = await startStorageServer();
  const storage = new Storage({ apiEndpoint: storageServer.url, projectId: PROJECT });
  await storage.createBucket(BUCKET);

  // The inference task runs far longer than the test: it only ends by being deleted.
  batchService = await startBatchService({ images: { [IMAGE]: ['bash', '-c', 'sleep 60'] } });
  const clientOptions = await grpcClientOptions('batch', { BATCH_EMULATOR_HOST: batchService.host });
  batchClient = new BatchServiceClient(clientOptions);
  jobs = createBatchAdapter({ project: PROJECT, region: REGION, clientOptions });

  pubsub = new PubSub({ projectId: PROJECT });
  // The job's notifications are pulled here and handed to onComplete by the test, one by one.
  const [completion] = await pubsub.createTopic(COMPLETION_TOPIC);
  const notified = await collectMessages(completion, 'notifications', notifications);
  const [output] = await pubsub.createTopic(outputTopic('mlops-template', 'acme'));
  const received = await collectMessages(output, 'acme-results', results);
  subscriptions.push(notified.subscription, received.subscription);

  publisher = createPubSubPublisher({ projectId: PROJECT });
  const onComplete = createOnComplete({
    config,
    jobs,
    store: createObjectStore({
      bucket: BUCKET,
      clientOptions: { apiEndpoint: storageServer.url, projectId: PROJECT },
    }),
    publisher,
    log: createLogger({ level: 'silent' }),
  });
  fn = await serveCloudEventFunction('onCompleteDeletedIntegration', onComplete);
});

afterAll(async () => {
  await Promise.allSettled(subscriptions.map((s) => s.close()));
  await fn?.close();
  await publisher?.close();
  await jobs?.close();
  await batchClient?.close();
  await pubsub?.close();
  await batchService?.close();
  await storageServer?.close();
});

/** A pulled Pub/Sub message as Eventarc delivers it to the function (binary-mode CloudEvent). */
const eventarcDelivery = (message: Message) =>
  pubsubPublishedEvent({
    project: PROJECT,
    topic: COMPLETION_TOPIC,
    messageId: message.id,
    data: message.data,
    attributes: message.attributes,
    publishTime: message.publishTime,
  });

describe('onComplete for a job deleted while it ran', () => {
  it('publishes exactly one failed event with job.state DELETED and a reason naming the deletion', async () => {
    // Arrange: a running inference job for acme, as onUpload would have created it
    const name = `mlops-template/acme/inputs/${randomUUID()}.jsonl`;
    const generation = String(Date.now() * 1000);
    const jobId = jobIdFor({ bucket: BUCKET, name, generation }, 'mlops-template', 'acme');
    const job = buildInferenceJob(config, {
      product: 'mlops-template',
      client: 'acme',
      bucket: BUCKET,
      name,
      generation,
      size: 250,
      jobId,
    });
    const created = await jobs.createJob({ jobId, job, requestId: randomUUID() });
    const stateOf = (state: string) =>
      notifications.find((m) => m.attributes.JobUID === created.uid && m.attributes.NewJobState === state);
    // Batch notifies terminal states (and deletion) only: read the state itself.
    await waitFor(async () => {
      const [current] = await batchClient.getJob({ name: created.name });
      return current.status?.state === 'RUNNING' ? true : undefined;
    }, 'the job RUNNING');

    // Act: delete it, then deliver its DELETION_IN_PROGRESS notification (twice: a redelivery)
    const [operation] = await batchClient.deleteJob({ name: created.name });
    await operation.promise();
    const deletion = await waitFor(() => stateOf('DELETION_IN_PROGRESS'), 'the deletion notification');
    const first = await fn.postEvent(eventarcDelivery(deletion));
    const redelivered = await fn.postEvent(eventarcDelivery(deletion));
    const result = await waitFor(() => results[0], 'the failed event');
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));

    // Assert
    expect(deletion.attributes).toEqual({
      Type: 'JOB_STATE_CHANGED',
      JobName: created.name,
      JobUID: created.uid,
      NewJobState: 'DELETION_IN_PROGRESS',
      Region: REGION,
    });
    expect([first.status, redelivered.status]).toEqual([204, 204]);
    expect(results).toHaveLength(1);
    expect(result.attributes['ce-type']).toBe('dev.batchwire.inference.failed');
    expect(result.attributes['ce-id']).toBe(inferenceResultId(created.uid, 'FAILED'));
    const data = JSON.parse(result.data.toString('utf8')) as InferenceResultData;
    expect(data.status).toBe('failed');
    expect(data.job).toEqual({ name: created.name, uid: created.uid, taskCount: 1, state: 'DELETED' });
    expect(data.reason).toMatch(new RegExp(`^job ${jobId} was deleted before it finished`));
    expect(data.timings.started).not.toBeNull();
  });
});
