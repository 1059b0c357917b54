import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDuration, readTaskContract } from '#shared/domain/batch-job.js';
import {
  buildInferenceJob,
  completionTopicName,
  labelValue,
  taskCountFor,
} from '#shared/domain/inference-job.js';
import { ConfigError, PermanentError } from '#shared/runtime/errors.js';
import { anyText } from '../helpers/arbitraries.js';
import { testConfig } from '../helpers/config.js';

const CONFIG = testConfig(`
  mlops-template:
    clients: [acme, globex]
    serviceAccount: runner@test-project.iam.gserviceaccount.com
    inference:
      image: europe-docker.pkg.dev/test-project/bw/inference:1
      entrypoint: /bin/run
      commands: [--mode, upper]
      machineType: n2-standard-4
      allowedLocations: [zones/europe-west2-a]
      cpuMilli: 4000
      memoryMib: 8192
      shardBytes: 100
      maxTasks: 5
      parallelism: 3
      maxRetryCount: 2
      maxRunDuration: 1800s
      env: { MODEL: small, BATCHWIRE_PRODUCT: spoofed }
  bare:
    clients: [solo]
    inference:
      image: img:1
`);

const INPUT = {
  product: 'mlops-template',
  client: 'acme',
  bucket: 'test-bucket',
  name: 'mlops-template/acme/inputs/day 1/batch.jsonl',
  generation: '1712345678901234',
  size: 250,
  jobId: 'bw-mlops-template-acme-0123456789abcdef0123',
};

describe('buildInferenceJob', () => {
  it('builds the container runnable, resources, retries and run duration from the product config', () => {
    // Act
    const job = buildInferenceJob(CONFIG, INPUT);

    // Assert
    const spec = job.taskGroups[0]?.taskSpec;
    expect(spec?.runnables).toEqual([
      {
        container: {
          imageUri: 'europe-docker.pkg.dev/test-project/bw/inference:1',
          entrypoint: '/bin/run',
          commands: ['--mode', 'upper'],
        },
      },
    ]);
    expect(spec?.computeResource).toEqual({ cpuMilli: 4000, memoryMib: 8192 });
    expect(spec?.maxRetryCount).toBe(2);
    expect(spec?.maxRunDuration).toEqual({ seconds: 1800, nanos: 0 });
  });

  it('sets the task contract, and the contract wins over the product env', () => {
    // Act
    const job = buildInferenceJob(CONFIG, INPUT);

    // Assert
    expect(job.taskGroups[0]?.taskSpec.environment?.variables).toEqual({
      MODEL: 'small',
      BATCHWIRE_INPUT_URI: 'gs://test-bucket/mlops-template/acme/inputs/day 1/batch.jsonl',
      BATCHWIRE_INPUT_GENERATION: '1712345678901234',
      BATCHWIRE_OUTPUT_URI: `gs://test-bucket/mlops-template/acme/outputs/${INPUT.jobId}/`,
      BATCHWIRE_PRODUCT: 'mlops-template',
      BATCHWIRE_CLIENT: 'acme',
    });
  });

  it('keeps the input discoverable from the job (what onComplete reads back)', () => {
    // Act
    const contract = readTaskContract(buildInferenceJob(CONFIG, INPUT));

    // Assert
    expect(contract).toEqual({
      inputUri: 'gs://test-bucket/mlops-template/acme/inputs/day 1/batch.jsonl',
      inputGeneration: '1712345678901234',
      outputUri: `gs://test-bucket/mlops-template/acme/outputs/${INPUT.jobId}/`,
      product: 'mlops-template',
      client: 'acme',
    });
  });

  it('fans out by size and caps parallelism at the task count', () => {
    // Act: 250 bytes at 100 bytes per shard
    const job = buildInferenceJob(CONFIG, INPUT);
    const small = buildInferenceJob(CONFIG, { ...INPUT, size: 50 });

    // Assert
    expect(job.taskGroups[0]).toMatchObject({ taskCount: 3, parallelism: 3 });
    expect(small.taskGroups[0]).toMatchObject({ taskCount: 1, parallelism: 1 });
  });

  it('places, labels, logs and notifies as configured', () => {
    // Act
    const job = buildInferenceJob(CONFIG, INPUT);

    // Assert
    expect(job.allocationPolicy).toEqual({
      instances: [{ policy: { machineType: 'n2-standard-4' } }],
      location: { allowedLocations: ['zones/europe-west2-a'] },
      serviceAccount: { email: 'runner@test-project.iam.gserviceaccount.com' },
    });
    expect(job.labels).toEqual({ product: 'mlops-template', client: 'acme', trigger: 'upload' });
    expect(job.logsPolicy).toEqual({ destination: 'CLOUD_LOGGING' });
    // One entry per terminal state: a bare JOB_STATE_CHANGED would notify QUEUED, SCHEDULED and RUNNING too.
    const topic = 'projects/test-project/topics/completions';
    expect(job.notifications).toEqual([
      { pubsubTopic: topic, message: { type: 'JOB_STATE_CHANGED', newJobState: 'SUCCEEDED' } },
      { pubsubTopic: topic, message: { type: 'JOB_STATE_CHANGED', newJobState: 'FAILED' } },
      { pubsubTopic: topic, message: { type: 'JOB_STATE_CHANGED', newJobState: 'CANCELLED' } },
      { pubsubTopic: topic, message: { type: 'JOB_STATE_CHANGED', newJobState: 'DELETION_IN_PROGRESS' } },
    ]);
  });

  it('leaves out what a product does not configure (no locations, no service account, no entrypoint)', () => {
    // Act
    const job = buildInferenceJob(CONFIG, { ...INPUT, product: 'bare', client: 'solo' });

    // Assert
    expect(job.allocationPolicy).toEqual({ instances: [{ policy: { machineType: 'e2-standard-2' } }] });
    expect(job.taskGroups[0]?.taskSpec.runnables[0]?.container).toEqual({ imageUri: 'img:1', commands: [] });
  });

  it('refuses an unconfigured product with a permanent error (acked: no redelivery configures it)', () => {
    expect(() => buildInferenceJob(CONFIG, { ...INPUT, product: 'nope' })).toThrow(PermanentError);
  });
});

describe('taskCountFor', () => {
  it('is ceil(size / shardBytes) clamped to [1, maxTasks]', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 42 }),
        fc.integer({ min: 1, max: 2 ** 30 }),
        fc.integer({ min: 1, max: 10_000 }),
        (size, shardBytes, maxTasks) => {
          const count = taskCountFor(size, shardBytes, maxTasks);
          expect(count).toBeGreaterThanOrEqual(1);
          expect(count).toBeLessThanOrEqual(maxTasks);
          if (count < maxTasks && size > 0) expect(count).toBe(Math.ceil(size / shardBytes));
        },
      ),
    );
  });

  it.each([
    [0, 1],
    [1, 1],
    [100, 1],
    [101, 2],
    [10_000, 5],
  ])('size %d → %d tasks (shard 100, max 5)', (size, expected) => {
    expect(taskCountFor(size, 100, 5)).toBe(expected);
  });
});

describe('labelValue', () => {
  it('always satisfies the label rules', () => {
    fc.assert(
      fc.property(anyText(200), (value) => {
        expect(labelValue(value)).toMatch(/^[a-z0-9_-]{0,63}$/);
      }),
    );
  });

  it('lowercases and replaces what labels cannot hold', () => {
    expect(labelValue('Acme.Corp/EU')).toBe('acme-corp-eu');
  });
});

describe('parseDuration', () => {
  it.each([
    ['3600s', { seconds: 3600, nanos: 0 }],
    ['1.5s', { seconds: 1, nanos: 500_000_000 }],
  ])('%s', (value, expected) => {
    expect(parseDuration(value)).toEqual(expected);
  });

  it('refuses what is not seconds with a ConfigError', () => {
    expect(() => parseDuration('1h')).toThrow(ConfigError);
  });

  it('refuses more than nine decimals (a protobuf Duration holds nanoseconds)', () => {
    expect(() => parseDuration('1.0000000001s')).toThrow(ConfigError);
  });
});

describe('completionTopicName', () => {
  it('is the full topic name Batch expects', () => {
    expect(completionTopicName(CONFIG)).toBe('projects/test-project/topics/completions');
  });
});
