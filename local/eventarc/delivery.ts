/**
 * Delivery with Eventarc's semantics: POST a binary-mode CloudEvent to the destination; a 2xx
 * acks; a 5xx, a 429 or a network error is retried with exponential backoff; any other 4xx is
 * not retried (a bad event does not get better); an event older than the max age is dropped.
 */

import { Backoff } from '../backoff.js';
import { type Clock, systemClock } from '../clock.js';

export interface BinaryCloudEvent {
  /** `ce-*` headers and content-type. */
  headers: Record<string, string>;
  body: string;
  /** The event's time (ms since epoch): the max age counts from here. */
  time: number;
}

export interface RetryPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
  multiplier: number;
  /** Events older than this are dropped with an error instead of retried. */
  maxAgeMs: number;
  /**
   * Per-attempt deadline: the destination function's timeout. A handler still running past it
   * counts as a failed attempt and the event is retried, as Cloud Functions ends the request.
   */
  attemptTimeoutMs: number;
}

/**
 * The timeout a function is deployed with when none is given: 60 s, at most 540 s for an
 * event-driven function (cloud.google.com/functions/docs/configuring/timeout, `gcloud functions
 * deploy --timeout`). Past it Cloud Functions answers 504 and the trigger retries.
 */
export const EVENT_FUNCTION_TIMEOUT_MS = 60_000;

export const EVENTARC_RETRY: RetryPolicy = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  multiplier: 2,
  maxAgeMs: 24 * 3600_000,
  attemptTimeoutMs: EVENT_FUNCTION_TIMEOUT_MS,
};

export type DeliveryOutcome =
  | { kind: 'delivered'; status: number; attempts: number }
  | { kind: 'rejected'; status: number; attempts: number; body: string }
  | { kind: 'expired'; attempts: number; lastError: string }
  | { kind: 'aborted'; attempts: number };

export interface DeliveryObserver {
  onRetry?(attempt: number, reason: string, delayMs: number): void;
}

/** Delivers one event until it is acked, rejected, too old, or the signal aborts. */
export async function deliver(
  destination: string,
  event: BinaryCloudEvent,
  policy: RetryPolicy,
  options: { signal?: AbortSignal; clock?: Clock; observer?: DeliveryObserver } = {},
): Promise<DeliveryOutcome> {
  const clock = options.clock ?? systemClock;
  const backoff = new Backoff({
    initialDelayMs: policy.initialDelayMs,
    multiplier: policy.multiplier,
    maxDelayMs: policy.maxDelayMs,
  });
  let lastError = '';
  for (let attempt = 1; ; attempt++) {
    if (options.signal?.aborted) return { kind: 'aborted', attempts: attempt - 1 };
    if (clock.now() - event.time > policy.maxAgeMs)
      return { kind: 'expired', attempts: attempt - 1, lastError };
    try {
      const response = await fetch(destination, {
        method: 'POST',
        headers: event.headers,
        body: event.body,
        signal: anySignal(options.signal, AbortSignal.timeout(policy.attemptTimeoutMs)),
      });
      const text = await response.text();
      if (response.ok) return { kind: 'delivered', status: response.status, attempts: attempt };
      if (response.status < 500 && response.status !== 429) {
        return { kind: 'rejected', status: response.status, attempts: attempt, body: text.slice(0, 500) };
      }
      lastError = `HTTP ${response.status}`;
    } catch (err) {
      if (options.signal?.aborted) return { kind: 'aborted', attempts: attempt };
      lastError =
        (err as Error).name === 'TimeoutError'
          ? `no answer within the function's timeout (${policy.attemptTimeoutMs} ms)`
          : (err as Error).message;
    }
    const delay = backoff.next();
    options.observer?.onRetry?.(attempt, lastError, delay);
    await sleep(delay, options.signal);
  }
}

function anySignal(...signals: Array<AbortSignal | undefined>): AbortSignal {
  return AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined));
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}
