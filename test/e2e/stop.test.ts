import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PubSub } from '@google-cloud/pubsub';
import { afterAll, describe, expect, it } from 'vitest';
import { readPubSubSnapshotFile } from '#local/pubsub/persistence.js';
import { ensureBuilt } from '../helpers/dist.js';
import { type CliPlatform, processesIn, REPO_ROOT, startCliPlatform } from '../helpers/platform.js';

/**
 * What process managers and CI do: SIGTERM to the platform's whole process group, which takes
 * the function processes down at the same moment as `batchwire dev` itself. The platform must
 * still stop by itself (no restarts of what the signal took, each step of the stop bounded),
 * save its Pub/Sub state under `--data` (its emulator runs in a group of its own, for that
 * reason) and exit, leaving nothing behind.
 */

const CONFIG_PATH = join(REPO_ROOT, 'test', 'fixtures', 'e2e', 'batchwire.yaml');
const dataDir = mkdtempSync(join(tmpdir(), 'batchwire-stop-'));
const platforms: CliPlatform[] = [];

afterAll(async () => {
  for (const platform of platforms) await platform.dispose();
  rmSync(dataDir, { recursive: true, force: true });
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('batchwire dev and a SIGTERM to its process group', () => {
  it('stops, saves its Pub/Sub state, exits and leaves no process behind', { timeout: 180_000 }, async () => {
    await ensureBuilt();
    // Arrange: the platform leading its own process group, with its own emulator and --data.
    const platform = await startCliPlatform({
      config: CONFIG_PATH,
      ownPubSub: true,
      timeoutMs: 120_000,
      detached: true,
      extraArgs: ['--data', dataDir],
    });
    platforms.push(platform);
    const functionPids = platform
      .output()
      .split('\n')
      .filter((line) => line.includes('"kind":"function.health"'))
      .map((line) => (JSON.parse(line) as { pid?: number }).pid)
      .filter((pid): pid is number => typeof pid === 'number');
    expect(functionPids).toHaveLength(3);
    // A client's subscription with a message it has not read yet.
    const pubsub = new PubSub({
      projectId: 'batchwire-e2e',
      apiEndpoint: platform.env.PUBSUB_EMULATOR_HOST,
      emulatorMode: true,
    });
    const [topic] = await pubsub.createTopic('kept-across-sigterm');
    await topic.createSubscription('kept-across-sigterm-reader');
    await topic.publishMessage({ data: Buffer.from('unread'), attributes: { 'ce-id': 'unread-1' } });
    await pubsub.close();
    const emulatorPids = processesIn(join(dataDir, 'pubsub'));
    expect(emulatorPids).toHaveLength(1);

    // Act: every process of the group gets the signal at once.
    process.kill(-platform.pid, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      platform.exited,
      new Promise<'hanging'>((resolve) => {
        timer = setTimeout(() => resolve('hanging'), 120_000);
      }),
    ]);
    clearTimeout(timer);

    // Assert
    expect(code).toBe(0);
    expect(platform.output()).toContain('"message":"stopped"');
    expect(platform.output()).not.toMatch(/restarted \(pid/);
    expect(functionPids.filter(alive)).toEqual([]);
    expect(emulatorPids.filter(alive)).toEqual([]);
    const file = join(dataDir, 'pubsub', 'snapshot.json');
    expect(existsSync(file)).toBe(true);
    const snapshot = readPubSubSnapshotFile(file);
    const reader = snapshot?.subscriptions.find((s) => s.config.name.endsWith('/kept-across-sigterm-reader'));
    expect(reader?.backlog.map((id) => snapshot?.messages[id]?.attributes['ce-id'])).toEqual(['unread-1']);
  });
});
