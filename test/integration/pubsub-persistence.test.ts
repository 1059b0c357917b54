import { randomUUID } from 'node:crypto';
import { type Message, PubSub } from '@google-cloud/pubsub';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type PubSubEmulator, startPubSubEmulator } from '#local/pubsub/emulator.js';
import { emulatorClients, readPubSubSnapshot, restorePubSubSnapshot } from '#local/pubsub/persistence.js';

/**
 * What `--data` keeps of Pub/Sub: the run's emulator is the one that "stops" (its state is read
 * into a snapshot), and a second, fresh emulator is the one after the restart. Both are
 * Google's own emulator, driven with the real client library.
 */

const project = `persist-${randomUUID().slice(0, 8)}`;
let fresh: PubSubEmulator;
let before: PubSub;
let after: PubSub;

beforeAll(async () => {
  const shared = process.env.PUBSUB_EMULATOR_HOST;
  // startPubSubEmulator reuses PUBSUB_EMULATOR_HOST when set: this one must be new.
  delete process.env.PUBSUB_EMULATOR_HOST;
  try {
    fresh = await startPubSubEmulator();
  } finally {
    process.env.PUBSUB_EMULATOR_HOST = shared;
  }
  before = new PubSub({ projectId: project, apiEndpoint: shared as string, emulatorMode: true });
  after = new PubSub({ projectId: project, apiEndpoint: fresh.host, emulatorMode: true });
}, 90_000);

afterAll(async () => {
  await Promise.allSettled([before?.close(), after?.close()]);
  await fresh?.stop();
});

/** Receives (and acks) what a subscription delivers until `count` arrived; returns their data. */
async function drain(pubsub: PubSub, subscription: string, count: number): Promise<string[]> {
  const seen: string[] = [];
  const sub = pubsub.subscription(subscription);
  sub.on('message', (message: Message) => {
    seen.push(message.data.toString());
    message.ack();
  });
  try {
    await vi.waitFor(() => expect(seen.length).toBeGreaterThanOrEqual(count), { timeout: 20_000 });
    return seen;
  } finally {
    await sub.close();
  }
}

/** Pulls once (waiting briefly): what a subscription holds beyond what a test expected. */
async function pullRest(pubsub: PubSub, subscription: string): Promise<number> {
  const clients = await emulatorClients(pubsub.options.apiEndpoint as string);
  try {
    const [response] = await clients.subscriber.pull({
      subscription: `projects/${project}/subscriptions/${subscription}`,
      maxMessages: 100,
      returnImmediately: true,
    });
    return response.receivedMessages?.length ?? 0;
  } finally {
    await clients.close();
  }
}

describe('Pub/Sub snapshot and restore', () => {
  it('gives each subscription back exactly what it had not acked, and keeps push configs', async () => {
    // Arrange: one topic, two subscriptions that acked different messages; a push subscription.
    const [topic] = await before.createTopic('results');
    await topic.createSubscription('reader-a');
    await topic.createSubscription('reader-b');
    const [pushTopic] = await before.createTopic('pushed');
    await pushTopic.createSubscription('pusher', {
      pushConfig: { pushEndpoint: 'http://127.0.0.1:9/projects/p/topics/pushed' },
      ackDeadlineSeconds: 42,
    });
    for (const data of ['m1', 'm2', 'm3']) {
      await topic.publishMessage({ data: Buffer.from(data), attributes: { 'ce-id': data } });
    }
    // a acks m1 only; b acks m2 and m3 only (each nacks the others, leaving them in its backlog).
    for (const [name, acks] of [
      ['reader-a', ['m1']],
      ['reader-b', ['m2', 'm3']],
    ] as const) {
      const sub = before.subscription(name);
      const done = new Set<string>();
      sub.on('message', (message: Message) => {
        const data = message.data.toString();
        if ((acks as readonly string[]).includes(data)) message.ack();
        else message.nack();
        done.add(data);
      });
      await vi.waitFor(() => expect(done.size).toBe(3), { timeout: 20_000 });
      await sub.close();
    }

    // Act: save from the old emulator, restore into the fresh one.
    const snapshot = await readPubSubSnapshot(before.options.apiEndpoint as string, project);
    await restorePubSubSnapshot(fresh.host, snapshot);

    // Assert
    expect(snapshot.topics.map((t) => t.split('/').pop()).sort()).toEqual(['pushed', 'results']);
    expect((await drain(after, 'reader-a', 2)).sort()).toEqual(['m2', 'm3']);
    expect(await drain(after, 'reader-b', 1)).toEqual(['m1']);
    expect(await pullRest(after, 'reader-a')).toBe(0);
    expect(await pullRest(after, 'reader-b')).toBe(0);
    const [metadata] = await after.subscription('pusher').getMetadata();
    expect(metadata.pushConfig?.pushEndpoint).toBe('http://127.0.0.1:9/projects/p/topics/pushed');
    expect(metadata.ackDeadlineSeconds).toBe(42);
  });
});
