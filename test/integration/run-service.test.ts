import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobsClient } from '@google-cloud/run';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalRunService, startRunService } from '#local/run/server.js';

const PARENT = 'projects/batchwire-local/locations/europe-west2';
const IMAGE = 'europe-docker.pkg.dev/batchwire-local/batchwire/probe:latest';

// A task that records what it was given (args, Cloud Run's variables, the overrides' env) and
// exits with $EXIT_CODE, so each test can read what the service handed to its tasks.
const TASK = `
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
const e = process.env;
writeFileSync(join(e.OUT_DIR, e.CLOUD_RUN_EXECUTION + '-' + e.CLOUD_RUN_TASK_INDEX + '.json'), JSON.stringify({
  args: process.argv.slice(2), job: e.CLOUD_RUN_JOB, execution: e.CLOUD_RUN_EXECUTION,
  index: e.CLOUD_RUN_TASK_INDEX, count: e.CLOUD_RUN_TASK_COUNT, greeting: e.GREETING, extra: e.EXTRA,
}));
process.exit(Number(e.EXIT_CODE ?? 0));
`;

let service: LocalRunService;
let client: JobsClient;
let outDir: string;

async function createJob(jobId: string, env: Record<string, string>, taskCount = 1): Promise<string> {
  const [operation] = await client.createJob({
    parent: PARENT,
    jobId,
    job: {
      template: {
        taskCount,
        template: {
          containers: [
            {
              image: IMAGE,
              args: ['default-arg'],
              env: Object.entries(env).map(([name, value]) => ({ name, value })),
            },
          ],
          maxRetries: 0,
        },
      },
    },
  });
  const [job] = await operation.promise();
  return job.name as string;
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'run-service-'));
  outDir = join(dir, 'out');
  writeFileSync(join(dir, 'task.mjs'), TASK);
  service = await startRunService({
    images: { [IMAGE]: ['node', join(dir, 'task.mjs')] },
    baseDir: dir,
    logDir: join(dir, 'logs'),
  });
  client = new JobsClient({
    apiEndpoint: '127.0.0.1',
    port: service.port,
    sslCreds: grpc.credentials.createInsecure(),
  });
  const { mkdirSync } = await import('node:fs');
  mkdirSync(outDir, { recursive: true });
});

afterAll(async () => {
  await client?.close();
  await service?.close();
});

describe('local Cloud Run jobs service through the real JobsClient', () => {
  it('creates a job that GetJob then returns, and refuses a second create with ALREADY_EXISTS', async () => {
    // Act
    const name = await createJob('probe-create', { OUT_DIR: outDir });
    const [job] = await client.getJob({ name });
    const second = createJob('probe-create', { OUT_DIR: outDir });

    // Assert
    expect(job.name).toBe(`${PARENT}/jobs/probe-create`);
    expect(job.template?.template?.containers?.[0]?.image).toBe(IMAGE);
    await expect(second).rejects.toMatchObject({ code: grpc.status.ALREADY_EXISTS });
  });

  it('answers NOT_FOUND for RunJob of a job that does not exist', async () => {
    await expect(client.runJob({ name: `${PARENT}/jobs/missing` })).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
  });

  it('runs a job: the LRO resolves with the execution, and tasks see the overrides and their index', async () => {
    // Arrange
    const name = await createJob('probe-run', { OUT_DIR: outDir, GREETING: 'from-job' }, 1);

    // Act
    const [operation] = await client.runJob({
      name,
      overrides: {
        containerOverrides: [
          {
            args: ['--flow', 'metadata'],
            env: [
              { name: 'GREETING', value: 'overridden' },
              { name: 'EXTRA', value: 'x' },
            ],
          },
        ],
        taskCount: 2,
      },
    });
    const [execution] = await operation.promise();

    // Assert
    expect(execution.name).toMatch(new RegExp(`^${name}/executions/probe-run-[a-z0-9]{5}$`));
    expect(execution.taskCount).toBe(2);
    expect(execution.succeededCount).toBe(2);
    // The LRO's result is decoded from google.protobuf.Any by protobufjs: enums arrive as numbers.
    expect(execution.conditions?.[0]).toMatchObject({
      type: 'Completed',
      state: 4 /* CONDITION_SUCCEEDED */,
    });
    const executionId = (execution.name as string).split('/').pop() as string;
    const seen = [0, 1].map((index) =>
      JSON.parse(readFileSync(join(outDir, `${executionId}-${index}.json`), 'utf8')),
    );
    expect(seen).toEqual([
      {
        args: ['--flow', 'metadata'],
        job: 'probe-run',
        execution: executionId,
        index: '0',
        count: '2',
        greeting: 'overridden',
        extra: 'x',
      },
      {
        args: ['--flow', 'metadata'],
        job: 'probe-run',
        execution: executionId,
        index: '1',
        count: '2',
        greeting: 'overridden',
        extra: 'x',
      },
    ]);
  });

  it('keeps the job default args and env when a run has no overrides', async () => {
    const name = await createJob('probe-defaults', { OUT_DIR: outDir, GREETING: 'from-job' });
    const [operation] = await client.runJob({ name });
    const [execution] = await operation.promise();
    const executionId = (execution.name as string).split('/').pop() as string;
    const seen = JSON.parse(readFileSync(join(outDir, `${executionId}-0.json`), 'utf8'));
    expect(seen).toMatchObject({ args: ['default-arg'], greeting: 'from-job', count: '1' });
  });

  it('rejects the LRO of a run whose task fails, and reports the failed execution', async () => {
    // Arrange
    const name = await createJob('probe-fail', { OUT_DIR: outDir, EXIT_CODE: '3' });

    // Act
    const [operation] = await client.runJob({ name });
    const outcome = await operation.promise().then(
      () => 'resolved',
      (error: { code?: number; message?: string }) => error,
    );

    // Assert
    expect(outcome).toMatchObject({ code: grpc.status.FAILED_PRECONDITION });
    expect((outcome as { message: string }).message).toMatch(/exit 3/);
    const [job] = await client.getJob({ name });
    expect(job.latestCreatedExecution?.completionStatus).toBe('EXECUTION_FAILED');
  });

  it('polls through GetOperation: checkRunJobProgress sees the running execution, then its end', async () => {
    const name = await createJob('probe-poll', { OUT_DIR: outDir });
    const [operation] = await client.runJob({ name });
    const checked = await client.checkRunJobProgress(operation.name as string);
    const [execution] = await checked.promise();
    expect(execution.name).toBe((operation.metadata as { name: string }).name);
  });
});
