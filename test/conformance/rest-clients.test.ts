import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchServiceClient } from '@google-cloud/batch';
import { JobsClient, TasksClient } from '@google-cloud/run';
import { ExecutionsClient } from '@google-cloud/workflows';
import { PassThroughClient } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalBatchService, startBatchService } from '#local/batch/server.js';
import { type LocalRunService, startRunService } from '#local/run/server.js';
import { type LocalWorkflowsService, startWorkflowsService } from '#local/workflows/server.js';
import { grpcClientOptions } from '#shared/clients/endpoints.js';

// The Node clients in their REST mode (`fallback: 'rest'`: HTTP/1.1 + JSON as the protos'
// google.api.http rules map each call, https://github.com/googleapis/gax-nodejs/blob/main/client-libraries.md)
// and plain HTTP calls following the REST references of Batch v1, Run v2 and Workflows
// Executions v1, against the local services' shared gRPC/REST ports.

const PROJECT = 'batchwire-local';
const REGION = 'europe-west2';
const PARENT = `projects/${PROJECT}/locations/${REGION}`;
const IMAGE = 'europe-docker.pkg.dev/batchwire-local/batchwire/probe:latest';

let batch: LocalBatchService;
let run: LocalRunService;
let workflows: LocalWorkflowsService;
let batchClient: BatchServiceClient;
let jobsClient: JobsClient;
let tasksClient: TasksClient;
let executionsClient: ExecutionsClient;

/** REST options of a gax client: plain http to a loopback port, no credentials. */
const rest = (port: number) => ({
  fallback: 'rest' as const,
  apiEndpoint: '127.0.0.1',
  port,
  protocol: 'http',
  authClient: new PassThroughClient(),
});

const scriptJob = (text: string, taskCount = 1) => ({
  taskGroups: [{ taskCount, taskSpec: { runnables: [{ script: { text } }] } }],
  labels: { suite: 'rest' },
});

// biome-ignore lint/suspicious/noExplicitAny: JSON read back by path in assertions
type Json = Record<string, any>;

async function http(port: number, method: string, path: string, body?: unknown) {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  return { status: response.status, json: (await response.json()) as Json };
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rest-clients-'));
  writeFileSync(
    join(dir, 'greet.workflows.yaml'),
    [
      'main:',
      '  params: [args]',
      '  steps:',
      '    - done:',
      '        return: $' + '{"hello " + args.name}',
      '',
    ].join('\n'),
  );
  [batch, run, workflows] = await Promise.all([
    startBatchService({ deletionGraceMs: 60_000 }),
    startRunService({
      images: { [IMAGE]: ['node', '-e', 'process.exit(Number(process.env.EXIT_CODE ?? 0))'] },
    }),
    startWorkflowsService({ workflowsDir: dir, project: PROJECT, region: REGION, connectors: {} }),
  ]);
  batchClient = new BatchServiceClient(rest(batch.port));
  jobsClient = new JobsClient(rest(run.port));
  tasksClient = new TasksClient(rest(run.port));
  executionsClient = new ExecutionsClient(rest(workflows.port));
});

afterAll(async () => {
  await Promise.all([
    batchClient?.close(),
    jobsClient?.close(),
    tasksClient?.close(),
    executionsClient?.close(),
  ]);
  await Promise.all([batch?.close(), run?.close(), workflows?.close()]);
});

describe("BatchServiceClient with fallback: 'rest'", () => {
  it('creates, gets and lists jobs page by page (projects.locations.jobs create/get/list)', async () => {
    // Arrange
    const ids = ['rest-page-a', 'rest-page-b', 'rest-page-c'];

    // Act
    for (const jobId of ids) await batchClient.createJob({ parent: PARENT, jobId, job: scriptJob('exit 0') });
    const [got] = await batchClient.getJob({ name: `${PARENT}/jobs/rest-page-a` });
    const [first, , firstResponse] = await batchClient.listJobs(
      { parent: PARENT, pageSize: 2, orderBy: 'name', filter: 'labels.suite="rest"' },
      { autoPaginate: false },
    );
    const [second] = await batchClient.listJobs(
      {
        parent: PARENT,
        pageSize: 2,
        orderBy: 'name',
        filter: 'labels.suite="rest"',
        pageToken: firstResponse?.nextPageToken ?? '',
      },
      { autoPaginate: false },
    );

    // Assert
    expect(got.name).toBe(`${PARENT}/jobs/rest-page-a`);
    expect(got.createTime?.seconds).toBeDefined();
    expect(first.map((job) => job.name?.split('/').pop())).toEqual(['rest-page-a', 'rest-page-b']);
    expect(firstResponse?.nextPageToken).toBeTruthy();
    expect(second.map((job) => job.name?.split('/').pop())).toContain('rest-page-c');
  });

  it('filters jobs on create_time (AIP-160 comparison with an RFC 3339 instant)', async () => {
    // Arrange
    await batchClient.createJob({ parent: PARENT, jobId: 'rest-filtered', job: scriptJob('exit 0') });
    const [job] = await batchClient.getJob({ name: `${PARENT}/jobs/rest-filtered` });
    const created = new Date(Number(job.createTime?.seconds) * 1000).toISOString();
    const later = new Date(Number(job.createTime?.seconds) * 1000 + 60_000).toISOString();

    // Act
    const [since] = await batchClient.listJobs({ parent: PARENT, filter: `create_time>="${created}"` });
    const [after] = await batchClient.listJobs({ parent: PARENT, filter: `create_time>"${later}"` });

    // Assert
    expect(since.map((j) => j.name)).toContain(job.name);
    expect(after).toEqual([]);
  });

  it('lists tasks page by page and reads the delete operation back with GetOperation', async () => {
    // Arrange
    const [job] = await batchClient.createJob({
      parent: PARENT,
      jobId: 'rest-tasks',
      job: scriptJob('exit 0', 3),
    });
    await batch.waitForJob(job.name as string);

    // Act
    const [page, , response] = await batchClient.listTasks(
      { parent: `${job.name}/taskGroups/group0`, pageSize: 2 },
      { autoPaginate: false },
    );
    const [all] = await batchClient.listTasks({ parent: `${job.name}/taskGroups/group0` });
    const [operation] = await batchClient.deleteJob({ name: job.name as string });
    const checked = await batchClient.checkDeleteJobProgress(operation.name as string);

    // Assert
    expect(page).toHaveLength(2);
    expect(response?.nextPageToken).toBeTruthy();
    expect(all.map((task) => task.status?.state)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
    expect(checked.done).toBe(true);
    expect(checked.name).toBe(operation.name);
  });

  it('lists the locations of the mixin google.cloud.location.Locations', async () => {
    // Act
    const locations = [];
    for await (const location of batchClient.listLocationsAsync({ name: `projects/${PROJECT}` })) {
      locations.push(location.locationId);
    }

    // Assert
    expect(locations).toContain(REGION);
  });

  it('rejects an unknown job with the NOT_FOUND error Google returns', async () => {
    await expect(batchClient.getJob({ name: `${PARENT}/jobs/no-such-job` })).rejects.toThrow(/NOT_FOUND/);
  });
});

describe("Run v2 clients with fallback: 'rest'", () => {
  it('creates a job, updates it, runs it to completion and lists its tasks (projects.locations.jobs.*, tasks.list)', async () => {
    // Arrange
    const [created] = await jobsClient.createJob({
      parent: PARENT,
      jobId: 'rest-run',
      job: { template: { taskCount: 1, template: { containers: [{ image: IMAGE }], maxRetries: 0 } } },
    });
    const [job] = await created.promise();

    // Act
    const [update] = await jobsClient.updateJob({
      job: {
        ...job,
        template: { taskCount: 2, template: { containers: [{ image: IMAGE }], maxRetries: 0 } },
      },
    });
    const [updated] = await update.promise();
    const [running] = await jobsClient.runJob({ name: job.name as string });
    const [execution] = await running.promise();
    const [tasks] = await tasksClient.listTasks({ parent: execution.name as string });

    // Assert
    expect(Number(updated.generation)).toBe(2);
    expect(execution.taskCount).toBe(2);
    expect(execution.succeededCount).toBe(2);
    expect(tasks.map((task) => task.index)).toEqual([0, 1]);
    expect(tasks.every((task) => task.name?.startsWith(`${execution.name}/tasks/`))).toBe(true);
  });

  it('deletes an execution (projects.locations.jobs.executions.delete)', async () => {
    // Arrange
    const [created] = await jobsClient.createJob({
      parent: PARENT,
      jobId: 'rest-run-delete',
      job: { template: { taskCount: 1, template: { containers: [{ image: IMAGE }], maxRetries: 0 } } },
    });
    const [job] = await created.promise();
    const [running] = await jobsClient.runJob({ name: job.name as string });
    const [execution] = await running.promise();
    const { ExecutionsClient: RunExecutionsClient } = await import('@google-cloud/run');
    const executions = new RunExecutionsClient(rest(run.port));

    // Act
    const [deletion] = await executions.deleteExecution({ name: execution.name as string });
    await deletion.promise();

    // Assert
    await expect(executions.getExecution({ name: execution.name as string })).rejects.toThrow(/NOT_FOUND/);
    await executions.close();
  });

  it('pages ListJobs; a malformed parent is INVALID_ARGUMENT over gRPC (REST has no URL for it)', async () => {
    // Arrange
    for (const jobId of ['rest-list-a', 'rest-list-b']) {
      const [operation] = await jobsClient.createJob({
        parent: PARENT,
        jobId,
        job: { template: { template: { containers: [{ image: IMAGE }] } } },
      });
      await operation.promise();
    }

    // Act
    const [page, , response] = await jobsClient.listJobs(
      { parent: PARENT, pageSize: 1 },
      { autoPaginate: false },
    );

    // Assert
    expect(page).toHaveLength(1);
    expect(response?.nextPageToken).toBeTruthy();
    const grpcClient = new JobsClient(await grpcClientOptions('run', { RUN_EMULATOR_HOST: run.host }));
    await expect(grpcClient.listJobs({ parent: `projects/${PROJECT}` })).rejects.toMatchObject({ code: 3 });
    await grpcClient.close();
  });
});

describe("Workflows ExecutionsClient with fallback: 'rest'", () => {
  it('creates an execution and reads its result back (projects.locations.workflows.executions create/get/list)', async () => {
    // Act
    const [created] = await executionsClient.createExecution({
      parent: `${PARENT}/workflows/greet`,
      execution: { argument: JSON.stringify({ name: 'rest' }) },
    });
    await workflows.waitForExecution(created.name as string);
    const [got] = await executionsClient.getExecution({ name: created.name as string });
    const [listed] = await executionsClient.listExecutions({
      parent: `${PARENT}/workflows/greet`,
      view: 'FULL',
    });

    // Assert
    expect(got.state).toBe('SUCCEEDED');
    expect(JSON.parse(got.result as string)).toBe('hello rest');
    expect(listed.map((execution) => execution.name)).toContain(created.name);
  });
});

// https://cloud.google.com/batch/docs/reference/rest/v1/projects.locations.jobs and
// https://cloud.google.com/apis/design/errors (the JSON error shape and HTTP mapping).
describe('plain HTTP following the REST reference', () => {
  it('maps proto3 JSON: camelCase fields, int64 as strings, enums as names, Timestamps in RFC 3339', async () => {
    // Act
    const created = await http(
      batch.port,
      'POST',
      `/v1/${PARENT}/jobs?jobId=rest-json`,
      scriptJob('exit 0', 2),
    );

    // Assert
    expect(created.status).toBe(200);
    expect(created.json.taskGroups[0].taskCount).toBe('2');
    expect(created.json.status.state).toBe('QUEUED');
    expect(created.json.createTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(created.json).not.toHaveProperty('task_groups');
  });

  it("answers enums as numbers when asked with $alt=json;enum-encoding=int, as gax's REST mode asks", async () => {
    // Act
    const got = await http(
      batch.port,
      'GET',
      `/v1/${PARENT}/jobs/rest-json?%24alt=json%3Benum-encoding%3Dint`,
    );

    // Assert
    expect(typeof got.json.status.state).toBe('number');
  });

  it("answers errors in Google's JSON shape with the HTTP status of each gRPC code", async () => {
    // Act
    const [missing, unknownParameter, badBody, noRoute, exists] = await Promise.all([
      http(batch.port, 'GET', `/v1/${PARENT}/jobs/nope`),
      http(batch.port, 'GET', `/v1/${PARENT}/jobs?colour=red`),
      fetch(`http://127.0.0.1:${batch.port}/v1/${PARENT}/jobs?jobId=bad-body`, {
        method: 'POST',
        body: '{',
      }).then(async (r) => ({ status: r.status, json: (await r.json()) as Json })),
      http(batch.port, 'GET', '/v1/nothing/here'),
      http(batch.port, 'POST', `/v1/${PARENT}/jobs?jobId=rest-json`, scriptJob('exit 0')),
    ]);

    // Assert
    expect(missing).toEqual({
      status: 404,
      json: { error: { code: 404, message: expect.any(String), status: 'NOT_FOUND', details: [] } },
    });
    expect([unknownParameter.status, unknownParameter.json.error.status]).toEqual([400, 'INVALID_ARGUMENT']);
    expect(unknownParameter.json.error.message).toMatch(/Cannot bind query parameter/);
    expect([badBody.status, badBody.json.error.status]).toEqual([400, 'INVALID_ARGUMENT']);
    expect([noRoute.status, noRoute.json.error.status]).toEqual([404, 'NOT_FOUND']);
    expect([exists.status, exists.json.error.status]).toEqual([409, 'ALREADY_EXISTS']);
  });
});
