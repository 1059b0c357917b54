import { BatchServiceClient } from '@google-cloud/batch';
import { JobsClient, ExecutionsClient as RunExecutionsClient, TasksClient } from '@google-cloud/run';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalBatchService, startBatchService } from '#local/batch/server.js';
import { type LocalRunService, startRunService } from '#local/run/server.js';
import { grpcClientOptions } from '#shared/clients/endpoints.js';

// The methods the real clients reach over gRPC besides the core CRUD: Batch's long-running
// operations and locations mixins, task paging and create_time filters; Run's UpdateJob,
// DeleteExecution, Tasks and paged ListJobs.

const PARENT = 'projects/batchwire-local/locations/europe-west2';
const IMAGE = 'europe-docker.pkg.dev/batchwire-local/batchwire/probe:latest';

let batch: LocalBatchService;
let run: LocalRunService;
let batchClient: BatchServiceClient;
let jobsClient: JobsClient;
let executionsClient: RunExecutionsClient;
let tasksClient: TasksClient;

const scriptJob = (taskCount: number) => ({
  taskGroups: [{ taskCount, taskSpec: { runnables: [{ script: { text: 'exit 0' } }] } }],
});

async function runJob(jobId: string, taskCount = 1) {
  const [created] = await jobsClient.createJob({
    parent: PARENT,
    jobId,
    job: { template: { taskCount, template: { containers: [{ image: IMAGE }], maxRetries: 0 } } },
  });
  const [job] = await created.promise();
  const [running] = await jobsClient.runJob({ name: job.name as string });
  const [execution] = await running.promise();
  return { job, execution };
}

beforeAll(async () => {
  [batch, run] = await Promise.all([
    startBatchService({ locations: ['europe-west2'] }),
    startRunService({ images: { [IMAGE]: ['node', '-e', ''] } }),
  ]);
  batchClient = new BatchServiceClient(await grpcClientOptions('batch', { BATCH_EMULATOR_HOST: batch.host }));
  const runOptions = await grpcClientOptions('run', { RUN_EMULATOR_HOST: run.host });
  jobsClient = new JobsClient(runOptions);
  executionsClient = new RunExecutionsClient(runOptions);
  tasksClient = new TasksClient(runOptions);
});

afterAll(async () => {
  await Promise.all([
    batchClient?.close(),
    jobsClient?.close(),
    executionsClient?.close(),
    tasksClient?.close(),
  ]);
  await Promise.all([batch?.close(), run?.close()]);
});

describe('Batch over gRPC', () => {
  it('reads the operation of a delete back with GetOperation and lists it with ListOperations', async () => {
    // Arrange
    const [job] = await batchClient.createJob({ parent: PARENT, jobId: 'grpc-op', job: scriptJob(1) });

    // Act
    const [operation] = await batchClient.deleteJob({ name: job.name as string });
    const checked = await batchClient.checkDeleteJobProgress(operation.name as string);
    const listed = [];
    for await (const op of batchClient.operationsClient.listOperationsAsync(
      // The mixin's request type is the protobufjs class; a plain object is what gax sends.
      { name: PARENT, filter: '' } as never,
    )) {
      listed.push(op.name);
    }

    // Assert
    expect(checked.done).toBe(true);
    expect(listed).toContain(operation.name);
    await expect(batchClient.checkDeleteJobProgress(`${PARENT}/operations/nope`)).rejects.toMatchObject({
      code: 5,
    });
  });

  it('lists and gets locations (google.cloud.location.Locations)', async () => {
    // Act
    // Typed as ILocation, answered as gax's [response, …] tuple like every other call.
    const [location] = (await batchClient.getLocation({ name: PARENT })) as unknown as [
      { locationId?: string },
    ];
    const ids = [];
    for await (const each of batchClient.listLocationsAsync({ name: 'projects/batchwire-local' }))
      ids.push(each.locationId);

    // Assert
    expect(location.locationId).toBe('europe-west2');
    expect(ids).toContain('europe-west2');
  });

  it('pages ListTasks with page_size and filters ListJobs on create_time', async () => {
    // Arrange
    const [job] = await batchClient.createJob({ parent: PARENT, jobId: 'grpc-paging', job: scriptJob(5) });
    const created = new Date(Number(job.createTime?.seconds) * 1000).toISOString();

    // Act
    const [page, , response] = await batchClient.listTasks(
      { parent: `${job.name}/taskGroups/group0`, pageSize: 2 },
      { autoPaginate: false },
    );
    const [all] = await batchClient.listTasks({ parent: `${job.name}/taskGroups/group0`, pageSize: 2 });
    const [since] = await batchClient.listJobs({ parent: PARENT, filter: `create_time >= "${created}"` });
    const [before] = await batchClient.listJobs({ parent: PARENT, filter: `create_time < "${created}"` });

    // Assert
    expect(page).toHaveLength(2);
    expect(response?.nextPageToken).toBeTruthy();
    expect(all.map((task) => task.name?.split('/').pop())).toEqual(['0', '1', '2', '3', '4']);
    expect(since.map((j) => j.name)).toContain(job.name);
    expect(before.map((j) => j.name)).not.toContain(job.name);
  });
});

describe('Run v2 over gRPC', () => {
  it('updates a job: the next execution runs the new template, generation counts the change', async () => {
    // Arrange
    const { job } = await runJob('grpc-update');

    // Act
    const [update] = await jobsClient.updateJob({
      job: { name: job.name, template: { taskCount: 3, template: { containers: [{ image: IMAGE }] } } },
    });
    const [updated] = await update.promise();
    const [running] = await jobsClient.runJob({ name: job.name as string });
    const [execution] = await running.promise();

    // Assert
    expect(Number(updated.generation)).toBe(2);
    expect(execution.taskCount).toBe(3);
    await expect(
      jobsClient.updateJob({
        job: { name: `${PARENT}/jobs/missing`, template: { template: { containers: [{ image: IMAGE }] } } },
      }),
    ).rejects.toMatchObject({ code: 5 });
  });

  it("lists an execution's tasks page by page and gets one", async () => {
    // Arrange
    const { execution } = await runJob('grpc-tasks', 3);

    // Act
    const [page, , response] = await tasksClient.listTasks(
      { parent: execution.name as string, pageSize: 2 },
      { autoPaginate: false },
    );
    const [all] = await tasksClient.listTasks({ parent: execution.name as string });
    const [task] = await tasksClient.getTask({ name: all[2]?.name as string });

    // Assert
    expect(page).toHaveLength(2);
    expect(response?.nextPageToken).toBeTruthy();
    expect(all.map((t) => t.index)).toEqual([0, 1, 2]);
    expect(task.index).toBe(2);
    expect(task.completionTime).toBeTruthy();
    expect(task.lastAttemptResult?.exitCode ?? 0).toBe(0);
  });

  it('deletes an execution and its tasks', async () => {
    // Arrange
    const { execution } = await runJob('grpc-delete-execution');

    // Act
    const [deletion] = await executionsClient.deleteExecution({ name: execution.name as string });
    await deletion.promise();

    // Assert
    await expect(executionsClient.getExecution({ name: execution.name as string })).rejects.toMatchObject({
      code: 5,
    });
    const [tasks] = await tasksClient.listTasks({ parent: execution.name as string });
    expect(tasks).toEqual([]);
  });

  it('pages ListJobs and answers INVALID_ARGUMENT for a parent that is not a location', async () => {
    // Arrange
    await runJob('grpc-list-a');
    await runJob('grpc-list-b');

    // Act
    const [page, , response] = await jobsClient.listJobs(
      { parent: PARENT, pageSize: 1 },
      { autoPaginate: false },
    );

    // Assert
    expect(page).toHaveLength(1);
    expect(response?.nextPageToken).toBeTruthy();
    await expect(jobsClient.listJobs({ parent: 'projects/batchwire-local' })).rejects.toMatchObject({
      code: 3,
    });
  });
});
