import type { ClientConfig, PubSub, Topic } from '@google-cloud/pubsub';
import { TransientError } from '../runtime/errors.js';
import { fromGrpcError, GrpcCode } from './grpc-errors.js';
import { lazyClient } from './lazy-client.js';
import type { Publisher } from './ports.js';

/** Per-publish deadline in ms: a publish that has not been acknowledged by then fails (transient). */
export const DEFAULT_PUBLISH_TIMEOUT_MS = 30_000;

interface PublisherBase {
  /** Project of the topics (bare topic names are resolved in it). */
  projectId: string;
  timeoutMs?: number;
}

/**
 * Either a ready `PubSub` client or the config to build one, never both. With neither, the
 * client's defaults apply: it honours `PUBSUB_EMULATOR_HOST` itself (plaintext, no credentials),
 * else Google Cloud with Application Default Credentials.
 */
export type PubSubPublisherOptions = PublisherBase &
  ({ client: PubSub; clientOptions?: never } | { client?: never; clientOptions?: ClientConfig });

/** The Publisher port plus the adapter's own lifecycle. */
export interface PubSubPublisher extends Publisher {
  /** Flushes and closes the client (if the adapter built it). */
  close(): Promise<void>;
}

/**
 * The {@link Publisher} port over `@google-cloud/pubsub`. The library is loaded on the first
 * publish (cold start) and the client built once per instance; `Topic` handles are cached.
 *
 * Errors: a missing topic (NOT_FOUND) is a {@link TransientError}, because the fix (creating the
 * topic, e.g. by onboarding the client) happens outside the event and the redelivered event then
 * succeeds; so are UNAVAILABLE, DEADLINE_EXCEEDED, a permission not yet granted, and a client
 * that cannot load. Only a message Pub/Sub refuses as such (INVALID_ARGUMENT) is permanent.
 *
 * @example
 * const publisher = createPubSubPublisher({ projectId: config.project });
 * await publisher.publish('batch-mlops-template-acme-outputs', data, { 'ce-id': id });
 */
export function createPubSubPublisher(options: PubSubPublisherOptions): PubSubPublisher {
  const timeout = options.timeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS;
  const client = lazyClient(async () => {
    const { PubSub } = await import('@google-cloud/pubsub');
    return new PubSub({ projectId: options.projectId, ...(options.clientOptions ?? {}) });
  }, options.client);
  const topics = new Map<string, Topic>();

  const getTopic = async (name: string): Promise<Topic> => {
    let topic = topics.get(name);
    if (!topic) {
      const pubsub = await client.get();
      // One message per publish, sent at once: a function waits for its result anyway.
      topic = pubsub.topic(name, {
        batching: { maxMessages: 1, maxMilliseconds: 0 },
        gaxOpts: { timeout },
      });
      topics.set(name, topic);
    }
    return topic;
  };

  return {
    async publish(topicName, data, attributes) {
      try {
        const topic = await getTopic(topicName);
        return await topic.publishMessage({ data, attributes });
      } catch (err) {
        throw publishError(err, topicName);
      }
    },

    async close() {
      for (const topic of topics.values()) await topic.flush().catch(() => undefined);
      topics.clear();
      await client.close();
    },
  };
}

/** Translates a publish failure; see {@link createPubSubPublisher} for which are retryable. */
export function publishError(err: unknown, topic: string): Error {
  const code = (err as { code?: unknown } | undefined)?.code;
  const action = `publish to ${topic}`;
  if (code === GrpcCode.NOT_FOUND) {
    return new TransientError(
      `${action}: the topic does not exist (onboard the client to create it); the trigger will retry`,
      { cause: err },
    );
  }
  // PERMISSION_DENIED / UNAUTHENTICATED become a retryable PermissionDeniedError there.
  const mapped = fromGrpcError(err, action, { permission: 'pubsub.topics.publish' });
  // Retryable by default: only a message Pub/Sub refuses as such stays permanent.
  return code === GrpcCode.INVALID_ARGUMENT || mapped instanceof TransientError
    ? mapped
    : new TransientError(mapped.message, { cause: err });
}
