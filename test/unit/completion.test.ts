import { describe, expect, it } from 'vitest';
import type { Publisher } from '#shared/clients/ports.js';
import {
  classifyMessage,
  type FlowCompletion,
  fullJobName,
  jobDisposition,
} from '#shared/domain/completion/classify.js';
import {
  type FinishedJobResource,
  failureReason,
  jobTimings,
  taskFailures,
} from '#shared/domain/completion/finished-job.js';
import { type CompletionDeps, handleCompletion } from '#shared/domain/completion/handle.js';
import { type CompletionMessage, messageFromEventData } from '#shared/domain/completion/message.js';
import { inferenceResultTime, jobEnding } from '#shared/domain/completion/result-data.js';
import { ForeignJobError, flowRecipients, routeJob } from '#shared/domain/completion/routing.js';
import { buildInferenceJob } from '#shared/domain/inference-job.js';
import { inferenceResultId } from '#shared/domain/results/build-events.js';
import type { InferenceResultData } from '#shared/domain/results/event-data.js';
import { publishedObjectName, resultClaimObjectName } from '#shared/domain/results/publish-once.js';
import { fromPubSubMessage } from '#shared/domain/results/pubsub-binding.js';
import { MalformedEventError, NotFoundError, TransientError } from '#shared/runtime/errors.js';
import { createLogger } from '#shared/runtime/logger.js';
import { testConfig } from '../helpers/config.js';
import { MemoryStore } from '../helpers/fakes.js';

const CONFIG = testConfig(`
  mlops-template:
    clients: [acme, globex]
    inference:
      image: img:1
      maxRetryCount: 1
    flows:
      train: { target: { workflow: train }, scope: client }
      metadata: { target: { workflow: metadata }, scope: product }
`);

const log = createLogger({ level: 'silent' });
const JOB_ID = 'bw-mlops-template-acme-0123456789abcdef0123';
const JOB_NAME = `projects/test-project/locations/europe-west2/jobs/${JOB_ID}`;
const UID = `${JOB_ID}-uid-1`;
const ts = (iso: string) => ({ seconds: String(Date.parse(iso) / 1000), nanos: 0 });

/** A job as the Batch client returns it from GetJob (camelCase, int64 as strings). */
function finishedJob(
  state: 'SUCCEEDED' | 'FAILED' | 'DELETION_IN_PROGRESS' | 'CANCELLED' | 'RUNNING',
  overrides: Partial<FinishedJobResource> = {},
): FinishedJobResource {
  const built = buildInferenceJob(CONFIG, {
    product: 'mlops-template',
    client: 'acme',
    bucket: 'test-bucket',
    name: 'mlops-template/acme/inputs/batch.jsonl',
    generation: '1700000000000001',
    size: 250_000_000,
    jobId: JOB_ID,
  });
  const events = [
    {
      description: `Job state is set from QUEUED to SCHEDULED for job ${JOB_NAME}.`,
      at: '2024-05-01T10:00:01Z',
    },
    {
      description: `Job state is set from SCHEDULED to RUNNING for job ${JOB_NAME}.`,
      at: '2024-05-01T10:00:05Z',
    },
  ];
  if (state === 'SUCCEEDED' || state === 'FAILED') {
    events.push({
      description: `Job state is set from RUNNING to ${state} for job ${JOB_NAME}.`,
      at: '2024-05-01T10:02:05Z',
    });
  }
  return {
    ...(built as unknown as FinishedJobResource),
    name: JOB_NAME,
    uid: UID,
    taskGroups: built.taskGroups.map((g) => ({ ...g, taskCount: String(g.taskCount) })) as never,
    status: {
      state,
      statusEvents: events.map((e) => ({
        type: 'STATUS_CHANGED',
        description: e.description,
        eventTime: ts(e.at),
        taskExecution: null,
        taskState: 'STATE_UNSPECIFIED',
      })),
      taskGroups: { group0: { counts: { SUCCEEDED: state === 'SUCCEEDED' ? '4' : '3' } } },
      runDuration: { seconds: '120', nanos: 500_000_000 },
    },
    createTime: ts('2024-05-01T10:00:00Z'),
    updateTime: ts('2024-05-01T10:02:06Z'),
    ...overrides,
  };
}

class RecordingPublisher implements Publisher {
  readonly messages: Array<{ topic: string; data: Buffer; attributes: Record<string, string> }> = [];
  failNext: Error | undefined;
  async publish(topic: string, data: Buffer, attributes: Record<string, string>): Promise<string> {
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure) throw failure;
    this.messages.push({ topic, data, attributes });
    return String(this.messages.length);
  }
}

function setup(job: FinishedJobResource | Error = finishedJob('SUCCEEDED')) {
  const store = new MemoryStore();
  const publisher = new RecordingPublisher();
  const getJobCalls: string[] = [];
  let now = new Date('2024-05-01T10:03:00Z');
  const deps: CompletionDeps = {
    config: CONFIG,
    jobs: {
      async getJob(name: string) {
        getJobCalls.push(name);
        if (job instanceof Error) throw job;
        return job as never;
      },
    },
    store,
    publisher,
    log,
    now: () => now,
  };
  return {
    deps,
    store,
    publisher,
    getJobCalls,
    advance: (ms: number) => {
      now = new Date(now.getTime() + ms);
    },
  };
}

const notification = (
  state: string,
  overrides: Record<string, string | undefined> = {},
  messageId = 'm-1',
): CompletionMessage => ({
  data: Buffer.from(`Job state was updated: jobName=${JOB_NAME}, currentState=${state}`),
  attributes: Object.fromEntries(
    Object.entries({
      Type: 'JOB_STATE_CHANGED',
      JobName: JOB_NAME,
      JobUID: UID,
      NewJobState: state,
      Region: 'europe-west2',
      ...overrides,
    }).filter((entry): entry is [string, string] => entry[1] !== undefined),
  ),
  messageId,
  publishTime: '2024-05-01T10:02:07Z',
});

describe('messageFromEventData', () => {
  it('reads the message of an Eventarc messagePublished event', () => {
    // Arrange
    const data = {
      message: {
        data: Buffer.from('hello').toString('base64'),
        attributes: { Type: 'JOB_STATE_CHANGED' },
        messageId: '42',
        publishTime: '2024-05-01T10:00:00Z',
      },
      subscription: 'projects/p/subscriptions/s',
    };
    // Act
    const message = messageFromEventData(data);
    // Assert
    expect(message).toEqual({
      data: Buffer.from('hello'),
      attributes: { Type: 'JOB_STATE_CHANGED' },
      messageId: '42',
      publishTime: '2024-05-01T10:00:00Z',
    });
  });

  it('reads the shape functions-framework makes of a raw Pub/Sub push', () => {
    // Arrange: pubsub_middleware + background_event_to_cloud_event: no subscription, an @type
    const data = {
      message: {
        '@type': 'type.googleapis.com/google.pubsub.v1.PubsubMessage',
        data: Buffer.from('{"a":1}').toString('base64'),
        attributes: { Type: 'FLOW_COMPLETED' },
        messageId: '7',
        publishTime: '2024-05-01T10:00:00Z',
      },
    };
    // Act
    const message = messageFromEventData(JSON.stringify(data));
    // Assert
    expect(message.messageId).toBe('7');
    expect(message.data.toString()).toBe('{"a":1}');
    expect(message.attributes).toEqual({ Type: 'FLOW_COMPLETED' });
  });

  it('rejects data without a message as malformed', () => {
    expect(() => messageFromEventData({ bucket: 'b', name: 'n' })).toThrow(MalformedEventError);
  });
});

describe('classifyMessage', () => {
  it.each([
    ['SUCCEEDED', 'final'],
    ['FAILED', 'final'],
    ['CANCELLED', 'final'],
    ['DELETION_IN_PROGRESS', 'deleted'],
    ['QUEUED', 'ignore'],
    ['SCHEDULED', 'ignore'],
    ['RUNNING', 'ignore'],
    ['CANCELLATION_IN_PROGRESS', 'ignore'],
  ])('treats a job notification for %s as %s', (state, disposition) => {
    // Act
    const classified = classifyMessage(notification(state));
    // Assert
    expect(classified).toEqual({
      kind: 'job-state',
      jobName: JOB_NAME,
      jobUid: UID,
      newState: state,
      region: 'europe-west2',
      disposition,
    });
    expect(jobDisposition(state)).toBe(disposition);
  });

  it.each(['JobName', 'JobUID', 'NewJobState', 'Type'])('rejects a notification without %s', (attribute) => {
    expect(() => classifyMessage(notification('SUCCEEDED', { [attribute]: undefined }))).toThrow(
      MalformedEventError,
    );
  });

  it.each([
    ['a 100 KB JobName', { JobName: `${JOB_NAME}${'x'.repeat(100_000)}` }],
    ['a JobName with a path in its id', { JobName: `${JOB_NAME}/tasks/0` }],
    ['a JobName of another resource type', { JobName: 'projects/p/locations/l/workflows/w' }],
    ['an oversized JobUID', { JobUID: 'u'.repeat(200) }],
    ['a NewJobState with spaces', { NewJobState: 'SUCCEEDED OR FAILED' }],
    ['a Region with a slash', { Region: 'europe-west2/x' }],
  ])(
    'rejects a notification with %s before any GetJob (a permanent fault of the message itself)',
    (_what, overrides) => {
      // Act + Assert
      expect(() => classifyMessage(notification('SUCCEEDED', overrides))).toThrow(MalformedEventError);
    },
  );

  it('accepts the job names Batch writes: with a project id or number, or a bare id', () => {
    for (const JobName of [JOB_NAME, JOB_ID, `projects/593129167048/locations/us-central1/jobs/${JOB_ID}`]) {
      expect(classifyMessage(notification('SUCCEEDED', { JobName }))).toMatchObject({
        kind: 'job-state',
        jobName: JobName,
      });
    }
  });

  it('passes task notifications through as other', () => {
    expect(classifyMessage(notification('SUCCEEDED', { Type: 'TASK_STATE_CHANGED' }))).toEqual({
      kind: 'other',
      type: 'TASK_STATE_CHANGED',
    });
  });

  it('validates a flow completion and defaults its optional fields', () => {
    // Arrange
    const body = {
      type: 'flow',
      version: 1,
      flow: 'train',
      product: 'mlops-template',
      client: 'acme',
      execution: 'projects/p/locations/l/workflows/train/executions/e1',
      state: 'SUCCEEDED',
      startedAt: '2024-05-01T04:00:00.123456Z',
      finishedAt: '2024-05-01T04:10:00+01:00',
    };
    // Act
    const classified = classifyMessage({
      data: Buffer.from(JSON.stringify(body)),
      attributes: { Type: 'FLOW_COMPLETED' },
      messageId: 'f1',
    });
    // Assert
    expect(classified).toEqual({ kind: 'flow', completion: { ...body, outputs: null, error: null } });
  });

  it('names every bad field of an invalid flow completion', () => {
    // Arrange
    const body = { type: 'flow', version: 1, flow: 'train', product: 'X', state: 'DONE' };
    // Act
    const act = () =>
      classifyMessage({
        data: Buffer.from(JSON.stringify(body)),
        attributes: { Type: 'FLOW_COMPLETED' },
        messageId: 'f',
      });
    // Assert
    expect(act).toThrow(MalformedEventError);
    expect(act).toThrow(/product.*client.*execution.*state/s);
  });
});

describe('fullJobName', () => {
  it('keeps a full resource name and completes a bare id with the notified region', () => {
    expect(fullJobName(JOB_NAME, 'us-east1', CONFIG)).toBe(JOB_NAME);
    expect(fullJobName(JOB_ID, 'us-east1', CONFIG)).toBe(
      `projects/test-project/locations/us-east1/jobs/${JOB_ID}`,
    );
    expect(fullJobName(JOB_ID, null, CONFIG)).toBe(
      `projects/test-project/locations/europe-west2/jobs/${JOB_ID}`,
    );
  });
});

describe('failure reasons', () => {
  it("names the failed task, its exit code and attempts from Batch's own wording", () => {
    // Arrange: real Batch names the task index in the job's FAILED event and sets taskExecution
    const job = finishedJob('FAILED');
    job.status?.statusEvents?.push({
      type: 'STATUS_CHANGED',
      description:
        `Job state is set from RUNNING to FAILED for job ${JOB_NAME}. Job failed due to task failure. ` +
        'Specifically, task with index 1 failed due to the following task event: "Task state is updated ' +
        'from RUNNING to FAILED on zones/europe-west2-a/instances/x with exit code 3."',
      eventTime: ts('2024-05-01T10:02:05Z'),
      taskExecution: { exitCode: 3 },
      taskState: 'FAILED',
    });
    (job.status as { taskGroups: unknown }).taskGroups = {
      group0: { counts: { SUCCEEDED: '2', FAILED: '2' } },
    };
    // Act
    const reason = failureReason(job, 'FAILED');
    // Assert
    expect(reason).toBe(
      `2 of 4 tasks failed; task 1 exited with code 3 after 2 attempts; see the task logs of job ${JOB_ID} ` +
        `(Cloud Logging: labels.job_uid="${UID}")`,
    );
  });

  it('explains Batch reserved exit codes and copes without a task index', () => {
    // Arrange: the local service's wording has no index
    const job = finishedJob('FAILED', {
      status: {
        state: 'FAILED',
        statusEvents: [
          {
            type: 'STATUS_CHANGED',
            description:
              'Job state is set from RUNNING to FAILED for job x. Job failed due to task failure. Specifically, ' +
              'one of the tasks failed due to the following task event: "Task state is updated from RUNNING to ' +
              'FAILED on zones/europe-west2-local/instances/localhost with exit code 50005."',
            eventTime: ts('2024-05-01T10:02:05Z'),
            taskExecution: null,
            taskState: 'STATE_UNSPECIFIED',
          },
        ],
        taskGroups: { group0: { counts: { FAILED: '1', SUCCEEDED: '3' } } },
      },
    });
    // Act
    const reason = failureReason(job, 'FAILED');
    // Assert
    expect(reason).toMatch(
      /^1 of 4 tasks failed; a task exited with code 50005 \(the task ran longer than maxRunDuration\) after 2 attempts; see the task logs/,
    );
    expect(taskFailures(job)).toEqual([expect.objectContaining({ index: null, exitCode: 50005 })]);
  });

  it('falls back to the last status event when no task failure is reported', () => {
    // Arrange
    const job = finishedJob('FAILED', {
      status: {
        state: 'FAILED',
        statusEvents: [
          {
            type: 'STATUS_CHANGED',
            description: 'Job state is set from QUEUED to FAILED for job x. No quota.',
          },
        ],
        taskGroups: {},
      },
    });
    // Act / Assert
    expect(failureReason(job, 'FAILED')).toMatch(
      new RegExp(
        `^job ${JOB_ID} failed: Job state is set from QUEUED to FAILED for job x. No quota.; see the task logs`,
      ),
    );
  });

  it('says what to do about a deleted or cancelled job', () => {
    expect(failureReason(finishedJob('RUNNING'), 'DELETED')).toMatch(
      /deleted before it finished.*upload the input again/,
    );
    expect(failureReason(finishedJob('CANCELLED'), 'CANCELLED')).toMatch(/cancelled before it finished/);
  });
});

describe('jobTimings', () => {
  it('takes created, started and finished from the job and its transitions', () => {
    expect(jobTimings(finishedJob('SUCCEEDED'), ['SUCCEEDED'])).toEqual({
      created: '2024-05-01T10:00:00.000Z',
      started: '2024-05-01T10:00:05.000Z',
      finished: '2024-05-01T10:02:05.000Z',
      runDurationSeconds: 120.5,
    });
  });
});

describe('jobEnding', () => {
  it('is the notified final state, DELETED for a deletion before the end, none for one after it', () => {
    expect(jobEnding({ disposition: 'final', newState: 'CANCELLED' }, finishedJob('CANCELLED'))).toBe(
      'CANCELLED',
    );
    expect(
      jobEnding({ disposition: 'deleted', newState: 'DELETION_IN_PROGRESS' }, finishedJob('RUNNING')),
    ).toBe('DELETED');
    expect(
      jobEnding({ disposition: 'deleted', newState: 'DELETION_IN_PROGRESS' }, finishedJob('SUCCEEDED')),
    ).toBeUndefined();
  });
});

describe('inferenceResultTime', () => {
  it('is when the job finished, else when Batch notified, else when the job was created, never now', () => {
    const timings = (finished: string | null, created: string | null) =>
      ({ timings: { created, started: null, finished, runDurationSeconds: null } }) as InferenceResultData;
    const publishTime = '2024-05-01T10:02:07Z';
    expect(inferenceResultTime(timings('2024-05-01T10:02:05.000Z', null), publishTime)).toBe(
      '2024-05-01T10:02:05.000Z',
    );
    expect(inferenceResultTime(timings(null, '2024-05-01T10:00:00.000Z'), publishTime)).toBe(publishTime);
    expect(inferenceResultTime(timings(null, '2024-05-01T10:00:00.000Z'), undefined)).toBe(
      '2024-05-01T10:00:00.000Z',
    );
    expect(inferenceResultTime(timings(null, null), undefined)).toBe('1970-01-01T00:00:00.000Z');
  });
});

describe('routeJob', () => {
  it('rejects a job without labels or for an unconfigured client', () => {
    expect(() => routeJob({ name: 'j', labels: {} }, CONFIG)).toThrow(ForeignJobError);
    expect(() =>
      routeJob({ name: 'j', labels: { product: 'mlops-template', client: 'initech' } }, CONFIG),
    ).toThrow(/not a configured client/);
    expect(routeJob({ name: 'j', labels: { product: 'mlops-template', client: 'globex' } }, CONFIG)).toEqual({
      product: 'mlops-template',
      client: 'globex',
    });
  });
});

describe('flowRecipients', () => {
  const completion = (flow: string, client: string | null) =>
    ({ flow, product: 'mlops-template', client }) as FlowCompletion;

  it("is the flow's client, or every client of the product for a product flow", () => {
    expect(flowRecipients(completion('train', 'globex'), CONFIG)).toEqual(['globex']);
    expect(flowRecipients(completion('metadata', null), CONFIG)).toEqual(['acme', 'globex']);
  });

  it('refuses an unknown product, an unconfigured flow or client as foreign', () => {
    expect(() => flowRecipients({ ...completion('train', 'acme'), product: 'nope' }, CONFIG)).toThrow(
      /unknown product nope/,
    );
    expect(() => flowRecipients(completion('nope', 'acme'), CONFIG)).toThrow(ForeignJobError);
    expect(() => flowRecipients(completion('train', 'initech'), CONFIG)).toThrow(/not a configured client/);
  });
});

describe('handleCompletion: job notifications', () => {
  it('publishes one succeeded result to the client topic, with the outputs in a manifest', async () => {
    // Arrange
    const { deps, store, publisher, getJobCalls } = setup();
    store.objects.set(`mlops-template/acme/outputs/${JOB_ID}/part-1.jsonl`, 'bb');
    store.objects.set(`mlops-template/acme/outputs/${JOB_ID}/part-0.jsonl`, 'a');
    // Act
    const outcome = await handleCompletion(notification('SUCCEEDED'), deps);
    // Assert
    expect(getJobCalls).toEqual([JOB_NAME]);
    expect(publisher.messages).toHaveLength(1);
    const [message] = publisher.messages;
    expect(message?.topic).toBe('batch-mlops-template-acme-outputs');
    const event = fromPubSubMessage<InferenceResultData>({
      data: message?.data as Buffer,
      attributes: message?.attributes as Record<string, string>,
    });
    expect(event.type).toBe('dev.batchwire.inference.succeeded');
    expect(event.id).toBe(inferenceResultId(UID, 'SUCCEEDED'));
    expect(event.subject).toBe(`jobs/${JOB_ID}`);
    expect(event.time).toBe('2024-05-01T10:02:05.000Z');
    expect(event.data).toEqual({
      version: 2,
      status: 'succeeded',
      product: 'mlops-template',
      client: 'acme',
      input: {
        uri: 'gs://test-bucket/mlops-template/acme/inputs/batch.jsonl',
        generation: '1700000000000001',
      },
      outputs: {
        prefix: `gs://test-bucket/mlops-template/acme/outputs/${JOB_ID}/`,
        manifest: `gs://test-bucket/mlops-template/acme/outputs/${JOB_ID}/_batchwire-outputs.json`,
        objectCount: 2,
        totalBytes: 3,
      },
      job: { name: JOB_NAME, uid: UID, taskCount: 4, state: 'SUCCEEDED' },
      timings: {
        created: '2024-05-01T10:00:00.000Z',
        started: '2024-05-01T10:00:05.000Z',
        finished: '2024-05-01T10:02:05.000Z',
        runDurationSeconds: 120.5,
      },
      reason: null,
    });
    expect(outcome).toEqual({
      kind: 'published',
      results: [{ topic: 'batch-mlops-template-acme-outputs', eventId: event.id, outcome: 'published' }],
    });
  });

  it('reads nothing from the bucket on a first delivery: it claims, lists and creates', async () => {
    // Arrange
    const { deps, store, publisher } = setup();
    store.objects.set(`mlops-template/acme/outputs/${JOB_ID}/part-0.jsonl`, 'a');
    // Act
    await handleCompletion(notification('SUCCEEDED'), deps);
    // Assert: no read of a claim marker or a manifest that cannot exist yet.
    expect(publisher.messages).toHaveLength(1);
    expect(store.reads).toEqual([]);
  });

  it('stays far under Pub/Sub limits with thousands of outputs with long names: the list goes to the manifest', async () => {
    // Arrange: 5,000 objects whose names reach GCS's 1,024-byte limit (several MB of names)
    const { deps, store, publisher } = setup();
    const folder = `mlops-template/acme/outputs/${JOB_ID}/`;
    const names = Array.from({ length: 5_000 }, (_, i) => {
      const stem = `${folder}${String(i).padStart(5, '0')}-`;
      return `${stem}${'é'.repeat((1_024 - Buffer.byteLength(stem) - 6) / 2)}.jsonl`;
    });
    for (const name of names) store.objects.set(name, 'xy');

    // Act
    await handleCompletion(notification('SUCCEEDED'), deps);

    // Assert: a message of a few kB, every attribute under 1,024 bytes
    const [message] = publisher.messages;
    expect(message?.data.length).toBeLessThan(8 * 1024);
    for (const value of Object.values(message?.attributes ?? {})) {
      expect(Buffer.byteLength(value)).toBeLessThanOrEqual(1_024);
    }
    const event = fromPubSubMessage<InferenceResultData>(message as never);
    expect(event.data?.outputs).toEqual({
      prefix: `gs://test-bucket/${folder}`,
      manifest: `gs://test-bucket/${folder}_batchwire-outputs.json`,
      objectCount: 5_000,
      totalBytes: 10_000,
    });
    // ... and the manifest lists every object, sorted by name
    const manifest = JSON.parse(store.objects.get(`${folder}_batchwire-outputs.json`) as string);
    expect(manifest).toMatchObject({
      kind: 'batchwire.outputs-manifest',
      version: 1,
      job: { name: JOB_NAME, uid: UID },
      objectCount: 5_000,
      totalBytes: 10_000,
    });
    expect(manifest.objects.map((o: { name: string }) => o.name)).toEqual(names);
  });

  it('republishes an identical result from the stored manifest, even when the prefix changed since', async () => {
    // Arrange: a first delivery wrote the manifest and published; the marker was lost (a crash)
    const { deps, store, publisher } = setup();
    store.objects.set(`mlops-template/acme/outputs/${JOB_ID}/part-0.jsonl`, 'a');
    await handleCompletion(notification('SUCCEEDED', {}, 'm-1'), deps);
    store.objects.delete(publishedObjectName(inferenceResultId(UID, 'SUCCEEDED')));
    store.objects.set(`mlops-template/acme/outputs/${JOB_ID}/late.txt`, 'written later');

    // Act
    await handleCompletion(notification('SUCCEEDED', {}, 'm-1'), deps);

    // Assert
    expect(publisher.messages).toHaveLength(2);
    expect(publisher.messages[1]?.data.equals(publisher.messages[0]?.data as Buffer)).toBe(true);
  });

  it('publishes nothing for a duplicate notification (another message id)', async () => {
    // Arrange
    const { deps, publisher } = setup();
    await handleCompletion(notification('SUCCEEDED', {}, 'm-1'), deps);
    // Act
    const outcome = await handleCompletion(notification('SUCCEEDED', {}, 'm-2'), deps);
    // Assert
    expect(publisher.messages).toHaveLength(1);
    expect(outcome).toEqual({
      kind: 'published',
      results: [expect.objectContaining({ outcome: 'already-published' })],
    });
  });

  it('does not call Batch nor publish for states that do not end the job', async () => {
    // Arrange
    const { deps, publisher, getJobCalls } = setup();
    // Act
    for (const state of ['QUEUED', 'SCHEDULED', 'RUNNING', 'CANCELLATION_IN_PROGRESS']) {
      await handleCompletion(notification(state), deps);
    }
    // Assert
    expect(getJobCalls).toEqual([]);
    expect(publisher.messages).toEqual([]);
  });

  it('publishes a failed result with a reason and a distinct id', async () => {
    // Arrange
    const { deps, publisher } = setup(finishedJob('FAILED'));
    // Act
    await handleCompletion(notification('FAILED'), deps);
    // Assert
    const event = fromPubSubMessage<InferenceResultData>(publisher.messages[0] as never);
    expect(event.type).toBe('dev.batchwire.inference.failed');
    expect(event.id).toBe(inferenceResultId(UID, 'FAILED'));
    expect(event.id).not.toBe(inferenceResultId(UID, 'SUCCEEDED'));
    expect(event.data?.reason).toMatch(/see the task logs of job/);
    expect(event.data?.job.state).toBe('FAILED');
  });

  it('accepts a bare job id in JobName', async () => {
    // Arrange
    const { deps, publisher, getJobCalls } = setup();
    // Act
    await handleCompletion(notification('SUCCEEDED', { JobName: JOB_ID }), deps);
    // Assert
    expect(getJobCalls).toEqual([JOB_NAME]);
    expect(publisher.messages).toHaveLength(1);
  });

  it('counts a job deleted before it finished as failed', async () => {
    // Arrange
    const { deps, publisher } = setup(finishedJob('DELETION_IN_PROGRESS'));
    // Act
    await handleCompletion(notification('DELETION_IN_PROGRESS'), deps);
    // Assert
    const event = fromPubSubMessage<InferenceResultData>(publisher.messages[0] as never);
    expect(event.type).toBe('dev.batchwire.inference.failed');
    expect(event.id).toBe(inferenceResultId(UID, 'FAILED'));
    expect(event.data?.job.state).toBe('DELETED');
    expect(event.data?.reason).toMatch(/deleted before it finished/);
  });

  it('publishes nothing when a job is deleted after it finished', async () => {
    // Arrange: the status events show it reached SUCCEEDED before the deletion
    const job = finishedJob('SUCCEEDED');
    (job.status as { state: string }).state = 'DELETION_IN_PROGRESS';
    const { deps, publisher } = setup(job);
    // Act
    const outcome = await handleCompletion(notification('DELETION_IN_PROGRESS'), deps);
    // Assert
    expect(outcome).toEqual({ kind: 'ignored', reason: 'deleted after finishing' });
    expect(publisher.messages).toEqual([]);
  });

  it('acks (permanent error) a job that Batch no longer knows', async () => {
    const { deps } = setup(new NotFoundError('GetJob: NOT_FOUND'));
    await expect(handleCompletion(notification('SUCCEEDED'), deps)).rejects.toThrow(ForeignJobError);
  });

  it('acks (permanent error) a job Batchwire did not create', async () => {
    const { deps, publisher } = setup(finishedJob('SUCCEEDED', { labels: { team: 'x' } }));
    await expect(handleCompletion(notification('SUCCEEDED'), deps)).rejects.toThrow(/not a Batchwire job/);
    expect(publisher.messages).toEqual([]);
  });

  it('lets a transient Batch failure propagate so the trigger retries', async () => {
    const { deps } = setup(new TransientError('GetJob: UNAVAILABLE'));
    await expect(handleCompletion(notification('SUCCEEDED'), deps)).rejects.toBeInstanceOf(TransientError);
  });
});

describe('handleCompletion: publishing once', () => {
  it('publishes again on the redelivery of a message whose publish failed, with the same id', async () => {
    // Arrange
    const { deps, store, publisher } = setup();
    publisher.failNext = new TransientError('publish: topic does not exist');
    await expect(handleCompletion(notification('SUCCEEDED'), deps)).rejects.toBeInstanceOf(TransientError);
    const id = inferenceResultId(UID, 'SUCCEEDED');
    expect(store.objects.has(resultClaimObjectName(id))).toBe(true);
    expect(store.objects.has(publishedObjectName(id))).toBe(false);
    // Act: the same message comes back
    await handleCompletion(notification('SUCCEEDED'), deps);
    // Assert
    expect(publisher.messages).toHaveLength(1);
    expect(publisher.messages[0]?.attributes['ce-id']).toBe(id);
    expect(store.objects.has(publishedObjectName(id))).toBe(true);
  });

  it('makes a concurrent duplicate retry while the claim is fresh, and take over once it is stale', async () => {
    // Arrange: delivery m-1 claimed, then died before publishing
    const { deps, store, publisher, advance } = setup();
    const id = inferenceResultId(UID, 'SUCCEEDED');
    store.objects.set(
      resultClaimObjectName(id),
      JSON.stringify({
        eventId: id,
        state: 'publishing',
        claimedAt: '2024-05-01T10:02:50Z',
        deliveryId: 'm-1',
      }),
    );
    // Act + Assert: a duplicate (m-2) within the lease retries
    await expect(handleCompletion(notification('SUCCEEDED', {}, 'm-2'), deps)).rejects.toThrow(
      /being published by delivery m-1/,
    );
    expect(publisher.messages).toEqual([]);
    // Act + Assert: after the lease it takes over
    advance(60_000);
    await handleCompletion(notification('SUCCEEDED', {}, 'm-2'), deps);
    expect(publisher.messages).toHaveLength(1);
  });
});

describe('handleCompletion: flows', () => {
  const flowMessage = (body: Record<string, unknown>, messageId = 'f-1'): CompletionMessage => ({
    data: Buffer.from(
      JSON.stringify({
        type: 'flow',
        version: 1,
        flow: 'train',
        product: 'mlops-template',
        client: 'acme',
        execution: 'projects/test-project/locations/europe-west2/workflows/train/executions/e-1',
        state: 'SUCCEEDED',
        startedAt: '2024-05-01T04:00:00Z',
        finishedAt: '2024-05-01T04:10:00Z',
        outputs: { prefix: 'gs://test-bucket/mlops-template/acme/models/e-1/' },
        error: null,
        ...body,
      }),
    ),
    attributes: { Type: 'FLOW_COMPLETED' },
    messageId,
  });

  it("publishes a client flow's result to that client only", async () => {
    // Arrange
    const { deps, publisher } = setup();
    // Act
    await handleCompletion(flowMessage({}), deps);
    // Assert
    expect(publisher.messages.map((m) => m.topic)).toEqual(['batch-mlops-template-acme-outputs']);
    const event = fromPubSubMessage(publisher.messages[0] as never);
    expect(event.type).toBe('dev.batchwire.flow.succeeded');
    expect(event.subject).toBe('flows/train/executions/e-1');
    expect(event.data).toMatchObject({ client: 'acme', scope: 'client', reason: null });
  });

  it('tells every client of the product about a product flow, each with its own id', async () => {
    // Arrange
    const { deps, publisher } = setup();
    // Act
    await handleCompletion(flowMessage({ flow: 'metadata', client: null, state: 'FAILED', error: '' }), deps);
    await handleCompletion(
      flowMessage({ flow: 'metadata', client: null, state: 'FAILED', error: '' }, 'f-2'),
      deps,
    );
    // Assert
    expect(publisher.messages.map((m) => m.topic)).toEqual([
      'batch-mlops-template-acme-outputs',
      'batch-mlops-template-globex-outputs',
    ]);
    const ids = publisher.messages.map((m) => m.attributes['ce-id']);
    expect(new Set(ids).size).toBe(2);
    const event = fromPubSubMessage<{ reason: string; scope: string }>(publisher.messages[1] as never);
    expect(event.type).toBe('dev.batchwire.flow.failed');
    expect(event.data?.scope).toBe('product');
    expect(event.data?.reason).toMatch(/failed without an error message/);
  });

  it('acks a completion of a flow that is not configured', async () => {
    const { deps } = setup();
    await expect(handleCompletion(flowMessage({ flow: 'nope' }), deps)).rejects.toThrow(ForeignJobError);
    await expect(handleCompletion(flowMessage({ client: 'initech' }), deps)).rejects.toThrow(ForeignJobError);
  });
});
