import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { google } from '@google-cloud/pubsub/build/protos/protos.js';
import { writeFileAtomically } from '../atomic-file.js';

/**
 * What `--data` keeps of the Pub/Sub emulator, which itself keeps nothing across a restart:
 * the project's topics, its subscriptions (with their push configs) and, per subscription, the
 * messages it had not acknowledged.
 */
export interface PubSubSnapshot {
  version: 1;
  project: string;
  savedAt: string;
  topics: string[];
  subscriptions: Array<{
    /** The subscription as `GetSubscription` answers it, to be created again as it was. */
    config: google.pubsub.v1.ISubscription & { name: string; topic: string };
    /** Ids (into `messages`) of what it had not acknowledged, oldest first. */
    backlog: string[];
  }>;
  /**
   * How many ack ids the emulator had handed out (they count up from 1 in each emulator run).
   * The restored emulator skips past them: a client whose acks are retried across the restart
   * would otherwise acknowledge other messages that happen to get the same ids. Absent in
   * snapshots saved before it was kept.
   */
  ackIdsUsed?: number;
  /** Each message once, by its original id: one message may be unacked on several subscriptions. */
  messages: Record<
    string,
    {
      topic: string;
      data: string;
      attributes: Record<string, string>;
      orderingKey?: string;
      publishTime?: string;
    }
  >;
}

export type EmulatorClients = {
  publisher: InstanceType<typeof import('@google-cloud/pubsub').v1.PublisherClient>;
  subscriber: InstanceType<typeof import('@google-cloud/pubsub').v1.SubscriberClient>;
};

/** gax clients for the emulator at `host` (plaintext, no credentials). */
export async function emulatorClients(host: string): Promise<EmulatorClients & { close(): Promise<void> }> {
  const [{ v1 }, { credentials }] = await Promise.all([
    import('@google-cloud/pubsub'),
    import('@grpc/grpc-js'),
  ]);
  const [servicePath, port] = [
    host.slice(0, host.lastIndexOf(':')),
    Number(host.slice(host.lastIndexOf(':') + 1)),
  ];
  const options = { servicePath, port, sslCreds: credentials.createInsecure() };
  const publisher = new v1.PublisherClient(options);
  const subscriber = new v1.SubscriberClient(options);
  return {
    publisher,
    subscriber,
    close: async () => {
      await Promise.allSettled([publisher.close(), subscriber.close()]);
    },
  };
}

const PULL_BATCH = 1_000;
/** The emulator may answer an immediate pull with nothing while it still has messages: ask again. */
const EMPTY_PULLS_TO_STOP = 3;

/**
 * Reads the emulator's topics, subscriptions and unacknowledged messages of `project`.
 *
 * Call it once nothing of the platform consumes any more (the router's subscriptions closed,
 * which nacks what they held). Push subscriptions are turned into pull ones first, so that the
 * emulator stops pushing while they are read. A client's subscriber may stay connected while
 * this runs: what the emulator streams to it meanwhile reaches it, and is not in the snapshot;
 * what it has not been sent yet is. What a subscriber holds unacknowledged is not either: once
 * clients are cut off, {@link takeBackLeases} adds it.
 */
export async function readPubSubSnapshot(host: string, project: string): Promise<PubSubSnapshot> {
  // Gone already (e.g. a SIGTERM to the whole process group): say so now rather than let the
  // client retry UNAVAILABLE; the previous snapshot then stays as it was.
  const alive = await fetch(`http://${host}/`, { signal: AbortSignal.timeout(2_000) }).then(
    (response) => response.ok,
    () => false,
  );
  if (!alive) throw new Error(`the Pub/Sub emulator at ${host} is gone: its messages could not be saved`);
  const clients = await emulatorClients(host);
  try {
    const { publisher, subscriber } = clients;
    const [topics] = await publisher.listTopics({ project: `projects/${project}` }, { autoPaginate: true });
    const [subscriptions] = await subscriber.listSubscriptions(
      { project: `projects/${project}` },
      { autoPaginate: true },
    );
    const snapshot: PubSubSnapshot = {
      version: 1,
      project,
      savedAt: new Date().toISOString(),
      topics: topics.map((topic) => topic.name as string).filter((name) => !isProbe(name)),
      subscriptions: [],
      messages: {},
    };
    for (const subscription of subscriptions) {
      const name = subscription.name as string;
      const topic = subscription.topic as string;
      // A subscription whose topic was deleted receives nothing more and cannot be created again.
      if (topic === '_deleted-topic_' || isProbe(name)) continue;
      if (subscription.pushConfig?.pushEndpoint) {
        await subscriber.modifyPushConfig({ subscription: name, pushConfig: {} });
      }
      const backlog: string[] = [];
      await pullBacklog(subscriber, name, topic, snapshot, backlog);
      snapshot.subscriptions.push({
        config: { ...(subscription as PubSubSnapshot['subscriptions'][number]['config']) },
        backlog,
      });
    }
    const ackIdsUsed = await lastAckId(clients, project);
    if (ackIdsUsed !== undefined) snapshot.ackIdsUsed = ackIdsUsed;
    return snapshot;
  } finally {
    await clients.close();
  }
}

/**
 * Pulls everything `subscription` (of `topic`) can deliver now into `snapshot`: each message
 * once in `messages`, its id once in `backlog`. The pulled messages stay leased to this reader
 * (never acknowledged), so each is pulled once. Returns how many deliveries it took.
 */
async function pullBacklog(
  subscriber: EmulatorClients['subscriber'],
  subscription: string,
  topic: string,
  snapshot: PubSubSnapshot,
  backlog: string[],
): Promise<number> {
  const inBacklog = new Set(backlog);
  let deliveries = 0;
  for (let empty = 0; empty < EMPTY_PULLS_TO_STOP; ) {
    const [response] = await subscriber.pull({
      subscription,
      maxMessages: PULL_BATCH,
      returnImmediately: true,
    });
    const received = response.receivedMessages ?? [];
    if (received.length === 0) {
      empty += 1;
      continue;
    }
    deliveries += received.length;
    for (const { message } of received) {
      if (!message?.messageId) continue;
      const id = message.messageId;
      if (!inBacklog.has(id)) {
        inBacklog.add(id);
        backlog.push(id);
      }
      snapshot.messages[id] ??= {
        topic,
        data: Buffer.from(message.data ?? '').toString('base64'),
        attributes: { ...(message.attributes ?? {}) },
        ...(message.orderingKey ? { orderingKey: message.orderingKey } : {}),
        ...(message.publishTime?.seconds
          ? { publishTime: new Date(Number(String(message.publishTime.seconds)) * 1000).toISOString() }
          : {}),
      };
    }
  }
  return deliveries;
}

/**
 * Creates the snapshot's topics and subscriptions on a fresh emulator and gives every
 * subscription back exactly its own backlog.
 *
 * Publishing fans out to every subscription of a topic, and a new subscription gets only what
 * is published after it exists. So: all subscriptions are created (without their push
 * endpoints), each saved message is published once to its topic, and every subscription that
 * had already acknowledged it (it is not in its backlog) has the copy acknowledged right away
 * by its new id. No subscription gets a message it had acknowledged; each gets the ones it had
 * not, with new message ids and publish times (as after any redelivery, consumers dedupe by
 * content, e.g. a CloudEvent's `ce-id` attribute). Push configs are set last, so a push
 * endpoint never sees a copy that was meant to be acknowledged.
 *
 * Whatever exists already (topics, subscriptions) is kept: restoring twice adds the backlog
 * twice, so call it once per emulator start.
 */
export async function restorePubSubSnapshot(host: string, snapshot: PubSubSnapshot): Promise<RestoreOutcome> {
  const outcome: RestoreOutcome = { unacknowledged: [] };
  const clients = await emulatorClients(host);
  try {
    const { publisher, subscriber } = clients;
    if (snapshot.ackIdsUsed !== undefined) {
      // With room to spare: clients may still be served for a moment after the count was read.
      await skipAckIds(clients, snapshot.project, snapshot.ackIdsUsed + PULL_BATCH).catch((err: Error) => {
        outcome.ackIdsNotSkipped = err.message;
      });
    }
    const topics = new Set([...snapshot.topics, ...snapshot.subscriptions.map((s) => s.config.topic)]);
    for (const name of topics) {
      await publisher.createTopic({ name }).catch(ignoreAlreadyExists);
    }
    for (const { config } of snapshot.subscriptions) {
      const { pushConfig: _push, ...pull } = config;
      await subscriber.createSubscription(pull).catch(ignoreAlreadyExists);
    }

    // Who must end up with each message; everyone else on its topic acks the copy.
    const holders = new Map<string, Set<string>>();
    for (const { config, backlog } of snapshot.subscriptions) {
      for (const id of backlog) {
        const set = holders.get(id) ?? new Set<string>();
        set.add(config.name);
        holders.set(id, set);
      }
    }
    const unwanted = new Map<string, Set<string>>();
    for (const [id, holding] of holders) {
      const message = snapshot.messages[id];
      if (!message) continue;
      const [response] = await publisher.publish({
        topic: message.topic,
        messages: [
          {
            data: Buffer.from(message.data, 'base64'),
            attributes: message.attributes,
            ...(message.orderingKey ? { orderingKey: message.orderingKey } : {}),
          },
        ],
      });
      const newId = response.messageIds?.[0];
      if (!newId) continue;
      for (const { config } of snapshot.subscriptions) {
        if (config.topic !== message.topic || holding.has(config.name)) continue;
        const ids = unwanted.get(config.name) ?? new Set<string>();
        ids.add(newId);
        unwanted.set(config.name, ids);
      }
    }
    for (const [subscription, ids] of unwanted) {
      const left = await acknowledge(clients, subscription, ids);
      if (left > 0) outcome.unacknowledged.push({ subscription, count: left });
    }

    for (const { config } of snapshot.subscriptions) {
      if (config.pushConfig?.pushEndpoint) {
        await subscriber.modifyPushConfig({ subscription: config.name, pushConfig: config.pushConfig });
      }
    }
    return outcome;
  } finally {
    await clients.close();
  }
}

/**
 * What a restore could not do: copies a subscription had acknowledged before the stop that
 * could not be acknowledged again, because a subscriber that reconnected during the restore
 * (a client library does so by itself) took them first. That subscriber sees them once more:
 * at least once, as after any redelivery (consumers dedupe on `ce-id`).
 */
export interface RestoreOutcome {
  unacknowledged: Array<{ subscription: string; count: number }>;
  /**
   * Why the ack ids of the previous run could not be skipped: an ack a client retries across
   * the restart may then acknowledge another message with the same id.
   */
  ackIdsNotSkipped?: string;
}

/** How long to look for the copies a subscription must not get before leaving them to it. */
const ACK_TIMEOUT_MS = 10_000;

/**
 * Pulls `subscription` until every id in `ids` is acknowledged, or the time is up; returns how
 * many were not found (another subscriber holds them). What it pulls and must keep is held (its
 * lease extended) until the end and then released (deadline 0), so the same messages are not
 * pulled over and over while the unwanted ones are looked for.
 */
async function acknowledge(
  clients: EmulatorClients,
  subscription: string,
  ids: Set<string>,
): Promise<number> {
  const { subscriber } = clients;
  const kept: string[] = [];
  const deadline = Date.now() + ACK_TIMEOUT_MS;
  try {
    while (ids.size > 0) {
      if (Date.now() > deadline) return ids.size;
      const [response] = await subscriber.pull({
        subscription,
        maxMessages: PULL_BATCH,
        returnImmediately: true,
      });
      const toAck: string[] = [];
      for (const received of response.receivedMessages ?? []) {
        const id = received.message?.messageId ?? '';
        if (!received.ackId) continue;
        if (ids.delete(id)) toAck.push(received.ackId);
        else kept.push(received.ackId);
      }
      if (toAck.length > 0) await subscriber.acknowledge({ subscription, ackIds: toAck });
      if (kept.length > 0) {
        await subscriber.modifyAckDeadline({
          subscription,
          ackIds: kept.slice(-PULL_BATCH),
          ackDeadlineSeconds: 60,
        });
      }
    }
  } finally {
    for (let i = 0; i < kept.length; i += PULL_BATCH) {
      await subscriber
        .modifyAckDeadline({ subscription, ackIds: kept.slice(i, i + PULL_BATCH), ackDeadlineSeconds: 0 })
        .catch(() => {});
    }
  }
  return 0;
}

/** Topic and subscription (same id) the platform uses to read or advance the emulator's ack ids. */
const ACK_ID_PROBE = 'batchwire-ack-ids';

function isProbe(name: string): boolean {
  return name.endsWith(`/${ACK_ID_PROBE}`);
}

/** The number in an emulator ack id (`projects/p/subscriptions/s:17`), undefined if not one. */
function ackIdNumber(ackId: string | null | undefined): number | undefined {
  const value = Number((ackId ?? '').slice((ackId ?? '').lastIndexOf(':') + 1));
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

/** Creates the probe topic and subscription and publishes `count` messages to it. */
async function openProbe(clients: EmulatorClients, project: string, count: number) {
  const topic = `projects/${project}/topics/${ACK_ID_PROBE}`;
  const subscription = `projects/${project}/subscriptions/${ACK_ID_PROBE}`;
  await clients.publisher.createTopic({ name: topic }).catch(ignoreAlreadyExists);
  await clients.subscriber.createSubscription({ name: subscription, topic }).catch(ignoreAlreadyExists);
  await clients.publisher.publish({
    topic,
    messages: Array.from({ length: count }, () => ({ data: Buffer.from('ack id probe') })),
  });
  return {
    subscription,
    remove: async () => {
      await clients.subscriber.deleteSubscription({ subscription }).catch(() => {});
      await clients.publisher.deleteTopic({ topic }).catch(() => {});
    },
  };
}

/**
 * The highest ack id the emulator has handed out: it numbers every delivery, whichever the
 * subscription, so the id of one more delivery tells. Undefined when the emulator's ack ids
 * are not numbered that way.
 */
async function lastAckId(clients: EmulatorClients, project: string): Promise<number | undefined> {
  const probe = await openProbe(clients, project, 1);
  try {
    for (let empty = 0; empty < EMPTY_PULLS_TO_STOP; empty++) {
      const [response] = await clients.subscriber.pull({
        subscription: probe.subscription,
        maxMessages: 1,
        returnImmediately: true,
      });
      const [received] = response.receivedMessages ?? [];
      if (received) return ackIdNumber(received.ackId);
    }
    return undefined;
  } finally {
    await probe.remove();
  }
}

/**
 * Advances a fresh emulator's ack ids past `through`, the last one the previous run handed out,
 * by pulling (and releasing) probe messages. Ack ids are `subscription:N`, N counting from 1 in
 * every emulator run, and a client library retries an ack for minutes across a restart (gax
 * retries UNAVAILABLE): without this, such an ack would acknowledge the new message that got
 * its id, which its subscriber may never have seen.
 */
async function skipAckIds(clients: EmulatorClients, project: string, through: number): Promise<void> {
  const probe = await openProbe(clients, project, Math.min(through, PULL_BATCH));
  try {
    let highest = 0;
    for (let empty = 0; highest <= through; ) {
      const [response] = await clients.subscriber.pull({
        subscription: probe.subscription,
        maxMessages: PULL_BATCH,
        returnImmediately: true,
      });
      const received = response.receivedMessages ?? [];
      if (received.length === 0) {
        if (++empty >= EMPTY_PULLS_TO_STOP * 10) throw new Error(`ack ids stopped at ${highest}`);
        continue;
      }
      for (const { ackId } of received) highest = Math.max(highest, ackIdNumber(ackId) ?? 0);
      await clients.subscriber.modifyAckDeadline({
        subscription: probe.subscription,
        ackIds: received.map(({ ackId }) => ackId as string),
        ackDeadlineSeconds: 0,
      });
    }
  } finally {
    await probe.remove();
  }
}

/**
 * The number the emulator's next ack id will have (undefined when its ack ids are not numbered):
 * read before clients are let in, it is where their deliveries begin, for {@link takeBackLeases}.
 */
export async function nextAckIdNumber(host: string, project: string): Promise<number | undefined> {
  const clients = await emulatorClients(host);
  try {
    const last = await lastAckId(clients, project);
    return last === undefined ? undefined : last + 1;
  } finally {
    await clients.close();
  }
}

/** What {@link takeBackLeases} did. */
export interface TakeBackOutcome {
  /** Messages that were leased to a client (received, not acknowledged) and are now in the backlog. */
  takenBack: number;
  /** Why some leased messages may be missing from the snapshot; absent when none are. */
  notTakenBack?: string;
}

/** Ack ids given back per request: 10,000 take the emulator about 50 ms. */
const RELEASE_BATCH = 10_000;

/**
 * Adds to `snapshot` the messages that clients' subscribers had received and not acknowledged.
 * Call it once clients are cut off (the relay closed), after {@link readPubSubSnapshot}.
 *
 * Such a message is leased to the stream that received it, so a pull does not see it, and the
 * emulator gives it back only when its ack deadline passes after the stream is gone: measured on
 * emulator 0.8.20 with a 60 s subscription whose Node subscriber was cut off on the wire, 40 s
 * later, far longer than a stop may take. So the leases are given back at once, then everything
 * is pulled again (measured on the same emulator; see {@link giveBackLeases} for how).
 *
 * A stream that was just cut may still be open inside the emulator for a moment and be handed
 * what was given back (seen about once in three runs of its test). The emulator's count of
 * deliveries (its ack ids, see {@link lastAckId}) tells: if it went up by more than this reader
 * pulled, someone else was served, and the leases are given back and pulled again. Bounded by
 * `timeoutMs`; what may be left then is said in `notTakenBack`.
 *
 * Messages this reader pulled before (the snapshot's backlog) come back along with the rest;
 * each stays once in the backlog.
 */
export async function takeBackLeases(
  host: string,
  snapshot: PubSubSnapshot,
  options: { fromAckId: number | undefined; timeoutMs: number },
): Promise<TakeBackOutcome> {
  const deadline = Date.now() + options.timeoutMs;
  const before = new Map(
    snapshot.subscriptions.map(({ config, backlog }) => [config.name, new Set(backlog)]),
  );
  const outcome = (notTakenBack?: string): TakeBackOutcome => {
    let takenBack = 0;
    for (const { config, backlog } of snapshot.subscriptions) {
      const had = before.get(config.name);
      takenBack += backlog.filter((id) => !had?.has(id)).length;
    }
    return { takenBack, ...(notTakenBack ? { notTakenBack } : {}) };
  };
  if (options.fromAckId === undefined) {
    return outcome(
      "the emulator's ack ids are not numbered as expected, so its deliveries cannot be counted",
    );
  }
  const clients = await emulatorClients(host);
  try {
    const { subscriber } = clients;
    let from = options.fromAckId;
    for (;;) {
      // The probe's own delivery is the last one so far, and nobody's lease.
      const last = await lastAckId(clients, snapshot.project);
      if (last === undefined) throw new Error('the emulator no longer reports its ack ids');
      for (const { config } of snapshot.subscriptions) {
        const done = await giveBackLeases(subscriber, config, { from, through: last - 1, deadline });
        if (!done) return outcome(`giving leases back took longer than ${options.timeoutMs} ms`);
      }
      let pulled = 0;
      for (const { config, backlog } of snapshot.subscriptions) {
        pulled += await pullBacklog(subscriber, config.name, config.topic, snapshot, backlog);
      }
      const after = await lastAckId(clients, snapshot.project);
      if (after === undefined) throw new Error('the emulator no longer reports its ack ids');
      snapshot.ackIdsUsed = Math.max(snapshot.ackIdsUsed ?? 0, after);
      // Deliveries since `last`: this reader's pulls, the probe of `after`, and anyone else's.
      const toOthers = after - last - 1 - pulled;
      if (toOthers <= 0) return outcome();
      if (Date.now() > deadline) {
        return outcome(`${toOthers} message(s) were handed to a subscriber stream that was closing`);
      }
      from = last + 1;
    }
  } finally {
    await clients.close();
  }
}

/**
 * Makes every message of `subscription` that is leased (delivered, not acknowledged) available
 * again at once. Returns false when `deadline` passed first.
 *
 * - A subscription that does not retain acknowledged messages (the platform's and the plan's
 *   never do) is sought to 1970: `Seek` to a time makes what was published after it and not
 *   acknowledged available again, leased or not, in one request whatever the backlog.
 * - One that retains them would get those back too (measured: the emulator keeps them even once
 *   `retainAckedMessages` is turned off), so the client would see again, after every restart,
 *   what it had acknowledged. Its leases are given back one by one instead, with
 *   `ModifyAckDeadline` 0, which needs the ack id the client holds. The emulator's ack ids are
 *   `SUBSCRIPTION:N`, N counting every delivery of its run, and an ack id of another
 *   subscription or one no longer outstanding is ignored (measured: no error, no effect). So
 *   every ack id of a delivery since clients were let in (`from` to `through`) is named, newest
 *   first: about 5 to 10 µs per delivery of the run.
 */
async function giveBackLeases(
  subscriber: EmulatorClients['subscriber'],
  subscription: PubSubSnapshot['subscriptions'][number]['config'],
  range: { from: number; through: number; deadline: number },
): Promise<boolean> {
  const { name } = subscription;
  if (!subscription.retainAckedMessages) {
    await subscriber.seek({ subscription: name, time: { seconds: 0 } });
    return true;
  }
  for (let high = range.through; high >= range.from; high -= RELEASE_BATCH) {
    if (Date.now() > range.deadline) return false;
    const low = Math.max(range.from, high - RELEASE_BATCH + 1);
    await subscriber.modifyAckDeadline({
      subscription: name,
      ackIds: Array.from({ length: high - low + 1 }, (_, i) => `${name}:${low + i}`),
      ackDeadlineSeconds: 0,
    });
  }
  return true;
}

function ignoreAlreadyExists(err: { code?: number }): void {
  // gRPC ALREADY_EXISTS: it is there already, which is what we wanted.
  if (err.code !== 6) throw err;
}

/** Writes the snapshot atomically (temp file + rename): a stop cut short leaves the previous one whole. */
export function writePubSubSnapshot(file: string, snapshot: PubSubSnapshot): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileAtomically(file, JSON.stringify(snapshot));
}

/** The saved snapshot, or undefined when there is none; a file that is not one throws. */
export function readPubSubSnapshotFile(file: string): PubSubSnapshot | undefined {
  if (!existsSync(file)) return undefined;
  const snapshot = JSON.parse(readFileSync(file, 'utf8')) as PubSubSnapshot;
  if (snapshot?.version !== 1 || !Array.isArray(snapshot.subscriptions)) {
    throw new Error(`${file} is not a Pub/Sub snapshot of this version`);
  }
  return snapshot;
}
