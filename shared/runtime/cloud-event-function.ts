import type { CloudEvent } from 'cloudevents';
import { BatchwireError, PermissionDeniedError } from './errors.js';
import { type Logger, traceField } from './logger.js';

/** What every event handler receives besides the event. */
export interface EventContext {
  /** Logger bound to this event (event id, type, subject, trace); add product/client/job as known. */
  log: Logger;
}

export type EventHandler<T> = (event: CloudEvent<T>, context: EventContext) => Promise<void>;

export interface CloudEventFunctionOptions {
  /** Google Cloud project, for the trace field of log entries. */
  project: string;
  /** Events older than this are dropped with an ERROR log instead of retried forever. */
  maxEventAgeSeconds: number;
  log: Logger;
  now?: () => Date;
  /**
   * The event type the function is triggered by. An event of another type (a trigger wired
   * with another GCS event, say) is not the function's: WARNING and acked, never handled.
   */
  eventType?: string;
}

/**
 * Wraps a handler as a functions-framework CloudEvent function and owns, for all functions,
 * the one decision a trigger cares about: fail (the promise rejects, functions-framework
 * answers 500, Eventarc redelivers) or ack (the promise resolves).
 *
 * - A {@link BatchwireError} that is not retryable is logged at ERROR and acked: no retry cures it.
 * - Anything else is retryable (a transient fault, or a bug a redeploy may fix) and fails the event.
 * - An event older than `maxEventAgeSeconds` is dropped with an ERROR log, so a poison event
 *   does not retry forever.
 */
export function cloudEventFunction<T>(
  name: string,
  handler: EventHandler<T>,
  options: CloudEventFunctionOptions,
): (event: CloudEvent<T>) => Promise<void> {
  const now = options.now ?? (() => new Date());
  return async (event) => {
    const log = options.log.child({
      function: name,
      eventId: event.id,
      eventType: event.type,
      ...(event.subject ? { subject: event.subject } : {}),
      ...traceField(options.project, event.traceparent as string | undefined),
    });

    const ageSeconds = event.time ? (now().getTime() - Date.parse(event.time)) / 1000 : 0;
    if (ageSeconds > options.maxEventAgeSeconds) {
      log.error(
        { ageSeconds: Math.round(ageSeconds), maxEventAgeSeconds: options.maxEventAgeSeconds },
        'event dropped: older than the max event age',
      );
      return;
    }

    if (options.eventType && event.type && event.type !== options.eventType) {
      log.warn({ expected: options.eventType }, `event ignored: type ${event.type}`);
      return;
    }

    try {
      await handler(event, { log });
    } catch (err) {
      if (err instanceof BatchwireError && !err.retryable) {
        log.error({ err }, `event acked without retry: ${err.message}`);
        return;
      }
      // A missing grant is retried too (see PermissionDeniedError); the entry names what to grant.
      const denied =
        err instanceof PermissionDeniedError ? { permission: err.permission, operation: err.operation } : {};
      log.error({ err, ...denied }, `event failed, the trigger will retry: ${(err as Error).message}`);
      throw err;
    }
  };
}
