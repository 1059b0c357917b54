import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { type Message, PubSub } from '@google-cloud/pubsub';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { keepPubSubState } from '#local/pubsub/kept-state.js';
import { emulatorClients, readPubSubSnapshotFile } from '#local/pubsub/persistence.js';
import { ownPubSubRig } from '../helpers/pubsub.js';

/**
 * A streaming subscriber (the real client library) kept running while the platform's Pub/Sub
 * is saved, stopped, started again and restored as `batchwire dev --data` does it: the state
 * saved and the emulator stopped; a new emulator on a port of its own, the state restored, and
 * only then clients let in again on the same Pub/Sub port. The subscriber reconnects by itself
 * and misses nothing: every message published before and after the stop arrives, and the
 * subscriber never fails (no stream finds its subscription missing).
 */

const project = `live-${randomUUID().slice(0, 8)}`;
const rig = ownPubSubRig('batchwire-live');
const file = join(rig.dataDir, 'snapshot.json');
const { kept, clients } = rig;

afterAll(() => rig.close(), 60_000);

/** One message published to `topic` with `id` as its data and attribute. */
async function publish(host: string, topic: string, ids: string[]): Promise<void> {
  const publisher = new PubSub({ projectId: project, apiEndpoint: host, emulatorMode: true });
  try {
    for (const id of ids)
      await publisher.topic(topic).publishMessage({ data: Buffer.from(id), attributes: { id } });
  } finally {
    await publisher.close();
  }
}

/** The number in the ack id of one more delivery on the emulator at `host`. */
async function nextAckIdNumber(host: string): Promise<number> {
  await publish(host, 'probe', ['probe']);
  const clients = await emulatorClients(host);
  try {
    const [response] = await clients.subscriber.pull({
      subscription: `projects/${project}/subscriptions/probe`,
      maxMessages: 1,
      returnImmediately: false,
    });
    const ackId = response.receivedMessages?.[0]?.ackId ?? '';
    return Number(ackId.slice(ackId.lastIndexOf(':') + 1));
  } finally {
    await clients.close();
  }
}

describe('a streaming subscriber kept across a Pub/Sub save and restore', () => {
  it('receives every message published before and after the stop', { timeout: 120_000 }, async () => {
    // Arrange: the "first run" on a fixed Pub/Sub port (nothing saved yet), and a subscriber.
    const first = await rig.emulator();
    kept.push(await keepPubSubState({ emulatorHost: first.host, project, file, port: 0 }));
    const host = kept[0]?.host as string;
    // The restart reopens the relay on the same address, as `batchwire dev` does on its port.
    const port = Number(host.slice(host.lastIndexOf(':') + 1));
    expect(port).toBeGreaterThan(0);
    const admin = new PubSub({ projectId: project, apiEndpoint: host, emulatorMode: true });
    clients.push(admin);
    const [topic] = await admin.createTopic('results');
    await topic.createSubscription('downstream');
    // A second subscription that acks nothing: its backlog gives the restore copies to publish
    // (and to acknowledge on `downstream`) while the subscriber reconnects.
    await topic.createSubscription('archive');
    const [probe] = await admin.createTopic('probe');
    await probe.createSubscription('probe');

    const reader = new PubSub({ projectId: project, apiEndpoint: host, emulatorMode: true });
    clients.push(reader);
    const received = new Set<string>();
    const subscription = reader.subscription('downstream');
    subscription.on('message', (message: Message) => {
      received.add(message.attributes.id ?? '?');
      message.ack();
    });
    const errors: string[] = [];
    subscription.on('error', (err) => errors.push(err.message));
    const before = ['a1', 'a2', 'a3', 'a4', 'a5'];
    await publish(host, 'results', before.slice(0, 3));
    await vi.waitFor(() => expect(received.size).toBe(3), { timeout: 20_000 });
    // The last two are published as the stop begins: not necessarily delivered before it.
    await publish(host, 'results', before.slice(3));

    // Act: stop (state saved, emulator stopped), then start on the same port (new emulator,
    // state restored); the subscriber is left running throughout.
    await kept[0]?.save();
    await first.stop();
    const snapshot = readPubSubSnapshotFile(file);
    const second = await rig.emulator();
    kept.push(await keepPubSubState({ emulatorHost: second.host, project, file, port }));
    const after = ['c1', 'c2', 'c3'];
    await publish(host, 'results', after);

    // Assert: everything arrived, and the subscriber never failed.
    await vi.waitFor(() => expect([...before, ...after].filter((id) => !received.has(id))).toEqual([]), {
      timeout: 60_000,
      interval: 200,
    });
    expect(errors).toEqual([]);
    // Ack ids go on from where the first run stopped: an ack of the first run that a client
    // retries across the restart cannot acknowledge a message of the second.
    expect(snapshot?.ackIdsUsed).toBeGreaterThan(0);
    expect(await nextAckIdNumber(second.host)).toBeGreaterThan(snapshot?.ackIdsUsed as number);
  });
});
