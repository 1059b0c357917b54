/**
 * The package's `main`: registers every Batchwire function with functions-framework, so that
 * `npx functions-framework --target=onUpload` (and `gcloud functions deploy --entry-point
 * onUpload`) finds it. The config is loaded and validated here, at cold start: a bad
 * `batchwire.yaml` stops the instance with a message naming the bad key, never mid-event.
 *
 * The adapters are built once, in {@link functionDeps}; each loads its client library on first
 * use, so registering all the functions costs no client loads.
 *
 * The CloudEvent functions are registered as HTTP functions behind {@link cloudEventEndpoint}:
 * a malformed request (no body, not JSON, a GET…) gets a 4xx with a message before any handler
 * runs, where functions-framework's CloudEvent middleware would answer 500 (retried forever).
 */
import { http } from '@google-cloud/functions-framework';
import { getConfig } from '#shared/config/load.js';
import { cloudEventEndpoint } from '#shared/runtime/cloud-event-endpoint.js';
import { logger } from '#shared/runtime/logger.js';
import { functionDeps } from './deps.js';
import { createOnComplete } from './on-complete.js';
import { createOnSchedule } from './on-schedule.js';
import { createOnUpload } from './on-upload.js';

const deps = functionDeps(getConfig(), logger);

// GCS object finalized (Eventarc) → one Cloud Batch job per accepted upload.
http('onUpload', cloudEventEndpoint('onUpload', createOnUpload(deps.onUpload), logger));

// Cloud Scheduler (HTTP + OIDC) → one Workflows execution per tick.
http('onSchedule', createOnSchedule(deps.onSchedule));

// Completion topic (Eventarc Pub/Sub trigger, or a push subscription) → one result per job or flow.
http('onComplete', cloudEventEndpoint('onComplete', createOnComplete(deps.onComplete), logger));
