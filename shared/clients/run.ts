import type { JobsClient } from '@google-cloud/run';
import type { RunJobOverrides } from '../domain/flow-start.js';
import { AlreadyExistsError, PermanentError } from '../runtime/errors.js';
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

/** A started run: the long-running operation and the execution it created. */
export interface StartedRun {
  operation: string;
  execution: string;
}

/** The final state of a run, from its long-running operation. */
export interface FinishedRun {
  execution: string;
  succeeded: boolean;
  succeededCount: number;
  failedCount: number;
  error: string | null;
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
    })();
    return this.#client;
  }

  /**
   * Creates job `jobId` under `parent` (`projects/P/locations/R`) and waits for it to be ready.
   * Resolves false when it exists already (provisioning is idempotent).
   */
  async ensureJob(parent: string, jobId: string, spec: RunJobSpec): Promise<boolean> {
    const client = await this.client();
    try {
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
      const translated = fromGrpcError(error, `cannot create Cloud Run job ${parent}/jobs/${jobId}`);
      if (translated instanceof AlreadyExistsError) return false;
      throw translated;
    }
  }

  /** Runs job `name` (`projects/P/locations/R/jobs/J`) with overrides; resolves once the execution exists. */
  async runJob(name: string, overrides?: RunJobOverrides): Promise<StartedRun> {
    const client = await this.client();
    try {
      const [operation] = await client.runJob({ name, ...(overrides ? { overrides } : {}) });
      const metadata = operation.metadata as { name?: string } | null;
      return { operation: operation.name ?? '', execution: metadata?.name ?? '' };
    } catch (error) {
      throw fromGrpcError(error, `cannot run Cloud Run job ${name}`);
    }
  }

  /** Waits for a run's operation to end (the execution finished, successfully or not). */
  async waitForRun(operationName: string): Promise<FinishedRun> {
    const client = await this.client();
    let operation: Awaited<ReturnType<JobsClient['checkRunJobProgress']>>;
    try {
      operation = await client.checkRunJobProgress(operationName);
    } catch (error) {
      throw fromGrpcError(error, `cannot read operation ${operationName}`);
    }
    try {
      const execution = await operation.promise().then(([result]) => result);
      return {
        execution: execution.name ?? '',
        succeeded: true,
        succeededCount: execution.succeededCount ?? 0,
        failedCount: execution.failedCount ?? 0,
        error: null,
      };
    } catch (error) {
      const metadata = operation.metadata as {
        name?: string;
        succeededCount?: number;
        failedCount?: number;
      } | null;
      if (operation.done && error instanceof Error) {
        return {
          execution: metadata?.name ?? '',
          succeeded: false,
          succeededCount: metadata?.succeededCount ?? 0,
          failedCount: metadata?.failedCount ?? 0,
          error: error.message,
        };
      }
      throw fromGrpcError(error, `cannot wait for operation ${operationName}`);
    }
  }

  async close(): Promise<void> {
    if (this.#client) await (await this.#client).close();
  }
}

/** A Cloud Run job name: `projects/P/locations/R/jobs/J`. */
export function runJobName(project: string, region: string, jobId: string): string {
  if (!/^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/.test(jobId))
    throw new PermanentError(`invalid Cloud Run job id "${jobId}"`);
  return `projects/${project}/locations/${region}/jobs/${jobId}`;
}
