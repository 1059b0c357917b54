import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type Message, PubSub, type Subscription } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOnComplete } from '#functions/on-complete.js';
import { type LocalBatchService, startBatchService } from '#local/batch/server.js';
import { type LocalStorageServer, startStorageServer } from '#local/storage/server.js';
import { type BatchAdapter, createBatchAdapter } from '#shared/clients/batch.js';
import { grpcClientOptions } from '#shared/clients/endpoints.js';
import { GrpcCode } from '#shared/clients/grpc-errors.js';
import { createPubSubPublisher, type PubSubPublisher } from '#shared/clients/pubsub.js';
import { createObjectStore } from '#shared/clients/storage.js';
import { buildInferenceJob } from '#shared/domain/inference-job.js';
import { jobIdFor } from '#shared/domain/job-id.js';
import { CLAIMS_PREFIX, outputPrefix } from '#shared/domain/object-path.js';
import { inferenceResultId } from '#shared/domain/results/build-events.js';
import type { InferenceResultData } from '#shared/domain/results/event-data.js';
import { outputTopic } from '#shared/plan/names.js';
import { createLogger } from '#shared/runtime/logger.js';
import { testConfig } from '../helpers/config.js';
import { type FunctionServer, pubsubPublishedEvent, serveCloudEventFunction } from '../helpers/functions.js';
import { collectMessages } from '../helpers/pubsub.js';
import { waitFor } from '../helpers/wait.js';

/**
 * onComplete end to end on the local cloud, with the real clients: the local Batch service runs
 * jobs (bash standing in for the inference image) and publishes its notifications to the Pub/Sub
 * emulator; a push subscription delivers them to onComplete under functions-framework (the
 * push path); other tests POST Eventarc-shaped events (the Eventarc path). Results are read
 * back from the clients' output topics.
 */

// A project of its own: topics on the shared emulator never collide with other test files.
const PROJECT = `bw-oncomplete-${randomUUID().slice(0, 8)}`;
const REGION = 'europe-west2';
const BUCKET = 'oncomplete-bucket';
const COMPLETION_TOPIC = 'completions';
const IMAGE = 'europe-docker.pkg.dev/test/batchwire/inference:test';

const config = testConfig(
  `
  mlops-template:
    clients: [acme, globex, initech]
    inference:
      image: ${IMAGE}
      shardBytes: 100
      maxTasks: 8
      maxRetryCount: 1
`,
  { project: PROJECT, region: REGION, bucket: BUCKET, completionTopic: COMPLETION_TOPIC },
);

const ajv = new Ajv2020({ allErrors: true });
addFormats.default(ajv);
const validateResult = ajv.compile(
  JSON.parse(
    readFileSync(
      new URL('../../shared/contracts/schemas/inference-result.schema.json', import.meta.url),
      'utf8',
    ),
  ),
);

let storageServer: LocalStorageServer;
let batchService: LocalBatchService;
let storage: Storage;
let pubsub: PubSub;
let jobs: BatchAdapter;
let publisher: PubSubPublisher;
let fn: FunctionServer;
const received: Record<string, Message[]> = { acme: [], globex: [] };
/** Every event the function finished handling (acked or failed): its id and message attributes. */
const handled: Array<{ id: string; attributes: Record<string, string>; failed: boolean }> = [];
/** Every result the function published (topic and attributes), in publish order. */
const published: Array<{ topic: string; attributes: Record<string, string> }> = [];
const subscriptions: Subscription[] = [];

beforeAll(async () => {
  storageServer = await startStorageServer();
  storage = new Storage({ apiEndpoint: storageServer.url, projectId: PROJECT });
  await storage.createBucket(BUCKET);

  // Task 1 fails with exit code 3 when the job sets FAIL_TASK=1; every other task succeeds.
  batchService = await startBatchService({
    images: { [IMAGE]: ['bash', '-c', '[ "$BATCH_TASK_INDEX" = "$FAIL_TASK" ] && exit 3; exit 0'] },
  });
  jobs = createBatchAdapter({
    project: PROJECT,
    region: REGION,
    clientOptions: await grpcClientOptions('batch', { BATCH_EMULATOR_HOST: batchService.host }),
  });

  pubsub = new PubSub({ projectId: PROJECT });
  const [completion] = await pubsub.createTopic(COMPLETION_TOPIC);
  for (const client of ['acme', 'globex'] as const) {
    const [topic] = await pubsub.createTopic(outputTopic('mlops-template', client));
    const { subscription } = await collectMessages(topic, `${client}-results`, received[client]);
    subscriptions.push(subscription);
  }
  // initech's output topic is deliberately missing.

  publisher = createPubSubPublisher({ projectId: PROJECT });
  const onComplete = createOnComplete({
    config,
    jobs,
    store: createObjectStore({
      bucket: BUCKET,
      clientOptions: { apiEndpoint: storageServer.url, projectId: PROJECT },
    }),
    // The real publisher, counted: once a delivery is handled, what it published is known
    // without waiting for messages that should not come.
    publisher: {
      publish: async (topic, data, attributes) => {
        const id = await publisher.publish(topic, data, attributes);
        published.push({ topic, attributes });
        return id;
      },
    },
    log: createLogger({ level: 'silent' }),
  });
  fn = await serveCloudEventFunction('onCompleteIntegration', async (event) => {
    // Records what the function saw, so a test can wait until a delivery was really handled.
    const data = event.data as { message?: { attributes?: Record<string, string> } } | undefined;
    const attributes = data?.message?.attributes ?? {};
    try {
      await onComplete(event);
      handled.push({ id: event.id, attributes, failed: false });
    } catch (err) {
      handled.push({ id: event.id, attributes, failed: true });
      throw err;
    }
  });
  // The push path: the emulator POSTs each notification to functions-framework, which turns a
  // push to /projects/P/topics/T into a messagePublished CloudEvent.
  await completion.createSubscription('on-complete-push', {
    pushConfig: { pushEndpoint: `${fn.url}projects/${PROJECT}/topics/${COMPLETION_TOPIC}` },
    ackDeadlineSeconds: 10,
  });
});

afterAll(async () => {
  await Promise.allSettled(subscriptions.map((s) => s.close()));
  await fn?.close();
  await publisher?.close();
  await jobs?.close();
  await pubsub?.close();
  await batchService?.close();
  await storageServer?.close();
});

/** Creates an inference job for `client` as onUpload would, with its outputs already written. */
async function submitJob(
  client: string,
  options: { fail?: boolean; notify?: boolean; outputs?: Record<string, string> } = {},
): Promise<{ name: string; uid: string; jobId: string; prefix: string }> {
  const name = `mlops-template/${client}/inputs/${randomUUID()}.jsonl`;
  const generation = String(Date.now() * 1000);
  const jobId = jobIdFor({ bucket: BUCKET, name, generation }, 'mlops-template', client);
  const prefix = outputPrefix('mlops-template', client, jobId);
  for (const [file, body] of Object.entries(options.outputs ?? {})) {
    await storage.bucket(BUCKET).file(`${prefix}${file}`).save(body, { resumable: false });
  }
  const job = buildInferenceJob(config, {
    product: 'mlops-template',
    client,
    bucket: BUCKET,
    name,
    generation,
    size: 250,
    jobId,
  });
  const spec = job.taskGroups[0]?.taskSpec;
  if (options.fail && spec?.environment) spec.environment.variables.FAIL_TASK = '1';
  if (options.notify === false) delete job.notifications;
  const created = await jobs.createJob({ jobId, job, requestId: randomUUID() });
  await batchService.waitForJob(created.name, 20_000);
  return { ...created, jobId, prefix };
}

/** The job states of the notifications onComplete handled for a job, in order. */
const statesHandled = (uid: string) =>
  handled.filter((h) => h.attributes.JobUID === uid && !h.failed).map((h) => h.attributes.NewJobState);
/**
 * The result claims in the bucket. Every publish is preceded by its claim, written inside the
 * handler before the function answers: once a post has answered, an unchanged set of claims
 * proves that it published nothing (no fixed wait for a message that should not come).
 */
const resultClaims = async () => {
  const [files] = await storage.bucket(BUCKET).getFiles({ prefix: `${CLAIMS_PREFIX}results/` });
  return files.map((file) => file.name).sort();
};
/** The results the function published for a job, on any topic. */
const publishedFor = (jobId: string) =>
  published.filter((p) => p.attributes['ce-subject'] === `jobs/${jobId}`);
const forJob = (client: string, jobId: string) =>
  received[client]?.filter((m) => m.attributes['ce-subject'] === `jobs/${jobId}`) ?? [];
const parse = (message: Message) => JSON.parse(message.data.toString('utf8')) as InferenceResultData;

/** A Batch notification as Eventarc delivers it to the function (binary-mode CloudEvent). */
const eventarcNotification = (attributes: Record<string, string>, messageId: string = randomUUID()) =>
  pubsubPublishedEvent({
    project: PROJECT,
    topic: COMPLETION_TOPIC,
    messageId,
    data: Buffer.from('Job state was updated'),
    attributes,
    publishTime: new Date(),
  });

const jobAttributes = (job: { name: string; uid: string }, state: string) => ({
  Type: 'JOB_STATE_CHANGED',
  JobName: job.name,
  JobUID: job.uid,
  NewJobState: state,
  Region: REGION,
});

describe('onComplete (push from the completion topic)', () => {
  it('turns a SUCCEEDED job into exactly one succeeded event on its client topic, valid against the schema', async () => {
    // Arrange + Act: the job runs; its notification of the final state is pushed to onComplete
    const job = await submitJob('acme', {
      outputs: { 'part-0.jsonl': '{"a":1}\n', 'part-1.jsonl': '{"b":22}\n' },
    });
    const message = await waitFor(() => forJob('acme', job.jobId)[0], 'the succeeded event');
    await waitFor(() => (statesHandled(job.uid).length >= 1 ? true : undefined), 'SUCCEEDED handled');

    // Assert: the job spec asks Batch for terminal states only, so QUEUED, SCHEDULED and
    // RUNNING never invoke onComplete; the handled delivery published one result
    expect(statesHandled(job.uid)).toEqual(['SUCCEEDED']);
    expect(publishedFor(job.jobId)).toHaveLength(1);
    expect(forJob('globex', job.jobId)).toHaveLength(0);
    expect(message.attributes).toMatchObject({
      'ce-specversion': '1.0',
      'ce-type': 'dev.batchwire.inference.succeeded',
      'ce-id': inferenceResultId(job.uid, 'SUCCEEDED'),
      'ce-source': `//batchwire/projects/${PROJECT}/products/mlops-template/clients/acme`,
      'content-type': 'application/json',
    });
    const data = parse(message);
    expect(validateResult(data), JSON.stringify(validateResult.errors)).toBe(true);
    expect(data.job).toEqual({ name: job.name, uid: job.uid, taskCount: 3, state: 'SUCCEEDED' });
    // The event carries counts and the manifest; the manifest lists the objects.
    expect(data.outputs).toMatchObject({ objectCount: 2, totalBytes: 17 });
    const manifestName = (data.outputs.manifest as string).replace(`gs://${BUCKET}/`, '');
    expect(manifestName).toBe(`${job.prefix}_batchwire-outputs.json`);
    const [manifest] = await storage.bucket(BUCKET).file(manifestName).download();
    const listed = JSON.parse(manifest.toString('utf8')) as {
      objects: Array<{ name: string; size: number }>;
    };
    expect(listed.objects.map((o) => [o.name.slice(job.prefix.length), o.size])).toEqual([
      ['part-0.jsonl', 8],
      ['part-1.jsonl', 9],
    ]);
    expect(data.timings.started).not.toBeNull();
  });

  it('turns a FAILED job into exactly one failed event with an actionable reason', async () => {
    // Arrange + Act
    const job = await submitJob('acme', { fail: true });
    const message = await waitFor(() => forJob('acme', job.jobId)[0], 'the failed event');
    await waitFor(() => (statesHandled(job.uid).length >= 1 ? true : undefined), 'FAILED handled');

    // Assert
    expect(publishedFor(job.jobId)).toHaveLength(1);
    expect(message.attributes['ce-type']).toBe('dev.batchwire.inference.failed');
    expect(message.attributes['ce-id']).toBe(inferenceResultId(job.uid, 'FAILED'));
    const data = parse(message);
    expect(validateResult(data), JSON.stringify(validateResult.errors)).toBe(true);
    expect(data.reason).toMatch(
      /^1 of 3 tasks failed; .*exited with code 3 after 2 attempts; see the task logs of job /,
    );
  });

  it("delivers a globex job to globex's topic only", async () => {
    // Arrange + Act
    const job = await submitJob('globex');
    await waitFor(() => forJob('globex', job.jobId)[0], "globex's event");
    await waitFor(() => (statesHandled(job.uid).length >= 1 ? true : undefined), 'the final state handled');

    // Assert
    expect(publishedFor(job.jobId).map((p) => p.topic)).toEqual([outputTopic('mlops-template', 'globex')]);
    expect(forJob('acme', job.jobId)).toHaveLength(0);
  });

  it('publishes no second result for a duplicate notification', async () => {
    // Arrange
    const job = await submitJob('acme');
    await waitFor(() => forJob('acme', job.jobId)[0], 'the first event');

    // Act: Batch sends the same notification again (a new message), and Eventarc redelivers one
    const duplicateId = await pubsub.topic(COMPLETION_TOPIC).publishMessage({
      data: Buffer.from('Job state was updated'),
      attributes: jobAttributes(job, 'SUCCEEDED'),
    });
    const redelivery = await fn.postEvent(
      eventarcNotification(jobAttributes(job, 'SUCCEEDED'), 'redelivered-1'),
    );
    await waitFor(() => handled.find((h) => h.id === duplicateId && !h.failed), 'the duplicate handled');

    // Assert: all three deliveries handled, one result published
    expect(redelivery.status).toBe(204);
    expect(publishedFor(job.jobId)).toHaveLength(1);
  });
});

describe('onComplete (Eventarc delivery)', () => {
  it('publishes nothing for states that do not end the job', async () => {
    // Arrange: a finished job that notifies no one, so only these posts reach onComplete
    const job = await submitJob('acme', { notify: false });

    const claimsBefore = await resultClaims();

    // Act
    const statuses = [];
    for (const state of ['QUEUED', 'SCHEDULED', 'RUNNING']) {
      statuses.push((await fn.postEvent(eventarcNotification(jobAttributes(job, state)))).status);
    }

    // Assert: each post was handled to its end (204), and none claimed a result to publish
    expect(statuses).toEqual([204, 204, 204]);
    expect(await resultClaims()).toEqual(claimsBefore);
    expect(forJob('acme', job.jobId)).toHaveLength(0);
  });

  it('acks an unknown job and a notification with attributes missing, publishing nothing', async () => {
    // Arrange
    const before = received.acme.length + received.globex.length;
    const claimsBefore = await resultClaims();
    const unknown = { name: `projects/${PROJECT}/locations/${REGION}/jobs/bw-unknown-job`, uid: 'nope' };

    // Act
    const unknownJob = await fn.postEvent(eventarcNotification(jobAttributes(unknown, 'SUCCEEDED')));
    const missing = await fn.postEvent(
      eventarcNotification({ Type: 'JOB_STATE_CHANGED', NewJobState: 'SUCCEEDED', Region: REGION }),
    );

    // Assert: both handled to their end (204), and neither claimed a result to publish
    expect([unknownJob.status, missing.status]).toEqual([204, 204]);
    expect(await resultClaims()).toEqual(claimsBefore);
    expect(received.acme.length + received.globex.length).toBe(before);
  });

  it('fails (500) while GetJob is PERMISSION_DENIED (a missing grant), and publishes once it is granted', async () => {
    // Arrange
    const job = await submitJob('acme', { notify: false });
    const notification = eventarcNotification(jobAttributes(job, 'SUCCEEDED'), `denied-${job.uid}`);
    batchService.injectFault('GetJob', GrpcCode.PERMISSION_DENIED, 1);

    // Act: the delivery meets the missing grant, then the trigger's retry meets it granted
    const denied = await fn.postEvent(notification);
    const retried = await fn.postEvent(notification);
    await waitFor(() => forJob('acme', job.jobId)[0], 'the succeeded event');

    // Assert: failed, not acked (acking would have lost the result for good)
    expect([denied.status, retried.status]).toEqual([500, 204]);
    expect(publishedFor(job.jobId)).toHaveLength(1);
  });

  it('fails (500) while the output topic is missing, and publishes once it exists', async () => {
    // Arrange: initech has no output topic yet
    const job = await submitJob('initech', { notify: false });
    const notification = eventarcNotification(jobAttributes(job, 'SUCCEEDED'), 'initech-1');

    // Act: first delivery fails
    const first = await fn.postEvent(notification);

    // Assert
    expect(first.status).toBe(500);

    // Arrange: the topic is created (client onboarded) and a subscriber listens
    const [topic] = await pubsub.createTopic(outputTopic('mlops-template', 'initech'));
    const { subscription, messages: initech } = await collectMessages(topic, 'initech-results');
    subscriptions.push(subscription);

    // Act: the trigger retries the same message
    const retry = await fn.postEvent(notification);
    await waitFor(() => initech[0], "initech's event");

    // Assert
    expect(retry.status).toBe(204);
    expect(publishedFor(job.jobId)).toHaveLength(1);
    expect(initech[0]?.attributes['ce-id']).toBe(inferenceResultId(job.uid, 'SUCCEEDED'));
  });
});
