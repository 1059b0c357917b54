import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { type Message, PubSub, type Topic } from '@google-cloud/pubsub';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { keepPubSubState } from '#local/pubsub/kept-state.js';
import { emulatorClients, readPubSubSnapshotFile } from '#local/pubsub/persistence.js';
import { ownPubSubRig } from '../helpers/pubsub.js';

/**
 * A message a client's streaming subscriber has received but not acknowledged when the
 * platform stops is leased to that stream: the emulator hands it to nobody else until the lease
 * runs out, which the client library keeps extending. The stop (save, emulator stopped, new
 * emulator, restore, as `batchwire dev --data` does it) must still keep it, so that it is
 * delivered again after the restart: at least once, whatever the client did with it.
 */

const rig = ownPubSubRig('batchwire-leased');
const { kept, clients } = rig;

afterAll(() => rig.close(), 60_000);

/** Publishes `id` (as data and attribute) to `topic` and pulls and acknowledges it on `subscription`. */
async function publishAcknowledged(
  host: string,
  topic: Topic,
  subscription: string,
  id: string,
): Promise<void> {
  await topic.publishMessage({ data: Buffer.from(id), attributes: { id } });
  const { subscriber, close } = await emulatorClients(host);
  try {
    const [response] = await subscriber.pull({ subscription, maxMessages: 1, returnImmediately: false });
    const [received] = response.receivedMessages ?? [];
    expect(received?.message?.attributes?.id).toBe(id);
    await subscriber.acknowledge({ subscription, ackIds: [received?.ackId as string] });
  } finally {
    await close();
  }
}

describe.each([
  { kind: 'the plan’s outputs subscription', retainAckedMessages: false },
  { kind: 'a subscription that retains acknowledged messages', retainAckedMessages: true },
])('a message a subscriber holds unacknowledged at the stop, on $kind', ({ retainAckedMessages }) => {
  it('is kept and delivered again after the restart, and nothing acknowledged is', {
    timeout: 120_000,
  }, async () => {
    // Arrange: a client's outputs subscription (as the plan creates it, or retaining what it
    // acknowledged) with one message acknowledged, and a streaming subscriber that receives
    // another and never acknowledges it (it crashed while processing it, say).
    const project = `leased-${randomUUID().slice(0, 8)}`;
    const file = join(rig.dataDir, `${project}.json`);
    const first = await rig.emulator();
    const firstRun = await keepPubSubState({ emulatorHost: first.host, project, file, port: 0 });
    kept.push(firstRun);
    const host = firstRun.host;
    const port = Number(host.slice(host.lastIndexOf(':') + 1));
    const admin = new PubSub({ projectId: project, apiEndpoint: host, emulatorMode: true });
    clients.push(admin);
    const outputs = 'batch-demo-acme-outputs';
    const subscriptionName = `projects/${project}/subscriptions/${outputs}`;
    const [topic] = await admin.createTopic(outputs);
    await topic.createSubscription(outputs, { ackDeadlineSeconds: 60, retainAckedMessages });
    await publishAcknowledged(host, topic, subscriptionName, 'done');

    const reader = new PubSub({ projectId: project, apiEndpoint: host, emulatorMode: true });
    clients.push(reader);
    const deliveries: string[] = [];
    const subscription = reader.subscription(outputs);
    subscription.on('message', (message: Message) => {
      const id = message.attributes.id ?? '?';
      deliveries.push(id);
      // The first delivery of `held` is never acknowledged; a later one is.
      if (deliveries.filter((seen) => seen === 'held').length > 1) message.ack();
    });
    subscription.on('error', () => {});
    await topic.publishMessage({ data: Buffer.from('held'), attributes: { id: 'held' } });
    await vi.waitFor(() => expect(deliveries).toEqual(['held']), { timeout: 20_000 });

    // Act: stop (state saved, emulator stopped) while the subscriber holds `held`, then start
    // again on the same port (new emulator, state restored); the subscriber keeps running.
    const saved = await firstRun.save();
    await first.stop();
    const snapshot = readPubSubSnapshotFile(file);
    const second = await rig.emulator();
    kept.push(await keepPubSubState({ emulatorHost: second.host, project, file, port }));

    // Assert: the snapshot kept `held` (and not `done`) for the subscription, the stop said so,
    // and the subscriber receives `held` again.
    const backlog = snapshot?.subscriptions.find(({ config }) => config.name === subscriptionName)?.backlog;
    const keptIds = (backlog ?? []).map((id) => snapshot?.messages[id]?.attributes.id);
    expect(keptIds).toEqual(['held']);
    expect(saved).toEqual({ takenBack: 1 });
    await vi.waitFor(() => expect(deliveries).toEqual(['held', 'held']), { timeout: 60_000, interval: 200 });
  });
});
