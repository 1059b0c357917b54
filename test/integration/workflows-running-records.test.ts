import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecutionsClient } from '@google-cloud/workflows';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { LOST_WITH_THE_PROCESS } from '#local/workflows/running-store.js';
import { type LocalWorkflowsService, startWorkflowsService } from '#local/workflows/server.js';

/**
 * The local Workflows service with `dataDir` keeps a record of each running execution, so that
 * the next start knows what a process killed without a stop was running. A kill is what a
 * second service on the same folder sees while the first never closed.
 */

const PROJECT = 'batchwire-local';
const REGION = 'europe-west2';
const workflowName = (id: string) => `projects/${PROJECT}/locations/${REGION}/workflows/${id}`;
const workflowsDir = mkdtempSync(join(tmpdir(), 'workflows-running-'));
const dataDir = mkdtempSync(join(tmpdir(), 'workflows-running-data-'));
const runningDir = join(dataDir, 'running');
writeFileSync(
  join(workflowsDir, 'slow.workflows.yaml'),
  'main:\n  steps:\n    - wait:\n        call: sys.sleep\n        args:\n          seconds: 60\n',
);
writeFileSync(
  join(workflowsDir, 'quick.workflows.yaml'),
  'main:\n  steps:\n    - done:\n        return: 1\n',
);

const services: LocalWorkflowsService[] = [];
const clients: ExecutionsClient[] = [];

async function start(): Promise<{ service: LocalWorkflowsService; client: ExecutionsClient }> {
  const service = await startWorkflowsService({
    workflowsDir,
    project: PROJECT,
    region: REGION,
    connectors: {},
    dataDir,
  });
  services.push(service);
  const client = new ExecutionsClient({
    apiEndpoint: '127.0.0.1',
    port: service.port,
    sslCreds: grpc.credentials.createInsecure(),
  });
  clients.push(client);
  return { service, client };
}

const recordedIds = () => readdirSync(runningDir).sort();
const idOf = (name: string | null | undefined) => `${String(name).split('/').pop()}.json`;

afterAll(async () => {
  for (const client of clients) await client.close();
  for (const service of services) await service.close();
  rmSync(workflowsDir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
});

describe('local Workflows service with dataDir', () => {
  it('records only running executions, and the next start finds them FAILED until they are forgotten', async () => {
    // Arrange: one execution still running, one that ended, one cancelled.
    const first = await start();
    const [running] = await first.client.createExecution({ parent: workflowName('slow'), execution: {} });
    const [ended] = await first.client.createExecution({ parent: workflowName('quick'), execution: {} });
    const [cancelled] = await first.client.createExecution({ parent: workflowName('slow'), execution: {} });
    await first.service.waitForExecution(ended.name as string);
    await first.client.cancelExecution({ name: cancelled.name as string });
    expect(recordedIds()).toEqual([idOf(running.name)]);

    // Act: a start while the first never closed, as after a kill of its process.
    const second = await start();
    const [found] = await second.client.getExecution({ name: running.name as string });
    const [listed] = await second.client.listExecutions({
      parent: workflowName('slow'),
      filter: 'state="FAILED"',
    });

    // Assert: FAILED, saying why, and recorded until the caller has reported it.
    expect(second.service.lostWithLastProcess.map((execution) => execution.name)).toEqual([running.name]);
    expect(found.state).toBe('FAILED');
    expect(found.error?.context).toBe(LOST_WITH_THE_PROCESS);
    expect(Number(found.endTime?.seconds)).toBeGreaterThanOrEqual(Number(running.startTime?.seconds));
    expect(listed.map((execution) => execution.name)).toEqual([running.name]);
    expect(recordedIds()).toEqual([idOf(running.name)]);
    second.service.forgetInterrupted(second.service.lostWithLastProcess);
    expect(recordedIds()).toEqual([]);
    const third = await start();
    expect(third.service.lostWithLastProcess).toEqual([]);
  });

  it('keeps the record of an execution a close cut short until it is forgotten', async () => {
    // Arrange
    const { service, client } = await start();
    const [running] = await client.createExecution({ parent: workflowName('slow'), execution: {} });

    // Act
    const cutShort = await service.close();

    // Assert: still recorded after the close (a report not yet out is not lost), gone once forgotten.
    expect(cutShort.map((execution) => [execution.name, execution.state])).toEqual([
      [running.name, 'CANCELLED'],
    ]);
    expect(recordedIds()).toContain(idOf(running.name));
    service.forgetInterrupted(cutShort);
    expect(recordedIds()).not.toContain(idOf(running.name));
  });
});
