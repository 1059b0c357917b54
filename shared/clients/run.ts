import type { JobsClient } from '@google-cloud/run';
import { AlreadyExistsError } from '../runtime/errors.js';
import { type GrpcClientOptions, grpcClientOptions } from './endpoints.js';
import { fromGrpcError } from './grpc-errors.js';
import { lazyClient } from './lazy-client.js';

/**
 * Either a ready client or options to build one, never both. With neither, the client is built
 * from `grpcClientOptions('run', env)`: `RUN_EMULATOR_HOST` when set, else Google Cloud.
 */
export type RunAdapterOptions =
  | { client: JobsClient; clientOptions?: never; env?: never }
  | { client?: never; clientOptions?: GrpcClientOptions; env?: NodeJS.ProcessEnv };

/** What a Cloud Run job runs: one container, `taskCount` tasks. */
export interface RunJobSpec {
  image: string;
  /** Replaces the image's entrypoint. */
  command?: string[];
  args?: string[];
  env?: Record<string, string>;
  taskCount?: number;
  parallelism?: number;
  maxRetries?: number;
  /** e.g. "3600s". */
  timeout?: string;
  serviceAccount?: string;
  labels?: Record<string, string>;
}

function seconds(duration: string): { seconds: number } {
  return { seconds: Math.round(Number.parseFloat(duration)) };
}

/** Cloud Run jobs (provisioning) plus the adapter's own lifecycle. */
export interface RunJobsAdapter {
  /**
   * Creates job `jobId` under `parent` (`projects/P/locations/R`) and waits for it to be ready.
   * Resolves false when it exists already (provisioning is idempotent).
   */
  ensureJob(parent: string, jobId: string, spec: RunJobSpec): Promise<boolean>;
  /** Closes the gRPC channel (if the adapter built the client). */
  close(): Promise<void>;
}

/**
 * Cloud Run jobs over `@google-cloud/run`'s JobsClient, loaded on first use. Errors are the
 * platform's (see {@link fromGrpcError}).
 *
 * @example
 * const run = createRunJobsAdapter();
 * await run.ensureJob('projects/p/locations/r', 'train', { image });
 */
export function createRunJobsAdapter(options: RunAdapterOptions = {}): RunJobsAdapter {
  const client = lazyClient(async () => {
    const { JobsClient } = await import('@google-cloud/run');
    const config = options.clientOptions ?? (await grpcClientOptions('run', options.env));
    return new JobsClient(config as ConstructorParameters<typeof JobsClient>[0]);
  }, options.client);

  return {
    async ensureJob(parent, jobId, spec) {
      try {
        const jobs = await client.get();
        const [operation] = await jobs.createJob({
          parent,
          jobId,
          job: {
            labels: spec.labels ?? {},
            template: {
              taskCount: spec.taskCount ?? 1,
              parallelism: spec.parallelism ?? 0,
              template: {
                containers: [
                  {
                    image: spec.image,
                    command: spec.command ?? [],
                    args: spec.args ?? [],
                    env: Object.entries(spec.env ?? {}).map(([name, value]) => ({ name, value })),
                  },
                ],
                maxRetries: spec.maxRetries ?? 0,
                ...(spec.timeout ? { timeout: seconds(spec.timeout) } : {}),
                ...(spec.serviceAccount ? { serviceAccount: spec.serviceAccount } : {}),
              },
            },
          },
        });
        await operation.promise();
        return true;
      } catch (error) {
        const translated = fromGrpcError(error, `cannot create Cloud Run job ${parent}/jobs/${jobId}`, {
          permission: 'run.jobs.create',
        });
        if (translated instanceof AlreadyExistsError) return false;
        throw translated;
      }
    },

    close: () => client.close(),
  };
}
