import type { CloudEvent } from 'cloudevents';
import type { ObjectStore, Publisher } from '../../clients/ports.js';
import type { Config } from '../../config/schema.js';
import { outputTopic } from '../../plan/names.js';
import { TransientError } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/logger.js';
import {
  claimAgeMs,
  isDone,
  type ResultClaimRecord,
  type ResultPublishedRecord,
  readClaim,
  recordDone,
  takeClaim,
} from '../claims.js';
import { type ClaimScope, claimDoneObjectName, claimObjectName } from '../object-path.js';
import type { Rejection } from '../rejection.js';
import { rejectionEvent } from './build-events.js';
import { toPubSubMessage } from './pubsub-binding.js';

/**
 * Publishing a result event once per event id, however often the triggering message is
 * delivered: a claim and a "published" record in the bucket (see claims.ts), and the event's
 * deterministic id for the one window a claim cannot close.
 */

/** The claim scope of results, and what its done record says. */
const RESULTS: ClaimScope = 'results';
const PUBLISHED = 'published';

/** The claim a delivery takes before publishing result `eventId` (see {@link publishOnce}). */
export function resultClaimObjectName(eventId: string): string {
  return claimObjectName(RESULTS, eventId);
}

/** The record that result `eventId` was published: its presence makes every later delivery a no-op. */
export function publishedObjectName(eventId: string): string {
  return claimDoneObjectName(RESULTS, eventId, PUBLISHED);
}

export interface PublishOnceDeps {
  store: ObjectStore;
  publisher: Publisher;
  log: Logger;
  now?: () => Date;
  /**
   * How long a claim by another delivery is trusted to be in progress (default 60 s). Within it,
   * a second delivery retries later instead of publishing too; after it, the claim is presumed
   * abandoned and taken over.
   */
  claimLeaseMs?: number;
}

export type PublishOutcome = 'published' | 'already-published';

/**
 * Publishes `event` to `topic` once per event id, as far as the platform can make it so.
 *
 * Two objects under `_batchwire/claims/results/`: the claim `<id>.json` ("publishing", created
 * with `ifGenerationMatch: 0`) and the marker `<id>.published.json` written after the publish.
 * Claiming alone before publishing would lose the event when the publish fails after the claim;
 * publishing before claiming would let two concurrent deliveries both publish. So:
 *
 * ```
 *  delivery A (message m1)                delivery B (duplicate m2, or m1 redelivered)
 *  create claim {holder: m1}    ✓
 *  publish ce-id=X              ─────▶   create claim ✗ exists → marker? no
 *                                          holder m1, within lease
 *                                          → m2: TransientError, retry later
 *                                          → m1 redelivered: A failed or crashed, publish again
 *  create marker                ✓
 *                                        (retry) create claim ✗ → marker? yes → done
 * ```
 *
 * The claim comes first: a claim just created means no one has published (the marker is only
 * ever written under a claim, and claims are never deleted), so the usual first delivery costs
 * no read of a marker that is not there.
 *
 * A claim older than the lease is taken over by anyone (its holder died and its message may
 * never come back). The one window left is a crash between the publish and the marker: the
 * redelivery publishes again, with the same deterministic `ce-id`, so consumers dedupe it.
 *
 * @param deliveryId the Pub/Sub message id (or event id) of the triggering delivery
 */
export async function publishOnce(
  event: CloudEvent<unknown>,
  topic: string,
  deliveryId: string,
  deps: PublishOnceDeps,
): Promise<PublishOutcome> {
  const now = deps.now ?? (() => new Date());
  const leaseMs = deps.claimLeaseMs ?? 60_000;
  const log = deps.log.child({ resultEventId: event.id, resultType: event.type, topic });

  const claim: ResultClaimRecord = {
    eventId: event.id,
    type: event.type,
    topic,
    state: 'publishing',
    claimedAt: now().toISOString(),
    deliveryId,
  };
  if (!(await takeClaim(deps.store, RESULTS, event.id, claim))) {
    if (await isDone(deps.store, RESULTS, event.id, PUBLISHED)) {
      log.info('result already published; nothing to do');
      return 'already-published';
    }
    const existing = validClaim(await readClaim<Partial<ResultClaimRecord>>(deps.store, RESULTS, event.id));
    const ageMs = existing ? claimAgeMs(existing.claimedAt, now()) : Number.POSITIVE_INFINITY;
    const ownClaim = existing?.deliveryId === deliveryId;
    if (!ownClaim && ageMs < leaseMs) {
      throw new TransientError(
        `result ${event.id} is being published by delivery ${existing?.deliveryId}; retrying later`,
      );
    }
    log.warn(
      { holder: existing?.deliveryId, ageMs: Math.round(ageMs), ownClaim },
      'taking over an unfinished result claim; publishing again with the same event id',
    );
  }

  const { data, attributes } = toPubSubMessage(event);
  const messageId = await deps.publisher.publish(topic, data, attributes);
  const published: ResultPublishedRecord = {
    eventId: event.id,
    topic,
    state: 'published',
    messageId,
    publishedAt: now().toISOString(),
  };
  await recordDone(deps.store, RESULTS, event.id, PUBLISHED, published);
  log.info({ messageId }, 'result published');
  return 'published';
}

/**
 * Sends onUpload's rejection to the client's topic as `dev.batchwire.inference.rejected`, once
 * per uploaded object version. An upload for a client that is not configured has no topic to go
 * to (its rejection record under `_batchwire/rejections/` is all there is): `skipped`.
 * A missing topic or unreachable Pub/Sub throws a TransientError, so onUpload's trigger retries.
 *
 * @param deliveryId the triggering event's id (defaults to the rejection key)
 */
export async function publishRejection(
  rejection: Rejection,
  deps: PublishOnceDeps & { config: Pick<Config, 'project' | 'products'>; deliveryId?: string },
): Promise<PublishOutcome | 'skipped'> {
  if (!deps.config.products[rejection.product]?.clients.includes(rejection.client)) {
    deps.log.warn(
      { product: rejection.product, client: rejection.client, reason: rejection.reason },
      'rejection not published: no output topic for an unconfigured client',
    );
    return 'skipped';
  }
  const event = rejectionEvent(deps.config.project, rejection);
  return publishOnce(
    event,
    outputTopic(rejection.product, rejection.client),
    deps.deliveryId ?? rejection.key,
    deps,
  );
}

/** A claim record that names its holder and time, else undefined (an unreadable claim is taken over). */
function validClaim(value: Partial<ResultClaimRecord> | undefined): ResultClaimRecord | undefined {
  return typeof value?.claimedAt === 'string' && typeof value.deliveryId === 'string'
    ? (value as ResultClaimRecord)
    : undefined;
}
