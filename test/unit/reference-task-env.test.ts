import { describe, expect, it } from 'vitest';
import { inferenceConfigFromEnv } from '#reference-tasks/inference/run.js';
import { partName, taskPosition } from '#reference-tasks/lib/env.js';
import { TaskConfigError } from '#reference-tasks/lib/errors.js';
import { parseGcsPrefix, parseGcsUri } from '#reference-tasks/lib/gcs-uri.js';
import { clientsForTask, metadataConfigFromEnv } from '#reference-tasks/metadata/run.js';
import { trainConfigFromEnv } from '#reference-tasks/train/run.js';

describe('taskPosition', () => {
  it("reads Batch's variables, else Cloud Run's, else runs as task 0 of 1", () => {
    expect(taskPosition({ BATCH_TASK_INDEX: '2', BATCH_TASK_COUNT: '5' })).toEqual({ index: 2, count: 5 });
    expect(taskPosition({ CLOUD_RUN_TASK_INDEX: '1', CLOUD_RUN_TASK_COUNT: '3' })).toEqual({
      index: 1,
      count: 3,
    });
    expect(taskPosition({})).toEqual({ index: 0, count: 1 });
  });

  it('refuses an index outside the count and non-numbers, as configuration errors', () => {
    expect(() => taskPosition({ BATCH_TASK_INDEX: '3', BATCH_TASK_COUNT: '3' })).toThrow(TaskConfigError);
    expect(() => taskPosition({ BATCH_TASK_INDEX: 'x', BATCH_TASK_COUNT: '3' })).toThrow(
      /non-negative integer/,
    );
    expect(() => taskPosition({ BATCH_TASK_INDEX: '0', BATCH_TASK_COUNT: '0' })).toThrow(/at least 1/);
  });
});

describe('gs:// URIs', () => {
  it('parses objects with an optional #generation and prefixes with a trailing slash', () => {
    expect(parseGcsUri('gs://my-bucket/a/b.jsonl#42')).toEqual({
      bucket: 'my-bucket',
      name: 'a/b.jsonl',
      generation: '42',
    });
    expect(parseGcsPrefix('gs://my-bucket/out/job')).toEqual({ bucket: 'my-bucket', name: 'out/job/' });
    expect(() => parseGcsUri('s3://b/x', 'BATCHWIRE_INPUT_URI')).toThrow(
      /BATCHWIRE_INPUT_URI must be gs:\/\//,
    );
  });

  it('names parts so that a name sort is the shard order', () => {
    expect(partName(3)).toBe('part-00003.jsonl');
    expect(partName(12, 'rejects')).toBe('rejects-00012.jsonl');
  });
});

describe('task environments', () => {
  it('inference: finds the client model from the input path unless told otherwise', () => {
    const base = {
      BATCHWIRE_INPUT_URI: 'gs://bkt/mlops-template/acme/inputs/a.csv',
      BATCHWIRE_OUTPUT_URI: 'gs://bkt/mlops-template/acme/outputs/j1',
    };
    expect(inferenceConfigFromEnv(base)).toMatchObject({
      input: { bucket: 'bkt', name: 'mlops-template/acme/inputs/a.csv' },
      output: { bucket: 'bkt', name: 'mlops-template/acme/outputs/j1/' },
      modelUri: { bucket: 'bkt', name: 'mlops-template/acme/models/latest/model.json' },
      position: { index: 0, count: 1 },
    });
    expect(inferenceConfigFromEnv({ ...base, BATCHWIRE_MODEL_URI: 'none' }).modelUri).toBeUndefined();
    expect(() => inferenceConfigFromEnv({ BATCHWIRE_INPUT_URI: base.BATCHWIRE_INPUT_URI })).toThrow(
      /BATCHWIRE_OUTPUT_URI is not set/,
    );
  });

  it('train: requires product and client, defaults the dataset to the client inputs', () => {
    expect(
      trainConfigFromEnv({
        BATCHWIRE_PRODUCT: 'mlops-template',
        BATCHWIRE_CLIENT: 'acme',
        BATCHWIRE_BUCKET: 'bkt',
      }),
    ).toMatchObject({
      dataset: { bucket: 'bkt', name: 'mlops-template/acme/inputs/' },
      vocabularySize: 1000,
    });
    expect(() =>
      trainConfigFromEnv({ BATCHWIRE_PRODUCT: 'mlops-template', BATCHWIRE_BUCKET: 'bkt' }),
    ).toThrow(/BATCHWIRE_CLIENT is not set/);
    expect(() =>
      trainConfigFromEnv({
        BATCHWIRE_PRODUCT: 'mlops-template',
        BATCHWIRE_CLIENT: 'acme',
        BATCHWIRE_BUCKET: 'bkt',
        BATCHWIRE_MODEL_VERSION: 'latest',
      }),
    ).toThrow(TaskConfigError);
  });

  it('metadata: splits the clients round-robin across tasks', () => {
    const config = metadataConfigFromEnv({
      BATCHWIRE_BUCKET: 'bkt',
      BATCHWIRE_PRODUCT: 'mlops-template',
      BATCHWIRE_CLIENTS: 'acme, globex,initech,acme',
      CLOUD_RUN_TASK_INDEX: '1',
      CLOUD_RUN_TASK_COUNT: '2',
      CLOUD_RUN_EXECUTION: 'exec-1',
    });
    expect(config).toMatchObject({ clients: ['acme', 'globex', 'initech'], runId: 'exec-1' });
    expect(clientsForTask(config.clients, { index: 0, count: 2 })).toEqual(['acme', 'initech']);
    expect(clientsForTask(config.clients, config.position)).toEqual(['globex']);
  });
});
