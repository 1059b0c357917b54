import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Message, PubSub, type Subscription } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../shared/config/load.js';
import { outputTopic } from '../../shared/plan/names.js';
import { ensureBuilt } from '../helpers/dist.js';
import { type CliPlatform, REPO_ROOT, startCliPlatform } from '../helpers/platform.js';

/**
 * A downstream system reads a client's output topic with a streaming subscriber and keeps it
 * running while `batchwire dev --data` is stopped (SIGTERM) and started again on the same
 * addresses: its client library reconnects by itself, and every upload's result reaches it
 * (a copy twice is allowed, at least once; none missing).
 */

const CONFIG_PATH = join(REPO_ROOT, 'test', 'fixtures', 'e2e', 'batchwire.yaml');
const config = parseConfig(readFileSync(CONFIG_PATH, 'utf8'), CONFIG_PATH);
const PRODUCT = 'mlops-template';
const CLIENT = 'acme';
/** Enough that some results are published before the stop and some after it. */
const UPLOADS = 8;
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

describe('a streaming subscriber kept across a restart', () => {
  it('receives every result, before and after the stop', { timeout: 300_000 }, async () => {
    await ensureBuilt();
    // Arrange: the platform with its own emulator and --data; the downstream subscriber.
    const start = (portArgs?: string[]) =>
      startCliPlatform({
        config: CONFIG_PATH,
        ownPubSub: true,
        timeoutMs: 120_000,
        ...(portArgs ? { portArgs } : {}),
        extraArgs: ['--data', dataDir, '--max-tasks', '2'],
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
    subscription.on('message', (message: Message) => {
      const data = JSON.parse(message.data.toString()) as { input?: { uri?: string } };
      const uri = data.input?.uri ?? '?';
      received.set(uri, (received.get(uri) ?? 0) + 1);
      message.ack();
    });
    // While Pub/Sub is down the library retries by itself; an error here means it gave up.
    const errors: string[] = [];
    subscription.on('error', (err) => errors.push(err.message));

    // Act: a burst of uploads; once results flow, SIGTERM, and a start on the same addresses.
    const storage = new Storage({ apiEndpoint: first.env.STORAGE_EMULATOR_HOST, projectId: config.project });
    const uploads = await Promise.all(
      Array.from({ length: UPLOADS }, async (_, k) => {
        const name = `${PRODUCT}/${CLIENT}/inputs/restart-${k}.jsonl`;
        await storage.bucket(config.bucket).file(name).save(`{"text":"restart ${k}"}\n`);
        return `gs://${config.bucket}/${name}`;
      }),
    );
    await vi.waitFor(() => expect(received.size).toBeGreaterThanOrEqual(2), {
      timeout: 60_000,
      interval: 100,
    });

    // Some results are still to come: they cross the restart.
    expect(received.size).toBeLessThan(UPLOADS);
    expect(await first.terminate()).toBe(0);
    const second = await start(first.portArgs);
    platforms.push(second);

    // Assert: every upload's result reached the subscriber (copies allowed), which never failed.
    await vi.waitFor(() => expect(uploads.filter((uri) => !received.has(uri))).toEqual([]), {
      timeout: 150_000,
      interval: 250,
    });
    expect(errors).toEqual([]);
  });
});
