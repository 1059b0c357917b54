import type { CloudEventV1 } from 'cloudevents';
import { createBatchAdapter } from '../shared/clients/batch.js';
import { createPubSubPublisher } from '../shared/clients/pubsub.js';
import { createObjectStore } from '../shared/clients/storage.js';
import type { Config } from '../shared/config/schema.js';
import { publishRejection } from '../shared/domain/output-event.js';
import { handleUpload, parseUploadEventData, type UploadDeps } from '../shared/domain/upload.js';
import { cloudEventFunction } from '../shared/runtime/cloud-event-function.js';
import { type Logger, logger } from '../shared/runtime/logger.js';

/** The Eventarc event type onUpload is triggered by. */
export const STORAGE_OBJECT_FINALIZED = 'google.cloud.storage.object.v1.finalized';

export interface OnUploadDeps extends UploadDeps {
  /** The instance logger; each event gets a child bound to its id, type, subject and trace. */
  log: Logger;
}

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
      // A trigger misconfigured with another GCS event type (deleted, archived…) is not ours.
      if (event.type && event.type !== STORAGE_OBJECT_FINALIZED) {
        log.warn({ expected: STORAGE_OBJECT_FINALIZED }, `event ignored: type ${event.type}`);
        return;
      }
      const object = parseUploadEventData(event.data);
      await handleUpload(object, deps, log, event.id);
    },
    {
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

/**
 * The production dependencies of onUpload, built once per instance from the config: the Batch,
 * Storage and Pub/Sub adapters (their client libraries load on first use) and the instance
 * logger. A rejection is recorded in the bucket and also sent to the client's topic as
 * `dev.batchwire.inference.rejected` (once per object version: its id derives from the
 * rejection key, and a failed publish fails the event so that Eventarc redelivers it).
 */
export function onUploadDeps(config: Config, log: Logger = logger): OnUploadDeps {
  const store = createObjectStore({ bucket: config.bucket });
  const publisher = createPubSubPublisher({ projectId: config.project });
  return {
    config,
    log,
    batch: createBatchAdapter({ project: config.project, region: config.region }),
    store,
    onRejected: async (rejection, context) => {
      await publishRejection(rejection, {
        config,
        store,
        publisher,
        log: context.log,
        ...(context.deliveryId ? { deliveryId: context.deliveryId } : {}),
      });
    },
  };
}
