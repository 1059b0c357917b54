import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
 * Nothing accepted is lost: a burst of uploads from two clients, onComplete killed (SIGKILL)
 * while results flow, then the whole platform stopped with SIGTERM and started again on the
 * same `--data` folder and addresses. Each client topic has a subscription created before the
 * burst and read only after the restart: its backlog is kept across the stop, and in the end
 * every upload has exactly one result id in it: succeeded, or failed with a reason.
 */

const CONFIG_PATH = join(REPO_ROOT, 'test', 'fixtures', 'e2e', 'batchwire.yaml');
const config = parseConfig(readFileSync(CONFIG_PATH, 'utf8'), CONFIG_PATH);
const PRODUCT = 'mlops-template';
const CLIENTS = ['acme', 'globex'] as const;
/** Uploads per client: small enough for this 2-core machine to finish within the bound. */
const PER_CLIENT = 10;
/** Local Batch's task slots (`--max-tasks`): far fewer than the burst's tasks. */
const SLOT_LIMIT = 4;
const dataDir = mkdtempSync(join(tmpdir(), 'batchwire-chaos-'));
const platforms: CliPlatform[] = [];
const subscriptions: Subscription[] = [];
let pubsub: PubSub | undefined;
let readersClient: PubSub | undefined;

afterAll(async () => {
  await Promise.allSettled(subscriptions.map((s) => s.close()));
  await readersClient?.close();
  await pubsub?.close();
  for (const platform of platforms) await platform.dispose();
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

interface ConsoleLine {
  kind?: string;
  name?: string;
  state?: string;
  pid?: number;
  restarts?: number;
  [key: string]: unknown;
}

/** The console's JSON lines (`batchwire dev --json`). */
function consoleLines(platform: CliPlatform): ConsoleLine[] {
  return platform
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => {
      try {
        return JSON.parse(line) as ConsoleLine;
      } catch {
        return {};
      }
    });
}

function functionHealth(platform: CliPlatform, name: string): ConsoleLine | undefined {
  return consoleLines(platform)
    .filter((line) => line.kind === 'function.health' && line.name === name)
    .at(-1);
}

/** The most tasks RUNNING at once, from the console's `task.state` lines. */
function peakRunningTasks(platform: CliPlatform): number {
  const running = new Set<string>();
  let peak = 0;
  for (const line of consoleLines(platform)) {
    if (line.kind !== 'task.state') continue;
    const key = `${String(line.job)}/${String(line.task)}`;
    if (line.state === 'RUNNING') running.add(key);
    else running.delete(key);
    peak = Math.max(peak, running.size);
  }
  return peak;
}

interface Result {
  ceId: string;
  type: string;
  reason: string | null;
}

describe('chaos: a burst, a killed function and a restart', () => {
  it('accounts for every upload exactly once', { timeout: 480_000 }, async () => {
    await ensureBuilt();
    // Arrange: the platform with its own emulator and a data folder; each client subscribed to
    // its output topic, as a downstream system is, before anything is uploaded.
    const first = await startCliPlatform({
      config: CONFIG_PATH,
      ownPubSub: true,
      // A cold start takes up to a minute on a loaded 2-core machine.
      timeoutMs: 120_000,
      extraArgs: ['--data', dataDir, '--max-tasks', String(SLOT_LIMIT)],
    });
    platforms.push(first);
    pubsub = new PubSub({
      projectId: config.project,
      apiEndpoint: first.env.PUBSUB_EMULATOR_HOST,
      emulatorMode: true,
    });
    // Two subscriptions per client topic, both created before the first upload: one read live
    // (it tells when results flow), one read only after the restart (its backlog must survive
    // the stop in the saved Pub/Sub state, and every result must be in it).
    const live = new Map<string, Result[]>();
    const results = new Map<string, Result[]>();
    const collect = (into: Map<string, Result[]>) => (message: Message) => {
      const data = JSON.parse(message.data.toString()) as {
        input?: { uri?: string };
        reason?: string | null;
      };
      const uri = data.input?.uri ?? '?';
      const seen = into.get(uri) ?? [];
      seen.push({
        ceId: message.attributes['ce-id'] ?? '',
        type: message.attributes['ce-type'] ?? '',
        reason: data.reason ?? null,
      });
      into.set(uri, seen);
      message.ack();
    };
    for (const client of CLIENTS) {
      const topic = pubsub.topic(outputTopic(PRODUCT, client));
      const [subscription] = await topic.createSubscription(`chaos-${client}`);
      subscription.on('message', collect(live));
      // Errors while the emulator is down are the library's to retry; they must not throw here.
      subscription.on('error', () => {});
      subscriptions.push(subscription);
      await topic.createSubscription(`chaos-${client}-after-restart`);
    }
    const accounted = () => results.size;
    const seenLive = () => live.size;

    // Act 1: the burst, from two clients at once: two thirds now, the rest just before the stop.
    const uploads: string[] = [];
    const storage = new Storage({ apiEndpoint: first.env.STORAGE_EMULATOR_HOST, projectId: config.project });
    const burst = (from: number, to: number) =>
      Promise.all(
        CLIENTS.flatMap((client) =>
          Array.from({ length: to - from }, async (_, k) => {
            const name = `${PRODUCT}/${client}/inputs/chaos-${from + k}.jsonl`;
            await storage
              .bucket(config.bucket)
              .file(name)
              .save(`{"text":"${client} ${from + k}"}\n`);
            uploads.push(`gs://${config.bucket}/${name}`);
          }),
        ),
      );
    const wave = Math.round((PER_CLIENT * 2) / 3);
    await burst(0, wave);

    // Act 2: onComplete killed once results flow; it must come back by itself.
    await vi.waitFor(() => expect(seenLive()).toBeGreaterThanOrEqual(2), { timeout: 60_000, interval: 100 });
    const victim = functionHealth(first, 'onComplete');
    expect(victim?.state).toBe('up');
    process.kill(victim?.pid as number, 'SIGKILL');
    await vi.waitFor(
      () => expect(functionHealth(first, 'onComplete')).toMatchObject({ state: 'up', restarts: 1 }),
      {
        timeout: 60_000,
        interval: 200,
      },
    );

    // Act 3: the rest of the burst, SIGTERM at once, then the same data folder and addresses.
    await burst(wave, PER_CLIENT);
    expect(uploads).toHaveLength(CLIENTS.length * PER_CLIENT);
    expect(seenLive()).toBeLessThan(uploads.length);
    expect(await first.terminate()).toBe(0);
    const second = await startCliPlatform({
      config: CONFIG_PATH,
      ownPubSub: true,
      // A cold start takes up to a minute on a loaded 2-core machine.
      timeoutMs: 120_000,
      portArgs: first.portArgs,
      extraArgs: ['--data', dataDir, '--max-tasks', String(SLOT_LIMIT)],
    });
    platforms.push(second);

    // Read what the after-restart subscriptions hold: whatever was published before the stop
    // (restored from --data) and after it.
    readersClient = new PubSub({
      projectId: config.project,
      apiEndpoint: second.env.PUBSUB_EMULATOR_HOST,
      emulatorMode: true,
    });
    for (const client of CLIENTS) {
      const subscription = readersClient.subscription(`chaos-${client}-after-restart`);
      subscription.on('message', collect(results));
      subscription.on('error', () => {});
      subscriptions.push(subscription);
    }

    // Assert: every upload has its result. A result
    // whose claim a killed or stopped onComplete held is published by the next attempt after the
    // claim's 60 s lease, at the router's backoff (as Eventarc retries): minutes, not seconds.
    await vi.waitFor(() => expect(accounted()).toBe(uploads.length), { timeout: 300_000, interval: 250 });
    expect([...results.keys()].sort()).toEqual([...uploads].sort());
    const allIds = new Set<string>();
    for (const [uri, seen] of results) {
      const ids = new Set(seen.map((r) => r.ceId));
      // Copies of one result carry the same ce-id (at least once); never two different results.
      expect(ids.size, `${uri} has ${ids.size} different results`).toBe(1);
      const [result] = seen;
      expect(result?.type).toMatch(/^dev\.batchwire\.inference\.(succeeded|failed)$/);
      if (result?.type === 'dev.batchwire.inference.failed') {
        expect(result.reason, `${uri} failed without a reason`).toMatch(/\S/);
      }
      for (const id of ids) allIds.add(id);
    }
    expect(allIds.size).toBe(uploads.length);

    // And admission held: no more tasks ran at once than local Batch has slots, in either run.
    expect(peakRunningTasks(first), 'the console reported no running task').toBeGreaterThan(0);
    for (const platform of [first, second])
      expect(peakRunningTasks(platform)).toBeLessThanOrEqual(SLOT_LIMIT);
  });
});
