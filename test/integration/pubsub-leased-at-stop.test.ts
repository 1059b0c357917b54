import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Message, PubSub } from '@google-cloud/pubsub';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { type PubSubEmulator, startPubSubEmulator } from '#local/pubsub/emulator.js';
import { type KeptPubSub, keepPubSubState } from '#local/pubsub/kept-state.js';
import { readPubSubSnapshotFile } from '#local/pubsub/persistence.js';

/**
 * A message a client's streaming subscriber has received but not acknowledged when the
 * platform stops is leased to that stream: the emulator hands it to nobody else until the lease
 * runs out, which the client library keeps extending. The stop (save, emulator stopped, new
 * emulator, restore, as `batchwire dev --data` does it) must still keep it, so that it is
 * delivered again after the restart: at least once, whatever the client did with it.
 */

const project = `leased-${randomUUID().slice(0, 8)}`;
const dataDir = mkdtempSync(join(tmpdir(), 'batchwire-leased-'));
const file = join(dataDir, 'snapshot.json');
const emulators: PubSubEmulator[] = [];
const kept: KeptPubSub[] = [];
const clients: PubSub[] = [];

/** A new emulator of our own on any port (the run's shared one stays untouched). */
async function ownEmulator(): Promise<PubSubEmulator> {
  const shared = process.env.PUBSUB_EMULATOR_HOST;
  delete process.env.PUBSUB_EMULATOR_HOST;
  try {
    const emulator = await startPubSubEmulator({ port: 0 });
    emulators.push(emulator);
    return emulator;
  } finally {
    process.env.PUBSUB_EMULATOR_HOST = shared;
  }
}

afterAll(async () => {
  await Promise.allSettled(clients.map((client) => client.close()));
  await Promise.allSettled(kept.map((state) => state.save()));
  await Promise.allSettled(emulators.map((emulator) => emulator.stop()));
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

describe('a message a subscriber holds unacknowledged at the stop', () => {
  it('is kept and delivered again after the restart', { timeout: 120_000 }, async () => {
    // Arrange: a client's outputs subscription (as the plan creates it) and its streaming
    // subscriber, which receives a message and never acknowledges it (it crashed while
    // processing it, say), while it acknowledges the others.
    const first = await ownEmulator();
    kept.push(await keepPubSubState({ emulatorHost: first.host, project, file, port: 0 }));
    const host = kept[0]?.host as string;
    const port = Number(host.slice(host.lastIndexOf(':') + 1));
    const admin = new PubSub({ projectId: project, apiEndpoint: host, emulatorMode: true });
    clients.push(admin);
    const outputs = 'batch-demo-acme-outputs';
    const [topic] = await admin.createTopic(outputs);
    const subscriptionName = `projects/${project}/subscriptions/${outputs}`;
    await topic.createSubscription(outputs, { ackDeadlineSeconds: 60 });

    const reader = new PubSub({ projectId: project, apiEndpoint: host, emulatorMode: true });
    clients.push(reader);
    const deliveries: string[] = [];
    const subscription = reader.subscription(outputs);
    subscription.on('message', (message: Message) => {
      const id = message.attributes.id ?? '?';
      deliveries.push(id);
      // The first delivery of `held` is never acknowledged; every later one is.
      if (id !== 'held' || deliveries.filter((seen) => seen === 'held').length > 1) message.ack();
    });
    subscription.on('error', () => {});
    for (const id of ['done', 'held']) {
      await topic.publishMessage({ data: Buffer.from(id), attributes: { id } });
    }
    await vi.waitFor(() => expect(deliveries).toEqual(expect.arrayContaining(['done', 'held'])), {
      timeout: 20_000,
    });

    // Act: stop (state saved, emulator stopped) while the subscriber holds `held`, then start
    // again on the same port (new emulator, state restored); the subscriber keeps running.
    const saved = await kept[0]?.save();
    await first.stop();
    const snapshot = readPubSubSnapshotFile(file);
    const second = await ownEmulator();
    kept.push(await keepPubSubState({ emulatorHost: second.host, project, file, port }));

    // Assert: the snapshot kept it for the client's subscription, the stop said so, and the
    // subscriber receives it again.
    const backlog = snapshot?.subscriptions.find(({ config }) => config.name === subscriptionName)?.backlog;
    const keptData = (backlog ?? []).map((id) =>
      Buffer.from(snapshot?.messages[id]?.data ?? '', 'base64').toString(),
    );
    expect(keptData).toContain('held');
    expect(saved?.takenBack).toBeGreaterThanOrEqual(1);
    expect(saved?.notTakenBack).toBeUndefined();
    await vi.waitFor(() => expect(deliveries.filter((id) => id === 'held')).toHaveLength(2), {
      timeout: 60_000,
      interval: 200,
    });
  });
});
