import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PubSub, v1 } from '@google-cloud/pubsub';
import { credentials } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isProcessAlive } from '#local/process-alive.js';
import { type PubSubEmulator, startPubSubEmulator } from '#local/pubsub/emulator.js';
import { readPubSubSnapshotFile } from '#local/pubsub/persistence.js';
import { recordEmulator, takeOverStaleEmulator } from '#local/pubsub/stale-emulator.js';

/**
 * The emulator a platform with --data started, left running when that platform was killed
 * without a stop: the next start saves what it holds and stops it, and leaves alone what is not
 * such an emulator.
 */

const PROJECT = 'batchwire-stale';
const LOCAL = { sslCreds: credentials.createInsecure() };
const dir = mkdtempSync(join(tmpdir(), 'stale-emulator-'));
const snapshotFile = join(dir, 'snapshot.json');
const recordFile = join(dir, 'emulator.json');
let emulator: PubSubEmulator;

beforeAll(async () => {
  // An emulator of its own, as the platform starts under --data (not the test run's shared one).
  const shared = process.env.PUBSUB_EMULATOR_HOST;
  delete process.env.PUBSUB_EMULATOR_HOST;
  try {
    emulator = await startPubSubEmulator({ project: PROJECT, dataDir: dir, ownProcessGroup: true });
  } finally {
    process.env.PUBSUB_EMULATOR_HOST = shared;
  }
  const pubsub = new PubSub({ projectId: PROJECT, apiEndpoint: emulator.host, emulatorMode: true });
  const [topic] = await pubsub.createTopic('left-behind');
  await topic.createSubscription('left-behind-reader');
  await topic.publishMessage({ data: Buffer.from('unread'), attributes: { 'ce-id': 'unread-1' } });
  // Received by the killed run's router and never acknowledged: leased to a stream that is gone.
  const [leasedTopic] = await pubsub.createTopic('leased-at-kill');
  await leasedTopic.createSubscription('leased-at-kill-reader', { ackDeadlineSeconds: 600 });
  await leasedTopic.publishMessage({ data: Buffer.from('leased'), attributes: { 'ce-id': 'leased-1' } });
  const subscriber = new v1.SubscriberClient({ apiEndpoint: '127.0.0.1', port: emulator.port, ...LOCAL });
  const [pulled] = await subscriber.pull({
    subscription: `projects/${PROJECT}/subscriptions/leased-at-kill-reader`,
    maxMessages: 10,
  });
  expect(pulled.receivedMessages).toHaveLength(1);
  await subscriber.close();
  await pubsub.close();
}, 60_000);

afterAll(async () => {
  await emulator?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('takeOverStaleEmulator', () => {
  it('leaves alone an emulator whose owner still runs, and a recorded pid that is not an emulator', async () => {
    // Arrange: the owner is this test's parent, alive; then a record naming this very process.
    const pid = emulator.pid as number;
    writeFileSync(recordFile, JSON.stringify({ pid, port: emulator.port, owner: process.ppid }));

    // Act
    const owned = await takeOverStaleEmulator({ dir, project: PROJECT, snapshotFile });
    writeFileSync(recordFile, JSON.stringify({ pid: process.pid, port: emulator.port, owner: 2 ** 22 + 1 }));
    const notAnEmulator = await takeOverStaleEmulator({ dir, project: PROJECT, snapshotFile });

    // Assert
    expect(owned).toBeUndefined();
    expect(notAnEmulator).toBeUndefined();
    expect(isProcessAlive(pid)).toBe(true);
    expect(existsSync(recordFile)).toBe(false);
    expect(existsSync(snapshotFile)).toBe(false);
  });

  it('saves the state of a stale emulator into the snapshot file and stops it', async () => {
    // Arrange: recorded as the platform records it (its owner is this process: not another one
    // still running it).
    const pid = emulator.pid as number;
    recordEmulator(dir, { pid, port: emulator.port });

    // Act
    const found = await takeOverStaleEmulator({ dir, project: PROJECT, snapshotFile });
    const again = await takeOverStaleEmulator({ dir, project: PROJECT, snapshotFile });

    // Assert
    expect(found).toEqual({ pid, saved: true });
    expect(again).toBeUndefined();
    expect(isProcessAlive(pid)).toBe(false);
    expect(existsSync(recordFile)).toBe(false);
    const snapshot = readPubSubSnapshotFile(snapshotFile);
    const reader = snapshot?.subscriptions.find((s) => s.config.name.endsWith('/left-behind-reader'));
    expect(reader?.backlog.map((id) => snapshot?.messages[id]?.attributes['ce-id'])).toEqual(['unread-1']);
    const leased = snapshot?.subscriptions.find((s) => s.config.name.endsWith('/leased-at-kill-reader'));
    expect(leased?.backlog.map((id) => snapshot?.messages[id]?.attributes['ce-id'])).toEqual(['leased-1']);
  });
});
