import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Message, PubSub, type Subscription } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '#shared/config/load.js';
import { outputTopic } from '#shared/plan/names.js';
import { ensureBuilt } from '../helpers/dist.js';
import { type CliPlatform, REPO_ROOT, startCliPlatform } from '../helpers/platform.js';

/**
 * A downstream system reads a client's output topic with a streaming subscriber and keeps it
 * running while `batchwire dev --data` is stopped (SIGTERM) and started again on the same
 * addresses: its client library reconnects by itself, and every upload's result reaches it
 * (a copy twice is allowed, at least once; none missing). A flow that was running when the
 * stop came reaches it too, as failed because the platform stopped.
 */

const CONFIG_PATH = join(REPO_ROOT, 'test', 'fixtures', 'e2e', 'batchwire.yaml');
const config = parseConfig(readFileSync(CONFIG_PATH, 'utf8'), CONFIG_PATH);
const PRODUCT = 'mlops-template';
const CLIENT = 'acme';
/** One before the stop, and enough after it that their jobs cannot all finish before it. */
const UPLOADS = 10;
const dataDir = mkdtempSync(join(tmpdir(), 'batchwire-restart-'));
const platforms: CliPlatform[] = [];
let reader: PubSub | undefined;
let subscription: Subscription | undefined;

afterAll(async () => {
  await subscription?.close();
  await reader?.close();
  for (const platform of platforms) await platform.dispose();
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

describe('a restart with --data and a subscriber kept running across it', () => {
  it('delivers every result, and reports a flow cut short as failed', { timeout: 300_000 }, async () => {
    await ensureBuilt();
    // Arrange: the platform with its own emulator and --data; the downstream subscriber.
    const start = (portArgs?: string[]) =>
      startCliPlatform({
        config: CONFIG_PATH,
        ownPubSub: true,
        timeoutMs: 120_000,
        ...(portArgs ? { portArgs } : {}),
        // One task at a time: the flow's job waits behind the uploads' jobs, so the flow is
        // still running when the stop comes.
        extraArgs: ['--data', dataDir, '--max-tasks', '1'],
      });
    const first = await start();
    platforms.push(first);
    reader = new PubSub({
      projectId: config.project,
      apiEndpoint: first.env.PUBSUB_EMULATOR_HOST,
      emulatorMode: true,
    });
    const [created] = await reader.topic(outputTopic(PRODUCT, CLIENT)).createSubscription('downstream');
    subscription = created;
    const received = new Map<string, number>();
    const flows: Array<{ type: string; execution?: string; reason?: string | null }> = [];
    subscription.on('message', (message: Message) => {
      const type = message.attributes['ce-type'] ?? '';
      const data = JSON.parse(message.data.toString()) as {
        input?: { uri?: string };
        execution?: string;
        reason?: string | null;
      };
      if (type.startsWith('dev.batchwire.flow.')) {
        flows.push({
          type,
          ...(data.execution ? { execution: data.execution } : {}),
          reason: data.reason ?? null,
        });
      } else {
        const uri = data.input?.uri ?? '?';
        received.set(uri, (received.get(uri) ?? 0) + 1);
      }
      message.ack();
    });
    // While Pub/Sub is down the library retries by itself; an error here means it gave up.
    const errors: string[] = [];
    subscription.on('error', (err) => errors.push(err.message));

    // Act: a first upload whose result shows the subscriber reads; then a burst, a flow and, at
    // once, SIGTERM and a start on the same addresses. With one task slot the burst's jobs run one
    // after another, so most of their results cross the restart.
    const storage = new Storage({ apiEndpoint: first.env.STORAGE_EMULATOR_HOST, projectId: config.project });
    const upload = async (k: number) => {
      const name = `${PRODUCT}/${CLIENT}/inputs/restart-${k}.jsonl`;
      await storage.bucket(config.bucket).file(name).save(`{"text":"restart ${k}"}\n`);
      return `gs://${config.bucket}/${name}`;
    };
    const uploads = [await upload(0)];
    await vi.waitFor(() => expect(received.size).toBe(1), { timeout: 60_000, interval: 100 });
    uploads.push(...(await Promise.all(Array.from({ length: UPLOADS - 1 }, (_, k) => upload(k + 1)))));

    // A flow started now waits for a task slot: it is running when the stop comes.
    const job = `projects/${config.project}/locations/${config.region}/jobs/bw-${PRODUCT}-train-${CLIENT}`;
    const fired = await fetch(`${first.env.BATCHWIRE_SCHEDULER_URL}/v1/${job}:run`, { method: 'POST' });
    const answer = (await fired.json()) as { lastAttempt: { status: number; body: { execution: string } } };
    expect(answer.lastAttempt.status).toBe(202);
    // Some results are still to come: they cross the restart.
    expect(received.size).toBeLessThan(UPLOADS);
    expect(await first.terminate()).toBe(0);
    // The stop reported the flow and cleared its running record: no start reports it again.
    expect(readdirSync(join(dataDir, 'workflows', 'running'))).toEqual([]);
    const second = await start(first.portArgs);
    platforms.push(second);
    expect(second.output()).not.toMatch(/cut short by a crash or kill/);

    // Assert: every upload's result reached the subscriber (copies allowed), which never failed;
    // so did the flow's, failed because the platform stopped.
    await vi.waitFor(
      () => {
        expect(uploads.filter((uri) => !received.has(uri))).toEqual([]);
        expect(flows.map((flow) => flow.execution)).toContain(answer.lastAttempt.body.execution);
      },
      { timeout: 150_000, interval: 250 },
    );
    const flow = flows.find((f) => f.execution === answer.lastAttempt.body.execution);
    expect(flow?.type).toBe('dev.batchwire.flow.failed');
    expect(flow?.reason).toMatch(/platform stopped/);
    expect(errors).toEqual([]);
  });
});
