import type { ObjectStore } from '../clients/ports.js';
import type { FlowTrigger } from './flow-start.js';
import { type ClaimScope, claimDoneObjectName, claimObjectName } from './object-path.js';

/**
 * Doing something once across concurrent and repeated deliveries, with nothing but the bucket:
 *
 * ```
 * take claim (create-only, ifGenerationMatch: 0) ── created ──▶ do it ──▶ write done record
 *      │ exists
 * done record? ── yes ──▶ answer with it (a repeat)
 *      │ no
 * read the claim: within its lease → another attempt is at it (retry later);
 *                 past its lease   → its holder died: take over, with what the claim recorded
 * ```
 *
 * A done record is only ever written under a claim, and neither is deleted: a claim just created
 * means the work was never done, so the first attempt reads nothing.
 *
 * Used by {@link publishOnce} (scope `results`: a result event published once per event id) and
 * by `startFlow` (scope `schedule`: a flow execution started once per Scheduler tick). What to do
 * within and after the lease is theirs to decide; the object names, the create-only write and
 * the record formats are here, in one place.
 */

/** A result being published (scope `results`); the key is the result event id. */
export interface ResultClaimRecord {
  eventId: string;
  type: string;
  topic: string;
  state: 'publishing';
  claimedAt: string;
  /** The Pub/Sub message (delivery) that holds the claim: its own redelivery may take over at once. */
  deliveryId: string;
}

/** A result published (scope `results`, done `published`). */
export interface ResultPublishedRecord {
  eventId: string;
  topic: string;
  state: 'published';
  messageId: string;
  publishedAt: string;
}

/**
 * A flow tick being started (scope `schedule`): the request as it was asked for (params merged
 * over the flow's configured ones), so that an attempt taking over a crashed start runs that
 * request and not its own, whose params may differ under the same key.
 */
export interface FlowClaimRecord {
  version: 1;
  key: string;
  trigger: FlowTrigger;
  flow: string;
  product: string;
  client: string | null;
  /** Absent from claims written before it was recorded: those fall back on the retry's params. */
  params?: Record<string, unknown>;
  runId: string;
  requestedAt: string;
}

/** A flow tick started (scope `schedule`, done `started`). */
export interface FlowStartedRecord {
  version: 1;
  key: string;
  execution: string;
  startedAt: string;
}

/** Takes the claim of `key`: true when this call created it, false when someone holds it already. */
export function takeClaim(
  store: ObjectStore,
  scope: ClaimScope,
  key: string,
  record: object,
): Promise<boolean> {
  return store.createIfAbsent(claimObjectName(scope, key), JSON.stringify(record), 'application/json');
}

/** The claim of `key` as recorded, or undefined when it is missing or not JSON. */
export function readClaim<R>(store: ObjectStore, scope: ClaimScope, key: string): Promise<R | undefined> {
  return readJson<R>(store, claimObjectName(scope, key));
}

/**
 * Records that the claimed work is done. Create-only: should two attempts both get here, the
 * first record wins and stays the answer.
 */
export async function recordDone(
  store: ObjectStore,
  scope: ClaimScope,
  key: string,
  done: string,
  record: object,
): Promise<void> {
  await store.createIfAbsent(
    claimDoneObjectName(scope, key, done),
    JSON.stringify(record),
    'application/json',
  );
}

/** The done record of `key`, or undefined when the work is not recorded as done. */
export function readDone<R>(
  store: ObjectStore,
  scope: ClaimScope,
  key: string,
  done: string,
): Promise<R | undefined> {
  return readJson<R>(store, claimDoneObjectName(scope, key, done));
}

/** Whether the done record of `key` exists (whatever it says). */
export async function isDone(
  store: ObjectStore,
  scope: ClaimScope,
  key: string,
  done: string,
): Promise<boolean> {
  return (await store.readText(claimDoneObjectName(scope, key, done))) !== undefined;
}

/** How long ago a claim was taken, in ms; NaN when its timestamp is missing or unreadable. */
export function claimAgeMs(takenAt: string | undefined, now: Date): number {
  return takenAt === undefined ? Number.NaN : now.getTime() - Date.parse(takenAt);
}

async function readJson<T>(store: ObjectStore, name: string): Promise<T | undefined> {
  const text = await store.readText(name);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
