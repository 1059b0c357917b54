import type { CloudEventV1 } from 'cloudevents';
import type { Config } from '#shared/config/schema.js';
import { type CompletionDeps, handleCompletion } from '#shared/domain/completion/handle.js';
import { messageFromEventData } from '#shared/domain/completion/message.js';
import { cloudEventFunction } from '#shared/runtime/cloud-event-function.js';
import type { Logger } from '#shared/runtime/logger.js';

/** The Eventarc event type onComplete is triggered by (a Pub/Sub push is converted to it). */
export const PUBSUB_MESSAGE_PUBLISHED = 'google.cloud.pubsub.topic.v1.messagePublished';

export interface OnCompleteDeps extends Omit<CompletionDeps, 'log'> {
  config: Config;
  /** The instance logger; each event gets a child bound to its id, type, subject and trace. */
  log: Logger;
  now?: () => Date;
}

/**
 * onComplete: a message on the completion topic in (a Batch job notification or a flow
 * completion), at most one result CloudEvent per (job, final state) out, on the client's
 * `batch-{product}-{client}-outputs` topic. Works behind an Eventarc Pub/Sub trigger and behind
 * a plain Pub/Sub push subscription whose endpoint path is `/projects/P/topics/T`
 * (functions-framework converts such a push into the same CloudEvent).
 */
export function createOnComplete(deps: OnCompleteDeps): (event: CloudEventV1<unknown>) => Promise<void> {
  const onComplete = cloudEventFunction<unknown>(
    'onComplete',
    async (event, { log }) => {
      const message = messageFromEventData(event.data);
      const outcome = await handleCompletion(message, {
        ...deps,
        log: log.child({ messageId: message.messageId }),
      });
      if (outcome.kind === 'published') log.info({ results: outcome.results }, 'completion handled');
    },
    {
      eventType: PUBSUB_MESSAGE_PUBLISHED,
      project: deps.config.project,
      maxEventAgeSeconds: deps.config.maxEventAgeSeconds,
      log: deps.log,
      ...(deps.now ? { now: deps.now } : {}),
    },
  );
  // functions-framework hands over a plain CloudEventV1 object; the wrapper only reads attributes.
  return onComplete as (event: CloudEventV1<unknown>) => Promise<void>;
}
