import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalBatchService, startBatchService } from '#local/batch/server.js';
import { gcloudApiOverrides } from '#local/platform/env-file.js';
import { createGcloud, type GcloudResult, json } from '../helpers/gcloud-command.js';

// `gcloud batch` (Google Cloud SDK 528) against the local Batch service, through the endpoint
// override `.batchwire/env` carries. Each case names the command reference page it follows,
// under https://cloud.google.com/sdk/gcloud/reference/batch/.

const PROJECT = 'batchwire-local';
const LOCATION = 'us-central1';
const PARENT = `projects/${PROJECT}/locations/${LOCATION}`;

interface Job {
  name: string;
  uid: string;
  status: { state: string; taskGroups?: Record<string, { counts: Record<string, string> }> };
  taskGroups: Array<{ taskCount: string; taskSpec: { runnables: Array<{ script?: { text: string } }> } }>;
  labels?: Record<string, string>;
}

let batch: LocalBatchService;
let gcloud: (args: string[]) => Promise<GcloudResult>;
let configFile: string;

beforeAll(async () => {
  batch = await startBatchService({ deletionGraceMs: 60_000 });
  gcloud = createGcloud({
    project: PROJECT,
    env: gcloudApiOverrides({ batch: batch.host, workflows: '127.0.0.1:9' }),
  });
  // The job configuration format of `--config`: a Job resource in JSON
  // (https://cloud.google.com/batch/docs/create-run-basic-job#create-script-job).
  configFile = join(mkdtempSync(join(tmpdir(), 'gcloud-batch-')), 'job.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      taskGroups: [
        {
          taskCount: 3,
          parallelism: 2,
          taskSpec: { runnables: [{ script: { text: 'echo task $BATCH_TASK_INDEX' } }] },
        },
      ],
      labels: { team: 'conformance' },
      logsPolicy: { destination: 'CLOUD_LOGGING' },
    }),
  );
});

afterAll(async () => {
  await batch?.close();
});

// Independent cases (their own job ids) run concurrently: each gcloud start costs about a second of CPU.
describe.concurrent('gcloud batch jobs', () => {
  it('submit (--config, --script-text), then describe, list and tasks list see the jobs run to SUCCEEDED', async () => {
    // Act: reference/batch/jobs/submit — a JSON config, and a script given as a flag.
    const [fromConfig, fromFlag] = await Promise.all([
      gcloud([
        'batch',
        'jobs',
        'submit',
        'from-config',
        '--location',
        LOCATION,
        '--config',
        configFile,
        '--format=json',
      ]),
      gcloud([
        'batch',
        'jobs',
        'submit',
        'from-flag',
        '--location',
        LOCATION,
        '--script-text',
        'exit 0',
        '--format=json',
      ]),
    ]);
    expect(fromConfig.code, fromConfig.stderr).toBe(0);
    expect(fromFlag.code, fromFlag.stderr).toBe(0);
    await Promise.all([
      batch.waitForJob(`${PARENT}/jobs/from-config`),
      batch.waitForJob(`${PARENT}/jobs/from-flag`),
    ]);

    // reference/batch/jobs/describe, reference/batch/jobs/list, reference/batch/tasks/list
    const [described, listed, tasks, table] = await Promise.all([
      gcloud(['batch', 'jobs', 'describe', 'from-config', '--location', LOCATION, '--format=json']),
      // --page-size=1: gcloud follows nextPageToken through one page per job.
      gcloud(['batch', 'jobs', 'list', '--location', LOCATION, '--page-size=1', '--format=json']),
      gcloud(['batch', 'tasks', 'list', '--job', 'from-config', '--location', LOCATION, '--format=json']),
      gcloud(['batch', 'jobs', 'list', '--location', LOCATION]),
    ]);

    // Assert
    const created = json<Job>(fromConfig);
    expect(created.name).toBe(`${PARENT}/jobs/from-config`);
    expect(created.taskGroups[0]?.taskCount).toBe('3');
    expect(json<Job>(fromFlag).taskGroups[0]?.taskSpec.runnables[0]?.script?.text).toBe('exit 0');
    const job = json<Job>(described);
    expect(job.status.state).toBe('SUCCEEDED');
    expect(job.status.taskGroups?.group0?.counts).toEqual({ SUCCEEDED: '3' });
    expect(job.labels).toEqual({ team: 'conformance' });
    expect(json<Job[]>(listed).map((j) => j.name)).toEqual(
      expect.arrayContaining([`${PARENT}/jobs/from-config`, `${PARENT}/jobs/from-flag`]),
    );
    expect(
      json<Array<{ name: string; status: { state: string } }>>(tasks).map((t) => t.status.state),
    ).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
    // The default table: NAME, LOCATION, STATE.
    expect(table.stdout).toMatch(new RegExp(`${PARENT}/jobs/from-config\\s+${LOCATION}\\s+SUCCEEDED`));
  }, 300_000);

  it("describe of a job that does not exist fails with the service's NOT_FOUND message", async () => {
    // reference/batch/jobs/describe
    const result = await gcloud(['batch', 'jobs', 'describe', 'no-such-job', '--location', LOCATION]);

    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/no-such-job not found/);
  }, 300_000);

  it('submit of an invalid job id is refused with the INVALID_ARGUMENT reason', async () => {
    // reference/batch/jobs/submit: "JOB … must be unique, 1-63 characters, lowercase …"
    const result = await gcloud([
      'batch',
      'jobs',
      'submit',
      'Bad_Id',
      '--location',
      LOCATION,
      '--script-text',
      'exit 0',
    ]);

    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/INVALID_ARGUMENT: job_id "Bad_Id" is invalid/);
  }, 300_000);

  it('delete: the job turns DELETION_IN_PROGRESS, then describe shows it so', async () => {
    // Arrange
    const submitted = await gcloud([
      'batch',
      'jobs',
      'submit',
      'to-delete',
      '--location',
      LOCATION,
      '--script-text',
      'exit 0',
    ]);
    expect(submitted.code, submitted.stderr).toBe(0);

    // Act: reference/batch/jobs/delete
    const deleted = await gcloud(['batch', 'jobs', 'delete', 'to-delete', '--location', LOCATION]);
    const described = await gcloud([
      'batch',
      'jobs',
      'describe',
      'to-delete',
      '--location',
      LOCATION,
      '--format=json',
    ]);

    // Assert
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stderr).toMatch(/deletion is in progress/);
    expect(json<Job>(described).status.state).toBe('DELETION_IN_PROGRESS');
  }, 300_000);
});
