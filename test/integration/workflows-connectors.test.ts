import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PubSub } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type LocalBatchService, startBatchService } from '#local/batch/server.js';
import { type LocalRunService, startRunService } from '#local/run/server.js';
import { type LocalStorageServer, startStorageServer } from '#local/storage/server.js';
import {
  createLocalConnectors,
  executeWorkflow,
  parseWorkflow,
  systemClock,
} from '#local/workflows/index.js';
import { collectMessages } from '../helpers/pubsub.js';
import { waitFor } from '../helpers/wait.js';

const PROJECT = 'batchwire-local';
const REGION = 'europe-west2';
const PARENT = `projects/${PROJECT}/locations/${REGION}`;
const RUN_IMAGE = 'europe-docker.pkg.dev/batchwire-local/batchwire/exit-with:latest';
const BUCKET = 'workflow-connectors';

let batch: LocalBatchService;
let run: LocalRunService;
let storageServer: LocalStorageServer;
let storage: Storage;
let pubsub: PubSub;
let pubsubHost: string;
let env: Record<string, string>;

const uniqueId = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

/** Runs an inline workflow against the local services, with connectors reading `env`. */
async function runWorkflow(source: string, argument: unknown, connectorEnv = env): Promise<unknown> {
  const program = parseWorkflow(source, 'inline.workflows.yaml');
  return executeWorkflow(program, argument, {
    connectors: createLocalConnectors({
      project: PROJECT,
      region: REGION,
      env: connectorEnv,
      polling: { initialDelay: 0.05, multiplier: 1.5, maxDelay: 0.25 },
    }),
    env: { GOOGLE_CLOUD_PROJECT_ID: PROJECT, GOOGLE_CLOUD_LOCATION: REGION },
    clock: systemClock,
  });
}

/** Calls one connector with `args.call_args`; returns its result, or what `except` caught. */
const CALL_AND_CATCH = (connector: string) => `
main:
  params: [args]
  steps:
    - attempt:
        try:
          call: ${connector}
          args: \${args.call_args}
          result: response
        except:
          as: e
          steps:
            - caught:
                return:
                  caught: \${e}
    - done:
        return:
          response: \${response}
`;

beforeAll(async () => {
  pubsubHost = inject('pubsubHost');
  const dir = mkdtempSync(join(tmpdir(), 'workflows-connectors-'));
  [batch, run, storageServer] = await Promise.all([
    startBatchService({ pubsubHost, logDir: join(dir, 'batch-logs') }),
    // The image stands for a container that exits with $EXIT_CODE (0 unless the run overrides it).
    startRunService({
      images: { [RUN_IMAGE]: ['bash', '-c', 'echo "task $CLOUD_RUN_TASK_INDEX"; exit "$((EXIT_CODE))"'] },
      baseDir: dir,
      logDir: join(dir, 'run-logs'),
    }),
    startStorageServer(),
  ]);
  env = {
    BATCH_EMULATOR_HOST: batch.host,
    RUN_EMULATOR_HOST: run.host,
    PUBSUB_EMULATOR_HOST: pubsubHost,
    STORAGE_EMULATOR_HOST: storageServer.url,
  };
  storage = new Storage({ apiEndpoint: storageServer.url, projectId: PROJECT });
  pubsub = new PubSub({ projectId: PROJECT, apiEndpoint: pubsubHost, emulatorMode: true });
  await storage.createBucket(BUCKET);
});

afterAll(async () => {
  await pubsub?.close();
  await Promise.all([batch?.close(), run?.close(), storageServer?.close()]);
});

describe('Workflows connectors against the local Batch service', () => {
  const CREATE = CALL_AND_CATCH('googleapis.batch.v1.projects.locations.jobs.create');

  it('jobs.create waits for the job and returns it SUCCEEDED, in REST JSON', async () => {
    // Arrange
    const jobId = uniqueId('wf-ok');

    // Act
    const result = (await runWorkflow(CREATE, {
      call_args: {
        parent: PARENT,
        jobId,
        body: {
          taskGroups: [{ taskCount: 2, taskSpec: { runnables: [{ script: { text: 'echo ok' } }] } }],
          labels: { product: 'demo' },
        },
      },
    })) as { response: Record<string, unknown> & { status: { state: string } } };

    // Assert
    expect(result.response.name).toBe(`${PARENT}/jobs/${jobId}`);
    expect(result.response.status.state).toBe('SUCCEEDED');
    expect(result.response.labels).toEqual({ product: 'demo' });
    expect(result.response.createTime).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('jobs.create of a job whose script fails raises an OperationError that except sees', async () => {
    // Arrange
    const jobId = uniqueId('wf-fail');

    // Act
    const result = (await runWorkflow(CREATE, {
      call_args: {
        parent: PARENT,
        jobId,
        body: {
          taskGroups: [{ taskSpec: { runnables: [{ script: { text: 'exit 3' } }], maxRetryCount: 0 } }],
        },
      },
    })) as { caught: { tags: string[]; operation: { name: string; status: { state: string } } } };

    // Assert
    expect(result.caught.tags).toEqual(['OperationError']);
    expect(result.caught.operation.name).toBe(`${PARENT}/jobs/${jobId}`);
    expect(result.caught.operation.status.state).toBe('FAILED');
  });

  it('jobs.get of a job that does not exist raises HttpError 404', async () => {
    // Act
    const result = (await runWorkflow(CALL_AND_CATCH('googleapis.batch.v1.projects.locations.jobs.get'), {
      call_args: { name: `${PARENT}/jobs/${uniqueId('missing')}` },
    })) as { caught: { tags: string[]; code: number; body: { error: { status: string } } } };

    // Assert
    expect(result.caught.tags).toEqual(['HttpError']);
    expect(result.caught.code).toBe(404);
    expect(result.caught.body.error.status).toBe('NOT_FOUND');
  });
});

describe('Workflows connectors against the local Cloud Run jobs service', () => {
  const RUN = CALL_AND_CATCH('googleapis.run.v2.projects.locations.jobs.run');

  function createRunJob(): string {
    const jobId = uniqueId('wf-run');
    run.createJob(PARENT, jobId, {
      template: {
        task_count: 2,
        template: { containers: [{ image: RUN_IMAGE }], retries: 'max_retries', max_retries: 0 },
      },
    });
    return `${PARENT}/jobs/${jobId}`;
  }

  it('jobs.run waits for the execution and returns it succeeded', async () => {
    // Arrange
    const job = createRunJob();

    // Act
    const result = (await runWorkflow(RUN, { call_args: { name: job } })) as {
      response: { name: string; succeededCount: number; taskCount: number; completionTime: string };
    };

    // Assert
    expect(result.response.name).toMatch(new RegExp(`^${job}/executions/`));
    expect(result.response.taskCount).toBe(2);
    expect(result.response.succeededCount).toBe(2);
    expect(result.response.completionTime).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('jobs.run of an execution whose tasks fail (env override) raises an OperationError', async () => {
    // Arrange
    const job = createRunJob();

    // Act
    const result = (await runWorkflow(RUN, {
      call_args: {
        name: job,
        body: {
          overrides: { containerOverrides: [{ env: [{ name: 'EXIT_CODE', value: '4' }] }], taskCount: 1 },
        },
      },
    })) as {
      caught: { tags: string[]; message: string; operation: { done: boolean; error: { message: string } } };
    };

    // Assert
    expect(result.caught.tags).toEqual(['OperationError']);
    expect(result.caught.operation.done).toBe(true);
    expect(result.caught.operation.error.message).toContain('exit 4');
  });
});

describe('Workflows connectors against the Pub/Sub emulator', () => {
  it('topics.publish delivers the base64 data and attributes, through the emulator named in env', async () => {
    // Arrange: a topic and subscription made with the real client; the connectors must not
    // depend on process.env to find the emulator.
    const [topic] = await pubsub.createTopic(uniqueId('wf-topic'));
    const { subscription, messages: received } = await collectMessages(topic, uniqueId('wf-sub'));
    const saved = process.env.PUBSUB_EMULATOR_HOST;
    delete process.env.PUBSUB_EMULATOR_HOST;

    // Act
    let result: unknown;
    try {
      result = await runWorkflow(CALL_AND_CATCH('googleapis.pubsub.v1.projects.topics.publish'), {
        call_args: {
          topic: topic.name,
          body: {
            messages: [
              {
                data: Buffer.from('{"run":"r-1"}').toString('base64'),
                attributes: { product: 'demo', attempt: 2 },
              },
            ],
          },
        },
      });
    } finally {
      process.env.PUBSUB_EMULATOR_HOST = saved;
    }
    await waitFor(() => received[0], 'the published message', 30_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await subscription.close();

    // Assert
    const { response } = result as { response: { messageIds: string[] } };
    expect(response.messageIds).toHaveLength(1);
    expect(received).toHaveLength(1);
    expect(received[0]?.id).toBe(response.messageIds[0]);
    expect(received[0]?.data.toString('utf8')).toBe('{"run":"r-1"}');
    expect(received[0]?.attributes).toEqual({ product: 'demo', attempt: '2' });
  });
});

describe('Workflows connectors against the local Storage server', () => {
  it('objects.get returns the metadata, or with alt=media the parsed JSON content', async () => {
    // Arrange
    await storage
      .bucket(BUCKET)
      .file('runs/r-1/summary.json')
      .save(JSON.stringify({ rows: 3 }), { contentType: 'application/json' });
    const source = `
main:
  steps:
    - meta:
        call: googleapis.storage.v1.objects.get
        args: { bucket: ${BUCKET}, object: runs/r-1/summary.json }
        result: meta
    - media:
        call: googleapis.storage.v1.objects.get
        args: { bucket: ${BUCKET}, object: runs/r-1/summary.json, alt: media }
        result: content
    - done:
        return:
          name: \${meta.name}
          size: \${meta.size}
          rows: \${content.rows}
`;

    // Act
    const result = await runWorkflow(source, null);

    // Assert
    expect(result).toEqual({ name: 'runs/r-1/summary.json', size: '10', rows: 3 });
  });

  it('objects.list lists the objects under a prefix', async () => {
    // Arrange
    await Promise.all(
      ['in/a.csv', 'in/b.csv', 'out/c.csv'].map((name) => storage.bucket(BUCKET).file(name).save('x')),
    );
    const source = `
main:
  steps:
    - list:
        call: googleapis.storage.v1.objects.list
        args: { bucket: ${BUCKET}, prefix: in/ }
        result: listing
    - names:
        assign:
          - names: []
    - collect:
        for:
          value: item
          in: \${listing.items}
          steps:
            - add:
                assign:
                  - names: \${list.concat(names, item.name)}
    - done:
        return: \${names}
`;

    // Act
    const result = await runWorkflow(source, null);

    // Assert
    expect(result).toEqual(['in/a.csv', 'in/b.csv']);
  });

  it('objects.get of a missing object raises HttpError 404', async () => {
    // Act
    const result = (await runWorkflow(CALL_AND_CATCH('googleapis.storage.v1.objects.get'), {
      call_args: { bucket: BUCKET, object: 'no/such/object' },
    })) as { caught: { tags: string[]; code: number } };

    // Assert
    expect(result.caught.tags).toEqual(['HttpError']);
    expect(result.caught.code).toBe(404);
  });
});
