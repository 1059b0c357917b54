import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchServiceClient } from '@google-cloud/batch';
import { Storage } from '@google-cloud/storage';
import { afterAll, describe, expect, it } from 'vitest';
import { grpcClientOptions } from '#shared/clients/endpoints.js';
import { parseConfig } from '#shared/config/load.js';
import { type CliPlatform, REPO_ROOT, startCliPlatform } from '../helpers/platform.js';

/**
 * `batchwire dev --data DIR` keeps buckets and job records across restarts, and Ctrl-C stops
 * everything the platform started — here its own Pub/Sub emulator (a JVM) included.
 */

const CONFIG_PATH = join(REPO_ROOT, 'test', 'fixtures', 'e2e', 'batchwire.yaml');
const config = parseConfig(readFileSync(CONFIG_PATH, 'utf8'), CONFIG_PATH);
const dataDir = mkdtempSync(join(tmpdir(), 'batchwire-e2e-data-'));
const running: CliPlatform[] = [];

const answers = (hostPort: string) =>
  new Promise<boolean>((resolve) => {
    const [host, port] = hostPort.replace(/^https?:\/\//, '').split(':');
    const socket = createConnection({ host, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

async function waitForJob(client: BatchServiceClient, name: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [job] = await client.getJob({ name }).catch(() => [undefined]);
    const state = String(job?.status?.state ?? '');
    if (state === 'SUCCEEDED' || state === 'FAILED') return state;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`job ${name} did not finish`);
}

afterAll(async () => {
  for (const platform of running) await platform.dispose();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('batchwire dev --data', () => {
  // Two cold starts of the whole platform, each up to ~45 s on a loaded 2-core machine.
  it('keeps buckets and job records across a restart, and stops its own Pub/Sub emulator', {
    timeout: 180_000,
  }, async () => {
    // Arrange: a platform with its own emulator and a data folder; one upload run to its end.
    const first = await startCliPlatform({
      config: CONFIG_PATH,
      ownPubSub: true,
      // A cold start takes up to a minute on a loaded 2-core machine.
      timeoutMs: 120_000,
      extraArgs: ['--data', dataDir],
    });
    running.push(first);
    const storage = new Storage({ apiEndpoint: first.env.STORAGE_EMULATOR_HOST, projectId: config.project });
    const input = join(first.workDir, 'kept.jsonl');
    writeFileSync(input, '{"text":"kept across restarts"}\n');
    const name = 'mlops-template/acme/inputs/kept.jsonl';
    await storage.bucket(config.bucket).upload(input, { destination: name });

    const batch = new BatchServiceClient(
      await grpcClientOptions('batch', { BATCH_EMULATOR_HOST: first.env.BATCH_EMULATOR_HOST }),
    );
    const parent = `projects/${config.project}/locations/${config.region}`;
    let jobName: string | undefined;
    for (let i = 0; i < 100 && !jobName; i++) {
      const [jobs] = await batch.listJobs({ parent });
      jobName = jobs[0]?.name ?? undefined;
      if (!jobName) await new Promise((r) => setTimeout(r, 100));
    }
    expect(jobName).toBeDefined();
    expect(await waitForJob(batch, jobName as string)).toBe('SUCCEEDED');
    await batch.close();

    // Act: Ctrl-C, then start again on the same data folder.
    expect(await first.stop()).toBe(0);
    expect(await answers(first.env.PUBSUB_EMULATOR_HOST as string)).toBe(false);
    expect(await answers(first.env.STORAGE_EMULATOR_HOST as string)).toBe(false);

    const second = await startCliPlatform({
      config: CONFIG_PATH,
      ownPubSub: true,
      // A cold start takes up to a minute on a loaded 2-core machine.
      timeoutMs: 120_000,
      extraArgs: ['--data', dataDir],
    });
    running.push(second);

    // Assert: the object and the job record are still there.
    const again = new Storage({ apiEndpoint: second.env.STORAGE_EMULATOR_HOST, projectId: config.project });
    const [kept] = await again.bucket(config.bucket).file(name).download();
    expect(kept.toString('utf8')).toContain('kept across restarts');
    const batchAgain = new BatchServiceClient(
      await grpcClientOptions('batch', { BATCH_EMULATOR_HOST: second.env.BATCH_EMULATOR_HOST }),
    );
    const [job] = await batchAgain.getJob({ name: jobName as string });
    expect(String(job.status?.state)).toBe('SUCCEEDED');
    await batchAgain.close();
  });
});
