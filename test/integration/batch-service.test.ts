import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BatchServiceClient, type protos } from '@google-cloud/batch';
import { PubSub } from '@google-cloud/pubsub';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlatformActivity } from '#local/activity.js';
import { type LocalBatchService, startBatchService } from '#local/batch/server.js';
import { grpcClientOptions } from '#shared/clients/endpoints.js';
import { collectingTopic } from '../helpers/pubsub.js';
import { until } from '../helpers/wait.js';

type IJob = protos.google.cloud.batch.v1.IJob;

const PROJECT = 'batchwire-test';
const REGION = 'europe-west2';
const PARENT = `projects/${PROJECT}/locations/${REGION}`;
const IMAGE = 'europe-docker.pkg.dev/batchwire-test/batchwire/echo:latest';
/** How long a deleted job stays readable here (Batch's own cleanup takes longer). */
const DELETION_GRACE_MS = 600;

let batch: LocalBatchService;
let client: BatchServiceClient;
let pubsub: PubSub;
const activity: PlatformActivity[] = [];

const uniqueId = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

/** A job of `taskCount` tasks running one bash script. */
function scriptJob(
  text: string,
  group: Partial<protos.google.cloud.batch.v1.ITaskGroup> = {},
  extra: Partial<IJob> = {},
): IJob {
  return {
    taskGroups: [{ ...group, taskSpec: { runnables: [{ script: { text } }], ...(group.taskSpec ?? {}) } }],
    labels: { product: 'demo' },
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

beforeAll(async () => {
  batch = await startBatchService({
    env: { PLATFORM_MARKER: 'from-platform' },
    deletionGraceMs: DELETION_GRACE_MS,
    images: { [IMAGE]: ['bash', '-c', 'echo "container $0 $1 index=$BATCH_TASK_INDEX"', 'arg0'] },
    onEvent: (e) => activity.push(e),
  });
  client = new BatchServiceClient(await grpcClientOptions('batch', { BATCH_EMULATOR_HOST: batch.host }));
  pubsub = new PubSub({ projectId: PROJECT });
});

afterAll(async () => {
  await client?.close();
  await pubsub?.close();
  await batch?.close();
});

describe('local Batch service: the job resource', () => {
  it('creates, gets, lists and deletes a job, filling the output fields as Batch does', async () => {
    // Arrange
    const jobId = uniqueId('crud');

    // Act
    const [created] = await client.createJob({ parent: PARENT, jobId, job: scriptJob('exit 0') });
    const [got] = await client.getJob({ name: created.name as string });
    const [listed] = await client.listJobs({ parent: PARENT, filter: `name="${created.name}"` });
    await batch.waitForJob(created.name as string);
    const [operation] = await client.deleteJob({ name: created.name as string });
    await operation.promise();
    const [deleting] = await client.getJob({ name: created.name as string });
    await sleep(DELETION_GRACE_MS + 300);
    const afterDelete = await codeOf(client.getJob({ name: created.name as string }));

    // Assert
    expect(created.name).toBe(`${PARENT}/jobs/${jobId}`);
    expect(created.uid).toMatch(new RegExp(`^${jobId.slice(0, 18)}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{5}$`));
    expect(created.status?.state).toBe('QUEUED');
    expect(Number(created.createTime?.seconds)).toBeGreaterThan(0);
    expect(created.taskGroups?.[0]?.name).toBe(`${created.name}/taskGroups/group0`);
    expect(String(created.taskGroups?.[0]?.taskCount)).toBe('1');
    expect(got.uid).toBe(created.uid);
    expect(got.labels).toEqual({ product: 'demo' });
    expect(listed.map((job) => job.name)).toEqual([created.name]);
    expect(operation.done).toBe(true);
    expect(deleting.status?.state).toBe('DELETION_IN_PROGRESS');
    expect(deleting.status?.statusEvents?.at(-1)?.description).toBe(
      `Job state is set from SUCCEEDED to DELETION_IN_PROGRESS for job ${created.name}.`,
    );
    expect(afterDelete).toBe(status.NOT_FOUND);
  });

  it('keeps a deleted job listed and readable as DELETION_IN_PROGRESS for the grace period, taking its id', async () => {
    // Arrange
    const jobId = uniqueId('grace');
    const [created] = await client.createJob({ parent: PARENT, jobId, job: scriptJob('sleep 5') });
    const name = created.name as string;
    await client.deleteJob({ name });

    // Act
    const [again] = await client.deleteJob({ name });
    const [got] = await client.getJob({ name });
    const [listed] = await client.listJobs({ parent: PARENT, filter: `name="${name}"` });
    const recreate = await codeOf(client.createJob({ parent: PARENT, jobId, job: scriptJob('exit 0') }));
    const cancel = await codeOf(client.cancelJob({ name }));
    await sleep(DELETION_GRACE_MS + 300);
    const [listedAfter] = await client.listJobs({ parent: PARENT, filter: `name="${name}"` });

    // Assert
    expect(again.done).toBe(true);
    expect(got.uid).toBe(created.uid);
    expect(got.status?.state).toBe('DELETION_IN_PROGRESS');
    expect(listed.map((job) => [job.name, job.status?.state])).toEqual([[name, 'DELETION_IN_PROGRESS']]);
    expect(recreate).toBe(status.ALREADY_EXISTS);
    expect(cancel).toBe(status.FAILED_PRECONDITION);
    expect(listedAfter).toEqual([]);
    expect(await codeOf(client.getJob({ name }))).toBe(status.NOT_FOUND);
  });

  it('answers ALREADY_EXISTS for a reused job id, but returns the same job for a repeated requestId', async () => {
    // Arrange
    const jobId = uniqueId('dup');
    const requestId = randomUUID();
    const [first] = await client.createJob({ parent: PARENT, jobId, requestId, job: scriptJob('exit 0') });

    // Act
    const [again] = await client.createJob({ parent: PARENT, jobId, requestId, job: scriptJob('exit 0') });
    const conflict = await codeOf(
      client.createJob({ parent: PARENT, jobId, requestId: randomUUID(), job: scriptJob('exit 0') }),
    );
    const conflictWithoutRequestId = await codeOf(
      client.createJob({ parent: PARENT, jobId, job: scriptJob('exit 0') }),
    );

    // Assert
    expect(again.uid).toBe(first.uid);
    expect(conflict).toBe(status.ALREADY_EXISTS);
    expect(conflictWithoutRequestId).toBe(status.ALREADY_EXISTS);
  });

  it('rejects invalid job ids, parents and jobs with INVALID_ARGUMENT, and unknown jobs with NOT_FOUND', async () => {
    // Act
    const codes = await Promise.all([
      codeOf(client.createJob({ parent: PARENT, jobId: 'Bad_ID', job: scriptJob('exit 0') })),
      codeOf(client.createJob({ parent: PARENT, jobId: 'ends-with-', job: scriptJob('exit 0') })),
      codeOf(client.createJob({ parent: PARENT, jobId: `a${'b'.repeat(63)}`, job: scriptJob('exit 0') })),
      codeOf(
        client.createJob({ parent: `projects/${PROJECT}`, jobId: uniqueId('p'), job: scriptJob('exit 0') }),
      ),
      codeOf(
        client.createJob({
          parent: PARENT,
          jobId: uniqueId('empty'),
          job: { taskGroups: [{ taskSpec: { runnables: [] } }] },
        }),
      ),
      codeOf(client.createJob({ parent: PARENT, jobId: uniqueId('nogroup'), job: {} })),
      codeOf(
        client.createJob({
          parent: PARENT,
          jobId: uniqueId('req'),
          requestId: 'not-a-uuid',
          job: scriptJob('exit 0'),
        }),
      ),
    ]);
    const unknown = await codeOf(client.getJob({ name: `${PARENT}/jobs/no-such-job` }));

    // Assert
    expect(codes).toEqual(Array(7).fill(status.INVALID_ARGUMENT));
    expect(unknown).toBe(status.NOT_FOUND);
  });

  it('fails the next calls of a method with an injected fault, then recovers', async () => {
    // Arrange
    batch.injectFault('GetJob', status.UNAVAILABLE, 1);
    const [job] = await client.createJob({
      parent: PARENT,
      jobId: uniqueId('fault'),
      job: scriptJob('exit 0'),
    });

    // Act: gax retries UNAVAILABLE on GetJob, so the single fault is absorbed by a retry…
    const [got] = await client.getJob({ name: job.name as string });
    batch.injectFault('CreateJob', status.PERMISSION_DENIED, 1);
    const denied = await codeOf(
      client.createJob({ parent: PARENT, jobId: uniqueId('fault'), job: scriptJob('exit 0') }),
    );

    // Assert: …while a non-retryable code reaches the caller.
    expect(got.name).toBe(job.name);
    expect(denied).toBe(status.PERMISSION_DENIED);
  });
});

describe('local Batch service: running jobs', () => {
  it('runs every task with BATCH_TASK_INDEX/COUNT, the job and platform env, honouring parallelism', async () => {
    // Arrange
    const jobId = uniqueId('tasks');
    const script =
      'echo "index=$BATCH_TASK_INDEX count=$BATCH_TASK_COUNT attempt=$BATCH_TASK_RETRY_ATTEMPT ' +
      'group=$GROUP_VAR runnable=$RUNNABLE_VAR platform=$PLATFORM_MARKER"';
    const job: IJob = {
      taskGroups: [
        {
          taskCount: 3,
          parallelism: 2,
          taskSpec: {
            runnables: [{ script: { text: script }, environment: { variables: { RUNNABLE_VAR: 'r' } } }],
            environment: { variables: { GROUP_VAR: 'g', RUNNABLE_VAR: 'overridden' } },
          },
        },
      ],
    };

    // Act
    const [created] = await client.createJob({ parent: PARENT, jobId, job });
    const done = (await batch.waitForJob(created.name as string)) as { status: { state: string } };
    const [got] = await client.getJob({ name: created.name as string });

    // Assert
    expect(done.status.state).toBe('SUCCEEDED');
    expect(got.status?.state).toBe('SUCCEEDED');
    expect(got.status?.taskGroups?.group0?.counts).toEqual({ SUCCEEDED: '3' });
    expect(got.status?.statusEvents?.map((event) => event.description)).toEqual([
      `Job state is set from QUEUED to SCHEDULED for job ${created.name}.`,
      `Job state is set from SCHEDULED to RUNNING for job ${created.name}.`,
      `Job state is set from RUNNING to SUCCEEDED for job ${created.name}.`,
    ]);
    for (const index of [0, 1, 2]) {
      const log = readFileSync(join(batch.logDir, jobId, `task-${index}-attempt-0.log`), 'utf8');
      expect(log).toBe(`index=${index} count=3 attempt=0 group=g runnable=r platform=from-platform\n`);
    }
    const [tasks] = await client.listTasks({ parent: `${created.name}/taskGroups/group0` });
    expect(tasks.map((task) => task.status?.state)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
    expect(
      activity.filter((e) => e.kind === 'job.state' && e.job === created.name).map((e) => e.state),
    ).toEqual(['SCHEDULED', 'RUNNING', 'SUCCEEDED']);
  });

  it('retries a failing task maxRetryCount times, then FAILS the job with the exit code in its events', async () => {
    // Arrange
    const jobId = uniqueId('retry');
    const job = scriptJob('echo "try $BATCH_TASK_RETRY_ATTEMPT"; exit 7', { taskSpec: { maxRetryCount: 1 } });

    // Act
    const [created] = await client.createJob({ parent: PARENT, jobId, job });
    await batch.waitForJob(created.name as string);
    const [got] = await client.getJob({ name: created.name as string });
    const [task] = await client.getTask({ name: `${created.name}/taskGroups/group0/tasks/0` });

    // Assert
    expect(got.status?.state).toBe('FAILED');
    expect(readFileSync(join(batch.logDir, jobId, 'task-0-attempt-0.log'), 'utf8')).toBe('try 0\n');
    expect(readFileSync(join(batch.logDir, jobId, 'task-0-attempt-1.log'), 'utf8')).toBe('try 1\n');
    expect(got.status?.statusEvents?.at(-1)?.description).toBe(
      `Job state is set from RUNNING to FAILED for job ${created.name}.Job failed due to task failure. ` +
        'Specifically, task with index 0 failed due to the following task event: "Task state is updated ' +
        `from RUNNING to FAILED on zones/${REGION}-local/instances/localhost with exit code 7."`,
    );
    const runs = task.status?.statusEvents?.filter((event) => event.taskState === 'RUNNING');
    expect(runs).toHaveLength(2);
    expect(task.status?.statusEvents?.at(-1)?.taskExecution?.exitCode).toBe(7);
  });

  it('runs a container runnable as its local.images stand-in, and fails a job whose image has none', async () => {
    // Arrange
    const mapped = uniqueId('container');
    const container = (imageUri: string): IJob => ({
      taskGroups: [{ taskSpec: { runnables: [{ container: { imageUri, commands: ['from-commands'] } }] } }],
    });

    // Act
    const [ok] = await client.createJob({ parent: PARENT, jobId: mapped, job: container(IMAGE) });
    const [unmapped] = await client.createJob({
      parent: PARENT,
      jobId: uniqueId('no-image'),
      job: container('gcr.io/x/unknown:1'),
    });
    await batch.waitForJob(ok.name as string);
    await batch.waitForJob(unmapped.name as string);
    const [failed] = await client.getJob({ name: unmapped.name as string });

    // Assert
    expect(readFileSync(join(batch.logDir, mapped, 'task-0-attempt-0.log'), 'utf8')).toBe(
      'container arg0 from-commands index=0\n',
    );
    expect(failed.status?.state).toBe('FAILED');
    expect(failed.status?.statusEvents?.at(-1)?.description).toContain('local.images');
  });

  it('kills the tasks of a running job when it is deleted; the job is gone', async () => {
    // Arrange: a task that would write a marker if it lived 1.5 s.
    const jobId = uniqueId('kill');
    const [created] = await client.createJob({
      parent: PARENT,
      jobId,
      job: scriptJob(`echo started; sleep 1.5; echo survived`),
    });
    const logFile = join(batch.logDir, jobId, 'task-0-attempt-0.log');
    await until(() => readIfExists(logFile).includes('started'), 2_000);

    // Act
    const [operation] = await client.deleteJob({ name: created.name as string });
    await operation.promise();
    await sleep(1_800);

    // Assert
    expect(readIfExists(logFile)).toBe('started\n');
    expect(await codeOf(client.getJob({ name: created.name as string }))).toBe(status.NOT_FOUND); // grace over
  });
});

describe('local Batch service: notifications', () => {
  it('publishes JOB_STATE_CHANGED messages QUEUED, SCHEDULED, RUNNING, SUCCEEDED with Batch attributes and body', async () => {
    // Arrange
    const { topicName, messages, close } = await collectingTopic(pubsub, 'batch-notify');
    const jobId = uniqueId('notify');
    const job = scriptJob(
      'exit 0',
      {},
      { notifications: [{ pubsubTopic: topicName, message: { type: 'JOB_STATE_CHANGED' } }] },
    );

    // Act
    const [created] = await client.createJob({ parent: PARENT, jobId, job });
    await batch.waitForJob(created.name as string);
    await until(() => messages.length >= 4);
    await close();

    // Assert (Pub/Sub without ordering keys delivers in any order: the set is the contract)
    expect(messages.map((m) => m.attributes.NewJobState).sort()).toEqual([
      'QUEUED',
      'RUNNING',
      'SCHEDULED',
      'SUCCEEDED',
    ]);
    for (const message of messages) {
      expect(message.attributes).toEqual({
        Type: 'JOB_STATE_CHANGED',
        JobName: created.name,
        JobUID: created.uid,
        NewJobState: message.attributes.NewJobState,
        Region: REGION,
      });
    }
    const succeeded = messages.find((m) => m.attributes.NewJobState === 'SUCCEEDED');
    expect(succeeded?.data.toString()).toMatch(
      new RegExp(
        `^Job state was updated: jobName=${created.name}, jobUID=${created.uid}, previousState=RUNNING, currentState=SUCCEEDED, timestamp=\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$`,
      ),
    );
  });

  it('publishes only the requested state, and task notifications when asked', async () => {
    // Arrange
    const { topicName, messages, close } = await collectingTopic(pubsub, 'batch-notify');
    const job = scriptJob(
      'exit 1',
      {},
      {
        notifications: [
          { pubsubTopic: topicName, message: { type: 'JOB_STATE_CHANGED', newJobState: 'FAILED' } },
          { pubsubTopic: topicName, message: { type: 'TASK_STATE_CHANGED', newTaskState: 'FAILED' } },
        ],
      },
    );

    // Act
    const [created] = await client.createJob({ parent: PARENT, jobId: uniqueId('notify-failed'), job });
    await batch.waitForJob(created.name as string);
    await until(() => messages.length >= 2);
    await close();

    // Assert
    expect(
      messages
        .map((m) => `${m.attributes.Type}:${m.attributes.NewJobState ?? m.attributes.NewTaskState}`)
        .sort(),
    ).toEqual(['JOB_STATE_CHANGED:FAILED', 'TASK_STATE_CHANGED:FAILED']);
    const task = messages.find((m) => m.attributes.Type === 'TASK_STATE_CHANGED');
    expect(task?.attributes.TaskName).toBe(`${created.name}/taskGroups/group0/tasks/0`);
  });

  it('still runs the job when its notification topic does not exist', async () => {
    // Arrange
    const job = scriptJob(
      'exit 0',
      {},
      {
        notifications: [
          {
            pubsubTopic: `projects/${PROJECT}/topics/${uniqueId('missing')}`,
            message: { type: 'JOB_STATE_CHANGED' },
          },
        ],
      },
    );

    // Act
    const [created] = await client.createJob({ parent: PARENT, jobId: uniqueId('no-topic'), job });
    const done = (await batch.waitForJob(created.name as string)) as { status: { state: string } };

    // Assert
    expect(done.status.state).toBe('SUCCEEDED');
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function readIfExists(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
