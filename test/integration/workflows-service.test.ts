import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecutionsClient } from '@google-cloud/workflows';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalWorkflowsService, startWorkflowsService } from '#local/workflows/server.js';
import { createWorkflowsExecutions } from '#shared/clients/workflows.js';
import { TransientError } from '#shared/runtime/errors.js';

const PROJECT = 'batchwire-local';
const REGION = 'europe-west2';
const workflowName = (id: string) => `projects/${PROJECT}/locations/${REGION}/workflows/${id}`;

const WORKFLOWS: Record<string, string> = {
  greet: `
main:
  params: [args]
  steps:
    - build:
        assign:
          - greeting: \${"hello " + args.name}
    - done:
        return:
          greeting: \${greeting}
          execution: \${sys.get_env("GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID")}
`,
  fail: `
main:
  steps:
    - first:
        assign:
          - x: 1
    - boom:
        raise:
          message: training data missing
          tags: [DataError]
`,
  slow: `
main:
  steps:
    - wait:
        call: sys.sleep
        args:
          seconds: 30
    - done:
        return: late
`,
};

let service: LocalWorkflowsService;
let client: ExecutionsClient;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'workflows-service-'));
  for (const [id, source] of Object.entries(WORKFLOWS))
    writeFileSync(join(dir, `${id}.workflows.yaml`), source);
  service = await startWorkflowsService({
    workflowsDir: dir,
    project: PROJECT,
    region: REGION,
    connectors: {},
  });
  client = new ExecutionsClient({
    apiEndpoint: '127.0.0.1',
    port: service.port,
    sslCreds: grpc.credentials.createInsecure(),
  });
});

afterAll(async () => {
  await client?.close();
  await service?.close();
});

describe('local Workflows executions service through the real ExecutionsClient', () => {
  it('creates an ACTIVE execution that ends SUCCEEDED with a JSON result, read back with GetExecution', async () => {
    // Act
    const [created] = await client.createExecution({
      parent: workflowName('greet'),
      execution: { argument: JSON.stringify({ name: 'acme' }), labels: { product: 'mlops-template' } },
    });
    await service.waitForExecution(created.name as string);
    const [execution] = await client.getExecution({ name: created.name as string });

    // Assert
    const executionId = (created.name as string).split('/').pop();
    expect(created.name).toMatch(new RegExp(`^${workflowName('greet')}/executions/[0-9a-f-]{36}$`));
    expect(created.state).toBe('ACTIVE');
    expect(execution.state).toBe('SUCCEEDED');
    expect(JSON.parse(execution.result as string)).toEqual({
      greeting: 'hello acme',
      execution: executionId,
    });
    expect(execution.argument).toBe(JSON.stringify({ name: 'acme' }));
    expect(execution.labels).toEqual({ product: 'mlops-template' });
    expect(Number(execution.endTime?.seconds)).toBeGreaterThanOrEqual(Number(execution.startTime?.seconds));
  });

  it('reports a failing workflow as Workflows does: FAILED with payload, context and stack trace', async () => {
    // Act
    const [created] = await client.createExecution({ parent: workflowName('fail'), execution: {} });
    await service.waitForExecution(created.name as string);
    const [execution] = await client.getExecution({ name: created.name as string });

    // Assert
    expect(execution.state).toBe('FAILED');
    expect(JSON.parse(execution.error?.payload as string)).toEqual({
      message: 'training data missing',
      tags: ['DataError'],
    });
    expect(execution.error?.context).toContain('boom');
    expect(execution.error?.stackTrace?.elements?.[0]).toMatchObject({ step: 'boom', routine: 'main' });
    expect(execution.result).toBe('');
  });

  it('reports the step running in status.currentSteps, and the last one attempted once the execution ended', async () => {
    // Arrange
    const [slow] = await client.createExecution({ parent: workflowName('slow'), execution: {} });
    const [failing] = await client.createExecution({ parent: workflowName('fail'), execution: {} });

    // Act
    await expect
      .poll(async () => (await client.getExecution({ name: slow.name as string }))[0].status?.currentSteps)
      .toEqual([{ routine: 'main', step: 'wait' }]);
    await service.waitForExecution(failing.name as string);
    const [ended] = await client.getExecution({ name: failing.name as string });
    await client.cancelExecution({ name: slow.name as string });

    // Assert
    expect(ended.state).toBe('FAILED');
    expect(ended.status?.currentSteps).toEqual([{ routine: 'main', step: 'boom' }]);
  });

  it('lists executions newest first, filtered by label', async () => {
    // Arrange
    const [first] = await client.createExecution({
      parent: workflowName('greet'),
      execution: { argument: '{"name":"a"}', labels: { 'batchwire-claim': 'k1' } },
    });
    const [second] = await client.createExecution({
      parent: workflowName('greet'),
      execution: { argument: '{"name":"b"}', labels: { 'batchwire-claim': 'k2' } },
    });

    // Act
    const [all] = await client.listExecutions({ parent: workflowName('greet') }, { autoPaginate: false });
    const [labelled] = await client.listExecutions(
      { parent: workflowName('greet'), filter: 'labels.batchwire-claim="k1"' },
      { autoPaginate: false },
    );

    // Assert
    const names = all.map((execution) => execution.name);
    expect(names.indexOf(second.name as string)).toBeLessThan(names.indexOf(first.name as string));
    expect(labelled.map((execution) => execution.name)).toEqual([first.name]);
  });

  it('cancels an active execution; a second cancel is refused', async () => {
    // Arrange
    const [created] = await client.createExecution({ parent: workflowName('slow'), execution: {} });

    // Act
    const [cancelled] = await client.cancelExecution({ name: created.name as string });
    const again = client.cancelExecution({ name: created.name as string });

    // Assert
    expect(cancelled.state).toBe('CANCELLED');
    await expect(again).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION });
    const [execution] = await client.getExecution({ name: created.name as string });
    expect(execution.state).toBe('CANCELLED');
  });

  it('answers NOT_FOUND for a workflow that is not deployed and INVALID_ARGUMENT for a non-JSON argument', async () => {
    await expect(
      client.createExecution({ parent: workflowName('missing'), execution: {} }),
    ).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
    await expect(
      client.createExecution({ parent: workflowName('greet'), execution: { argument: '{not json' } }),
    ).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    await expect(
      client.getExecution({ name: `${workflowName('greet')}/executions/nope` }),
    ).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
  });
});

describe('createWorkflowsExecutions', () => {
  it('reports a client it cannot create as retryable, and creates it on a later call once it can', async () => {
    // Arrange: the endpoint setting is broken at first (say, a bad deploy of the variable).
    const env: NodeJS.ProcessEnv = { WORKFLOWS_EMULATOR_HOST: 'no-port-here' };
    const adapter = createWorkflowsExecutions({ env });

    try {
      // Act
      const failed = adapter.start(workflowName('greet'), '{"name":"a"}', {});
      await expect(failed).rejects.toBeInstanceOf(TransientError);
      env.WORKFLOWS_EMULATOR_HOST = `127.0.0.1:${service.port}`;
      const started = await adapter.start(workflowName('greet'), '{"name":"b"}', { run: 'retry' });
      const found = await adapter.findByLabel(workflowName('greet'), 'run', 'retry');

      // Assert
      expect(started).toMatch(new RegExp(`^${workflowName('greet')}/executions/`));
      expect(found).toEqual([started]);
    } finally {
      await adapter.close();
    }
  });
});
