import type { CloudEventV1 } from 'cloudevents';
import { handleUpload, parseUploadEventData, type UploadDeps } from '#shared/domain/upload.js';
import { cloudEventFunction } from '#shared/runtime/cloud-event-function.js';

/** The Eventarc event type onUpload is triggered by. */
export const STORAGE_OBJECT_FINALIZED = 'google.cloud.storage.object.v1.finalized';

/** The core's dependencies; `log` is the instance logger, bound per event by the wrapper. */
export type OnUploadDeps = UploadDeps;

/**
 * onUpload: a GCS object finalize event (binary-mode CloudEvent from Eventarc) in, at most one
 * Batch job out. Parses and validates the event data, then hands the object to the core
 * ({@link handleUpload}). The wrapper acks permanent problems (malformed events, rejected
 * files, permanent Batch errors) and fails transient ones so Eventarc redelivers.
 */
export function createOnUpload(deps: OnUploadDeps): (event: CloudEventV1<unknown>) => Promise<void> {
  const onUpload = cloudEventFunction<unknown>(
    'onUpload',
    async (event, { log }) => {
      await handleUpload(
        { object: parseUploadEventData(event.data), deliveryId: event.id },
        { ...deps, log },
      );
    },
    {
      // A trigger misconfigured with another GCS event type (deleted, archived…) is not ours.
      eventType: STORAGE_OBJECT_FINALIZED,
      project: deps.config.project,
      maxEventAgeSeconds: deps.config.maxEventAgeSeconds,
      log: deps.log,
      ...(deps.now ? { now: deps.now } : {}),
    },
  );
  // functions-framework hands over a plain CloudEventV1 object (never a `CloudEvent` instance);
  // the wrapper only reads its attributes, so the narrower parameter type is the honest one.
  return onUpload as (event: CloudEventV1<unknown>) => Promise<void>;
}
