import { randomUUID } from 'node:crypto';
import { Duration, type Message, type PubSub, type Subscription } from '@google-cloud/pubsub';
import type { LocalStorageServer, StorageObjectResource } from '../storage/server.js';
import {
  type BinaryCloudEvent,
  type DeliveryOutcome,
  deliver,
  EVENTARC_RETRY,
  type RetryPolicy,
} from './delivery.js';
import { PendingEventStore } from './pending-store.js';

/** What the router tells the dev console about each event it routes. */
export interface RouterActivity {
  kind: 'event.delivered' | 'event.retry' | 'event.dropped' | 'event.kept';
  trigger: string;
  message: string;
  [key: string]: unknown;
}

/** A Cloud Storage trigger: finalize events of one bucket, to one destination. */
export interface StorageTrigger {
  name: string;
  bucket: string;
  destination: string;
  /** The destination function's timeout: each delivery's deadline (default 60 s). */
  timeoutMs?: number;
}

/** A Pub/Sub trigger: messages published to one topic, to one destination. */
export interface PubSubTrigger {
  name: string;
  project: string;
  topic: string;
  destination: string;
  /** The destination function's timeout: each delivery's deadline (default 60 s). */
  timeoutMs?: number;
}

export interface EventarcRouterOptions {
  storage: LocalStorageServer;
  /** A Pub/Sub client on the emulator (the router creates its subscriptions). */
  pubsub: PubSub;
  storageTriggers?: StorageTrigger[];
  pubsubTriggers?: PubSubTrigger[];
  retry?: Partial<RetryPolicy>;
  /**
   * Keep the storage events accepted but not yet delivered here (one file each) and deliver
   * them after a restart; Pub/Sub triggers need none, their messages stay unacked instead.
   */
  dataDir?: string;
  onActivity?: (activity: RouterActivity) => void;
}

export interface EventarcRouter {
  /** Resolves when every event accepted so far has been delivered, rejected or dropped. */
  idle(): Promise<void>;
  /** How many deliveries are under way (attempting or waiting to retry). */
  inFlight(): number;
  /**
   * Delivers a finalize event for `object` now, as the storage trigger of its bucket would
   * (start-up reconciliation uses it for inputs whose event was never delivered).
   */
  redeliverFinalize(object: StorageObjectResource): void;
  /**
   * Stops taking events, lets the deliveries under way finish for up to `drainMs` (default
   * 10 s), then aborts the rest: their storage events stay in `dataDir`, their Pub/Sub messages
   * unacked, for the next start.
   */
  close(options?: { drainMs?: number }): Promise<void>;
}

/** How long a stop lets deliveries under way finish before it cuts them short. */
export const DEFAULT_DRAIN_MS = 10_000;

const STORAGE_DATA_SCHEMA =
  'https://googleapis.github.io/google-cloudevents/jsonschema/google/events/cloud/storage/v1/StorageObjectData.json';
const PUBSUB_DATA_SCHEMA =
  'https://googleapis.github.io/google-cloudevents/jsonschema/google/events/cloud/pubsub/v1/MessagePublishedData.json';

/**
 * The local stand-in for Eventarc. Storage finalize notifications and Pub/Sub messages become
 * binary-mode CloudEvents POSTed to the trigger's destination, exactly as Eventarc shapes them,
 * retried with backoff on a 5xx and dropped once older than the max age.
 *
 * Pub/Sub triggers pull from a subscription named after the trigger and ack only once the event
 * is delivered, rejected or dropped; the client library extends the lease meanwhile, so a crash
 * of the router redelivers rather than loses the message, as with Eventarc's own subscription.
 */
export async function startEventarcRouter(options: EventarcRouterOptions): Promise<EventarcRouter> {
  const basePolicy: RetryPolicy = { ...EVENTARC_RETRY, ...options.retry };
  const policyFor = (trigger: { timeoutMs?: number }): RetryPolicy =>
    trigger.timeoutMs === undefined ? basePolicy : { ...basePolicy, attemptTimeoutMs: trigger.timeoutMs };
  const stop = new AbortController();
  let draining = false;
  const inFlight = new Set<Promise<unknown>>();
  const report = options.onActivity ?? (() => {});
  const pending = options.dataDir ? new PendingEventStore(options.dataDir) : undefined;

  const track = (
    trigger: { name: string; destination: string; timeoutMs?: number },
    subject: string,
    event: BinaryCloudEvent,
  ) => {
    const delivery = deliver(trigger.destination, event, policyFor(trigger), {
      signal: stop.signal,
      observer: {
        onRetry: (attempt, reason, delayMs) =>
          report({
            kind: 'event.retry',
            trigger: trigger.name,
            message: `${trigger.name}: ${subject} failed (${reason}), retry ${attempt} in ${delayMs} ms`,
          }),
      },
    }).then((outcome) => {
      describe(trigger.name, subject, outcome, report);
      return outcome;
    });
    inFlight.add(delivery);
    void delivery.finally(() => inFlight.delete(delivery));
    return delivery;
  };

  /**
   * A storage event is written down before its first attempt and forgotten only once it has an
   * outcome: an aborted delivery (a stop) keeps its record for the next start.
   */
  const trackStored = (trigger: StorageTrigger, subject: string, event: BinaryCloudEvent) => {
    const id = event.headers['ce-id'] ?? '';
    try {
      pending?.save({ version: 1, trigger: trigger.name, subject, event });
    } catch (err) {
      report({
        kind: 'event.retry',
        trigger: trigger.name,
        message: `${trigger.name}: ${subject} could not be kept for a restart (${(err as Error).message})`,
      });
    }
    if (draining) {
      // Stopping: accepted, and (with dataDir) kept on disk for the next start, not started now.
      report({
        kind: 'event.kept',
        trigger: trigger.name,
        message: pending
          ? `${trigger.name}: ${subject} arrived while stopping, kept for the next start`
          : `${trigger.name}: ${subject} arrived while stopping and is not delivered (nothing is kept without --data)`,
      });
      return;
    }
    void track(trigger, subject, event).then((outcome) => {
      if (outcome.kind !== 'aborted') pending?.remove(id);
    });
  };

  const storageTriggers = options.storageTriggers ?? [];
  const unsubscribers = storageTriggers.map((trigger) =>
    options.storage.onFinalize((object) => {
      if (object.bucket !== trigger.bucket) return;
      trackStored(trigger, object.name, storageFinalizedEvent(object));
    }),
  );

  // What the previous run accepted and never delivered goes first, to today's destination.
  for (const kept of pending?.loadAll((file, err) =>
    report({
      kind: 'event.dropped',
      trigger: 'router',
      message: `unreadable kept event ${file}: ${String(err)}`,
    }),
  ) ?? []) {
    const trigger = storageTriggers.find((t) => t.name === kept.trigger);
    if (!trigger) {
      report({
        kind: 'event.dropped',
        trigger: kept.trigger,
        message: `${kept.trigger}: ${kept.subject} kept from the last run, but no such trigger now`,
      });
      continue;
    }
    report({
      kind: 'event.retry',
      trigger: trigger.name,
      message: `${trigger.name}: ${kept.subject} kept from the last run, delivering`,
    });
    trackStored(trigger, kept.subject, kept.event);
  }

  const subscriptions: Subscription[] = [];
  for (const trigger of options.pubsubTriggers ?? []) {
    const topic = options.pubsub.topic(trigger.topic);
    const subscriptionName = `eventarc-${trigger.name}`;
    const [exists] = await topic.subscription(subscriptionName).exists();
    if (!exists) await topic.createSubscription(subscriptionName, { ackDeadlineSeconds: 60 });
    const subscription = topic.subscription(subscriptionName, {
      // The lease is held for as long as the delivery may retry (up to the max age): a lease that
      // lapsed earlier would let the emulator redeliver the message while it is still being retried.
      flowControl: { maxMessages: 100, allowExcessMessages: false },
      maxExtensionTime: Duration.from({ millis: basePolicy.maxAgeMs }),
    });
    subscription.on('message', (message: Message) => {
      if (draining) {
        // Stopping: left unacked for the next start. Not nacked now, which would only have the
        // emulator hand it straight back; closing the subscription nacks what it still holds.
        return;
      }
      const event = messagePublishedEvent(trigger, subscription.name, message);
      void track(trigger, `message ${message.id}`, event).then((outcome) => {
        // Aborted deliveries stay unacked so that the next router gets them again.
        if (outcome.kind !== 'aborted') message.ack();
        else message.nack();
      });
    });
    subscription.on('error', (err) =>
      report({ kind: 'event.dropped', trigger: trigger.name, message: `subscription error: ${err.message}` }),
    );
    subscriptions.push(subscription);
  }

  return {
    async idle() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
    inFlight: () => inFlight.size,
    redeliverFinalize(object) {
      for (const trigger of storageTriggers) {
        if (trigger.bucket === object.bucket)
          trackStored(trigger, object.name, storageFinalizedEvent(object));
      }
    },
    async close(closeOptions = {}) {
      if (!draining) {
        draining = true;
        const drainMs = closeOptions.drainMs ?? DEFAULT_DRAIN_MS;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          (async () => {
            while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
          })(),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, drainMs);
          }),
        ]);
        clearTimeout(timer);
      }
      for (const unsubscribe of unsubscribers) unsubscribe();
      stop.abort();
      await Promise.allSettled([...inFlight]);
      await Promise.allSettled(subscriptions.map((s) => s.close()));
    },
  };
}

/** A `google.cloud.storage.object.v1.finalized` event as Eventarc delivers it (binary mode). */
export function storageFinalizedEvent(object: StorageObjectResource): BinaryCloudEvent {
  const time = object.updated || object.timeCreated || new Date().toISOString();
  return {
    time: Date.parse(time),
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'ce-specversion': '1.0',
      'ce-id': randomUUID(),
      'ce-type': 'google.cloud.storage.object.v1.finalized',
      'ce-source': `//storage.googleapis.com/projects/_/buckets/${object.bucket}`,
      'ce-subject': headerValue(`objects/${object.name}`),
      'ce-time': time,
      'ce-dataschema': STORAGE_DATA_SCHEMA,
      'ce-bucket': object.bucket,
    },
    body: JSON.stringify(object),
  };
}

/** A `google.cloud.pubsub.topic.v1.messagePublished` event as Eventarc delivers it (binary mode). */
export function messagePublishedEvent(
  trigger: PubSubTrigger,
  subscription: string,
  message: Message,
): BinaryCloudEvent {
  const publishTime = message.publishTime.toISOString();
  const data = {
    message: {
      attributes: message.attributes,
      data: message.data.toString('base64'),
      messageId: message.id,
      message_id: message.id,
      publishTime,
      publish_time: publishTime,
      ...(message.orderingKey ? { orderingKey: message.orderingKey } : {}),
    },
    subscription,
  };
  return {
    time: message.publishTime.getTime(),
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'ce-specversion': '1.0',
      'ce-id': message.id,
      'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
      'ce-source': `//pubsub.googleapis.com/projects/${trigger.project}/topics/${trigger.topic}`,
      'ce-time': publishTime,
      'ce-dataschema': PUBSUB_DATA_SCHEMA,
    },
    body: JSON.stringify(data),
  };
}

/**
 * A `ce-*` header value as the CloudEvents HTTP binding writes it: characters outside printable
 * ASCII (and `%`, `"`) percent-encoded as UTF-8, so any object name can travel in `ce-subject`
 * (an HTTP header cannot carry them raw).
 */
export function headerValue(value: string): string {
  return Array.from(value)
    .map((char) =>
      /^[\x20-\x7e]$/.test(char) && char !== '%' && char !== '"' ? char : encodeURIComponent(char),
    )
    .join('');
}

function describe(
  trigger: string,
  subject: string,
  outcome: DeliveryOutcome,
  report: (activity: RouterActivity) => void,
): void {
  switch (outcome.kind) {
    case 'delivered':
      report({ kind: 'event.delivered', trigger, message: `${trigger}: ${subject} → ${outcome.status}` });
      return;
    case 'rejected':
      report({
        kind: 'event.dropped',
        trigger,
        message: `${trigger}: ${subject} rejected with ${outcome.status}, not retried: ${outcome.body}`,
      });
      return;
    case 'expired':
      report({
        kind: 'event.dropped',
        trigger,
        message: `${trigger}: ${subject} dropped after ${outcome.attempts} attempts, older than the max age (${outcome.lastError})`,
      });
      return;
    case 'aborted':
      report({
        kind: 'event.kept',
        trigger,
        message: `${trigger}: ${subject} cut short by the stop, kept for the next start`,
      });
      return;
  }
}
