import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Message, PubSub, Subscription, Topic } from '@google-cloud/pubsub';
import { type PubSubEmulator, startPubSubEmulator } from '#local/pubsub/emulator.js';
import type { KeptPubSub } from '#local/pubsub/kept-state.js';

/**
 * Subscribes `subscriptionName` to `topic` (real client, emulator) and hands every message to
 * `onMessage`, acked on arrival: tests read what arrived, and never see a redelivery.
 */
export async function subscribe(
  topic: Topic,
  subscriptionName: string,
  onMessage: (message: Message) => void,
): Promise<Subscription> {
  const [subscription] = await topic.createSubscription(subscriptionName);
  subscription.on('message', (message: Message) => {
    onMessage(message);
    message.ack();
  });
  return subscription;
}

/** {@link subscribe}, collecting every message into `messages` (a new array unless given). */
export async function collectMessages(
  topic: Topic,
  subscriptionName: string,
  messages: Message[] = [],
): Promise<{ subscription: Subscription; messages: Message[] }> {
  const subscription = await subscribe(topic, subscriptionName, (message) => messages.push(message));
  return { subscription, messages };
}

/** A new topic (named `prefix-<random>`) with a subscription that collects what is published to it. */
export async function collectingTopic(
  pubsub: PubSub,
  prefix: string,
): Promise<{ topicName: string; messages: Message[]; close: () => Promise<void> }> {
  const [topic] = await pubsub.createTopic(`${prefix}-${randomUUID().slice(0, 8)}`);
  const { subscription, messages } = await collectMessages(
    topic,
    `${prefix}-sub-${randomUUID().slice(0, 8)}`,
  );
  return { topicName: topic.name, messages, close: () => subscription.close() };
}

/**
 * What a test of Pub/Sub kept across restarts runs on: emulators of its own on any port (the
 * run's shared one stays untouched), the kept states over them and the clients it opened, all in
 * a fresh folder. `close()` (in `afterAll`) closes the clients, saves the states, stops the
 * emulators and removes the folder.
 */
export function ownPubSubRig(prefix: string) {
  const dataDir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const emulators: PubSubEmulator[] = [];
  const kept: KeptPubSub[] = [];
  const clients: PubSub[] = [];
  return {
    dataDir,
    kept,
    clients,
    async emulator(): Promise<PubSubEmulator> {
      const shared = process.env.PUBSUB_EMULATOR_HOST;
      delete process.env.PUBSUB_EMULATOR_HOST;
      try {
        const emulator = await startPubSubEmulator({ port: 0 });
        emulators.push(emulator);
        return emulator;
      } finally {
        process.env.PUBSUB_EMULATOR_HOST = shared;
      }
    },
    async close(): Promise<void> {
      await Promise.allSettled(clients.map((client) => client.close()));
      await Promise.allSettled(kept.map((state) => state.save()));
      await Promise.allSettled(emulators.map((emulator) => emulator.stop()));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
