/**
 * The package's `main`: registers every Batchwire function with functions-framework, so that
 * `npx functions-framework --target=onUpload` (and `gcloud functions deploy --entry-point
 * onUpload`) finds it. The config is loaded and validated here, at cold start: a bad
 * `batchwire.yaml` stops the instance with a message naming the bad key, never mid-event.
 *
 * Each function builds its clients lazily, so registering all of them costs no client loads.
 */
import { cloudEvent, http } from '@google-cloud/functions-framework';
import { getConfig } from '../shared/config/load.js';
import { createOnComplete, onCompleteDeps } from './on-complete.js';
import { createOnSchedule } from './on-schedule.js';
import { createOnUpload, onUploadDeps } from './on-upload.js';

const config = getConfig();

// GCS object finalized (Eventarc) → one Cloud Batch job per accepted upload.
cloudEvent('onUpload', createOnUpload(onUploadDeps(config)));

// Cloud Scheduler (HTTP + OIDC) → one Workflows execution per tick.
http('onSchedule', createOnSchedule({ config }));

// Completion topic (Eventarc Pub/Sub trigger, or a push subscription) → one result per job or flow.
cloudEvent('onComplete', createOnComplete(onCompleteDeps(config)));
