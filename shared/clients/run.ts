import type { JobsClient } from '@google-cloud/run';
import { AlreadyExistsError } from '../runtime/errors.js';
import { type GrpcClientOptions, grpcClientOptions } from './endpoints.js';
import { fromGrpcError } from './grpc-errors.js';

export type RunAdapterOptions =
  | { client: JobsClient; clientConfig?: never; env?: never }
  | { client?: never; clientConfig?: GrpcClientOptions; env?: NodeJS.ProcessEnv };

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

/**
 * Cloud Run jobs over `@google-cloud/run`'s JobsClient, loaded on first use; at
 * `RUN_EMULATOR_HOST` when it is set. Errors are the platform's (see {@link fromGrpcError}).
 */
export class RunJobsAdapter {
  #client: Promise<JobsClient> | undefined;

  constructor(private readonly options: RunAdapterOptions = {}) {
    if (options.client) this.#client = Promise.resolve(options.client);
  }

  private client(): Promise<JobsClient> {
    this.#client ??= (async () => {
      const { JobsClient } = await import('@google-cloud/run');
      const config = this.options.clientConfig ?? (await grpcClientOptions('run', this.options.env));
      return new JobsClient(config as ConstructorParameters<typeof JobsClient>[0]);
    })().catch((error: unknown) => {
      // Not cached: one failed load (a transient import or config error) must not break the instance for good.
      this.#client = undefined;
      throw error;
    });
    return this.#client;
  }

  /**
   * Creates job `jobId` under `parent` (`projects/P/locations/R`) and waits for it to be ready.
   * Resolves false when it exists already (provisioning is idempotent).
   */
  async ensureJob(parent: string, jobId: string, spec: RunJobSpec): Promise<boolean> {
    try {
      const client = await this.client();
      const [operation] = await client.createJob({
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
  }

  async close(): Promise<void> {
    const built = await this.#client?.catch(() => undefined);
    this.#client = undefined;
    await built?.close();
  }
}
