import { randomUUID } from 'node:crypto';
import { BatchServiceClient, type protos } from '@google-cloud/batch';
import { type Message, PubSub, type Subscription } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOnUpload } from '#functions/on-upload.js';
import { type LocalBatchService, startBatchService } from '#local/batch/server.js';
import {
  type LocalStorageServer,
  type StorageObjectResource,
  startStorageServer,
} from '#local/storage/server.js';
import { type BatchAdapter, createBatchAdapter } from '#shared/clients/batch.js';
import { grpcClientOptions } from '#shared/clients/endpoints.js';
import { GrpcCode } from '#shared/clients/grpc-errors.js';
import { createPubSubPublisher, type PubSubPublisher } from '#shared/clients/pubsub.js';
import { createObjectStore } from '#shared/clients/storage.js';
import { readTaskContract } from '#shared/domain/batch-job.js';
import { jobIdFor } from '#shared/domain/job-id.js';
import { objectUri } from '#shared/domain/object-path.js';
import type { Rejection } from '#shared/domain/rejection.js';
import { outputTopic } from '#shared/plan/names.js';
import { AlreadyExistsError, NotFoundError, TransientError } from '#shared/runtime/errors.js';
import { createLogger } from '#shared/runtime/logger.js';
import { testConfig } from '../helpers/config.js';
import {
  eventForObject,
  type FunctionServer,
  loadEventFixture,
  serveCloudEventFunction,
  storageFinalizedEvent,
} from '../helpers/functions.js';
import { collectMessages } from '../helpers/pubsub.js';

// onUpload under functions-framework, with the REAL Batch client against the local Batch
// service and the REAL Storage client against the local GCS server; events POSTed as Eventarc
// sends them (binary-mode CloudEvents).

// A project of its own: topics on the shared Pub/Sub emulator never collide with other test files.
const PROJECT = `it-upload-${randomUUID().slice(0, 8)}`;
const REGION = 'europe-west2';
const BUCKET = 'it-uploads';
const PARENT = `projects/${PROJECT}/locations/${REGION}`;

const CONFIG = testConfig(
  `
  mlops-template:
    clients: [acme, globex]
    serviceAccount: runner@${PROJECT}.iam.gserviceaccount.com
    inference:
      image: europe-docker.pkg.dev/${PROJECT}/bw/inference:1
      commands: [--upper]
      machineType: e2-standard-4
      allowedLocations: [zones/europe-west2-a]
      acceptedExtensions: [.jsonl, .csv]
      maxFileBytes: 1000
      shardBytes: 100
      maxTasks: 4
      parallelism: 2
      maxRetryCount: 1
      maxRunDuration: 1800s
      env: { MODEL: small }
`,
  {
    project: PROJECT,
    region: REGION,
    bucket: BUCKET,
    completionTopic: 'it-completions',
    maxEventAgeSeconds: 3600,
  },
);

type Job = protos.google.cloud.batch.v1.IJob;

let storageServer: LocalStorageServer;
let batchService: LocalBatchService;
let storage: Storage;
let batchAdapter: BatchAdapter;
let batchClient: BatchServiceClient;
let fn: FunctionServer;
const logs: Array<Record<string, unknown>> = [];
let pubsub: PubSub;
let publisher: PubSubPublisher;
let acmeSubscription: Subscription;
/** What reaches acme's output topic (rejections are sent there as CloudEvents). */
const acmeEvents: Message[] = [];
const finalized = new Map<string, StorageObjectResource>();

beforeAll(async () => {
  [storageServer, batchService] = await Promise.all([
    startStorageServer(),
    startBatchService({ execute: false }),
  ]);
  storageServer.onFinalize((object) => finalized.set(object.name, object));
  storage = new Storage({ apiEndpoint: storageServer.url, projectId: PROJECT });
  await storage.createBucket(BUCKET);

  const batchOptions = await grpcClientOptions('batch', { BATCH_EMULATOR_HOST: batchService.host });
  batchAdapter = createBatchAdapter({ project: PROJECT, region: REGION, clientOptions: { ...batchOptions } });
  batchClient = new BatchServiceClient({ ...batchOptions });

  const log = createLogger({
    level: 'debug',
    destination: { write: (line: string) => logs.push(JSON.parse(line)) },
  });
  // The output topics onboarding creates; rejections of acme's uploads are read back from its own.
  pubsub = new PubSub({ projectId: PROJECT });
  const [acmeTopic] = await pubsub.createTopic(outputTopic('mlops-template', 'acme'));
  await pubsub.createTopic(outputTopic('mlops-template', 'globex'));
  acmeSubscription = (await collectMessages(acmeTopic, 'acme-events', acmeEvents)).subscription;
  publisher = createPubSubPublisher({ projectId: PROJECT });

  const handler = createOnUpload({
    config: CONFIG,
    log,
    batch: batchAdapter,
    publisher,
    store: createObjectStore({
      bucket: BUCKET,
      clientOptions: { apiEndpoint: storageServer.url, projectId: PROJECT },
    }),
  });
  fn = await serveCloudEventFunction('onUploadIntegration', handler);
});

afterAll(async () => {
  await fn?.close();
  await acmeSubscription?.close();
  await publisher?.close();
  await pubsub?.close();
  await batchAdapter?.close();
  await batchClient?.close();
  await Promise.all([batchService?.close(), storageServer?.close()]);
});

/** Uploads through the real client; resolves with the object resource the finalize carried. */
async function upload(name: string, contents: string): Promise<StorageObjectResource> {
  finalized.delete(name);
  await storage.bucket(BUCKET).file(name).save(contents, { resumable: false });
  const object = finalized.get(name);
  if (!object) throw new Error(`no finalize for ${name}`);
  return object;
}

async function allJobs(): Promise<Job[]> {
  const [jobs] = await batchClient.listJobs({ parent: PARENT });
  return jobs;
}

/** The jobs whose task contract names this object (any generation). */
async function jobsFor(name: string): Promise<Job[]> {
  const uri = objectUri(BUCKET, name);
  return (await allJobs()).filter(
    (job) => readTaskContract(job as Parameters<typeof readTaskContract>[0])?.inputUri === uri,
  );
}

async function rejectionsFor(name: string): Promise<Rejection[]> {
  const [files] = await storage.bucket(BUCKET).getFiles({ prefix: '_batchwire/rejections/' });
  const records = await Promise.all(
    files.map(async (file) => JSON.parse((await file.download())[0].toString('utf8')) as Rejection),
  );
  return records.filter((record) => record.name === name);
}

function logsAbout(text: string, severity: string): Array<Record<string, unknown>> {
  return logs.filter((entry) => entry.severity === severity && JSON.stringify(entry).includes(text));
}

describe('onUpload: one job per upload', () => {
  it('creates one Batch job with the spec built from the product config', async () => {
    // Arrange
    const name = 'mlops-template/acme/inputs/day-1/batch.jsonl';
    const object = await upload(name, 'x'.repeat(250));

    // Act
    const response = await fn.postEvent(eventForObject(object));

    // Assert
    expect(response.status).toBe(204);
    const jobs = await jobsFor(name);
    expect(jobs).toHaveLength(1);
    const jobId = jobIdFor({ bucket: BUCKET, name, generation: object.generation }, 'mlops-template', 'acme');
    const [job] = await batchClient.getJob({ name: `${PARENT}/jobs/${jobId}` });
    const group = job.taskGroups?.[0];
    expect(String(group?.taskCount)).toBe('3');
    expect(String(group?.parallelism)).toBe('2');
    expect(group?.taskSpec?.environment?.variables).toEqual({
      MODEL: 'small',
      BATCHWIRE_INPUT_URI: `gs://${BUCKET}/${name}`,
      BATCHWIRE_INPUT_GENERATION: object.generation,
      BATCHWIRE_OUTPUT_URI: `gs://${BUCKET}/mlops-template/acme/outputs/${jobId}/`,
      BATCHWIRE_PRODUCT: 'mlops-template',
      BATCHWIRE_CLIENT: 'acme',
    });
    expect(group?.taskSpec?.runnables?.[0]?.container).toMatchObject({
      imageUri: `europe-docker.pkg.dev/${PROJECT}/bw/inference:1`,
      commands: ['--upper'],
    });
    expect(String(group?.taskSpec?.maxRunDuration?.seconds)).toBe('1800');
    expect(group?.taskSpec?.maxRetryCount).toBe(1);
    expect(job.labels).toEqual({ product: 'mlops-template', client: 'acme', trigger: 'upload' });
    // One notification per terminal state, as the Batch service stored them.
    expect(job.notifications).toEqual(
      ['SUCCEEDED', 'FAILED', 'CANCELLED', 'DELETION_IN_PROGRESS'].map((newJobState) =>
        expect.objectContaining({
          pubsubTopic: `projects/${PROJECT}/topics/it-completions`,
          message: expect.objectContaining({ type: 'JOB_STATE_CHANGED', newJobState }),
        }),
      ),
    );
    expect(job.logsPolicy?.destination).toBe('CLOUD_LOGGING');
    expect(job.allocationPolicy?.instances?.[0]?.policy?.machineType).toBe('e2-standard-4');
    expect(job.allocationPolicy?.location?.allowedLocations).toEqual(['zones/europe-west2-a']);
    expect(job.allocationPolicy?.serviceAccount?.email).toBe(`runner@${PROJECT}.iam.gserviceaccount.com`);
  });

  it('makes no second job for a redelivered event or the same object under another event id', async () => {
    // Arrange
    const name = 'mlops-template/globex/inputs/dup.csv';
    const event = eventForObject(await upload(name, 'a,b\n1,2\n'));

    // Act
    const first = await fn.postEvent(event);
    const redelivered = await fn.postEvent(event);
    const otherId = await fn.postEvent({
      ...event,
      headers: { ...event.headers, 'ce-id': 'another-event-id' },
    });

    // Assert
    expect([first.status, redelivered.status, otherId.status]).toEqual([204, 204, 204]);
    expect(await jobsFor(name)).toHaveLength(1);
  });

  it('makes a second job for a new generation of the same name', async () => {
    // Arrange
    const name = 'mlops-template/acme/inputs/regenerated.jsonl';
    const first = await upload(name, '{"a":1}\n');
    await fn.postEvent(eventForObject(first));

    // Act
    const second = await upload(name, '{"a":2}\n');
    const response = await fn.postEvent(eventForObject(second));

    // Assert
    expect(response.status).toBe(204);
    expect(second.generation).not.toBe(first.generation);
    const generations = (await jobsFor(name)).map(
      (job) => readTaskContract(job as Parameters<typeof readTaskContract>[0])?.inputGeneration,
    );
    expect(generations.sort()).toEqual([first.generation, second.generation].sort());
  });

  it('accepts int64 fields sent as JSON numbers (as @google/events types them)', async () => {
    // Arrange
    const name = 'mlops-template/acme/inputs/numbers.jsonl';
    const event = storageFinalizedEvent({ bucket: BUCKET, name, generation: 1741083703110492, size: 10 });

    // Act
    const response = await fn.postEvent(event);

    // Assert
    expect(response.status).toBe(204);
    expect(await jobsFor(name)).toHaveLength(1);
  });
});

describe('onUpload: ignored objects', () => {
  it.each([
    ['an output', 'mlops-template/acme/outputs/bw-x/part-0.jsonl', 10],
    ['a bookkeeping object', '_batchwire/rejections/mlops-template/acme/abc.json', 10],
    ['another prefix', 'scratch/acme/inputs/a.jsonl', 10],
    ['an unconfigured product', 'other-product/acme/inputs/a.jsonl', 10],
    ['a models file', 'mlops-template/acme/models/model.bin', 10],
  ])('ignores %s: no job, no rejection, acked', async (_what, name, size) => {
    // Arrange
    const before = (await allJobs()).length;

    // Act
    const response = await fn.postEvent(
      storageFinalizedEvent({ bucket: BUCKET, name, generation: '7', size }),
    );

    // Assert
    expect(response.status).toBe(204);
    expect((await allJobs()).length).toBe(before);
    expect(await rejectionsFor(name)).toEqual([]);
    expect(logsAbout(name, 'DEBUG')).not.toEqual([]);
  });

  it('ignores a folder placeholder (the captured console event)', async () => {
    // Arrange
    const before = (await allJobs()).length;
    const fixture = loadEventFixture('storage-folder-placeholder.json');
    const event = {
      headers: { ...fixture.headers, 'ce-time': new Date().toISOString() },
      body: { ...(fixture.body as object), bucket: BUCKET },
    };

    // Act
    const response = await fn.postEvent(event);

    // Assert
    expect(response.status).toBe(204);
    expect((await allJobs()).length).toBe(before);
    expect(await rejectionsFor('mlops-template/acme/inputs/march/')).toEqual([]);
  });

  it('drops an event older than the max event age with an ERROR log', async () => {
    // Arrange
    const name = 'mlops-template/acme/inputs/stale.jsonl';
    const time = new Date(Date.now() - 2 * 3600 * 1000).toISOString();

    // Act
    const response = await fn.postEvent(
      storageFinalizedEvent({ bucket: BUCKET, name, generation: '3', size: 5, time }),
    );

    // Assert
    expect(response.status).toBe(204);
    expect(await jobsFor(name)).toEqual([]);
    expect(logsAbout('older than the max event age', 'ERROR')).not.toEqual([]);
  });
});

describe('onUpload: rejected uploads', () => {
  it.each([
    ['unknown-client', 'a client not onboarded', 'mlops-template/initech/inputs/a.jsonl', 10, 'initech'],
    ['bad-name', 'a ".." in the name', 'mlops-template/acme/inputs/../globex/inputs/a.jsonl', 10, 'acme'],
    ['bad-name', 'a "//" in the name', 'mlops-template/acme/inputs//a.jsonl', 10, 'acme'],
    ['bad-name', 'a control character', 'mlops-template/acme/inputs/bell\u0007.jsonl', 10, 'acme'],
    [
      'bad-name',
      'a name over 1024 bytes',
      `mlops-template/acme/inputs/${'n'.repeat(1000)}.jsonl`,
      10,
      'acme',
    ],
    ['bad-extension', 'an extension not accepted', 'mlops-template/acme/inputs/tool.exe', 10, 'acme'],
    ['too-large', 'a file over maxFileBytes', 'mlops-template/acme/inputs/huge.jsonl', 1001, 'acme'],
    ['empty', 'an empty file', 'mlops-template/acme/inputs/empty.jsonl', 0, 'acme'],
  ])(
    'rejects %s (%s): a record in the bucket, an ERROR log, no job',
    async (reason, _what, name, size, client) => {
      // Arrange
      const event = storageFinalizedEvent({ bucket: BUCKET, name, generation: '1741083703110492', size });

      // Act
      const response = await fn.postEvent(event);

      // Assert
      expect(response.status).toBe(204);
      expect(await jobsFor(name)).toEqual([]);
      const records = await rejectionsFor(name);
      expect(records).toEqual([
        expect.objectContaining({
          product: 'mlops-template',
          client,
          objectUri: `gs://${BUCKET}/${name}`,
          generation: '1741083703110492',
          reason,
          message: expect.any(String),
        }),
      ]);
      expect(
        logs.filter(
          (e) => e.severity === 'ERROR' && e.reason === reason && e.object === `gs://${BUCKET}/${name}`,
        ),
      ).toHaveLength(1);
    },
  );

  it('writes one record for a repeated rejected event', async () => {
    // Arrange
    const name = 'mlops-template/acme/inputs/twice.txt';
    const event = storageFinalizedEvent({ bucket: BUCKET, name, generation: '5', size: 3 });

    // Act
    await fn.postEvent(event);
    const again = await fn.postEvent({ ...event, headers: { ...event.headers, 'ce-id': 'redelivery-2' } });

    // Assert
    expect(again.status).toBe(204);
    expect(await rejectionsFor(name)).toHaveLength(1);
    await expect
      .poll(
        () =>
          acmeEvents
            .filter((m) => m.attributes['ce-type'] === 'dev.batchwire.inference.rejected')
            .map((m) => JSON.parse(m.data.toString('utf8')) as { input?: { uri?: string } })
            .filter((data) => data.input?.uri === `gs://${BUCKET}/${name}`),
        { timeout: 10_000 },
      )
      .toHaveLength(1);
  });
});

describe('onUpload: events of another type', () => {
  it('acks a GCS event that is not a finalize (a trigger wired wrong) with a WARNING, and starts no job', async () => {
    // Arrange: an accepted upload, announced as deleted
    const name = 'mlops-template/acme/inputs/deleted.jsonl';
    const event = eventForObject(await upload(name, '{"a":1}\n'));
    const deleted = {
      ...event,
      headers: { ...event.headers, 'ce-type': 'google.cloud.storage.object.v1.deleted' },
    };

    // Act
    const response = await fn.postEvent(deleted);

    // Assert
    expect(response.status).toBe(204);
    expect(await jobsFor(name)).toEqual([]);
    expect(
      logs.filter((e) => e.severity === 'WARNING' && String(e.message).includes('event ignored: type')),
    ).not.toEqual([]);
  });
});

describe('onUpload: Batch failures', () => {
  it('answers 500 on a transient failure so Eventarc retries, and the retry makes the one job', async () => {
    // Arrange
    const name = 'mlops-template/acme/inputs/flaky.jsonl';
    const event = eventForObject(await upload(name, '{"a":1}\n'));
    batchService.injectFault('CreateJob', GrpcCode.UNAVAILABLE, 1);

    // Act
    const failed = await fn.postEvent(event);
    const retried = await fn.postEvent(event);

    // Assert
    expect(failed.status).toBe(500);
    expect(retried.status).toBe(204);
    expect(await jobsFor(name)).toHaveLength(1);
  });

  it.each([
    ['DEADLINE_EXCEEDED', GrpcCode.DEADLINE_EXCEEDED],
    ['RESOURCE_EXHAUSTED', GrpcCode.RESOURCE_EXHAUSTED],
    ['INTERNAL', GrpcCode.INTERNAL],
    ['UNKNOWN', GrpcCode.UNKNOWN],
    ['CANCELLED', GrpcCode.CANCELLED],
    ['ABORTED', GrpcCode.ABORTED],
  ])('treats %s as transient (500)', async (_code, code) => {
    // Arrange
    const event = storageFinalizedEvent({
      bucket: BUCKET,
      name: `mlops-template/acme/inputs/transient-${code}.jsonl`,
      generation: '9',
      size: 5,
    });
    batchService.injectFault('CreateJob', code, 1);

    // Act
    const response = await fn.postEvent(event);

    // Assert
    expect(response.status).toBe(500);
  });

  it('acks a permanent Batch error with an ERROR log (no retry cures it)', async () => {
    // Arrange
    const name = 'mlops-template/acme/inputs/refused.jsonl';
    batchService.injectFault('CreateJob', GrpcCode.INVALID_ARGUMENT, 1);

    // Act
    const response = await fn.postEvent(
      storageFinalizedEvent({ bucket: BUCKET, name, generation: '4', size: 5 }),
    );

    // Assert
    expect(response.status).toBe(204);
    expect(await jobsFor(name)).toEqual([]);
    expect(logsAbout('INVALID_ARGUMENT', 'ERROR')).not.toEqual([]);
  });

  it.each([
    ['PERMISSION_DENIED', GrpcCode.PERMISSION_DENIED],
    ['UNAUTHENTICATED', GrpcCode.UNAUTHENTICATED],
  ])(
    'fails the event on %s (a missing grant), naming the permission, and the retry makes the job once granted',
    async (codeName, code) => {
      // Arrange
      const name = `mlops-template/acme/inputs/denied-${codeName.toLowerCase()}.jsonl`;
      const event = storageFinalizedEvent({ bucket: BUCKET, name, generation: '4', size: 5 });
      batchService.injectFault('CreateJob', code, 1);

      // Act
      const denied = await fn.postEvent(event);
      const retried = await fn.postEvent(event);

      // Assert: failed (Eventarc redelivers), with an ERROR entry that says what to grant.
      expect(denied.status).toBe(500);
      const entries = logsAbout(codeName, 'ERROR').filter((e) => e.eventId === event.headers['ce-id']);
      expect(entries).toEqual([
        expect.objectContaining({
          permission: 'batch.jobs.create',
          operation: expect.stringContaining('CreateJob'),
        }),
      ]);
      expect(entries[0]?.message).toContain('missing permission batch.jobs.create');
      expect(retried.status).toBe(204);
      expect(await jobsFor(name)).toHaveLength(1);
    },
  );
});

describe('the Batch adapter against the local Batch service', () => {
  const job = () => ({ taskGroups: [{ taskSpec: { runnables: [{ container: { imageUri: 'img:1' } }] } }] });

  it('maps ALREADY_EXISTS (a reused job id under another requestId) to AlreadyExistsError', async () => {
    // Arrange
    await batchAdapter.createJob({ jobId: 'bw-adapter-dup', job: job(), requestId: randomUUID() });

    // Act
    const second = batchAdapter.createJob({ jobId: 'bw-adapter-dup', job: job(), requestId: randomUUID() });

    // Assert
    await expect(second).rejects.toBeInstanceOf(AlreadyExistsError);
  });

  it('answers a repeated requestId with the same job (what a redelivered event meets)', async () => {
    // Arrange
    const requestId = randomUUID();
    const first = await batchAdapter.createJob({ jobId: 'bw-adapter-same-request', job: job(), requestId });

    // Act
    const second = await batchAdapter
      .createJob({ jobId: 'bw-adapter-same-request', job: job(), requestId })
      .catch((err: unknown) => err);

    // Assert: Batch either returns the job of the first request or says it exists; both are "done".
    if (second instanceof Error) expect(second).toBeInstanceOf(AlreadyExistsError);
    else expect(second).toEqual(first);
  });

  it('maps NOT_FOUND to NotFoundError and accepts a bare job id', async () => {
    await expect(batchAdapter.getJob('bw-never-created')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('reads a job back by id with its task contract', async () => {
    // Arrange
    const name = 'mlops-template/acme/inputs/read-back.jsonl';
    const object = await upload(name, '{}\n');
    await fn.postEvent(eventForObject(object));
    const jobId = jobIdFor({ bucket: BUCKET, name, generation: object.generation }, 'mlops-template', 'acme');

    // Act
    const job = await batchAdapter.getJob(jobId);

    // Assert
    expect(job.name).toBe(`${PARENT}/jobs/${jobId}`);
    expect(readTaskContract(job)).toMatchObject({
      inputUri: `gs://${BUCKET}/${name}`,
      inputGeneration: object.generation,
    });
  });
});

describe('the Storage adapter against the local GCS server', () => {
  const store = () =>
    createObjectStore({
      bucket: BUCKET,
      clientOptions: { apiEndpoint: storageServer.url, projectId: PROJECT },
    });

  it('creates an object only if absent (the second writer gets false, the first body stays)', async () => {
    // Act
    const first = await store().createIfAbsent('_batchwire/it/claim.json', '{"n":1}');
    const second = await store().createIfAbsent('_batchwire/it/claim.json', '{"n":2}');

    // Assert
    expect([first, second]).toEqual([true, false]);
    expect(await store().readText('_batchwire/it/claim.json')).toBe('{"n":1}');
  });

  it('reads a missing object as undefined and lists a prefix with sizes', async () => {
    // Arrange
    await store().createIfAbsent('_batchwire/it/list/a.txt', 'abc', 'text/plain');
    await store().createIfAbsent('_batchwire/it/list/b.txt', 'abcdef', 'text/plain');

    // Act
    const missing = await store().readText('_batchwire/it/nothing-here');
    const listed = await store().list('_batchwire/it/list/');

    // Assert
    expect(missing).toBeUndefined();
    expect(listed).toEqual([
      { name: '_batchwire/it/list/a.txt', size: 3 },
      { name: '_batchwire/it/list/b.txt', size: 6 },
    ]);
  });

  it('reports an unreachable server as a TransientError', async () => {
    // Arrange: a port nothing listens on
    const down = createObjectStore({
      bucket: BUCKET,
      clientOptions: {
        apiEndpoint: 'http://127.0.0.1:9',
        projectId: PROJECT,
        retryOptions: { autoRetry: false },
      },
    });

    // Act + Assert
    await expect(down.readText('x')).rejects.toBeInstanceOf(TransientError);
  });
});

describe('onUpload: malformed requests', () => {
  const valid = () =>
    storageFinalizedEvent({
      bucket: BUCKET,
      name: 'mlops-template/acme/inputs/m.jsonl',
      generation: '2',
      size: 5,
    });

  it('answers 400 to a body that is not JSON (functions-framework rejects it before the function)', async () => {
    // Act
    const response = await fn.post('{"name": ', valid().headers);

    // Assert
    expect(response.status).toBe(400);
  });

  it.each([
    ['no data', {}],
    ['no name', { bucket: BUCKET, generation: '1', size: '5' }],
    [
      'wrong types',
      { bucket: BUCKET, name: 'mlops-template/acme/inputs/w.jsonl', generation: true, size: [] },
    ],
  ])('acks an event with %s with an ERROR log', async (what, body) => {
    // Arrange
    const event = { headers: { ...valid().headers, 'ce-id': `malformed-${what}` }, body };

    // Act
    const response = await fn.postEvent(event);

    // Assert
    expect(response.status).toBe(204);
    expect(logs.filter((e) => e.severity === 'ERROR' && e.eventId === `malformed-${what}`)).not.toEqual([]);
  });

  it('acks a POST without ce- headers (no CloudEvent, so no data) with an ERROR log', async () => {
    // Act
    const response = await fn.post(JSON.stringify({ hello: 'world' }), {
      'content-type': 'application/json',
    });

    // Assert
    expect(response.status).toBe(204);
    expect(logsAbout('the event has no data', 'ERROR')).not.toEqual([]);
  });

  it('answers a POST with no body at all (an error status from functions-framework, no hang)', async () => {
    // Act: functions-framework's CloudEvent middleware fails on a missing body before any
    // function code runs; what matters here is an answer, and the server surviving it.
    const response = await fn.post(undefined, {});

    // Assert
    expect(response.status).toBeGreaterThanOrEqual(400);
  });

  it('still serves valid events after all of the above', async () => {
    // Act
    const response = await fn.postEvent(valid());

    // Assert
    expect(response.status).toBe(204);
    expect(await jobsFor('mlops-template/acme/inputs/m.jsonl')).toHaveLength(1);
  });
});
