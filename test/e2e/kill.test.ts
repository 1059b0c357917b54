import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Message, PubSub } from '@google-cloud/pubsub';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { PLATFORM_STOPPED_UNEXPECTEDLY } from '#local/platform/interrupted-flows.js';
import { isProcessAlive } from '#local/process-alive.js';
import { readPubSubSnapshotFile } from '#local/pubsub/persistence.js';
import { parseConfig } from '#shared/config/load.js';
import { outputSubscription, outputTopic, schedulerJobId } from '#shared/plan/names.js';
import { ensureBuilt } from '../helpers/dist.js';
import { type CliPlatform, processesIn, REPO_ROOT, startCliPlatform } from '../helpers/platform.js';
import { until } from '../helpers/wait.js';

/**
 * `batchwire dev --data` killed with SIGKILL (as a crash or the OOM killer ends it: no stop, no
 * report) while a flow runs. The next start with the same `--data` reports that flow failed,
 * exactly once, on its client's topic: its client does not wait forever. The Pub/Sub emulator,
 * in a process group of its own under --data, outlives the kill: that start saves what it holds
 * (the client's subscription, made since no stop) and stops it.
 */

const CONFIG_PATH = join(REPO_ROOT, 'test', 'fixtures', 'e2e', 'kill.yaml');
const config = parseConfig(readFileSync(CONFIG_PATH, 'utf8'), CONFIG_PATH);
const PRODUCT = 'stalling';
const CLIENT = 'acme';
const dataDir = mkdtempSync(join(tmpdir(), 'batchwire-kill-'));
const runningRecords = join(dataDir, 'workflows', 'running');
const platforms: CliPlatform[] = [];
let reader: PubSub | undefined;

afterAll(async () => {
  await reader?.close();
  for (const platform of platforms) await platform.dispose();
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

const start = (workDir?: string) =>
  startCliPlatform({
    ...(workDir ? { workDir } : {}),
    config: CONFIG_PATH,
    ownPubSub: true,
    timeoutMs: 60_000,
    detached: true,
    extraArgs: ['--data', dataDir, '--no-schedules'],
  });

describe('batchwire dev --data killed (SIGKILL) while a flow runs', () => {
  it('reports the flow failed once, on its client topic, after the next start', {
    timeout: 150_000,
  }, async () => {
    await ensureBuilt();
    // Arrange: a flow whose training job runs as long as the platform does.
    const first = await start();
    platforms.push(first);
    reader = new PubSub({
      projectId: config.project,
      apiEndpoint: first.env.PUBSUB_EMULATOR_HOST,
      emulatorMode: true,
    });
    await reader.topic(outputTopic(PRODUCT, CLIENT)).createSubscription('downstream');
    await reader.close();
    const job = `projects/${config.project}/locations/${config.region}/jobs/${schedulerJobId(PRODUCT, 'train', CLIENT)}`;
    const fired = await fetch(`${first.env.BATCHWIRE_SCHEDULER_URL}/v1/${job}:run`, { method: 'POST' });
    const answer = (await fired.json()) as { lastAttempt: { status: number; body: { execution: string } } };
    expect(answer.lastAttempt.status).toBe(202);
    const execution = answer.lastAttempt.body.execution;
    // Recorded before CreateExecution answered, hence before onSchedule's answer.
    expect(readdirSync(runningRecords)).toEqual([`${execution.split('/').pop()}.json`]);

    // Act: SIGKILL to its process group (the functions with it), as the OOM killer or a crash
    // leaves it; then a start on the same --data.
    const emulatorPids = processesIn(join(dataDir, 'pubsub'));
    expect(emulatorPids).toHaveLength(1);
    process.kill(-first.pid, 'SIGKILL');
    expect(await first.exited).toBeNull();
    // The kill left the lock (a dead pid: stale, taken over) and .batchwire/env, with addresses
    // nothing answers at: the start removes it until its own is written.
    const lock = join(first.workDir, '.batchwire', 'dev.lock');
    expect(readFileSync(lock, 'utf8')).toBe(String(first.pid));
    const staleEnvRemoved = until(() => !existsSync(first.envFile), 60_000);
    const second = await start(first.workDir);
    platforms.push(second);
    await staleEnvRemoved;

    // Assert: the emulator left behind is gone; the client's subscription made before the kill
    // is there, and gets the flow's result: failed, saying why.
    expect(emulatorPids.filter(isProcessAlive)).toEqual([]);
    reader = new PubSub({
      projectId: config.project,
      apiEndpoint: second.env.PUBSUB_EMULATOR_HOST,
      emulatorMode: true,
    });
    const subscription = reader.subscription('downstream');
    const flows: Array<{ type: string; reason: string | null }> = [];
    subscription.on('message', (message: Message) => {
      const data = JSON.parse(message.data.toString()) as { execution?: string; reason?: string | null };
      if (data.execution === execution) {
        flows.push({ type: message.attributes['ce-type'] ?? '', reason: data.reason ?? null });
      }
      message.ack();
    });
    await vi.waitFor(() => expect(flows).toHaveLength(1), { timeout: 30_000, interval: 100 });
    expect(flows[0]).toEqual({ type: 'dev.batchwire.flow.failed', reason: PLATFORM_STOPPED_UNEXPECTEDLY });
    expect(readdirSync(runningRecords)).toEqual([]);
    // Exactly once: a clean stop publishes everything still to go before it saves Pub/Sub. The
    // client's provisioned subscription, never read, holds every copy there is: one. No other
    // subscription (onComplete's included) holds one still to deliver.
    await subscription.close();
    expect(await second.terminate()).toBe(0);
    const snapshot = readPubSubSnapshotFile(join(dataDir, 'pubsub', 'snapshot.json'));
    const copies: Record<string, number> = Object.fromEntries(
      (snapshot?.subscriptions ?? []).map((s) => [
        s.config.name.split('/').pop(),
        s.backlog.filter((id) =>
          Buffer.from(snapshot?.messages[id]?.data ?? '', 'base64')
            .toString()
            .includes(execution),
        ).length,
      ]),
    );
    expect(copies).toMatchObject({ [outputSubscription(PRODUCT, CLIENT)]: 1, downstream: 0 });
    expect(Object.values(copies).reduce((sum, n) => sum + n, 0)).toBe(1);
    expect(flows).toHaveLength(1);
    expect(second.output().match(/cut short by a crash or kill of the last run/g)).toHaveLength(1);
    expect(readdirSync(runningRecords)).toEqual([]);
  });
});
