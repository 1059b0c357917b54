import { randomUUID } from 'node:crypto';
import type { Message, PubSub, Subscription, Topic } from '@google-cloud/pubsub';

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
