import { type Bucket, Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStorageServer, startStorageServer } from '#local/storage/server.js';
import { ensureBuilt } from '../helpers/dist.js';
import { runTask as runCompiledTask, TASKS } from '../helpers/tasks.js';

// As in inference-task.test.ts: the compiled tasks, built by ensureBuilt() when dist/ is stale.
const TRAIN = TASKS.train;
const INFERENCE = TASKS.inference;
const METADATA = TASKS.metadata;

/** Runs a compiled task against this file's local GCS server. */
const runTask = (script: string, env: Record<string, string>) =>
  runCompiledTask(script, { STORAGE_EMULATOR_HOST: server.url, ...env });

const BUCKET = 'batchwire-train-it';
let server: LocalStorageServer;
let bucket: Bucket;

async function readJson(name: string): Promise<Record<string, unknown>> {
  const [contents] = await bucket.file(name).download();
  return JSON.parse(contents.toString('utf8'));
}

beforeAll(async () => {
  await ensureBuilt();
  server = await startStorageServer();
  const storage = new Storage({ apiEndpoint: server.url, projectId: 'batchwire-local' });
  [bucket] = await storage.createBucket(BUCKET);
  await bucket
    .file('mlops-template/acme/inputs/a.jsonl')
    .save('{"text":"the cat sat"}\n{"text":"The  cat ran"}\nbad\n');
  await bucket.file('mlops-template/acme/inputs/b.csv').save('id,text\n1,"a dog, the end"\n');
  await bucket.file('mlops-template/acme/inputs/ignored.txt').save('not a dataset');
}, 120_000);

afterAll(async () => {
  await server?.close();
});

const trainEnv = { BATCHWIRE_PRODUCT: 'mlops-template', BATCHWIRE_CLIENT: 'acme', BATCHWIRE_BUCKET: BUCKET };

describe('training task', () => {
  it('writes a deterministic model under models/<version>/ and models/latest/, which inference then uses', async () => {
    // Act
    const first = await runTask(TRAIN, trainEnv);
    const latest = await readJson('mlops-template/acme/models/latest/model.json');
    const second = await runTask(TRAIN, trainEnv);
    const again = await readJson('mlops-template/acme/models/latest/model.json');

    // Assert: token statistics over the .jsonl and .csv inputs (CSV fields are strings, ids
    // included), same data → same version and model
    expect(first, first.stderr).toMatchObject({ code: 0 });
    expect(second, second.stderr).toMatchObject({ code: 0 });
    expect(latest).toMatchObject({
      kind: 'batchwire.reference-model',
      version: expect.stringMatching(/^v-[0-9a-f]{12}$/),
      product: 'mlops-template',
      client: 'acme',
      vocabulary: [
        { token: 'THE', count: 3 },
        { token: 'CAT', count: 2 },
        { token: '1', count: 1 },
        { token: 'A', count: 1 },
        { token: 'DOG', count: 1 },
        { token: 'END', count: 1 },
        { token: 'RAN', count: 1 },
        { token: 'SAT', count: 1 },
      ],
      stats: { objects: 2, records: 3, rejects: 1, tokens: 11, distinctTokens: 8 },
    });
    expect(again).toEqual(latest);
    expect(await readJson(`mlops-template/acme/models/${latest.version}/model.json`)).toEqual(latest);

    // Act: inference on the client's next upload
    await bucket.file('mlops-template/acme/inputs/next.jsonl').save('{"text":" the   bird "}\n');
    const inference = await runTask(INFERENCE, {
      BATCHWIRE_INPUT_URI: `gs://${BUCKET}/mlops-template/acme/inputs/next.jsonl`,
      BATCHWIRE_OUTPUT_URI: `gs://${BUCKET}/mlops-template/acme/outputs/next/`,
      BATCHWIRE_PRODUCT: 'mlops-template',
      BATCHWIRE_CLIENT: 'acme',
    });

    // Assert
    expect(inference, inference.stderr).toMatchObject({ code: 0 });
    const [part] = await bucket.file('mlops-template/acme/outputs/next/part-00000.jsonl').download();
    expect(JSON.parse(part.toString())).toEqual({
      text: 'THE BIRD',
      knownTokenRatio: 0.5,
      _offset: 0,
      modelVersion: latest.version,
    });
  });

  it('trains on a given dataset prefix, honours an explicit version and writes a summary', async () => {
    await bucket.file('datasets/d1/part.jsonl').save('{"text":"one"}\n{"text":"two"}\n');
    const run = await runTask(TRAIN, {
      ...trainEnv,
      BATCHWIRE_INPUT_URI: `gs://${BUCKET}/datasets/d1/`,
      BATCHWIRE_MODEL_VERSION: 'v2024-01',
      BATCHWIRE_OUTPUT_URI: `gs://${BUCKET}/mlops-template/acme/outputs/train-1/`,
    });
    expect(run, run.stderr).toMatchObject({ code: 0 });
    expect(await readJson('mlops-template/acme/models/v2024-01/model.json')).toMatchObject({
      version: 'v2024-01',
    });
    expect(await readJson('mlops-template/acme/outputs/train-1/training.json')).toMatchObject({
      version: 'v2024-01',
      modelUri: `gs://${BUCKET}/mlops-template/acme/models/v2024-01/model.json`,
      records: 2,
    });
  });

  it('fails with a clear message when the client has no training data', async () => {
    const run = await runTask(TRAIN, { ...trainEnv, BATCHWIRE_CLIENT: 'globex' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`no training records under gs://${BUCKET}/mlops-template/globex/inputs/`);
  });
});

describe('metadata task', () => {
  it('indexes each client across 2 Cloud Run tasks and merges them into {product}/_index/metadata.json', async () => {
    // Arrange: acme has inputs and a model from the training test; initech has one object
    await bucket.file('mlops-template/initech/inputs/x.jsonl').save('{"a":1}\n');
    const env = {
      BATCHWIRE_BUCKET: BUCKET,
      BATCHWIRE_PRODUCT: 'mlops-template',
      BATCHWIRE_CLIENTS: 'acme,globex,initech',
      CLOUD_RUN_EXECUTION: 'metadata-abc12',
      CLOUD_RUN_TASK_COUNT: '2',
    };

    const [acmeInputs] = await bucket.getFiles({ prefix: 'mlops-template/acme/inputs/' });

    // Act
    const runs = await Promise.all(
      ['0', '1'].map((index) => runTask(METADATA, { ...env, CLOUD_RUN_TASK_INDEX: index })),
    );

    // Assert
    for (const run of runs) expect(run, run.stderr).toMatchObject({ code: 0 });
    const index = await readJson('mlops-template/_index/metadata.json');
    const latest = await readJson('mlops-template/acme/models/latest/model.json');
    expect(Object.keys(index.clients as object)).toEqual(['acme', 'globex', 'initech']);
    expect(index).toMatchObject({
      kind: 'batchwire.metadata-index',
      runId: 'metadata-abc12',
      clients: {
        acme: { latestModel: { version: latest.version }, areas: { inputs: { objects: acmeInputs.length } } },
        globex: { objects: 0, bytes: 0, latestModel: null },
        initech: { objects: 1, bytes: 8, areas: { inputs: { objects: 1, bytes: 8 } }, latestModel: null },
      },
      totals: { clients: 3 },
    });
  });
});
