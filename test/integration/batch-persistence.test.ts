import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchServiceClient, type protos } from '@google-cloud/batch';
import { PubSub } from '@google-cloud/pubsub';
import { status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type BatchServiceOptions, type LocalBatchService, startBatchService } from '#local/batch/server.js';
import { grpcClientOptions } from '#shared/clients/endpoints.js';
import { collectingTopic } from '../helpers/pubsub.js';
import { until } from '../helpers/wait.js';

type IJob = protos.google.cloud.batch.v1.IJob;

const PROJECT = 'batchwire-test';
const REGION = 'europe-west2';
const PARENT = `projects/${PROJECT}/locations/${REGION}`;

const uniqueId = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

/** One running local Batch service and a real client talking to it. */
interface Instance {
  batch: LocalBatchService;
  client: BatchServiceClient;
  stop: () => Promise<void>;
}

const running = new Set<Instance>();
const dataDirs: string[] = [];
let pubsub: PubSub;

async function start(dataDir: string, extra: Partial<BatchServiceOptions> = {}): Promise<Instance> {
  const batch = await startBatchService({ dataDir, ...extra });
  const client = new BatchServiceClient(
    await grpcClientOptions('batch', { BATCH_EMULATOR_HOST: batch.host }),
  );
  const instance: Instance = {
    batch,
    client,
    stop: async () => {
      running.delete(instance);
      await client.close();
      await batch.close();
    },
  };
  running.add(instance);
  return instance;
}

function newDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'batch-persistence-'));
  dataDirs.push(dir);
  return dir;
}

function scriptJob(text: string, extra: Partial<IJob> = {}): IJob {
  return {
    taskGroups: [{ taskSpec: { runnables: [{ script: { text } }] } }],
    labels: { kept: 'yes' },
    ...extra,
  };
}

async function codeOf(promise: Promise<unknown>): Promise<number | undefined> {
  try {
    await promise;
    return undefined;
  } catch (err) {
    return (err as { code?: number }).code;
  }
}

const failedOnly = (topicName: string): Partial<IJob> => ({
  notifications: [{ pubsubTopic: topicName, message: { type: 'JOB_STATE_CHANGED', newJobState: 'FAILED' } }],
});

beforeAll(() => {
  pubsub = new PubSub({ projectId: PROJECT });
});

afterEach(async () => {
  for (const instance of [...running]) await instance.stop();
});

afterAll(async () => {
  await pubsub?.close();
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

describe('local Batch service with dataDir: job records survive a restart', () => {
  it('returns a finished job after a restart with the same uid, state, events, tasks and request id', async () => {
    // Arrange
    const dataDir = newDataDir();
    const first = await start(dataDir);
    const requestId = randomUUID();
    const jobId = uniqueId('kept');
    const [created] = await first.client.createJob({
      parent: PARENT,
      jobId,
      requestId,
      job: scriptJob('exit 0'),
    });
    await first.batch.waitForJob(created.name as string);
    const [before] = await first.client.getJob({ name: created.name as string });
    await first.stop();

    // Act
    const second = await start(dataDir);
    const [after] = await second.client.getJob({ name: created.name as string });
    const [listed] = await second.client.listJobs({ parent: PARENT });
    const [tasks] = await second.client.listTasks({ parent: `${created.name}/taskGroups/group0` });
    const [retried] = await second.client.createJob({
      parent: PARENT,
      jobId,
      requestId,
      job: scriptJob('exit 0'),
    });
    const conflict = await codeOf(
      second.client.createJob({ parent: PARENT, jobId, requestId: randomUUID(), job: scriptJob('exit 0') }),
    );

    // Assert
    expect(after.status?.state).toBe('SUCCEEDED');
    expect(after.uid).toBe(created.uid);
    expect(after.createTime).toEqual(created.createTime);
    expect(after.labels).toEqual({ kept: 'yes' });
    expect(after.status?.statusEvents).toEqual(before.status?.statusEvents);
    expect(after.status?.runDuration).toEqual(before.status?.runDuration);
    expect(after.status?.taskGroups?.group0?.counts).toEqual({ SUCCEEDED: '1' });
    expect(listed.map((job) => [job.name, job.uid, job.status?.state])).toEqual([
      [created.name, created.uid, 'SUCCEEDED'],
    ]);
    expect(tasks.map((task) => task.status?.state)).toEqual(['SUCCEEDED']);
    expect(retried.uid).toBe(created.uid);
    expect(conflict).toBe(status.ALREADY_EXISTS);
  });

  it('fails a job that was RUNNING when the service stopped, and publishes its FAILED notification', async () => {
    // Arrange: a task that would run far longer than the test.
    const { topicName, messages, close } = await collectingTopic(pubsub, 'restart-notify');
    const dataDir = newDataDir();
    const first = await start(dataDir);
    const [created] = await first.client.createJob({
      parent: PARENT,
      jobId: uniqueId('cut'),
      job: scriptJob('sleep 30', failedOnly(topicName)),
    });
    const name = created.name as string;
    await until(async () => (await first.client.getJob({ name }))[0].status?.state === 'RUNNING');
    await first.stop();

    // Act
    const second = await start(dataDir);
    const [after] = await second.client.getJob({ name });
    const done = (await second.batch.waitForJob(name, 5_000)) as { status: { state: string } };
    await until(() => messages.length >= 1);
    await close();
    const [task] = await second.client.getTask({ name: `${name}/taskGroups/group0/tasks/0` });

    // Assert
    expect(after.uid).toBe(created.uid);
    expect(after.status?.state).toBe('FAILED');
    expect(done.status.state).toBe('FAILED');
    expect(after.status?.statusEvents?.at(-1)?.description).toBe(
      `Job state is set from RUNNING to FAILED for job ${name}. The local platform stopped while the job ran, which stopped its tasks.`,
    );
    expect(task.status?.state).toBe('FAILED');
    expect(
      messages.map((m) => [m.attributes.NewJobState, m.attributes.JobUID, m.attributes.JobName]),
    ).toEqual([['FAILED', created.uid, name]]);
    expect(messages[0]?.data.toString()).toContain('previousState=RUNNING, currentState=FAILED');
  });

  it('holds the restart notifications until released when asked to', async () => {
    // Arrange: execute:false leaves the job QUEUED, as a job the previous process never started.
    const { topicName, messages, close } = await collectingTopic(pubsub, 'restart-notify');
    const dataDir = newDataDir();
    const first = await start(dataDir, { execute: false });
    const [created] = await first.client.createJob({
      parent: PARENT,
      jobId: uniqueId('held'),
      job: scriptJob('exit 0', failedOnly(topicName)),
    });
    await first.stop();

    // Act
    const second = await start(dataDir, { execute: false, holdRestartNotifications: true });
    const [after] = await second.client.getJob({ name: created.name as string });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const beforeRelease = messages.length;
    await second.batch.releaseRestartNotifications();
    await until(() => messages.length >= 1);
    await close();

    // Assert
    expect(after.status?.state).toBe('FAILED');
    expect(after.status?.statusEvents?.at(-1)?.description).toContain('from QUEUED to FAILED');
    expect(beforeRelease).toBe(0);
    expect(messages.map((m) => m.attributes.NewJobState)).toEqual(['FAILED']);
  });

  it('removes the record once the grace period of a deleted job is over, so it stays gone after a restart', async () => {
    // Arrange
    const dataDir = newDataDir();
    const first = await start(dataDir, { deletionGraceMs: 300 });
    const [kept] = await first.client.createJob({
      parent: PARENT,
      jobId: uniqueId('stays'),
      job: scriptJob('exit 0'),
    });
    const [deleted] = await first.client.createJob({
      parent: PARENT,
      jobId: uniqueId('goes'),
      job: scriptJob('exit 0'),
    });
    await first.batch.waitForJob(kept.name as string);
    await first.batch.waitForJob(deleted.name as string);
    const filesBefore = readdirSync(join(dataDir, 'jobs')).length;

    // Act
    const [operation] = await first.client.deleteJob({ name: deleted.name as string });
    await operation.promise();
    const filesDuringGrace = readdirSync(join(dataDir, 'jobs')).length;
    await until(() => readdirSync(join(dataDir, 'jobs')).length === 1);
    await first.stop();
    const second = await start(dataDir);
    const [listed] = await second.client.listJobs({ parent: PARENT });
    const gone = await codeOf(second.client.getJob({ name: deleted.name as string }));

    // Assert
    expect(filesBefore).toBe(2);
    expect(filesDuringGrace).toBe(2);
    expect(listed.map((job) => job.name)).toEqual([kept.name]);
    expect(gone).toBe(status.NOT_FOUND);
  });

  it('keeps a job deleted just before a restart readable for the rest of its grace period', async () => {
    // Arrange
    const dataDir = newDataDir();
    const first = await start(dataDir, { deletionGraceMs: 60_000 });
    const [created] = await first.client.createJob({
      parent: PARENT,
      jobId: uniqueId('deleting'),
      job: scriptJob('sleep 30'),
    });
    const name = created.name as string;
    await until(async () => (await first.client.getJob({ name }))[0].status?.state === 'RUNNING');
    await first.client.deleteJob({ name });
    await first.stop();

    // Act
    const second = await start(dataDir, { deletionGraceMs: 60_000 });
    const [during] = await second.client.getJob({ name });
    await second.stop();
    const third = await start(dataDir, { deletionGraceMs: 0 });
    const after = await codeOf(third.client.getJob({ name }));

    // Assert
    expect(during.uid).toBe(created.uid);
    expect(during.status?.state).toBe('DELETION_IN_PROGRESS');
    expect(after).toBe(status.NOT_FOUND);
    expect(readdirSync(join(dataDir, 'jobs'))).toEqual([]);
  });

  it('skips an unreadable record and leftovers of an interrupted write instead of refusing to start', async () => {
    // Arrange
    const dataDir = newDataDir();
    const first = await start(dataDir, { execute: false });
    const [created] = await first.client.createJob({
      parent: PARENT,
      jobId: uniqueId('ok'),
      job: scriptJob('exit 0'),
    });
    await first.stop();
    writeFileSync(join(dataDir, 'jobs', 'torn.json'), '{"version":1,"job":');
    writeFileSync(join(dataDir, 'jobs', 'x.json.abc.tmp'), '{}');

    // Act
    const second = await start(dataDir, { execute: false });
    const [listed] = await second.client.listJobs({ parent: PARENT });

    // Assert
    expect(listed.map((job) => job.uid)).toEqual([created.uid]);
    expect(readdirSync(join(dataDir, 'jobs')).sort()).toEqual(
      [`${encodeURIComponent(created.name as string)}.json`, 'torn.json'].sort(),
    );
  });
});
