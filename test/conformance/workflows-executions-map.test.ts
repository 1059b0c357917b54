import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecutionsClient } from '@google-cloud/workflows';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalWorkflowsService, startWorkflowsService } from '#local/workflows/server.js';

/**
 * `experimental.executions.map` through the local Executions service and the real
 * `@google-cloud/workflows` client, as Google documents it
 * (https://cloud.google.com/workflows/docs/reference/stdlib/experimental.executions/map):
 * one execution of the named workflow per argument, results in argument order.
 */
const PROJECT = 'batchwire-local';
const REGION = 'europe-west2';
const workflowName = (id: string) => `projects/${PROJECT}/locations/${REGION}/workflows/${id}`;

let dir: string;
let service: LocalWorkflowsService;
let client: ExecutionsClient;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'workflows-map-'));
  writeFileSync(
    join(dir, 'square.workflows.yaml'),
    `main:\n  params: [n]\n  steps:\n    - nap:\n        call: sys.sleep\n        args:\n          seconds: \${0.01 * (4 - n)}\n    - r:\n        return: \${n * n}\n`,
  );
  writeFileSync(
    join(dir, 'fan-out.workflows.yaml'),
    `main:\n  params: [args]\n  steps:\n    - all:\n        return: \${experimental.executions.map("square", args.numbers)}\n`,
  );
  writeFileSync(
    join(dir, 'missing.workflows.yaml'),
    `- all:\n    return: \${experimental.executions.map("no-such-workflow", [1])}\n`,
  );
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
  rmSync(dir, { recursive: true, force: true });
});

describe('experimental.executions.map on the local Executions service', () => {
  it('runs the workflow once per argument and returns the results in argument order', async () => {
    const [created] = await client.createExecution({
      parent: workflowName('fan-out'),
      execution: { argument: JSON.stringify({ numbers: [1, 2, 3] }) },
    });
    await service.waitForExecution(created.name as string);
    const [execution] = await client.getExecution({ name: created.name as string });
    expect(execution.state).toBe('SUCCEEDED');
    expect(JSON.parse(execution.result as string)).toEqual([1, 4, 9]);
  });

  it('a workflow id that is not deployed fails the execution with a 404 HttpError', async () => {
    const [created] = await client.createExecution({ parent: workflowName('missing'), execution: {} });
    await service.waitForExecution(created.name as string);
    const [execution] = await client.getExecution({ name: created.name as string });
    expect(execution.state).toBe('FAILED');
    expect(JSON.parse(execution.error?.payload as string)).toMatchObject({ code: 404, tags: ['HttpError'] });
  });
});
