import type { PublishOptions } from '@google-cloud/pubsub';

/**
 * How long one Batch notification may take to publish, retries included. Past it the
 * notification is given up with a log line: a job must not wait forever on its messages.
 */
export const PUBLISH_DEADLINE_MS = 60_000;

/**
 * Call options for the notification publisher: each attempt gets 10 s, a transient failure
 * (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED… the Publish method's own retry codes)
 * is retried with backoff from 100 ms up to 5 s, and the whole publish ends at
 * {@link PUBLISH_DEADLINE_MS}. The client's defaults give a single attempt all of its 60 s
 * timeout, so one stalled call under a burst used to hold the message for a minute.
 */
export const PUBLISH_CALL_OPTIONS: PublishOptions['gaxOpts'] = {
  retry: {
    backoffSettings: {
      initialRetryDelayMillis: 100,
      retryDelayMultiplier: 2,
      maxRetryDelayMillis: 5_000,
      initialRpcTimeoutMillis: 10_000,
      rpcTimeoutMultiplier: 1,
      maxRpcTimeoutMillis: 10_000,
      totalTimeoutMillis: PUBLISH_DEADLINE_MS,
    },
  },
};
