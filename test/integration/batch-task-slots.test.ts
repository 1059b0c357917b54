import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchServiceClient, type protos } from '@google-cloud/batch';
import { JobsClient } from '@google-cloud/run';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlatformActivity } from '#local/activity.js';
import { type LocalBatchService, startBatchService } from '#local/batch/server.js';
import { TaskSlots } from '#local/executor/index.js';
import { type LocalRunService, startRunService } from '#local/run/server.js';
import { grpcClientOptions } from '#shared/clients/endpoints.js';

type IJob = protos.google.cloud.batch.v1.IJob;

const PARENT = 'projects/batchwire-test/locations/europe-west2';
const LIMIT = 2;
const RUN_IMAGE = 'europe-docker.pkg.dev/batchwire-test/batchwire/gated:latest';

let dir: string;
let trace: string;
let slots: TaskSlots;
let batch: LocalBatchService;
let client: BatchServiceClient;
let run: LocalRunService;
let runClient: JobsClient;
const activity: PlatformActivity[] = [];

/**
 * A job whose tasks write `start <job> <index>` to the trace, wait until the job's gate file
 * exists (the test opens it), then write `end <job> <index>`: the trace shows which tasks ran
 * at the same time, independently of the service's own accounting.
 */
function gatedScript(key: string, index = '$BATCH_TASK_INDEX'): string {
  const gate = join(dir, `${key}.gate`);
  return [
    `echo "start ${key} ${index}" >> "${trace}"`,
    `while [ ! -f "${gate}" ]; do sleep 0.02; done`,
    `echo "end ${key} ${index}" >> "${trace}"`,
  ].join('\n');
}

function gatedJob(key: string, taskCount: number, parallelism: number): IJob {
  const text = gatedScript(key);
  return { taskGroups: [{ taskCount, parallelism, taskSpec: { runnables: [{ script: { text } }] } }] };
}

const open = (key: string) => writeFileSync(join(dir, `${key}.gate`), '');

function traceLines(): string[] {
  return existsSync(trace) ? readFileSync(trace, 'utf8').trim().split('\n').filter(Boolean) : [];
}

/** The most tasks the trace shows between their start and end lines at once. */
function peakConcurrency(lines: string[]): number {
  let running = 0;
  let peak = 0;
  for (const line of lines) {
    running += line.startsWith('start ') ? 1 : -1;
    peak = Math.max(peak, running);
  }
  return peak;
}

async function stateOf(name: string): Promise<string> {
  const [job] = await client.getJob({ name });
  return String(job.status?.state);
}

async function create(key: string, taskCount: number, parallelism: number): Promise<string> {
  const [job] = await client.createJob({
    parent: PARENT,
    jobId: `${key}-${randomUUID().slice(0, 8)}`,
    job: gatedJob(key, taskCount, parallelism),
  });
  return job.name as string;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'batch-slots-'));
  trace = join(dir, 'trace');
  slots = new TaskSlots(LIMIT);
  batch = await startBatchService({ slots, onEvent: (event) => activity.push(event) });
  client = new BatchServiceClient(await grpcClientOptions('batch', { BATCH_EMULATOR_HOST: batch.host }));
  // The Cloud Run jobs service shares the pool, as the platform wires them.
  const runScript = join(dir, 'run-task.sh');
  writeFileSync(runScript, gatedScript('run', '$CLOUD_RUN_TASK_INDEX'));
  run = await startRunService({
    slots,
    images: { [RUN_IMAGE]: ['bash', runScript] },
    baseDir: dir,
    logDir: join(dir, 'run-logs'),
  });
  runClient = new JobsClient({
    apiEndpoint: '127.0.0.1',
    port: run.port,
    sslCreds: grpc.credentials.createInsecure(),
  });
});

afterAll(async () => {
  await client?.close();
  await runClient?.close();
  await run?.close();
  await batch?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('local Batch service: task slots (real BatchServiceClient)', () => {
  it('keeps jobs QUEUED while the slots are taken, starts them in submission order as slots free, never above the limit', async () => {
    // Arrange: a job that takes both slots
    const first = await create('first', 2, 2);
    await expect.poll(() => traceLines().filter((line) => line.startsWith('start first')).length).toBe(2);

    // Act: three more jobs arrive while no slot is free
    const queued = [await create('second', 1, 1), await create('third', 1, 1), await create('fourth', 1, 1)];
    const statesWhileFull = await Promise.all(queued.map(stateOf));
    const waitingWhileFull = slots.snapshot().waitingOwners;
    open('first');
    await batch.waitForJob(first);
    await expect.poll(() => traceLines().filter((line) => line.startsWith('start ')).length).toBe(4);
    for (const key of ['second', 'third', 'fourth']) open(key);
    await Promise.all(queued.map((name) => batch.waitForJob(name)));

    // Assert
    expect(statesWhileFull).toEqual(['QUEUED', 'QUEUED', 'QUEUED']);
    expect(waitingWhileFull).toEqual(queued);
    const scheduled = activity
      .filter((event) => event.kind === 'job.state' && event.state === 'SCHEDULED')
      .map((event) => event.job);
    expect(scheduled).toEqual([first, ...queued]);
    expect(await Promise.all([first, ...queued].map(stateOf))).toEqual([
      'SUCCEEDED',
      'SUCCEEDED',
      'SUCCEEDED',
      'SUCCEEDED',
    ]);
    const lines = traceLines();
    expect(lines.filter((line) => line.startsWith('start '))).toHaveLength(5);
    expect(peakConcurrency(lines)).toBeLessThanOrEqual(LIMIT);
    expect(slots.snapshot()).toMatchObject({ inUse: 0, waiting: 0, peak: LIMIT });
  });

  it('lets a job cancelled while QUEUED leave the queue, and the next one take the freed slot', async () => {
    // Arrange: both slots taken, two jobs waiting
    const holder = await create('holder', 2, 2);
    await expect.poll(() => traceLines().filter((line) => line.startsWith('start holder')).length).toBe(2);
    const cancelled = await create('cancelled', 1, 1);
    const next = await create('next', 1, 1);

    // Act
    const [operation] = await client.cancelJob({ name: cancelled });
    await operation.promise();
    const waitingAfterCancel = slots.snapshot().waitingOwners;
    open('holder');
    open('next');
    await batch.waitForJob(holder);
    await batch.waitForJob(next);

    // Assert
    expect(waitingAfterCancel).toEqual([next]);
    expect(await stateOf(cancelled)).toBe('CANCELLED');
    expect(await stateOf(next)).toBe('SUCCEEDED');
    expect(traceLines().some((line) => line.startsWith('start cancelled'))).toBe(false);
    expect(peakConcurrency(traceLines())).toBeLessThanOrEqual(LIMIT);
  });

  it('makes a Cloud Run job execution wait for the same machine-wide slots', async () => {
    // Arrange: a Batch job holds both slots
    const holder = await create('batch-holder', 2, 2);
    await expect
      .poll(() => traceLines().filter((line) => line.startsWith('start batch-holder')).length)
      .toBe(2);
    const [created] = await runClient.createJob({
      parent: PARENT,
      jobId: `gated-${randomUUID().slice(0, 8)}`,
      job: { template: { taskCount: 1, template: { containers: [{ image: RUN_IMAGE }], maxRetries: 0 } } },
    });
    const [runJob] = await created.promise();

    // Act
    const [execution] = await runClient.runJob({ name: runJob.name as string });
    await expect.poll(() => slots.snapshot().waitingOwners.length).toBe(1);
    const waiting = slots.snapshot().waitingOwners;
    const startedWhileFull = traceLines().some((line) => line.startsWith('start run'));
    open('batch-holder');
    open('run');
    await batch.waitForJob(holder);
    await execution.promise();

    // Assert
    expect(waiting[0]?.startsWith(`${runJob.name}/executions/`)).toBe(true);
    expect(startedWhileFull).toBe(false);
    const lines = traceLines();
    // Either holder task may finish first; the run may start only once one of them has.
    const firstHolderEnd = lines.findIndex((line) => line.startsWith('end batch-holder'));
    expect(firstHolderEnd).toBeGreaterThanOrEqual(0);
    expect(lines.indexOf('start run 0')).toBeGreaterThan(firstHolderEnd);
    expect(peakConcurrency(lines)).toBeLessThanOrEqual(LIMIT);
  });
});
