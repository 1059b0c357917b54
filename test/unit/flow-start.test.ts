import { beforeEach, describe, expect, it } from 'vitest';
import { parseFlowRequest } from '#shared/domain/flow-request.js';
import {
  CLAIM_LABEL,
  configuredFlowJobs,
  dedupeKey,
  type FlowExecutions,
  FlowStartInProgressError,
  latestFireTime,
  planFlowStart,
  scheduleClaimObjectName,
  startedObjectName,
  startFlow,
  triggerFromHeaders,
} from '#shared/domain/flow-start.js';
import { repoConfig } from '../helpers/config.js';
import { MemoryStore } from '../helpers/fakes.js';

const config = repoConfig({
  extraFlows: '      refit:\n        target: { runJob: refit-job, args: [--fast] }\n        scope: client\n',
});

const train = parseFlowRequest(
  { flow: 'train', product: 'mlops-template', client: 'acme', params: { epochs: 2 } },
  config,
);
const metadata = parseFlowRequest({ flow: 'metadata', product: 'mlops-template' }, config);
const refit = parseFlowRequest(
  { flow: 'refit', product: 'mlops-template', client: 'globex', params: { taskCount: 3 } },
  config,
);
const tick = {
  kind: 'scheduler',
  jobName: 'bw-mlops-template-train-acme',
  scheduleTime: '2025-03-01T04:00:00Z',
} as const;

class RecordingExecutions implements FlowExecutions {
  started: Array<{ workflow: string; argument: unknown; labels: Record<string, string>; name: string }> = [];
  failNext = false;
  async start(workflow: string, argument: string, labels: Record<string, string>): Promise<string> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('crashed');
    }
    const name = `${workflow}/executions/e${this.started.length + 1}`;
    this.started.push({ workflow, argument: JSON.parse(argument), labels, name });
    return name;
  }
  async findByLabel(workflow: string, key: string, value: string): Promise<string[]> {
    return this.started
      .filter((e) => e.workflow === workflow && e.labels[key] === value)
      .map((e) => e.name)
      .reverse();
  }
}

describe('triggerFromHeaders and dedupeKey', () => {
  it('reads Scheduler headers, else an Idempotency-Key, else none', () => {
    expect(
      triggerFromHeaders({
        'x-cloudscheduler-jobname': 'j',
        'x-cloudscheduler-scheduletime': '2025-03-01T04:00:00Z',
        'idempotency-key': 'k',
      }),
    ).toEqual({ kind: 'scheduler', jobName: 'j', scheduleTime: '2025-03-01T04:00:00Z' });
    expect(triggerFromHeaders({ 'x-cloudscheduler-jobname': 'j', 'idempotency-key': 'k' })).toEqual({
      kind: 'manual',
      idempotencyKey: 'k',
    });
    expect(triggerFromHeaders({ 'x-cloudscheduler-jobname': 'j' })).toEqual({ kind: 'none' });
  });

  describe('without X-CloudScheduler-ScheduleTime (documented for App Engine targets only)', () => {
    const daily = { schedule: '0 4 * * *', timeZone: 'Europe/London' };
    const scheduler = { 'x-cloudscheduler': 'true', 'x-cloudscheduler-jobname': 'bw-train-acme' };

    it("derives the tick from the flow's cron schedule and time zone: its latest fire time at or before now", () => {
      // 04:00 in London is 03:00 UTC in summer (BST) and 04:00 UTC in winter.
      expect(triggerFromHeaders(scheduler, daily, new Date('2025-07-01T03:00:02Z'))).toEqual({
        kind: 'scheduler',
        jobName: 'bw-train-acme',
        scheduleTime: '2025-07-01T03:00:00.000Z',
      });
      expect(latestFireTime(daily.schedule, daily.timeZone, new Date('2025-01-10T04:00:00Z'))).toEqual(
        new Date('2025-01-10T04:00:00Z'),
      );
      expect(latestFireTime(daily.schedule, daily.timeZone, new Date('2025-01-10T03:59:59Z'))).toEqual(
        new Date('2025-01-09T04:00:00Z'),
      );
    });

    it('gives a retry of the same tick the same key, and the next tick a new one', () => {
      // Arrange: the first attempt, Scheduler's retry 20 minutes later, and the next night's tick
      const first = triggerFromHeaders(scheduler, daily, new Date('2025-03-01T04:00:01Z'));
      const retry = triggerFromHeaders(scheduler, daily, new Date('2025-03-01T04:20:00Z'));
      const next = triggerFromHeaders(scheduler, daily, new Date('2025-03-02T04:00:03Z'));

      // Assert
      expect(dedupeKey(retry, train)).toBe(dedupeKey(first, train));
      expect(dedupeKey(next, train)).not.toBe(dedupeKey(first, train));
      expect(first).toMatchObject({ kind: 'scheduler', scheduleTime: '2025-03-01T04:00:00.000Z' });
    });

    it('recognises Scheduler by X-CloudScheduler alone, and prefers the header when Scheduler sends it', () => {
      const now = new Date('2025-03-01T04:00:05Z');
      expect(triggerFromHeaders({ 'x-cloudscheduler': 'true' }, daily, now)).toEqual({
        kind: 'scheduler',
        jobName: '',
        scheduleTime: '2025-03-01T04:00:00.000Z',
      });
      expect(
        triggerFromHeaders(
          { ...scheduler, 'x-cloudscheduler-scheduletime': '2025-03-01T04:00:00Z' },
          daily,
          now,
        ),
      ).toMatchObject({ scheduleTime: '2025-03-01T04:00:00Z' });
    });

    it('falls back to Idempotency-Key or none for a flow without a schedule, or one that cannot be read', () => {
      const now = new Date('2025-03-01T04:00:05Z');
      expect(triggerFromHeaders(scheduler, { timeZone: 'Etc/UTC' }, now)).toEqual({ kind: 'none' });
      expect(
        triggerFromHeaders({ ...scheduler, 'idempotency-key': 'k' }, { timeZone: 'Etc/UTC' }, now),
      ).toEqual({
        kind: 'manual',
        idempotencyKey: 'k',
      });
      expect(triggerFromHeaders(scheduler, { schedule: 'not a cron', timeZone: 'Etc/UTC' }, now)).toEqual({
        kind: 'none',
      });
    });
  });

  it('gives the same key for the same tick, a new key for a new tick, another flow or client, and none without a trigger', () => {
    const key = dedupeKey(tick, train);
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(dedupeKey({ ...tick }, train)).toBe(key);
    expect(dedupeKey({ ...tick, scheduleTime: '2025-03-02T04:00:00Z' }, train)).not.toBe(key);
    expect(dedupeKey(tick, { ...train, client: 'globex' })).not.toBe(key);
    expect(dedupeKey({ kind: 'manual', idempotencyKey: 'k' }, train)).not.toBe(
      dedupeKey({ kind: 'manual', idempotencyKey: 'k' }, metadata),
    );
    expect(dedupeKey({ kind: 'none' }, train)).toBeUndefined();
    expect(scheduleClaimObjectName(key as string)).toBe(`_batchwire/claims/schedule/${key}.json`);
  });
});

describe('planFlowStart', () => {
  it('starts a workflow target with the flow, product, client, params and where results go', () => {
    const plan = planFlowStart(train, config, {
      runId: '20250301t040000-abcdef12',
      key: 'f'.repeat(64),
    });
    expect(plan.workflow).toBe('projects/batchwire-local/locations/europe-west2/workflows/train');
    expect(plan.argument).toEqual({
      flow: 'train',
      product: 'mlops-template',
      client: 'acme',
      clients: ['acme', 'globex'],
      params: { epochs: 2 },
      project: 'batchwire-local',
      region: 'europe-west2',
      bucket: 'batchwire-local-batch',
      completionTopic: 'projects/batchwire-local/topics/batchwire-completions',
      outputPrefix: 'gs://batchwire-local-batch/mlops-template/acme/flows/train/20250301t040000-abcdef12/',
      runId: '20250301t040000-abcdef12',
      image: 'europe-docker.pkg.dev/batchwire-local/batchwire/train:latest',
      job: 'projects/batchwire-local/locations/europe-west2/jobs/mlops-template-train',
      serviceAccount: 'mlops-template@batchwire-local.iam.gserviceaccount.com',
    });
    expect(plan.labels).toEqual({
      product: 'mlops-template',
      flow: 'train',
      client: 'acme',
      trigger: 'schedule',
      [CLAIM_LABEL]: 'f'.repeat(40),
    });
  });

  it('gives a product-scoped flow a null client and a product-level output prefix', () => {
    const plan = planFlowStart(metadata, config, { runId: 'r1' });
    expect(plan.argument).toMatchObject({
      client: null,
      outputPrefix: 'gs://batchwire-local-batch/mlops-template/_flows/flows/metadata/r1/',
    });
    expect(plan.labels).not.toHaveProperty('client');
    expect(plan.labels).not.toHaveProperty(CLAIM_LABEL);
  });

  it('runs a Cloud Run job target through the run-job workflow with args and the task contract as overrides', () => {
    const plan = planFlowStart(refit, config, { runId: 'r2' });
    expect(plan.workflow).toBe('projects/batchwire-local/locations/europe-west2/workflows/run-job');
    expect(plan.argument.job).toBe('projects/batchwire-local/locations/europe-west2/jobs/refit-job');
    expect(plan.argument.overrides?.taskCount).toBe(3);
    expect(plan.argument.overrides?.containerOverrides[0]?.args).toEqual(['--fast']);
    expect(
      Object.fromEntries(
        (plan.argument.overrides?.containerOverrides[0]?.env ?? []).map((e) => [e.name, e.value]),
      ),
    ).toEqual({
      BATCHWIRE_FLOW: 'refit',
      BATCHWIRE_PRODUCT: 'mlops-template',
      BATCHWIRE_CLIENT: 'globex',
      BATCHWIRE_CLIENTS: 'acme,globex',
      BATCHWIRE_BUCKET: 'batchwire-local-batch',
      BATCHWIRE_OUTPUT_URI: 'gs://batchwire-local-batch/mlops-template/globex/flows/refit/r2/',
      BATCHWIRE_RUN_ID: 'r2',
      BATCHWIRE_PARAMS: '{"taskCount":3}',
    });
  });

  it('lists the Cloud Run jobs provisioning must create, once each', () => {
    expect(configuredFlowJobs(config).map((job) => job.jobId)).toEqual([
      'refit-job',
      'mlops-template-train',
      'mlops-template-metadata',
    ]);
  });
});

describe('startFlow', () => {
  let store: MemoryStore;
  let executions: RecordingExecutions;
  let now: Date;
  const deps = () => ({ config, store, executions, now: () => now, claimLeaseMs: 30_000 });

  beforeEach(() => {
    store = new MemoryStore();
    executions = new RecordingExecutions();
    now = new Date('2025-03-01T04:00:02Z');
  });

  it('starts once per tick: a repeat answers deduped with the same execution; a new tick starts a new one', async () => {
    const first = await startFlow({ request: train, trigger: tick }, deps());
    const repeat = await startFlow({ request: train, trigger: tick }, deps());
    const next = await startFlow(
      { request: train, trigger: { ...tick, scheduleTime: '2025-03-02T04:00:00Z' } },
      deps(),
    );

    expect(first).toMatchObject({
      status: 'started',
      runId: `20250301t040000-${(first.key as string).slice(0, 8)}`,
    });
    expect(repeat).toEqual({ ...first, status: 'deduped' });
    expect(next.status).toBe('started');
    expect(next.execution).not.toBe(first.execution);
    expect(executions.started).toHaveLength(2);
    expect(JSON.parse(store.objects.get(startedObjectName(first.key as string)) as string)).toMatchObject({
      execution: first.execution,
    });
  });

  it('starts a new run for every call without a trigger', async () => {
    await startFlow({ request: train, trigger: { kind: 'none' } }, deps());
    await startFlow({ request: train, trigger: { kind: 'none' } }, deps());
    expect(executions.started).toHaveLength(2);
    expect(store.objects.size).toBe(0);
  });

  it('recovers an execution started by an attempt that crashed before recording it (found by its label)', async () => {
    // Arrange: the first attempt claimed and started, then died before writing the record.
    const key = dedupeKey(tick, train) as string;
    const first = await startFlow({ request: train, trigger: tick }, deps());
    store.objects.delete(startedObjectName(key));

    // Act
    const retry = await startFlow({ request: train, trigger: tick }, deps());

    // Assert
    expect(retry).toMatchObject({ status: 'deduped', execution: first.execution });
    expect(executions.started).toHaveLength(1);
    expect(store.objects.has(startedObjectName(key))).toBe(true);
  });

  it('answers "in progress" while a fresh claim has no execution, and takes over once the lease is over', async () => {
    // Arrange: the first attempt claimed, then crashed before starting anything.
    executions.failNext = true;
    await expect(startFlow({ request: train, trigger: tick }, deps())).rejects.toThrow('crashed');

    // Act + Assert: within the lease, a retry must not risk a second run.
    now = new Date(now.getTime() + 5_000);
    await expect(startFlow({ request: train, trigger: tick }, deps())).rejects.toBeInstanceOf(
      FlowStartInProgressError,
    );
    expect(executions.started).toHaveLength(0);

    // After the lease, the retry starts it, with the run id the claim chose.
    now = new Date(now.getTime() + 60_000);
    const taken = await startFlow({ request: train, trigger: tick }, deps());
    expect(taken.status).toBe('started');
    expect(executions.started).toHaveLength(1);
    expect(executions.started[0]?.argument).toMatchObject({ runId: taken.runId });
  });

  it("takes over a crashed start with the request the claim recorded, not the retry's other params", async () => {
    // Arrange: the first attempt claimed with epochs 2, then crashed before starting anything.
    executions.failNext = true;
    await expect(startFlow({ request: train, trigger: tick }, deps())).rejects.toThrow('crashed');
    const key = dedupeKey(tick, train) as string;
    const claim = JSON.parse(store.objects.get(scheduleClaimObjectName(key)) as string);
    const retried = { ...train, params: { epochs: 99, image: 'evil.example/train:latest' } };

    // Act: after the lease, a retry with the same key but other params takes over.
    now = new Date(now.getTime() + 60_000);
    const taken = await startFlow({ request: retried, trigger: tick }, deps());

    // Assert: the claim holds the original request, and that is what runs.
    expect(claim).toMatchObject({
      flow: 'train',
      product: 'mlops-template',
      client: 'acme',
      params: { epochs: 2 },
    });
    expect(taken.status).toBe('started');
    expect(executions.started).toHaveLength(1);
    expect(executions.started[0]?.argument).toMatchObject({
      params: { epochs: 2 },
      image: 'europe-docker.pkg.dev/batchwire-local/batchwire/train:latest',
      runId: taken.runId,
    });
  });

  it('takes over a Cloud Run job target with the claimed params in its overrides', async () => {
    // Arrange
    executions.failNext = true;
    await expect(startFlow({ request: refit, trigger: tick }, deps())).rejects.toThrow('crashed');

    // Act
    now = new Date(now.getTime() + 60_000);
    await startFlow({ request: { ...refit, params: { taskCount: 7 } }, trigger: tick }, deps());

    // Assert
    const argument = executions.started[0]?.argument as { overrides: { taskCount: number } };
    expect(argument.overrides.taskCount).toBe(3);
  });
});
