import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecutionsClient } from '@google-cloud/workflows';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalWorkflowsService, startWorkflowsService } from '#local/workflows/server.js';
import { grpcClientOptions } from '#shared/clients/endpoints.js';

// One port, two protocols (local/grpc/api-server.ts): what reaches it that is neither a gRPC
// client nor a well-formed REST call must get an answer, never take the service down.

const PARENT = 'projects/batchwire-local/locations/europe-west2/workflows/none';
let service: LocalWorkflowsService;
let client: ExecutionsClient;

/** Sends raw bytes and resolves with whatever comes back before the peer closes (or 2 s). */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (chunk) => {
      received += chunk.toString();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(received));
    socket.setTimeout(2_000, () => socket.end());
    socket.write(bytes);
  });
}

beforeAll(async () => {
  service = await startWorkflowsService({
    workflowsDir: mkdtempSync(join(tmpdir(), 'api-server-')),
    project: 'batchwire-local',
    region: 'europe-west2',
    connectors: {},
  });
  client = new ExecutionsClient(
    await grpcClientOptions('workflows', { WORKFLOWS_EMULATOR_HOST: service.host }),
  );
});

afterAll(async () => {
  await client?.close();
  await service?.close();
});

describe('the shared gRPC/REST port', () => {
  it('answers malformed HTTP with 400 and keeps serving gRPC after connections dropped mid-preface', async () => {
    // Act
    const garbage = await raw(service.port, 'NOT HTTP AT ALL\r\n\r\n');
    for (let i = 0; i < 3; i++) {
      const socket = connect(service.port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write('PRI * HTTP/2.0\r\n');
      socket.resetAndDestroy();
    }
    const grpcAnswer = client.listExecutions({ parent: PARENT }).then(
      () => 'ok',
      (error: { code?: number }) => error.code,
    );

    // Assert
    expect(garbage).toMatch(/^HTTP\/1\.1 400/);
    // NOT_FOUND (5): the workflow does not exist, answered by the service over gRPC.
    expect(await grpcAnswer).toBe(5);
  });

  it('answers REST and gRPC for the same resource alike', async () => {
    // Act
    const rest = await fetch(`http://${service.host}/v1/${PARENT}/executions`);
    const grpcCode = await client.getExecution({ name: `${PARENT}/executions/x` }).then(
      () => 0,
      (error: { code?: number }) => error.code,
    );

    // Assert
    expect(rest.status).toBe(404);
    expect(((await rest.json()) as { error: { status: string } }).error.status).toBe('NOT_FOUND');
    expect(grpcCode).toBe(5);
  });
});
