import { createBatchAdapter } from '#shared/clients/batch.js';
import { createPubSubPublisher } from '#shared/clients/pubsub.js';
import { createObjectStore } from '#shared/clients/storage.js';
import { createWorkflowsExecutions } from '#shared/clients/workflows.js';
import type { Config } from '#shared/config/schema.js';
import type { Logger } from '#shared/runtime/logger.js';
import type { OnCompleteDeps } from './on-complete.js';
import type { OnScheduleDeps } from './on-schedule.js';
import type { OnUploadDeps } from './on-upload.js';

/** What each function of an instance is built from. */
export interface FunctionDeps {
  onUpload: OnUploadDeps;
  onSchedule: OnScheduleDeps;
  onComplete: OnCompleteDeps;
}

/**
 * The composition root: every adapter built once per instance from the config and shared by
 * the functions that need it (one Storage client for the bucket, one Pub/Sub publisher, one
 * Batch client). Building costs nothing at cold start: each adapter loads its client library
 * on its first call (see shared/clients/lazy-client.ts). Tests build their own deps instead,
 * with adapters pointed at the local cloud.
 */
export function functionDeps(config: Config, log: Logger): FunctionDeps {
  const store = createObjectStore({ bucket: config.bucket });
  const publisher = createPubSubPublisher({ projectId: config.project });
  const batch = createBatchAdapter({ project: config.project, region: config.region });
  return {
    onUpload: { config, log, batch, store, publisher },
    onSchedule: { config, log, store, executions: createWorkflowsExecutions() },
    onComplete: { config, log, jobs: batch, store, publisher },
  };
}
