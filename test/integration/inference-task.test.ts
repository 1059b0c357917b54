import { type Bucket, Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStorageServer, startStorageServer } from '#local/storage/server.js';
import { ensureBuilt } from '../helpers/dist.js';
import { runTask, TASKS } from '../helpers/tasks.js';

// The tasks run as the compiled processes that Batch runs: dist/, built by `npm test` before
// vitest, or by ensureBuilt() when it is missing or stale (a single file run during development).
const INFERENCE = TASKS.inference;

const BUCKET = 'batchwire-jobs-it';
let server: LocalStorageServer;
let storage: Storage;
let bucket: Bucket;
const finalized: string[] = [];

beforeAll(async () => {
  await ensureBuilt();
  server = await startStorageServer();
  server.onFinalize((object) => finalized.push(object.name));
  storage = new Storage({ apiEndpoint: server.url, projectId: 'batchwire-local' });
  [bucket] = await storage.createBucket(BUCKET);
}, 120_000);

afterAll(async () => {
  await server?.close();
});

/** Runs the inference task `count` ways at once over one input, as a Batch task group would. */
async function runSharded(
  input: string,
  outputPrefix: string,
  count: number,
  extraEnv: Record<string, string> = {},
) {
  const runs = await Promise.all(
    Array.from({ length: count }, (_, index) =>
      runTask(INFERENCE, {
        STORAGE_EMULATOR_HOST: server.url,
        BATCHWIRE_INPUT_URI: `gs://${BUCKET}/${input}`,
        BATCHWIRE_OUTPUT_URI: `gs://${BUCKET}/${outputPrefix}`,
        BATCH_TASK_INDEX: String(index),
        BATCH_TASK_COUNT: String(count),
        ...extraEnv,
      }),
    ),
  );
  for (const run of runs) expect(run, run.stderr).toMatchObject({ code: 0 });
  const records: Array<Record<string, unknown>> = [];
  for (let index = 0; index < count; index++) {
    const [contents] = await bucket
      .file(`${outputPrefix}part-${String(index).padStart(5, '0')}.jsonl`)
      .download();
    const text = contents.toString('utf8');
    for (const line of text.split('\n').filter((l) => l !== '')) records.push(JSON.parse(line));
  }
  const [manifestBytes] = await bucket.file(`${outputPrefix}manifest.json`).download();
  return { records, manifest: JSON.parse(manifestBytes.toString('utf8')), runs };
}

/** 3000 JSONL lines: unicode, nested values, blank lines and a few malformed lines among them. */
function jsonlInput(): { text: string; texts: string[]; malformed: number } {
  const lines: string[] = [];
  const texts: string[] = [];
  let malformed = 0;
  for (let i = 0; i < 3000; i++) {
    if (i % 997 === 500) {
      lines.push('{"id": broken');
      malformed++;
    } else if (i % 613 === 7) {
      lines.push('');
    } else {
      const text = `record ${i} héllo wörld ${'ab'.repeat(i % 37)}`;
      texts.push(text);
      lines.push(JSON.stringify({ id: i, text, tags: ['x', i % 5 === 0 ? 'five' : 'other'] }));
    }
  }
  return { text: `${lines.join('\n')}\n`, texts, malformed };
}

describe('inference task', () => {
  it('gives the same records in the same order sharded 1, 3 and 7 ways over a JSONL input', async () => {
    // Arrange
    const input = jsonlInput();
    await bucket.file('mlops-template/acme/inputs/texts.jsonl').save(input.text);

    // Act
    const results = [];
    for (const count of [1, 3, 7]) {
      results.push(
        await runSharded(
          'mlops-template/acme/inputs/texts.jsonl',
          `mlops-template/acme/outputs/j${count}/`,
          count,
        ),
      );
    }

    // Assert: every record once, upper-cased, in input order, identical across shardings
    const [one, three, seven] = results.map((r) => r.records);
    expect(one?.map((r) => r.text)).toEqual(input.texts.map((t) => t.toUpperCase()));
    expect(one?.[0]).toEqual({
      id: 0,
      text: 'RECORD 0 HÉLLO WÖRLD ',
      tags: ['X', 'FIVE'],
      _offset: 0,
      modelVersion: 'builtin-upper-case',
    });
    expect(three).toEqual(one);
    expect(seven).toEqual(one);
    for (const [i, { manifest }] of results.entries()) {
      const count = [1, 3, 7][i] as number;
      expect(manifest).toMatchObject({
        kind: 'batchwire.inference-manifest',
        taskCount: count,
        records: input.texts.length,
        rejects: input.malformed,
        model: { version: 'builtin-upper-case', uri: null },
        input: { uri: `gs://${BUCKET}/mlops-template/acme/inputs/texts.jsonl`, format: 'jsonl' },
      });
      expect(manifest.parts.map((p: { name: string }) => p.name)).toEqual(
        Array.from(
          { length: count },
          (_, k) => `mlops-template/acme/outputs/j${count}/part-${String(k).padStart(5, '0')}.jsonl`,
        ),
      );
      // Written exactly once although every task checked for it.
      expect(
        finalized.filter((name) => name === `mlops-template/acme/outputs/j${count}/manifest.json`),
      ).toHaveLength(1);
    }
  });

  it('writes malformed lines to rejects-<index>.jsonl and carries on', async () => {
    // Arrange
    await bucket
      .file('mlops-template/acme/inputs/bad.jsonl')
      .save('{"text":"ok"}\nnot json\n[1]\n{"text":"fine"}\n');
    // Act
    const { records, manifest } = await runSharded('mlops-template/acme/inputs/bad.jsonl', 'out/bad/', 1);
    // Assert
    expect(records.map((r) => r.text)).toEqual(['OK', 'FINE']);
    expect(manifest.parts[0]).toMatchObject({
      records: 2,
      rejects: 2,
      rejectsObject: 'out/bad/rejects-00000.jsonl',
    });
    const [rejects] = await bucket.file('out/bad/rejects-00000.jsonl').download();
    const entries = rejects
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(entries).toEqual([
      { _offset: 14, reason: expect.stringMatching(/^invalid JSON/), line: 'not json' },
      { _offset: 23, reason: 'not a JSON object', line: '[1]' },
    ]);
  });

  it('gives the same records sharded 1, 3 and 7 ways over a CSV input, header in every shard', async () => {
    // Arrange: quoted commas and quotes, CRLF endings, one row with a missing field
    const rows = ['id,text,note\r'];
    const expected: Array<Record<string, string>> = [];
    for (let i = 0; i < 3000; i++) {
      if (i === 1234) {
        rows.push('1234,only-two\r');
        continue;
      }
      const text = `row ${i}, "quoted" ${'z'.repeat(i % 23)}`;
      rows.push(`${i},"${text.replaceAll('"', '""')}",plain ${i}\r`);
      expected.push({ id: String(i), text: text.toUpperCase(), note: `PLAIN ${i}` });
    }
    await bucket.file('mlops-template/acme/inputs/rows.csv').save(`${rows.join('\n')}\n`);

    // Act
    const results = [];
    for (const count of [1, 3, 7])
      results.push(await runSharded('mlops-template/acme/inputs/rows.csv', `csv/j${count}/`, count));

    // Assert
    for (const { records, manifest } of results) {
      expect(records.map(({ id, text, note }) => ({ id, text, note }))).toEqual(expected);
      expect(manifest).toMatchObject({ records: 2999, rejects: 1, input: { format: 'csv' } });
    }
  });

  it('uses the client model artifact when present and stamps its version into every record', async () => {
    // Arrange
    const model = {
      kind: 'batchwire.reference-model',
      schemaVersion: 1,
      version: 'v-test-model',
      product: 'mlops-template',
      client: 'globex',
      normalise: { trim: true, collapseWhitespace: true },
      vocabulary: [{ token: 'HELLO', count: 2 }],
      stats: { objects: 1, records: 2, rejects: 0, tokens: 2, distinctTokens: 1 },
      trainedOn: { prefix: 'gs://x/', objects: [] },
    };
    await bucket.file('mlops-template/globex/models/latest/model.json').save(JSON.stringify(model));
    await bucket
      .file('mlops-template/globex/inputs/m.jsonl')
      .save('{"text":"  hello   there "}\n{"text":"hello"}\n{"n":1}\n');

    // Act
    const { records, manifest } = await runSharded(
      'mlops-template/globex/inputs/m.jsonl',
      'mlops-template/globex/outputs/m/',
      3,
    );

    // Assert
    expect(records).toEqual([
      { text: 'HELLO THERE', knownTokenRatio: 0.5, _offset: 0, modelVersion: 'v-test-model' },
      { text: 'HELLO', knownTokenRatio: 1, _offset: 28, modelVersion: 'v-test-model' },
      { n: 1, knownTokenRatio: null, _offset: 45, modelVersion: 'v-test-model' },
    ]);
    expect(manifest.model).toEqual({
      version: 'v-test-model',
      uri: `gs://${BUCKET}/mlops-template/globex/models/latest/model.json`,
    });
  });

  it('exits 2 naming the variable when the contract is not met', async () => {
    const run = await runTask(INFERENCE, {
      STORAGE_EMULATOR_HOST: server.url,
      BATCHWIRE_OUTPUT_URI: 'gs://b/o/',
    });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('BATCHWIRE_INPUT_URI is not set');
  });

  it('exits 1 with a clear message when the input does not exist', async () => {
    const run = await runTask(INFERENCE, {
      STORAGE_EMULATOR_HOST: server.url,
      BATCHWIRE_INPUT_URI: `gs://${BUCKET}/nowhere/x.jsonl`,
      BATCHWIRE_OUTPUT_URI: `gs://${BUCKET}/out/none/`,
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`input gs://${BUCKET}/nowhere/x.jsonl does not exist`);
  });
});
