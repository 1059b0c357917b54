import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { httpError } from '#local/workflows/connectors.js';
import {
  type Clock,
  type ConnectorRegistry,
  executeWorkflow,
  parseWorkflow,
  WorkflowException,
  WorkflowRuntimeError,
} from '#local/workflows/index.js';
import { parseFlowRequest } from '#shared/domain/flow-request.js';
import { type FlowArgument, planFlowStart } from '#shared/domain/flow-start.js';
import { repoConfig } from '../helpers/config.js';

/**
 * The repository's flow workflows (workflows/*.workflows.yaml) in the local interpreter, with
 * recording connectors and a clock that advances instantly: what they send to Batch and Cloud
 * Run, how long they wait, and what they publish for each way a job can end.
 */

const WORKFLOWS_DIR = join(import.meta.dirname, '..', '..', 'workflows');
const BATCH = 'googleapis.batch.v1.projects.locations.jobs';
const RUN_JOB = 'googleapis.run.v2.projects.locations.jobs.run';
const PUBLISH = 'googleapis.pubsub.v1.projects.topics.publish';

const config = repoConfig({
  extraFlows: '      refit:\n        target: { runJob: refit-job, args: [--fast] }\n        scope: client\n',
});

function argumentOf(body: Record<string, unknown>, runId = '20250301t040000-abcdef12'): FlowArgument {
  return planFlowStart(parseFlowRequest(body, config), config, { runId }).argument;
}

function fakeClock(): Clock & { slept: () => number } {
  let now = Date.parse('2025-03-01T04:00:00Z');
  const start = now;
  return {
    now: () => now,
    sleep: async (ms) => {
      now += ms;
    },
    slept: () => (now - start) / 1000,
  };
}

interface Recorded {
  creates: Array<Record<string, unknown>>;
  gets: number;
  runs: Array<Record<string, unknown>>;
  published: Array<Record<string, unknown>>;
}

/**
 * Connectors that answer like Batch, Cloud Run and Pub/Sub: `create` runs `createAnswers` in
 * turn (a thrown value raises, anything else is the created job), `get` reports `states` in turn
 * (the last one repeats).
 */
function connectors(
  recorded: Recorded,
  options: { states: string[]; createAnswers?: Array<() => unknown> },
): ConnectorRegistry {
  const answers = [...(options.createAnswers ?? [])];
  return {
    [`${BATCH}.create`]: async (args) => {
      recorded.creates.push(args);
      const answer = answers.shift();
      if (answer) return answer();
      return { name: `${args.parent}/jobs/${args.jobId}`, status: { state: 'QUEUED' } };
    },
    [`${BATCH}.get`]: async (args) => {
      const state = options.states[Math.min(recorded.gets, options.states.length - 1)];
      recorded.gets += 1;
      return { name: args.name, ...(state ? { status: { state } } : {}) };
    },
    [RUN_JOB]: async (args) => {
      recorded.runs.push(args);
      return { name: `${args.name}/executions/e1`, succeededCount: 1 };
    },
    [PUBLISH]: async (args) => {
      const body = args.body as { messages: Array<{ data: string }> };
      for (const message of body.messages)
        recorded.published.push(JSON.parse(Buffer.from(message.data, 'base64').toString('utf8')));
      return { messageIds: ['1'] };
    },
  };
}

async function execute(
  workflow: string,
  argument: FlowArgument,
  registry: ConnectorRegistry,
  clock: Clock,
): Promise<{ result?: unknown; error?: WorkflowRuntimeError }> {
  const source = readFileSync(join(WORKFLOWS_DIR, `${workflow}.workflows.yaml`), 'utf8');
  try {
    const result = await executeWorkflow(parseWorkflow(source, `${workflow}.workflows.yaml`), argument, {
      connectors: registry,
      env: {
        GOOGLE_CLOUD_PROJECT_ID: config.project,
        GOOGLE_CLOUD_LOCATION: config.region,
        GOOGLE_CLOUD_WORKFLOW_ID: workflow,
        GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID: 'x1',
      },
      clock,
      // A loop that never ends fails the execution here rather than hanging the test.
      maxSteps: 20_000,
    });
    return { result };
  } catch (error) {
    if (error instanceof WorkflowRuntimeError) return { error };
    throw error;
  }
}

describe('train workflow', () => {
  let recorded: Recorded;
  let clock: ReturnType<typeof fakeClock>;
  const train = argumentOf({
    flow: 'train',
    product: 'mlops-template',
    client: 'acme',
    params: { pollSeconds: 10 },
  });
  const jobName = `projects/${config.project}/locations/${config.region}/jobs/bw-train-${train.runId}`;

  beforeEach(() => {
    recorded = { creates: [], gets: 0, runs: [], published: [] };
    clock = fakeClock();
  });

  it('creates the job without the connector waiting, then polls it itself, past the connector timeout of 30 minutes', async () => {
    // Arrange: the job queues, runs for about 100 minutes, then succeeds.
    const states = ['QUEUED', ...Array.from({ length: 600 }, () => 'RUNNING'), 'SUCCEEDED'];

    // Act
    const { result, error } = await execute('train', train, connectors(recorded, { states }), clock);

    // Assert
    expect(error).toBeUndefined();
    expect(recorded.creates).toHaveLength(1);
    expect(recorded.creates[0]).toMatchObject({
      jobId: `bw-train-${train.runId}`,
      connector_params: { skip_polling: true },
    });
    expect(recorded.gets).toBe(states.length);
    expect(clock.slept()).toBeGreaterThan(1800);
    expect(recorded.published).toEqual([
      expect.objectContaining({ flow: 'train', client: 'acme', state: 'SUCCEEDED', error: null }),
    ]);
    expect(result).toMatchObject({ state: 'SUCCEEDED', job: jobName });
  });

  it("runs the job as the product's service account when the argument names one, and as the default one otherwise", async () => {
    // Arrange
    const registry = connectors(recorded, { states: ['SUCCEEDED'] });

    // Act
    await execute('train', train, registry, clock);
    await execute('train', { ...train, serviceAccount: null }, registry, clock);

    // Assert
    const [withAccount, withoutAccount] = recorded.creates.map(
      (args) => args.body as Record<string, unknown>,
    );
    expect(train.serviceAccount).toBe('mlops-template@batchwire-local.iam.gserviceaccount.com');
    expect(withAccount?.allocationPolicy).toEqual({ serviceAccount: { email: train.serviceAccount } });
    expect(withAccount?.labels).toEqual({
      product: 'mlops-template',
      client: 'acme',
      flow: 'train',
      trigger: 'schedule',
    });
    expect(withoutAccount).not.toHaveProperty('allocationPolicy');
  });

  it.each(['FAILED', 'CANCELLED', 'DELETION_IN_PROGRESS'])(
    'stops polling a job that ends %s: publishes FAILED and fails the execution',
    async (state) => {
      // Act
      const { error } = await execute(
        'train',
        train,
        connectors(recorded, { states: ['RUNNING', state] }),
        clock,
      );

      // Assert
      expect(recorded.gets).toBe(2);
      expect(recorded.published).toEqual([
        expect.objectContaining({
          state: 'FAILED',
          outputs: null,
          error: `Batch job ${jobName} ended ${state}`,
        }),
      ]);
      expect(error?.payload).toMatchObject({ tags: ['JobFailedError'] });
    },
  );

  it('waits for the job when a retried create answers 409 (the first attempt was processed despite its 503)', async () => {
    // Arrange
    const createAnswers = [
      () => {
        throw httpError(503, 'backend unavailable', 'UNAVAILABLE');
      },
      () => {
        throw httpError(409, `Resource "${jobName}" already exists`, 'ALREADY_EXISTS');
      },
    ];

    // Act
    const { result, error } = await execute(
      'train',
      train,
      connectors(recorded, { states: ['RUNNING', 'SUCCEEDED'], createAnswers }),
      clock,
    );

    // Assert
    expect(error).toBeUndefined();
    expect(recorded.creates).toHaveLength(2);
    expect(recorded.gets).toBe(2);
    expect(recorded.published).toEqual([expect.objectContaining({ state: 'SUCCEEDED' })]);
    expect(result).toMatchObject({ state: 'SUCCEEDED' });
  });

  it('still fails the flow on any other create error', async () => {
    // Arrange
    const createAnswers = [
      () => {
        throw httpError(400, 'imageUri is invalid', 'INVALID_ARGUMENT');
      },
    ];

    // Act
    const { error } = await execute(
      'train',
      train,
      connectors(recorded, { states: ['SUCCEEDED'], createAnswers }),
      clock,
    );

    // Assert
    expect(recorded.gets).toBe(0);
    expect(recorded.published).toEqual([
      expect.objectContaining({ state: 'FAILED', error: 'HTTP server responded with error code 400' }),
    ]);
    expect(error?.payload).toMatchObject({ code: 400 });
  });

  it('treats a job that reports no state yet as not finished', async () => {
    const { error } = await execute(
      'train',
      train,
      connectors(recorded, { states: ['', 'SUCCEEDED'] }),
      clock,
    );
    expect(error).toBeUndefined();
    expect(recorded.gets).toBe(2);
  });
});

describe('Cloud Run job workflows', () => {
  it.each([
    ['metadata', { flow: 'metadata', product: 'mlops-template' }],
    ['run-job', { flow: 'refit', product: 'mlops-template', client: 'acme' }],
  ])('%s lets the jobs.run connector wait longer than its 30-minute default', async (workflow, body) => {
    // Arrange
    const recorded: Recorded = { creates: [], gets: 0, runs: [], published: [] };

    // Act
    const { error } = await execute(
      workflow,
      argumentOf(body),
      connectors(recorded, { states: [] }),
      fakeClock(),
    );

    // Assert
    expect(error).toBeUndefined();
    const timeout = (recorded.runs[0]?.connector_params as { timeout?: unknown } | undefined)?.timeout;
    // Above the 1800 s default; at most what a Node timer can wait, so that the local cloud honours it.
    expect(timeout).toBeGreaterThanOrEqual(7 * 24 * 3600);
    expect(timeout).toBeLessThanOrEqual(2_147_483);
    expect(recorded.published).toEqual([expect.objectContaining({ state: 'SUCCEEDED' })]);
  });
});

describe('publish_failure: every way a flow can fail still publishes flow.failed', () => {
  const FLOWS = [
    ['train', { flow: 'train', product: 'mlops-template', client: 'acme' }],
    ['metadata', { flow: 'metadata', product: 'mlops-template' }],
    ['run-job', { flow: 'refit', product: 'mlops-template', client: 'acme' }],
  ] as const;

  it.each(FLOWS.map(([workflow]) => workflow))(
    '%s builds the failure text without string(), which Google documents for integers, doubles and booleans only',
    (workflow) => {
      // Arrange: the subworkflow's own source (from its header to the next top-level key).
      const source = readFileSync(join(WORKFLOWS_DIR, `${workflow}.workflows.yaml`), 'utf8');
      const start = source.indexOf('\npublish_failure:');
      const end = source.indexOf('\n\n', start + 1);
      const body = source
        .slice(start, end)
        .split('\n')
        .filter((line) => !line.trim().startsWith('#'))
        .join('\n');

      // Assert (https://cloud.google.com/workflows/docs/reference/stdlib/expression-helpers)
      expect(start).toBeGreaterThan(0);
      expect(body).not.toMatch(/(^|[^._a-z])string\(/);
    },
  );

  /** A connector answer that raises `value` where the flow starts its job. */
  function failingAt(workflow: string, value: unknown, recorded: Recorded): ConnectorRegistry {
    const registry = connectors(recorded, {
      states: ['SUCCEEDED'],
      createAnswers: [
        () => {
          throw new WorkflowException(value);
        },
      ],
    });
    if (workflow !== 'train') {
      registry[RUN_JOB] = async () => {
        throw new WorkflowException(value);
      };
    }
    return registry;
  }

  it.each(
    FLOWS.flatMap(([workflow, body]) =>
      [
        [
          'an error map with a string message',
          { message: 'quota exceeded', tags: ['HttpError'] },
          'quota exceeded',
        ],
        [
          'an error map whose message is a map',
          { message: { reason: 'x' }, code: 7 },
          { json: { message: { reason: 'x' }, code: 7 } },
        ],
        ['an error map without a message', { code: 500 }, { json: { code: 500 } }],
        ['a raised string', 'boom', 'boom'],
        ['a raised number', 42, '42'],
      ].map(([what, raised, text]) => [workflow, what, body, raised, text] as const),
    ),
  )('%s publishes FAILED for %s', async (workflow, _what, body, raised, text) => {
    // Arrange
    const recorded: Recorded = { creates: [], gets: 0, runs: [], published: [] };

    // Act
    const { error } = await execute(
      workflow,
      argumentOf(body),
      failingAt(workflow, raised, recorded),
      fakeClock(),
    );

    // Assert: the failure path itself ran to its publish, then the execution failed with the error.
    expect(recorded.published).toEqual([expect.objectContaining({ state: 'FAILED' })]);
    const published = recorded.published[0]?.error as string;
    // The JSON cases are compared as values: key order is the encoder's own.
    if (typeof text === 'string') expect(published).toBe(text);
    else expect(JSON.parse(published)).toEqual((text as { json: unknown }).json);
    expect(error).toBeInstanceOf(WorkflowRuntimeError);
  });
});
