import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ObjectStore, Publisher } from '#shared/clients/ports.js';
import type { Rejection } from '#shared/domain/rejection.js';
import {
  boundedUtf8,
  flowResultEvent,
  flowResultId,
  inferenceResultEvent,
  inferenceResultId,
  rejectionEvent,
  rejectionId,
} from '#shared/domain/results/build-events.js';
import {
  DATA_SCHEMAS,
  EVENT_TYPES,
  type FlowResultData,
  type InferenceResultData,
  MAX_REASON_CHARS,
  MAX_SUBJECT_BYTES,
  PUBSUB_MAX_ATTRIBUTE_BYTES,
} from '#shared/domain/results/event-data.js';
import { publishRejection } from '#shared/domain/results/publish-once.js';
import { fromPubSubMessage, toPubSubMessage } from '#shared/domain/results/pubsub-binding.js';
import { outputTopic } from '#shared/plan/names.js';
import { createLogger } from '#shared/runtime/logger.js';
import { testConfig } from '../helpers/config.js';

const SCHEMA_DIR = new URL('../../shared/contracts/schemas/', import.meta.url);
const ajv = new Ajv2020({ allErrors: true, strict: true });
addFormats.default(ajv);
for (const file of ['inference-result', 'inference-result.v1', 'inference-rejection', 'flow-result']) {
  ajv.addSchema(JSON.parse(readFileSync(new URL(`${file}.schema.json`, SCHEMA_DIR), 'utf8')));
}

/** Validates data against the schema its event names in `dataschema`. */
function validate(dataschema: string | undefined, data: unknown): string[] {
  const check = ajv.getSchema(dataschema ?? '');
  if (!check) throw new Error(`no schema ${dataschema}`);
  return check(data) ? [] : (check.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
}

const JOB_NAME = 'projects/p-123456/locations/europe-west2/jobs/bw-mlops-template-acme-0123456789abcdef0123';

const succeeded: InferenceResultData = {
  version: 2,
  status: 'succeeded',
  product: 'mlops-template',
  client: 'acme',
  input: { uri: 'gs://bucket-1/mlops-template/acme/inputs/a.jsonl', generation: '1700000000000001' },
  outputs: {
    prefix: 'gs://bucket-1/mlops-template/acme/outputs/bw-mlops-template-acme-0123456789abcdef0123/',
    manifest:
      'gs://bucket-1/mlops-template/acme/outputs/bw-mlops-template-acme-0123456789abcdef0123/_batchwire-outputs.json',
    objectCount: 1,
    totalBytes: 12,
  },
  job: { name: JOB_NAME, uid: 'uid-1', taskCount: 1, state: 'SUCCEEDED' },
  timings: {
    created: '2024-05-01T10:00:00.000Z',
    started: '2024-05-01T10:00:05.000Z',
    finished: '2024-05-01T10:02:05.000Z',
    runDurationSeconds: 120,
  },
  reason: null,
};

const failed: InferenceResultData = {
  ...succeeded,
  status: 'failed',
  job: { ...succeeded.job, state: 'FAILED' },
  reason: '1 of 1 task failed; task 0 exited with code 3 after 1 attempt; see the task logs',
};

const rejection: Rejection = {
  version: 1,
  key: 'abc123',
  product: 'mlops-template',
  client: 'acme',
  bucket: 'bucket-1',
  name: 'mlops-template/acme/inputs/notes.txt',
  objectUri: 'gs://bucket-1/mlops-template/acme/inputs/notes.txt',
  generation: '1700000000000002',
  size: 10,
  reason: 'bad-extension',
  message: 'notes.txt: extension .txt is not accepted; use .jsonl or .csv',
  rejectedAt: '2024-05-01T10:00:00.000Z',
};

const flow: FlowResultData = {
  version: 1,
  status: 'succeeded',
  product: 'mlops-template',
  client: 'acme',
  scope: 'client',
  flow: 'train',
  execution: 'projects/p/locations/europe-west2/workflows/train/executions/e-1',
  timings: { started: '2024-05-01T04:00:00.000Z', finished: '2024-05-01T04:10:00.000Z' },
  outputs: { prefix: 'gs://bucket-1/mlops-template/acme/models/e-1/' },
  reason: null,
};

describe('event ids', () => {
  it('are UUIDv5, one per (job uid, final state), stable across calls', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), (a, b) => {
        // Act
        const id = inferenceResultId(a, 'SUCCEEDED');
        // Assert
        expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        expect(inferenceResultId(a, 'SUCCEEDED')).toBe(id);
        expect(inferenceResultId(a, 'FAILED')).not.toBe(id);
        if (a !== b) expect(inferenceResultId(b, 'SUCCEEDED')).not.toBe(id);
      }),
    );
  });

  it('differ per client for the same flow execution, and per rejected object version', () => {
    expect(flowResultId('e', 'SUCCEEDED', 'acme')).not.toBe(flowResultId('e', 'SUCCEEDED', 'globex'));
    expect(flowResultId('e', 'SUCCEEDED', 'acme')).toBe(flowResultId('e', 'SUCCEEDED', 'acme'));
    expect(rejectionId('k1')).not.toBe(rejectionId('k2'));
  });
});

describe('inferenceResultEvent', () => {
  it('builds a CloudEvent 1.0 with the contract envelope', () => {
    // Act
    const event = inferenceResultEvent('p-123456', succeeded, { time: '2024-05-01T10:02:05.000Z' });
    // Assert
    expect(event).toMatchObject({
      specversion: '1.0',
      id: inferenceResultId('uid-1', 'SUCCEEDED'),
      type: EVENT_TYPES.inferenceSucceeded,
      source: '//batchwire/projects/p-123456/products/mlops-template/clients/acme',
      subject: 'jobs/bw-mlops-template-acme-0123456789abcdef0123',
      time: '2024-05-01T10:02:05.000Z',
      datacontenttype: 'application/json',
      dataschema: DATA_SCHEMAS.inferenceResult,
    });
  });

  it.each([
    ['succeeded', succeeded],
    ['failed', failed],
  ])('emits %s data valid against the schema', (_, data) => {
    const event = inferenceResultEvent('p-123456', data, { time: '2024-05-01T10:02:05.000Z' });
    expect(validate(event.dataschema, event.data)).toEqual([]);
  });

  it('has a schema that refuses a failure without a reason', () => {
    expect(validate(DATA_SCHEMAS.inferenceResult, { ...failed, reason: null })).not.toEqual([]);
    expect(validate(DATA_SCHEMAS.inferenceResult, { ...succeeded, extra: 1 })).not.toEqual([]);
  });

  it('is version 2 of the contract: the v2 schema refuses the v1 list of objects, the v1 schema stays for old messages', () => {
    // Arrange
    const v1 = {
      ...succeeded,
      version: 1,
      outputs: { prefix: succeeded.outputs.prefix, objects: [] },
    };

    // Assert
    expect(DATA_SCHEMAS.inferenceResult).toBe(
      'https://batchwire.dev/schemas/v2/inference-result.schema.json',
    );
    expect(validate(DATA_SCHEMAS.inferenceResult, v1)).not.toEqual([]);
    expect(validate('https://batchwire.dev/schemas/v1/inference-result.schema.json', v1)).toEqual([]);
  });

  it('cuts a reason to 4,096 characters, still valid against the schema', () => {
    // Act
    const event = inferenceResultEvent(
      'p-123456',
      { ...failed, reason: `task failed: ${'x'.repeat(1_000_000)}` },
      { time: '2024-05-01T10:02:05.000Z' },
    );

    // Assert
    expect(event.data?.reason?.length).toBe(MAX_REASON_CHARS);
    expect(validate(event.dataschema, event.data)).toEqual([]);
    expect(toPubSubMessage(event).data.length).toBeLessThan(8 * 1024);
  });
});

describe('attribute sizes', () => {
  it('keeps ce-subject of a rejection under 1,024 bytes for an object name at GCS’s 1,024-byte limit', () => {
    // Arrange: a multi-byte name of exactly 1,024 UTF-8 bytes
    const name = `mlops-template/acme/inputs/${'ü'.repeat((1_024 - 27) / 2)}.t`.slice(0, 1_024);
    const other = `${name.slice(0, -3)}.x`;
    expect(Buffer.byteLength(name)).toBeGreaterThan(1_000);

    // Act
    const message = toPubSubMessage(
      rejectionEvent('p-123456', { ...rejection, name, objectUri: `gs://bucket-1/${name}` }),
    );
    const otherMessage = toPubSubMessage(
      rejectionEvent('p-123456', { ...rejection, name: other, objectUri: `gs://bucket-1/${other}` }),
    );

    // Assert: every attribute fits, the cut subjects of two names stay distinct, the data has the full name
    for (const value of Object.values(message.attributes)) {
      expect(Buffer.byteLength(value)).toBeLessThanOrEqual(PUBSUB_MAX_ATTRIBUTE_BYTES);
    }
    const subject = message.attributes['ce-subject'] as string;
    expect(Buffer.byteLength(subject)).toBeLessThanOrEqual(MAX_SUBJECT_BYTES);
    expect(subject).toMatch(/^objects\/mlops-template\/acme\/inputs\/ü+…#[0-9a-f]{16}$/);
    expect(otherMessage.attributes['ce-subject']).not.toBe(subject);
    expect(JSON.parse(message.data.toString('utf8')).input.uri).toBe(`gs://bucket-1/${name}`);
  });

  it('leaves a subject that fits as it is, and never splits a character', () => {
    expect(boundedUtf8('jobs/bw-1', MAX_SUBJECT_BYTES)).toBe('jobs/bw-1');
    const cut = boundedUtf8('€'.repeat(400), 100);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(100);
    expect(cut).toMatch(/^€+…#[0-9a-f]{16}$/);
  });
});

describe('toPubSubMessage', () => {
  it('maps the event to the Pub/Sub binary content mode', () => {
    // Arrange
    const event = inferenceResultEvent('p-123456', failed, { time: '2024-05-01T10:02:05.000Z' });
    // Act
    const message = toPubSubMessage(event);
    // Assert
    expect(message.attributes).toEqual({
      'ce-specversion': '1.0',
      'ce-id': inferenceResultId('uid-1', 'FAILED'),
      'ce-type': 'dev.batchwire.inference.failed',
      'ce-source': '//batchwire/projects/p-123456/products/mlops-template/clients/acme',
      'ce-subject': 'jobs/bw-mlops-template-acme-0123456789abcdef0123',
      'ce-time': '2024-05-01T10:02:05.000Z',
      'ce-dataschema': DATA_SCHEMAS.inferenceResult,
      'content-type': 'application/json',
    });
    expect(JSON.parse(message.data.toString('utf8'))).toEqual(failed);
  });

  it('reads back into the same event', () => {
    // Arrange
    const event = flowResultEvent('p-123456', flow);
    // Act
    const back = fromPubSubMessage<FlowResultData>(toPubSubMessage(event));
    // Assert
    expect(back.id).toBe(event.id);
    expect(back.type).toBe(EVENT_TYPES.flowSucceeded);
    expect(back.data).toEqual(flow);
  });
});

describe('flow and rejection events', () => {
  it('builds flow results valid against the schema', () => {
    const ok = flowResultEvent('p-123456', flow);
    const ko = flowResultEvent('p-123456', {
      ...flow,
      status: 'failed',
      outputs: null,
      reason: 'step train: boom',
    });
    expect(ko.type).toBe(EVENT_TYPES.flowFailed);
    expect(ko.id).not.toBe(ok.id);
    expect(validate(ok.dataschema, ok.data)).toEqual([]);
    expect(validate(ko.dataschema, ko.data)).toEqual([]);
  });

  it('builds a rejection from the rejection record', () => {
    // Act
    const event = rejectionEvent('p-123456', rejection);
    // Assert
    expect(event).toMatchObject({
      id: rejectionId('abc123'),
      type: EVENT_TYPES.inferenceRejected,
      subject: 'objects/mlops-template/acme/inputs/notes.txt',
      time: '2024-05-01T10:00:00.000Z',
      data: {
        version: 1,
        product: 'mlops-template',
        client: 'acme',
        input: { uri: rejection.objectUri, generation: '1700000000000002', size: 10 },
        code: 'bad-extension',
        reason: rejection.message,
        rejectedAt: '2024-05-01T10:00:00.000Z',
      },
    });
    expect(validate(event.dataschema, event.data)).toEqual([]);
  });
});

describe('publishRejection', () => {
  const config = testConfig(
    `
  mlops-template:
    clients: [acme]
    inference: { image: img }
`,
    { project: 'p-123456', bucket: 'bucket-1' },
  );
  const setup = () => {
    const objects = new Map<string, string>();
    const store: ObjectStore = {
      createIfAbsent: async (name, body) => !objects.has(name) && Boolean(objects.set(name, body)),
      readText: async (name) => objects.get(name),
      list: async () => [],
    };
    const sent: Array<{ topic: string; attributes: Record<string, string> }> = [];
    const publisher: Publisher = {
      publish: async (topic, _data, attributes) => String(sent.push({ topic, attributes })),
    };
    return { deps: { config, store, publisher, log: createLogger({ level: 'silent' }) }, sent };
  };

  it("publishes to the client's topic once per rejected object version", async () => {
    // Arrange
    const { deps, sent } = setup();
    // Act
    const first = await publishRejection(rejection, deps);
    const second = await publishRejection(rejection, deps);
    // Assert
    expect([first, second]).toEqual(['published', 'already-published']);
    expect(sent).toEqual([
      {
        topic: outputTopic('mlops-template', 'acme'),
        attributes: expect.objectContaining({ 'ce-type': 'dev.batchwire.inference.rejected' }),
      },
    ]);
  });

  it('skips an unconfigured client, which has no topic', async () => {
    const { deps, sent } = setup();
    expect(await publishRejection({ ...rejection, client: 'initech', reason: 'unknown-client' }, deps)).toBe(
      'skipped',
    );
    expect(sent).toEqual([]);
  });
});

describe('outputTopic', () => {
  it('names the per-client topic', () => {
    expect(outputTopic('mlops-template', 'acme')).toBe('batch-mlops-template-acme-outputs');
  });
});
