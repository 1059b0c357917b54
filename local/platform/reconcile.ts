import type { protos } from '@google-cloud/batch';
import { grpcClientOptions } from '#shared/clients/endpoints.js';
import type { Config } from '#shared/config/schema.js';
import { jobIdFor, objectVersionHash } from '#shared/domain/job-id.js';
import { parseObjectName, REJECTIONS_PREFIX } from '#shared/domain/object-path.js';
import { inferenceResultId } from '#shared/domain/results/build-events.js';
import { publishedObjectName } from '#shared/domain/results/publish-once.js';
import { jobStateMessages } from '../batch/notifications.js';
import type { JobMessage, JobState } from '../batch/types.js';
import type { StorageObjectResource } from '../storage/server.js';

/** What a start-up reconciliation found and did. */
export interface ReconcileReport {
  /** Inputs that had no job (nor rejection): their finalize event was delivered again. */
  inputsRedelivered: string[];
  /** Finished jobs without a published result: their final notification was published again. */
  jobsRenotified: string[];
}

const FINAL_STATES: ReadonlySet<string> = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

/**
 * Makes the platform's promise hold after any stop, however abrupt: what was accepted ends in
 * a result. Run once the functions and the router are up.
 *
 * - Every stored object under `{product}/{client}/inputs/` of a configured client with neither
 *   a Batch job (its id is deterministic) nor a rejection record gets its finalize event again
 *   (`redeliverFinalize`): onUpload is safe to run twice, so an event that was delivered after
 *   all costs one "already exists".
 * - Every Batch job in a final state whose result has no "published" marker under
 *   `_batchwire/claims/results/` (onComplete writes it once the result is on the client's topic)
 *   gets its job notification published again, as Batch sent it; onComplete dedupes by the
 *   result's deterministic id. Jobs that the stop interrupted are among them: local Batch wrote
 *   them FAILED (the platform stopped) when it loaded them and notified them itself; should
 *   that notification be lost (a start that fails), the next start finds them here.
 *
 * Everything it reads is durable (the bucket and Batch's job records), so a start that fails
 * half-way loses nothing: the next one finds the same work and does it.
 */
export async function reconcile(
  config: Config,
  local: {
    storageUrl: string;
    batchHost: string;
    redeliverFinalize: (object: StorageObjectResource) => void;
    /**
     * When this start began: jobs that changed since were notified by local Batch itself (the
     * ones it failed on loading, their notifications released once the router subscribed).
     */
    startedAt: number;
  },
): Promise<ReconcileReport> {
  const [{ Storage }, { BatchServiceClient }, { PubSub }] = await Promise.all([
    import('@google-cloud/storage'),
    import('@google-cloud/batch'),
    import('@google-cloud/pubsub'),
  ]);
  const storage = new Storage({ apiEndpoint: local.storageUrl, projectId: config.project });
  const batch = new BatchServiceClient(
    await grpcClientOptions('batch', { BATCH_EMULATOR_HOST: local.batchHost }),
  );
  const pubsub = new PubSub({ projectId: config.project });
  const report: ReconcileReport = { inputsRedelivered: [], jobsRenotified: [] };
  try {
    const bucket = storage.bucket(config.bucket);
    const [jobs] = await batch.listJobs(
      { parent: `projects/${config.project}/locations/${config.region}` },
      { autoPaginate: true },
    );
    const jobIds = new Set(jobs.map((job) => (job.name ?? '').split('/').pop() ?? ''));

    const [rejections] = await bucket.getFiles({ prefix: REJECTIONS_PREFIX, autoPaginate: true });
    const rejected = new Set(
      rejections.map((file) => (file.name.split('/').pop() ?? '').replace(/\.json$/, '')),
    );

    for (const [product, settings] of Object.entries(config.products)) {
      for (const client of settings.clients) {
        const [files] = await bucket.getFiles({ prefix: `${product}/${client}/inputs/`, autoPaginate: true });
        for (const file of files) {
          const resource = file.metadata as unknown as StorageObjectResource;
          const parsed = parseObjectName(file.name);
          // Folder placeholders are never inputs; onUpload ignores them too.
          if (parsed.kind !== 'input' || file.name.endsWith('/')) continue;
          const version = { bucket: config.bucket, name: file.name, generation: String(resource.generation) };
          if (jobIds.has(jobIdFor(version, product, client))) continue;
          if (rejected.has(objectVersionHash(version).slice(0, 32))) continue;
          local.redeliverFinalize(resource);
          report.inputsRedelivered.push(file.name);
        }
      }
    }

    for (const job of jobs) {
      const state = String(job.status?.state ?? '');
      if (!FINAL_STATES.has(state) || !job.name || !job.uid) continue;
      const updated =
        Number(String(job.updateTime?.seconds ?? 0)) * 1000 + (job.updateTime?.nanos ?? 0) / 1e6;
      if (updated >= local.startedAt) continue;
      const resultId = inferenceResultId(job.uid, state === 'SUCCEEDED' ? 'SUCCEEDED' : 'FAILED');
      const [published] = await bucket.file(publishedObjectName(resultId)).exists();
      if (published) continue;
      const messages = jobStateMessages(asJobMessage(job), 'RUNNING', state as JobState, Date.now());
      for (const message of messages) {
        await pubsub
          .topic(message.topic)
          .publishMessage({ data: Buffer.from(message.data), attributes: message.attributes });
      }
      if (messages.length > 0) report.jobsRenotified.push(job.name);
    }
    return report;
  } finally {
    await Promise.allSettled([batch.close(), pubsub.close()]);
  }
}

/** The fields of a job that its notifications are made of, in local Batch's own shape. */
function asJobMessage(job: protos.google.cloud.batch.v1.IJob): JobMessage {
  return {
    name: job.name ?? '',
    uid: job.uid ?? '',
    notifications: (job.notifications ?? []).map((notification) => ({
      ...(notification.pubsubTopic ? { pubsub_topic: notification.pubsubTopic } : {}),
      message: notification.message
        ? {
            ...(notification.message.type ? { type: String(notification.message.type) } : {}),
            ...(notification.message.newJobState
              ? { new_job_state: String(notification.message.newJobState) }
              : {}),
            ...(notification.message.newTaskState
              ? { new_task_state: String(notification.message.newTaskState) }
              : {}),
          }
        : null,
    })),
  } as unknown as JobMessage;
}
