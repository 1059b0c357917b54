import type { BatchServiceClient } from '@google-cloud/batch';
import type { BatchJob, BatchJobResource, BatchJobs, CreatedJob } from '../domain/batch-job.js';
import { type GrpcClientOptions, grpcClientOptions } from './endpoints.js';
import { fromGrpcError } from './grpc-errors.js';
import { lazyClient } from './lazy-client.js';

/** Per-call deadline: a Batch call that has not answered by then fails as DEADLINE_EXCEEDED (transient). */
export const DEFAULT_BATCH_TIMEOUT_MS = 30_000;

interface BatchAdapterBase {
  project: string;
  region: string;
  /** Per-call deadline in ms (default {@link DEFAULT_BATCH_TIMEOUT_MS}). */
  timeoutMs?: number;
}

/**
 * Either a ready client (tests, the local cloud) or options to build one, never both. With
 * neither, the client is built from `grpcClientOptions('batch')`: `BATCH_EMULATOR_HOST` when
 * set, else Google Cloud with Application Default Credentials.
 */
export type BatchAdapterOptions = BatchAdapterBase &
  (
    | { client: BatchServiceClient; clientOptions?: never; env?: never }
    | {
        client?: never;
        clientOptions?: GrpcClientOptions & Record<string, unknown>;
        /** Where `BATCH_EMULATOR_HOST` is read when `clientOptions` is not given (default `process.env`). */
        env?: NodeJS.ProcessEnv;
      }
  );

/** The Batch port plus the adapter's own lifecycle. */
export interface BatchAdapter extends BatchJobs {
  /** `projects/P/locations/REGION`: where jobs are created. */
  readonly parent: string;
  /** The full name of a job id in this parent. */
  jobName(jobId: string): string;
  /** Closes the gRPC channel (if the adapter built the client). */
  close(): Promise<void>;
}

/**
 * The {@link BatchJobs} port over `@google-cloud/batch`. The client library is loaded with a
 * dynamic import on the first call (cold start: a function that never submits never pays for
 * it) and built once per instance. SDK errors are translated by {@link fromGrpcError}:
 * ALREADY_EXISTS → AlreadyExistsError, transient codes → TransientError, others permanent.
 *
 * @example
 * const batch = createBatchAdapter({ project: config.project, region: config.region });
 * await batch.createJob({ jobId, job, requestId });
 */
export function createBatchAdapter(options: BatchAdapterOptions): BatchAdapter {
  const parent = `projects/${options.project}/locations/${options.region}`;
  const timeout = options.timeoutMs ?? DEFAULT_BATCH_TIMEOUT_MS;
  const client = lazyClient(async () => {
    const [{ BatchServiceClient }, defaults] = await Promise.all([
      import('@google-cloud/batch'),
      options.clientOptions
        ? Promise.resolve(options.clientOptions)
        : grpcClientOptions('batch', options.env),
    ]);
    return new BatchServiceClient(defaults as ConstructorParameters<typeof BatchServiceClient>[0]);
  }, options.client);

  const jobName = (jobId: string) => `${parent}/jobs/${jobId}`;

  return {
    parent,
    jobName,

    async createJob({ jobId, job, requestId }): Promise<CreatedJob> {
      try {
        const batch = await client.get();
        const [created] = await batch.createJob(
          { parent, jobId, requestId, job: job as BatchJobForClient },
          // CreateJob is not retried by gax (non-idempotent); the event's redelivery is the retry,
          // and the deterministic jobId/requestId make it safe.
          { timeout },
        );
        return { name: created.name ?? jobName(jobId), uid: created.uid ?? '' };
      } catch (err) {
        throw fromGrpcError(err, `CreateJob ${jobId}`, { permission: 'batch.jobs.create' });
      }
    },

    async getJob(nameOrId): Promise<BatchJobResource> {
      const name = nameOrId.includes('/') ? nameOrId : jobName(nameOrId);
      try {
        const batch = await client.get();
        // gax retries GetJob on UNAVAILABLE for up to 10 minutes by default: bound it.
        const [job] = await batch.getJob({ name }, { timeout, maxRetries: 2 });
        return job as unknown as BatchJobResource;
      } catch (err) {
        throw fromGrpcError(err, `GetJob ${name}`, { permission: 'batch.jobs.get' });
      }
    },

    close: () => client.close(),
  };
}

/** The client's request type for a job; our {@link BatchJob} is a structural subset of it. */
type BatchJobForClient = NonNullable<Parameters<BatchServiceClient['createJob']>[0]>['job'];

export type { BatchJob };
