import { describe, expect, it } from 'vitest';
import type { Publisher } from '#shared/clients/ports.js';
import type { BatchJob, BatchJobs, CreatedJob } from '#shared/domain/batch-job.js';
import { JOB_ID_PATTERN } from '#shared/domain/job-id.js';
import {
  decideUpload,
  handleUpload,
  parseUploadEventData,
  type UploadDeps,
  type UploadObject,
} from '#shared/domain/upload.js';
import {
  AlreadyExistsError,
  MalformedEventError,
  PermanentError,
  TransientError,
} from '#shared/runtime/errors.js';
import { createLogger, type Logger } from '#shared/runtime/logger.js';
import { testConfig } from '../helpers/config.js';
import { MemoryStore } from '../helpers/fakes.js';

const CONFIG = testConfig(`
  mlops-template:
    clients: [acme, globex]
    inference:
      image: img:1
      acceptedExtensions: [.jsonl, .csv]
      maxFileBytes: 1000
      shardBytes: 100
      maxTasks: 4
`);

const upload = (name: string, overrides: Partial<UploadObject> = {}): UploadObject => ({
  bucket: 'test-bucket',
  name,
  generation: '1700000000000001',
  size: 10,
  ...overrides,
});

/** A Batch fake with the one behaviour the core relies on: a reused job id is ALREADY_EXISTS. */
class FakeBatch implements BatchJobs {
  readonly jobs = new Map<string, BatchJob>();
  failNext: Error | undefined;

  async createJob({ jobId, job }: { jobId: string; job: BatchJob; requestId: string }): Promise<CreatedJob> {
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure) throw failure;
    if (this.jobs.has(jobId)) throw new AlreadyExistsError(`job ${jobId} exists`);
    this.jobs.set(jobId, job);
    return { name: `projects/test-project/locations/europe-west2/jobs/${jobId}`, uid: `uid-${jobId}` };
  }

  async getJob(): Promise<never> {
    throw new Error('not used');
  }
}

function recordingLogger(): { log: Logger; entries: Array<Record<string, unknown>> } {
  const entries: Array<Record<string, unknown>> = [];
  const log = createLogger({
    level: 'debug',
    destination: { write: (line: string) => entries.push(JSON.parse(line)) },
  });
  return { log, entries };
}

/** What the core published, as the client's topic would receive it. */
interface Sent {
  topic: string;
  data: Record<string, unknown>;
  attributes: Record<string, string>;
}

function setup(overrides: Partial<UploadDeps> = {}) {
  const batch = new FakeBatch();
  const store = new MemoryStore();
  const { log, entries } = recordingLogger();
  const sent: Sent[] = [];
  const publisher: Publisher = {
    publish: async (topic, data, attributes) =>
      String(sent.push({ topic, data: JSON.parse(data.toString('utf8')), attributes })),
  };
  const deps: UploadDeps = {
    config: CONFIG,
    batch,
    store,
    publisher,
    log,
    now: () => new Date('2025-01-02T03:04:05.000Z'),
    ...overrides,
  };
  return { batch, store, log, entries, deps, sent };
}

describe('decideUpload', () => {
  it('submits an accepted input with a valid deterministic job id', () => {
    // Act
    const decision = decideUpload(upload('mlops-template/acme/inputs/a.jsonl', { size: 350 }), CONFIG);

    // Assert
    expect(decision.kind).toBe('submit');
    if (decision.kind !== 'submit') return;
    expect(decision.jobId).toMatch(JOB_ID_PATTERN);
    expect(decision.jobId.startsWith('bw-mlops-template-acme-')).toBe(true);
    expect(decision.job.taskGroups[0]?.taskCount).toBe(4);
    expect(decision).toEqual(
      decideUpload(upload('mlops-template/acme/inputs/a.jsonl', { size: 350 }), CONFIG),
    );
  });

  it.each([
    ['other-bucket', upload('mlops-template/acme/inputs/a.jsonl', { bucket: 'elsewhere' })],
    ['bookkeeping', upload('_batchwire/rejections/mlops-template/acme/x.json')],
    ['folder-placeholder', upload('mlops-template/acme/inputs/', { size: 0 })],
    ['folder-placeholder', upload('mlops-template/acme/inputs/day-1/', { size: 0 })],
    ['folder-placeholder', upload('mlops-template/acme/', { size: 0 })],
    ['not-inputs', upload('mlops-template/acme/outputs/bw-x/part-0.jsonl')],
    ['not-inputs', upload('mlops-template/acme/models/m.bin')],
    ['not-inputs', upload('somewhere/else.jsonl')],
    ['unknown-product', upload('unknown-product/acme/inputs/a.jsonl')],
    ['unknown-product', upload('constructor/acme/inputs/a.jsonl')],
  ])('ignores %s', (reason, object) => {
    expect(decideUpload(object, CONFIG)).toEqual({ kind: 'ignore', reason });
  });

  it.each([
    ['unknown-client', upload('mlops-template/initech/inputs/a.jsonl')],
    ['unknown-client', upload('mlops-template//inputs/a.jsonl')],
    ['bad-name', upload('mlops-template/acme/inputs/../globex/inputs/a.jsonl')],
    ['bad-name', upload('mlops-template/acme/inputs/a..jsonl')],
    ['bad-name', upload('mlops-template/acme/inputs/sub//a.jsonl')],
    ['bad-name', upload('mlops-template/acme/inputs/a\u0007.jsonl')],
    ['bad-name', upload('mlops-template/acme/inputs/a\n.jsonl')],
    ['bad-name', upload('mlops-template/acme/inputs/a\u009b.jsonl')],
    ['bad-name', upload(`mlops-template/acme/inputs/${'x'.repeat(1000)}.jsonl`)],
    ['bad-name', upload('mlops-template/acme/inputs/dir/', { size: 5 })],
    ['bad-extension', upload('mlops-template/acme/inputs/a.exe')],
    ['bad-extension', upload('mlops-template/acme/inputs/README')],
    ['bad-extension', upload('mlops-template/acme/inputs/.jsonl')],
    ['empty', upload('mlops-template/acme/inputs/a.jsonl', { size: 0 })],
    ['too-large', upload('mlops-template/acme/inputs/a.jsonl', { size: 1001 })],
  ])('rejects %s', (reason, object) => {
    const decision = decideUpload(object, CONFIG);
    expect(decision).toMatchObject({ kind: 'reject', product: 'mlops-template', reason });
    expect(decision.kind === 'reject' && decision.message.length).toBeGreaterThan(5);
  });

  it('accepts an extension in any case and a file at exactly the size limit', () => {
    expect(decideUpload(upload('mlops-template/acme/inputs/A.CSV', { size: 1000 }), CONFIG).kind).toBe(
      'submit',
    );
  });

  it('honours a configured name limit below GCS own', () => {
    // Arrange
    const object = upload(`mlops-template/acme/inputs/${'x'.repeat(40)}.jsonl`);

    // Act + Assert
    expect(decideUpload(object, CONFIG).kind).toBe('submit');
    expect(decideUpload(object, CONFIG, { maxNameBytes: 50 })).toMatchObject({
      kind: 'reject',
      reason: 'bad-name',
    });
  });

  it('counts the name limit in UTF-8 bytes, not characters', () => {
    // Arrange: 400 three-byte characters: 1200 bytes, 400 characters
    const object = upload(`mlops-template/acme/inputs/${'€'.repeat(400)}.jsonl`);

    // Act + Assert
    expect(decideUpload(object, CONFIG)).toMatchObject({ kind: 'reject', reason: 'bad-name' });
  });

  it('gives a new generation of the same name a new job id', () => {
    // Act
    const first = decideUpload(upload('mlops-template/acme/inputs/a.jsonl', { generation: '1' }), CONFIG);
    const second = decideUpload(upload('mlops-template/acme/inputs/a.jsonl', { generation: '2' }), CONFIG);

    // Assert
    expect(first.kind === 'submit' && second.kind === 'submit').toBe(true);
    if (first.kind !== 'submit' || second.kind !== 'submit') return;
    expect(second.jobId).not.toBe(first.jobId);
    expect(second.requestId).not.toBe(first.requestId);
  });
});

describe('handleUpload', () => {
  it('submits one job and reports it', async () => {
    // Arrange
    const { batch, deps } = setup();

    // Act
    const outcome = await handleUpload({ object: upload('mlops-template/acme/inputs/a.jsonl') }, deps);

    // Assert
    expect(outcome).toMatchObject({ kind: 'submitted', jobName: expect.stringContaining('/jobs/bw-') });
    expect(batch.jobs.size).toBe(1);
  });

  it('treats ALREADY_EXISTS as success: a repeated event makes no second job', async () => {
    // Arrange
    const { batch, deps } = setup();
    const object = upload('mlops-template/acme/inputs/a.jsonl');
    const first = await handleUpload({ object }, deps);

    // Act
    const second = await handleUpload({ object: { ...object } }, deps);

    // Assert
    expect(second).toEqual({
      kind: 'exists',
      jobId: first.kind === 'submitted' ? first.jobId : 'missing',
      requestId: first.kind === 'submitted' ? first.requestId : 'missing',
    });
    expect(batch.jobs.size).toBe(1);
  });

  it('lets a transient Batch failure through, so the event is retried', async () => {
    // Arrange
    const { batch, deps } = setup();
    batch.failNext = new TransientError('UNAVAILABLE');

    // Act + Assert
    await expect(
      handleUpload({ object: upload('mlops-template/acme/inputs/a.jsonl') }, deps),
    ).rejects.toBeInstanceOf(TransientError);
    expect(batch.jobs.size).toBe(0);
    await expect(
      handleUpload({ object: upload('mlops-template/acme/inputs/a.jsonl') }, deps),
    ).resolves.toMatchObject({
      kind: 'submitted',
    });
  });

  it('lets a permanent Batch failure through for the wrapper to log and ack', async () => {
    // Arrange
    const { batch, deps } = setup();
    batch.failNext = new PermanentError('INVALID_ARGUMENT');

    // Act + Assert
    await expect(
      handleUpload({ object: upload('mlops-template/acme/inputs/a.jsonl') }, deps),
    ).rejects.toBeInstanceOf(PermanentError);
  });

  it('ignores with a DEBUG log and touches nothing', async () => {
    // Arrange
    const { batch, store, deps, entries } = setup();

    // Act
    const outcome = await handleUpload(
      { object: upload('mlops-template/acme/outputs/bw-1/out.jsonl') },
      deps,
    );

    // Assert
    expect(outcome).toEqual({ kind: 'ignored', reason: 'not-inputs' });
    expect(batch.jobs.size).toBe(0);
    expect(store.objects.size).toBe(0);
    expect(entries).toEqual([expect.objectContaining({ severity: 'DEBUG', reason: 'not-inputs' })]);
  });

  it('ignores an object of another bucket with a WARNING (a trigger wired to the wrong bucket)', async () => {
    // Arrange
    const { deps, entries } = setup();

    // Act
    const outcome = await handleUpload(
      { object: upload('mlops-template/acme/inputs/a.jsonl', { bucket: 'elsewhere' }) },
      deps,
    );

    // Assert
    expect(outcome).toEqual({ kind: 'ignored', reason: 'other-bucket' });
    expect(entries).toEqual([expect.objectContaining({ severity: 'WARNING', bucket: 'elsewhere' })]);
  });

  it("records a rejection once, logs it at ERROR, submits nothing and tells the client's topic once", async () => {
    // Arrange
    const { batch, store, deps, entries, sent } = setup();
    const object = upload('mlops-template/acme/inputs/a.exe');

    // Act
    const first = await handleUpload({ object }, deps);
    const second = await handleUpload({ object }, deps);

    // Assert
    expect(batch.jobs.size).toBe(0);
    expect(first).toMatchObject({ kind: 'rejected', recorded: true });
    expect(second).toMatchObject({ kind: 'rejected', recorded: false });
    const recordName = first.kind === 'rejected' ? first.recordName : '';
    expect(recordName).toMatch(/^_batchwire\/rejections\/mlops-template\/acme\/[0-9a-f]{32}\.json$/);
    expect([...store.objects.keys()].filter((key) => key.startsWith('_batchwire/rejections/'))).toEqual([
      recordName,
    ]);
    expect(JSON.parse(store.objects.get(recordName) ?? '')).toEqual({
      version: 1,
      key: expect.stringMatching(/^[0-9a-f]{32}$/),
      product: 'mlops-template',
      client: 'acme',
      bucket: 'test-bucket',
      name: 'mlops-template/acme/inputs/a.exe',
      objectUri: 'gs://test-bucket/mlops-template/acme/inputs/a.exe',
      generation: '1700000000000001',
      size: 10,
      reason: 'bad-extension',
      message: expect.stringContaining('.exe'),
      rejectedAt: '2025-01-02T03:04:05.000Z',
    });
    expect(entries.filter((e) => e.severity === 'ERROR')).toHaveLength(1);
    expect(sent).toEqual([
      expect.objectContaining({
        topic: 'batch-mlops-template-acme-outputs',
        attributes: expect.objectContaining({ 'ce-type': 'dev.batchwire.inference.rejected' }),
        data: expect.objectContaining({ code: 'bad-extension' }),
      }),
    ]);
  });

  it('publishes the stored record once across deliveries, so every copy of a rejection says the same', async () => {
    // Arrange: the second delivery arrives a minute later, under another event id.
    let clock = new Date('2025-01-02T03:04:05.000Z');
    const { deps, sent } = setup({ now: () => clock });
    const object = upload('mlops-template/acme/inputs/a.exe');

    // Act
    await handleUpload({ object, deliveryId: 'event-1' }, deps);
    clock = new Date('2025-01-02T03:05:05.000Z');
    await handleUpload({ object, deliveryId: 'event-2' }, deps);

    // Assert
    expect(sent).toHaveLength(1);
    expect(sent[0]?.data.rejectedAt).toBe('2025-01-02T03:04:05.000Z');
  });

  it('records an unknown client under its own name when it is a valid id, else under a safe segment', async () => {
    // Arrange
    const { store, deps } = setup();

    // Act
    await handleUpload({ object: upload('mlops-template/initech/inputs/a.jsonl') }, deps);
    await handleUpload({ object: upload('mlops-template/Bad Client/inputs/a.jsonl') }, deps);

    // Assert
    const names = [...store.objects.keys()];
    expect(names[0]).toMatch(/^_batchwire\/rejections\/mlops-template\/initech\//);
    expect(names[1]).toMatch(/^_batchwire\/rejections\/mlops-template\/_invalid-client\//);
  });

  it('fails the event when the rejection cannot be recorded (so it is retried)', async () => {
    // Arrange
    const { deps } = setup({
      store: {
        createIfAbsent: async () => {
          throw new TransientError('503');
        },
        readText: async () => undefined,
        list: async () => [],
      },
    });

    // Act + Assert
    await expect(
      handleUpload({ object: upload('mlops-template/acme/inputs/a.exe') }, deps),
    ).rejects.toBeInstanceOf(TransientError);
  });
});

describe('parseUploadEventData', () => {
  const data = {
    kind: 'storage#object',
    bucket: 'test-bucket',
    name: 'mlops-template/acme/inputs/a.jsonl',
    generation: '1700000000000001',
    metageneration: '1',
    size: '42',
    contentType: 'application/jsonl',
  };

  it('reads GCS int64 strings', () => {
    expect(parseUploadEventData(data)).toEqual({
      bucket: 'test-bucket',
      name: 'mlops-template/acme/inputs/a.jsonl',
      generation: '1700000000000001',
      size: 42,
      contentType: 'application/jsonl',
    });
  });

  it('accepts numbers too, normalising the generation to a string', () => {
    expect(parseUploadEventData({ ...data, generation: 1700000000000001, size: 42 })).toMatchObject({
      generation: '1700000000000001',
      size: 42,
    });
  });

  it('parses data that arrived as JSON text or bytes', () => {
    expect(parseUploadEventData(JSON.stringify(data)).name).toBe(data.name);
    expect(parseUploadEventData(Buffer.from(JSON.stringify(data))).name).toBe(data.name);
  });

  it.each([
    ['no data', undefined],
    ['null data', null],
    ['no name', { ...data, name: undefined }],
    ['an empty name', { ...data, name: '' }],
    ['no bucket', { ...data, bucket: undefined }],
    ['a size that is not a number', { ...data, size: 'big' }],
    ['a negative size', { ...data, size: -1 }],
    ['a generation of the wrong type', { ...data, generation: { value: 1 } }],
    ['not JSON', 'not json'],
    ['an array', [1, 2]],
  ])('refuses %s as a MalformedEventError', (_what, value) => {
    expect(() => parseUploadEventData(value)).toThrow(MalformedEventError);
  });
});
