import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { type Message, PubSub, type Subscription } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { HTTP } from 'cloudevents';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStorageServer, startStorageServer } from '#local/storage/server.js';
import type { ObjectStore } from '#shared/clients/ports.js';
import { createPubSubPublisher, type PubSubPublisher } from '#shared/clients/pubsub.js';
import { createObjectStore } from '#shared/clients/storage.js';
import { handleCompletion } from '#shared/domain/completion/handle.js';
import type { Rejection } from '#shared/domain/rejection.js';
import { flowResultEvent, inferenceResultEvent } from '#shared/domain/results/build-events.js';
import {
  EVENT_TYPES,
  type FlowResultData,
  type InferenceResultData,
} from '#shared/domain/results/event-data.js';
import { publishOnce, publishRejection } from '#shared/domain/results/publish-once.js';
import { outputTopic } from '#shared/plan/names.js';
import { TransientError } from '#shared/runtime/errors.js';
import { createLogger } from '#shared/runtime/logger.js';
import { testConfig } from '../helpers/config.js';
import { collectMessages } from '../helpers/pubsub.js';

/**
 * The output contract as a consumer meets it: every event type is published by the platform's
 * code with the real Pub/Sub client to the emulator, pulled by a real subscriber, read the way
 * `shared/contracts/README.md` tells consumers to (ce- attributes, dedupe by ce-id), and its
 * data validated against the schema its `ce-dataschema` names.
 */

const PROJECT = `bw-contract-${randomUUID().slice(0, 8)}`;
const BUCKET = 'contract-bucket';
const TOPIC = outputTopic('mlops-template', 'acme');
const log = createLogger({ level: 'silent' });

const config = testConfig(
  `
  mlops-template:
    clients: [acme, globex]
    inference: { image: img }
    flows:
      metadata: { target: { workflow: metadata }, scope: product }
`,
  { project: PROJECT, bucket: BUCKET },
);

const SCHEMA_DIR = new URL('../../shared/contracts/schemas/', import.meta.url);
const ajv = new Ajv2020({ allErrors: true, strict: true });
addFormats.default(ajv);
for (const file of readdirSync(SCHEMA_DIR)) {
  ajv.addSchema(JSON.parse(readFileSync(new URL(file, SCHEMA_DIR), 'utf8')));
}

let storageServer: LocalStorageServer;
let pubsub: PubSub;
let publisher: PubSubPublisher;
let store: ObjectStore;
let subscription: Subscription;
const messages: Message[] = [];

beforeAll(async () => {
  storageServer = await startStorageServer();
  await new Storage({ apiEndpoint: storageServer.url, projectId: PROJECT }).createBucket(BUCKET);
  store = createObjectStore({
    bucket: BUCKET,
    clientOptions: { apiEndpoint: storageServer.url, projectId: PROJECT },
  });
  pubsub = new PubSub({ projectId: PROJECT });
  const [topic] = await pubsub.createTopic(TOPIC);
  await pubsub.createTopic(outputTopic('mlops-template', 'globex'));
  ({ subscription } = await collectMessages(topic, 'consumer', messages));
  publisher = createPubSubPublisher({ projectId: PROJECT });
});

afterAll(async () => {
  await subscription?.close();
  await publisher?.close();
  await pubsub?.close();
  await storageServer?.close();
});

async function waitForMessages(count: number, timeoutMs = 10_000): Promise<Message[]> {
  const deadline = Date.now() + timeoutMs;
  while (messages.length < count) {
    if (Date.now() > deadline) throw new Error(`expected ${count} messages, got ${messages.length}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await new Promise((resolve) => setTimeout(resolve, 500)); // and no more than that
  return [...messages];
}

const result: InferenceResultData = {
  version: 2,
  status: 'succeeded',
  product: 'mlops-template',
  client: 'acme',
  input: { uri: `gs://${BUCKET}/mlops-template/acme/inputs/a.jsonl`, generation: '1' },
  outputs: {
    prefix: `gs://${BUCKET}/mlops-template/acme/outputs/bw-x/`,
    manifest: `gs://${BUCKET}/mlops-template/acme/outputs/bw-x/_batchwire-outputs.json`,
    objectCount: 0,
    totalBytes: 0,
  },
  job: {
    name: `projects/${PROJECT}/locations/europe-west2/jobs/bw-mlops-template-acme-00000000000000000001`,
    uid: 'uid-contract-1',
    taskCount: 1,
    state: 'SUCCEEDED',
  },
  timings: {
    created: '2024-05-01T10:00:00.000Z',
    started: null,
    finished: '2024-05-01T10:01:00.000Z',
    runDurationSeconds: 60,
  },
  reason: null,
};

const rejection: Rejection = {
  version: 1,
  key: `key-${randomUUID()}`,
  product: 'mlops-template',
  client: 'acme',
  bucket: BUCKET,
  name: 'mlops-template/acme/inputs/notes.txt',
  objectUri: `gs://${BUCKET}/mlops-template/acme/inputs/notes.txt`,
  generation: '7',
  size: 3,
  reason: 'bad-extension',
  message: 'notes.txt: .txt is not accepted; use .jsonl or .csv',
  rejectedAt: '2024-05-01T10:00:00.000Z',
};

const flow: FlowResultData = {
  version: 1,
  status: 'failed',
  product: 'mlops-template',
  client: 'acme',
  scope: 'client',
  flow: 'train',
  execution: `projects/${PROJECT}/locations/europe-west2/workflows/train/executions/e-1`,
  timings: { started: '2024-05-01T04:00:00.000Z', finished: '2024-05-01T04:05:00.000Z' },
  outputs: null,
  reason: 'step train_model raised: out of memory',
};

describe('the output contract on the wire', () => {
  it('delivers every event type once per ce-id, readable by a consumer and valid against its schema', async () => {
    // Arrange + Act: each result published twice (as redeliveries would), plus a flow via onComplete's core
    const deps = { store, publisher, log };
    const events = [
      inferenceResultEvent(PROJECT, result, { time: '2024-05-01T10:01:00.000Z' }),
      inferenceResultEvent(
        PROJECT,
        {
          ...result,
          status: 'failed',
          job: { ...result.job, state: 'FAILED' },
          reason: 'task 0 exited with code 1',
        },
        { time: '2024-05-01T10:01:00.000Z' },
      ),
      flowResultEvent(PROJECT, flow),
    ];
    for (const event of [...events, ...events]) await publishOnce(event, TOPIC, `delivery-${event.id}`, deps);
    await publishRejection(rejection, { ...deps, config });
    await publishRejection(rejection, { ...deps, config });
    await handleCompletion(
      {
        data: Buffer.from(
          JSON.stringify({
            type: 'flow',
            version: 1,
            flow: 'metadata',
            product: 'mlops-template',
            client: null,
            execution: `projects/${PROJECT}/locations/europe-west2/workflows/metadata/executions/m-1`,
            state: 'SUCCEEDED',
            startedAt: '2024-05-01T05:30:00Z',
            finishedAt: '2024-05-01T05:31:00Z',
            outputs: { prefix: `gs://${BUCKET}/mlops-template/_metadata/m-1/` },
            error: null,
          }),
        ),
        attributes: { Type: 'FLOW_COMPLETED' },
        messageId: 'flow-completed-1',
      },
      { ...deps, config, jobs: { getJob: () => Promise.reject(new Error('not used')) } },
    );

    // Assert: the consumer of acme's topic
    const received = await waitForMessages(5);
    const ids = received.map((m) => m.attributes['ce-id']);
    expect(new Set(ids).size).toBe(received.length);
    expect(received.map((m) => m.attributes['ce-type']).sort()).toEqual(
      [
        EVENT_TYPES.flowFailed,
        EVENT_TYPES.flowSucceeded,
        EVENT_TYPES.inferenceFailed,
        EVENT_TYPES.inferenceRejected,
        EVENT_TYPES.inferenceSucceeded,
      ].sort(),
    );
    for (const message of received) {
      expect(message.attributes).toMatchObject({
        'ce-specversion': '1.0',
        'ce-source': `//batchwire/projects/${PROJECT}/products/mlops-template/clients/acme`,
        'content-type': 'application/json',
      });
      expect(message.attributes['ce-time']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      const data = JSON.parse(message.data.toString('utf8'));
      const validate = ajv.getSchema(message.attributes['ce-dataschema'] as string);
      expect(validate, `schema ${message.attributes['ce-dataschema']}`).toBeDefined();
      expect(validate?.(data), JSON.stringify(validate?.errors)).toBe(true);
      // The cloudevents SDK reads it as the same event (the binding's names are its HTTP binary ones).
      const event = HTTP.toEvent({ headers: message.attributes, body: message.data.toString('utf8') });
      expect(event).toMatchObject({
        id: message.attributes['ce-id'],
        type: message.attributes['ce-type'],
        data,
      });
    }
  });

  it('reports a missing topic as transient, so the trigger retries', async () => {
    // Act
    const act = publisher.publish('batch-mlops-template-nobody-outputs', Buffer.from('{}'), {});
    // Assert
    await expect(act).rejects.toBeInstanceOf(TransientError);
    await expect(act).rejects.toThrow(/topic does not exist/);
  });
});
