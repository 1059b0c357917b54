import type { Message, PubSub, Subscription } from '@google-cloud/pubsub';
import type { TopicEvent } from './api-types.js';

export interface TopicFeed {
  /** Newest first. */
  events(): TopicEvent[];
  close(): Promise<void>;
}

/** How many events the console keeps; older ones are dropped (the topic is the record, not the console). */
const KEEP = 2_000;

/**
 * The console's own subscriptions on the client output topics, as any downstream consumer has:
 * `batchwire-console-{topic}`. Deterministic names, so a restart reuses them ("already exists"
 * is success); removed on close, so a persisted emulator does not pile up a backlog for a
 * console that is not running.
 */
export async function startTopicFeed(options: {
  pubsub: PubSub;
  topics: Array<{ topic: string; product: string; client: string }>;
  onEvent: (event: TopicEvent) => void;
}): Promise<TopicFeed> {
  const kept: TopicEvent[] = [];
  const subscriptions: Subscription[] = [];
  // One subscription per client topic, created together: the platform waits for them.
  const created = await Promise.all(
    options.topics.map(async ({ topic }) => {
      const name = `batchwire-console-${topic}`;
      try {
        return (await options.pubsub.topic(topic).createSubscription(name))[0];
      } catch (err) {
        if ((err as { code?: number }).code !== 6) throw err; // ALREADY_EXISTS: ours from a previous run
        return options.pubsub.subscription(name);
      }
    }),
  );
  for (const [i, { topic, product, client }] of options.topics.entries()) {
    const subscription = created[i] as Subscription;
    subscription.on('message', (message: Message) => {
      message.ack();
      const attributes = { ...message.attributes };
      const text = message.data.toString('utf8');
      let data: unknown = text;
      try {
        data = JSON.parse(text);
      } catch {
        // Not JSON: shown as text.
      }
      const event: TopicEvent = {
        topic,
        product,
        client,
        messageId: message.id,
        publishTime: message.publishTime.toISOString(),
        type: attributes['ce-type'] ?? '',
        id: attributes['ce-id'] ?? '',
        subject: attributes['ce-subject'] ?? '',
        attributes,
        data,
      };
      // At-least-once: a redelivered message is the same event, shown once.
      if (kept.some((seen) => seen.messageId === event.messageId)) return;
      kept.unshift(event);
      if (kept.length > KEEP) kept.length = KEEP;
      options.onEvent(event);
    });
    subscription.on('error', () => {
      // The emulator went away (the platform is stopping); nothing to show.
    });
    subscriptions.push(subscription);
  }
  return {
    events: () => kept,
    async close() {
      for (const subscription of subscriptions) {
        await subscription.close().catch(() => undefined);
        await subscription.delete().catch(() => undefined);
      }
    },
  };
}
