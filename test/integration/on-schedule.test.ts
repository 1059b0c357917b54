import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { http } from '@google-cloud/functions-framework';
import { PubSub, type Subscription } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOnSchedule } from '#functions/on-schedule.js';
import { type LocalBatchService, startBatchService } from '#local/batch/server.js';
import { type LocalRunService, startRunService } from '#local/run/server.js';
import { type LocalStorageServer, startStorageServer } from '#local/storage/server.js';
import { type LocalWorkflowsService, startWorkflowsService } from '#local/workflows/server.js';
import { createRunJobsAdapter } from '#shared/clients/run.js';
import { createObjectStore } from '#shared/clients/storage.js';
import { createWorkflowsExecutions, type WorkflowsExecutionsAdapter } from '#shared/clients/workflows.js';
import { dedupeKey, scheduleClaimObjectName, startedObjectName } from '#shared/domain/flow-start.js';
import { repoConfig } from '../helpers/config.js';
import { type FunctionServer, startFunction } from '../helpers/functions.js';
import { subscribe } from '../helpers/pubsub.js';
import { waitFor } from '../helpers/wait.js';

/**
 * onSchedule under functions-framework, with the real Workflows, Run, Storage and Pub/Sub
 * clients against the local services: bad input, dedupe of Scheduler retries, and the flows
 * themselves running to a FLOW_COMPLETED message on the completion topic.
 */

const REPO = join(import.meta.dirname, '..', '..');
const IMAGES = 'europe-docker.pkg.dev/batchwire-local/batchwire';
const completionTopic = `bw-it-completions-${randomBytes(4).toString('hex')}`;
const config = repoConfig({
  completionTopic,
  extraFlows:
    '      refit:\n        target: { runJob: refit-job, args: [--epochs, "1"] }\n        scope: client\n',
});

// Stand-ins for the flow images: exit 0, or 1 when the run's params say `fail: true`.
const TASK = `
const params = JSON.parse(process.env.BATCHWIRE_PARAMS || '{}');
const fail = params.fail === true || process.argv.includes('--fail');
console.log('task', process.argv.slice(2).join(' '), process.env.BATCHWIRE_PRODUCT, process.env.BATCHWIRE_CLIENTS || process.env.BATCHWIRE_CLIENT);
process.exit(fail ? 1 : 0);
`;

let storage: LocalStorageServer;
let batch: LocalBatchService;
let run: LocalRunService;
let workflows: LocalWorkflowsService;
let fn: FunctionServer;
let executions: WorkflowsExecutionsAdapter;
let pubsub: PubSub;
let subscription: Subscription;
const completions: Array<{ data: Record<string, unknown>; attributes: Record<string, string> }> = [];
const savedEnv = { ...process.env };

const post = (body: unknown, headers: Record<string, string> = {}) =>
  fn.post(typeof body === 'string' ? body : JSON.stringify(body), {
    'content-type': 'application/json',
    ...headers,
  });

const tick = (jobName: string, scheduleTime: string) => ({
  'x-cloudscheduler': 'true',
  'x-cloudscheduler-jobname': jobName,
  'x-cloudscheduler-scheduletime': scheduleTime,
  'user-agent': 'Google-Cloud-Scheduler',
});

const completionOf = (execution: string) =>
  waitFor(
    () => completions.find((message) => message.data.execution === execution),
    `the FLOW_COMPLETED message for ${execution}`,
    20_000,
  );

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'on-schedule-it-'));
  writeFileSync(join(dir, 'task.cjs'), TASK);
  const task = ['node', join(dir, 'task.cjs')];
  const images = {
    [`${IMAGES}/train:latest`]: task,
    [`${IMAGES}/metadata:latest`]: task,
    [`${IMAGES}/refit:latest`]: task,
  };
  mkdirSync(join(dir, 'logs'));

  storage = await startStorageServer();
  batch = await startBatchService({ images, baseDir: dir, logDir: join(dir, 'logs') });
  run = await startRunService({ images, baseDir: dir, logDir: join(dir, 'logs') });
  // The workflows' connectors reach the local services through the emulator variables, as in `batchwire dev`.
  Object.assign(process.env, {
    BATCH_EMULATOR_HOST: batch.host,
    RUN_EMULATOR_HOST: run.host,
    STORAGE_EMULATOR_HOST: storage.url,
  });
  workflows = await startWorkflowsService({
    workflowsDir: join(REPO, 'workflows'),
    project: config.project,
    region: config.region,
  });

  // Provisioning: the bucket, the completion topic, the flows' Cloud Run jobs.
  await new Storage({ apiEndpoint: storage.url, projectId: config.project }).createBucket(config.bucket);
  pubsub = new PubSub({ projectId: config.project });
  const [topic] = await pubsub.createTopic(completionTopic);
  subscription = await subscribe(topic, `${completionTopic}-test`, (message) => {
    completions.push({ data: JSON.parse(message.data.toString('utf8')), attributes: message.attributes });
  });
  const jobs = createRunJobsAdapter({ env: { RUN_EMULATOR_HOST: run.host } });
  const parent = `projects/${config.project}/locations/${config.region}`;
  await jobs.ensureJob(parent, 'mlops-template-metadata', {
    image: `${IMAGES}/metadata:latest`,
    maxRetries: 0,
  });
  await jobs.ensureJob(parent, 'refit-job', { image: `${IMAGES}/refit:latest`, maxRetries: 0 });
  await jobs.close();

  executions = createWorkflowsExecutions({ env: { WORKFLOWS_EMULATOR_HOST: workflows.host } });
  http(
    'onSchedule',
    createOnSchedule({
      config,
      executions,
      store: createObjectStore({
        bucket: config.bucket,
        clientOptions: { apiEndpoint: storage.url, projectId: config.project },
      }),
    }),
  );
  fn = await startFunction('onSchedule');
});

afterAll(async () => {
  await fn?.close();
  await subscription?.close();
  await pubsub?.close();
  await executions?.close();
  await workflows?.close();
  await run?.close();
  await batch?.close();
  await storage?.close();
  process.env = savedEnv;
});

describe('onSchedule: requests it refuses', () => {
  it('answers 405 with an Allow header for a method other than POST', async () => {
    const response = await fetch(fn.url, { method: 'GET' });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST');
    expect(await response.json()).toEqual({ error: 'method GET not allowed: POST a JSON body' });
  });

  it('answers 413 with a JSON error for a body over 64 KiB', async () => {
    const response = await post({
      flow: 'metadata',
      product: 'mlops-template',
      params: { pad: 'x'.repeat(70_000) },
    });
    expect(response.status).toBe(413);
    expect(JSON.parse(response.body).error).toMatch(/^body too large: \d+ bytes, the limit is 65536$/);
  });

  it('answers 400 naming the problem for a body that is not JSON (sent as octet-stream, as Scheduler does by default)', async () => {
    const response = await fn.post('{flow: train', { 'content-type': 'application/octet-stream' });
    expect(response.status).toBe(400);
    expect(JSON.parse(response.body).error).toMatch(/^body is not valid JSON: /);
  });

  it('answers 400 (functions-framework itself) for malformed JSON sent as application/json, never 500', async () => {
    const response = await post('{flow: train');
    expect(response.status).toBe(400);
  });

  it.each([
    ['an empty body', '', 'empty body: expected a JSON object'],
    [
      'an unknown flow',
      { flow: 'deploy', product: 'mlops-template' },
      'unknown flow "deploy" for product "mlops-template"',
    ],
    ['an unknown product', { flow: 'train', product: 'initech' }, 'unknown product "initech"'],
    [
      'an unknown client',
      { flow: 'train', product: 'mlops-template', client: 'initech' },
      'unknown client "initech"',
    ],
    [
      'no client for a client-scoped flow',
      { flow: 'train', product: 'mlops-template' },
      'flow "train" runs per client',
    ],
    [
      'a client for a product-scoped flow',
      { flow: 'metadata', product: 'mlops-template', client: 'acme' },
      'flow "metadata" runs per product',
    ],
    [
      'a misspelt field',
      { flow: 'metadata', product: 'mlops-template', prams: {} },
      'unknown field(s) "prams"',
    ],
  ])('answers 400 for %s', async (_case, body, message) => {
    const response = await post(body);
    expect(response.status).toBe(400);
    expect(JSON.parse(response.body).error).toContain(message);
  });
});

describe('onSchedule: Google services it cannot reach', () => {
  it('answers 503 with Retry-After, not 500, when the Workflows client cannot be created', async () => {
    // Arrange: an instance whose Workflows endpoint setting is broken, so creating the client fails.
    http(
      'onScheduleNoWorkflows',
      createOnSchedule({
        config,
        executions: createWorkflowsExecutions({ env: { WORKFLOWS_EMULATOR_HOST: 'no-port-here' } }),
        store: createObjectStore({
          bucket: config.bucket,
          clientOptions: { apiEndpoint: storage.url, projectId: config.project },
        }),
      }),
    );
    const broken = await startFunction('onScheduleNoWorkflows');

    try {
      // Act
      const response = await broken.post(JSON.stringify({ flow: 'metadata', product: 'mlops-template' }), {
        'content-type': 'application/json',
      });

      // Assert
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('10');
    } finally {
      await broken.close();
    }
  });
});

describe('onSchedule: dedupe of Scheduler deliveries', () => {
  it('starts one execution per tick: a repeat answers 200 with the same execution, a new tick starts another', async () => {
    // Arrange
    const body = { flow: 'metadata', product: 'mlops-template' };
    const first = tick('bw-mlops-template-metadata', '2025-03-01T05:30:00Z');

    // Act
    const started = await post(body, first);
    const repeated = await post(body, first);
    const nextTick = await post(body, tick('bw-mlops-template-metadata', '2025-03-02T05:30:00Z'));

    // Assert
    expect(started.status).toBe(202);
    const answer = JSON.parse(started.body);
    expect(answer).toMatchObject({
      flow: 'metadata',
      product: 'mlops-template',
      client: null,
      deduped: false,
    });
    expect(answer.execution).toMatch(
      /^projects\/batchwire-local\/locations\/europe-west2\/workflows\/metadata\/executions\//,
    );
    expect(repeated.status).toBe(200);
    expect(JSON.parse(repeated.body)).toMatchObject({ execution: answer.execution, deduped: true });
    expect(nextTick.status).toBe(202);
    expect(JSON.parse(nextTick.body).execution).not.toBe(answer.execution);

    const key = dedupeKey(
      { kind: 'scheduler', jobName: 'bw-mlops-template-metadata', scheduleTime: '2025-03-01T05:30:00Z' },
      { ...body, client: null },
    ) as string;
    const bucket = new Storage({ apiEndpoint: storage.url, projectId: config.project }).bucket(config.bucket);
    const [claimExists] = await bucket.file(scheduleClaimObjectName(key)).exists();
    const [record] = await bucket.file(startedObjectName(key)).download();
    expect(claimExists).toBe(true);
    expect(JSON.parse(record.toString())).toMatchObject({ execution: answer.execution });

    const [labelled] = [
      await executions.findByLabel(
        'projects/batchwire-local/locations/europe-west2/workflows/metadata',
        'batchwire-claim',
        key.slice(0, 40),
      ),
    ];
    expect(labelled).toEqual([answer.execution]);
  });

  it('dedupes a Scheduler retry that carries no X-CloudScheduler-ScheduleTime, by the tick derived from the cron schedule', async () => {
    // Arrange: Scheduler's HTTP-target headers without the schedule time (documented for App Engine only)
    const body = { flow: 'metadata', product: 'mlops-template' };
    const headers = {
      'x-cloudscheduler': 'true',
      'x-cloudscheduler-jobname': 'bw-mlops-template-metadata-http',
      'user-agent': 'Google-Cloud-Scheduler',
    };

    // Act: the attempt and its retry
    const started = await post(body, headers);
    const retried = await post(body, headers);

    // Assert
    expect(started.status).toBe(202);
    expect(retried.status).toBe(200);
    expect(JSON.parse(retried.body)).toMatchObject({
      execution: JSON.parse(started.body).execution,
      deduped: true,
    });
  });

  it('dedupes manual runs by Idempotency-Key, and starts a new run for each call without one', async () => {
    const body = { flow: 'metadata', product: 'mlops-template' };
    const a = JSON.parse((await post(body, { 'idempotency-key': 'manual-1' })).body);
    const b = JSON.parse((await post(body, { 'idempotency-key': 'manual-1' })).body);
    const c = JSON.parse((await post(body)).body);
    const d = JSON.parse((await post(body)).body);
    expect(b).toMatchObject({ execution: a.execution, deduped: true });
    expect(new Set([a.execution, c.execution, d.execution]).size).toBe(3);
  });
});

describe('onSchedule: flows run to a FLOW_COMPLETED message', () => {
  it('train (Batch job) succeeds: the workflow publishes SUCCEEDED with the output prefix', async () => {
    const response = await post(
      { flow: 'train', product: 'mlops-template', client: 'acme', params: { pollSeconds: 0.2 } },
      tick('bw-mlops-template-train-acme', '2025-03-01T04:00:00Z'),
    );
    expect(response.status).toBe(202);
    const { execution, runId } = JSON.parse(response.body);

    const message = await completionOf(execution);
    const finished = await workflows.waitForExecution(execution);

    expect(message.attributes).toEqual({ Type: 'FLOW_COMPLETED' });
    expect(message.data).toMatchObject({
      type: 'flow',
      version: 1,
      flow: 'train',
      product: 'mlops-template',
      client: 'acme',
      execution,
      state: 'SUCCEEDED',
      outputs: { prefix: `gs://${config.bucket}/mlops-template/acme/flows/train/${runId}/` },
      error: null,
    });
    expect(Date.parse(message.data.finishedAt as string)).toBeGreaterThanOrEqual(
      Date.parse(message.data.startedAt as string),
    );
    expect(finished.state).toBe('SUCCEEDED');
  });

  it('train whose Batch job fails: the workflow publishes FAILED with the reason, and the execution fails', async () => {
    const response = await post({
      flow: 'train',
      product: 'mlops-template',
      client: 'globex',
      params: { pollSeconds: 0.2, fail: true },
    });
    const { execution } = JSON.parse(response.body);

    const message = await completionOf(execution);
    const finished = await workflows.waitForExecution(execution);

    expect(message.data).toMatchObject({ flow: 'train', client: 'globex', state: 'FAILED', outputs: null });
    expect(message.data.error).toMatch(/^Batch job .*\/jobs\/bw-train-.* ended FAILED$/);
    expect(finished.state).toBe('FAILED');
  });

  it('metadata (Cloud Run job for all clients) succeeds: SUCCEEDED for the product (client null)', async () => {
    const response = await post({ flow: 'metadata', product: 'mlops-template' });
    const { execution } = JSON.parse(response.body);

    const message = await completionOf(execution);

    expect(message.data).toMatchObject({
      flow: 'metadata',
      product: 'mlops-template',
      client: null,
      state: 'SUCCEEDED',
      error: null,
    });
  });

  it('a Cloud Run job target whose job fails: the run-job workflow publishes FAILED', async () => {
    // The overrides carry the run's params (BATCHWIRE_PARAMS); the stand-in task fails on `fail: true`.
    const response = await post({
      flow: 'refit',
      product: 'mlops-template',
      client: 'acme',
      params: { fail: true },
    });
    expect(response.status).toBe(202);
    const { execution } = JSON.parse(response.body);

    const message = await completionOf(execution);

    expect(execution).toContain('/workflows/run-job/executions/');
    expect(message.data).toMatchObject({ flow: 'refit', client: 'acme', state: 'FAILED', outputs: null });
    expect(message.data.error).toMatch(/refit-job failed/);
  });
});
