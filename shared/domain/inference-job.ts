import type { Config } from '../config/schema.js';
import { PermanentError } from '../runtime/errors.js';
import { type BatchJob, parseDuration, TASK_ENV } from './batch-job.js';
import { objectUri, outputPrefix } from './object-path.js';

/** Everything an inference job is built from: one accepted upload. */
export interface InferenceJobInput {
  product: string;
  client: string;
  bucket: string;
  name: string;
  generation: string;
  size: number;
  jobId: string;
}

/**
 * Number of tasks one input fans out to: one per `shardBytes`, at least 1, at most `maxTasks`.
 * Each task reads its shard from `BATCH_TASK_INDEX` / `BATCH_TASK_COUNT`.
 */
export function taskCountFor(size: number, shardBytes: number, maxTasks: number): number {
  const shards = Math.ceil(Math.max(0, size) / shardBytes);
  return Math.min(Math.max(shards, 1), maxTasks);
}

/**
 * A value that satisfies Google Cloud's label rules: at most 63 characters of lowercase
 * letters, digits, `_` and `-`. Anything else becomes `-`.
 */
export function labelValue(value: string): string {
  return value
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '-')
    .slice(0, 63);
}

/** Normalises every value of a label map with {@link labelValue}. */
export function labels(values: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([key, value]) => [key, labelValue(value)]));
}

/** The completion topic as Batch's notifications name it. */
export function completionTopicName(config: Pick<Config, 'project' | 'completionTopic'>): string {
  return `projects/${config.project}/topics/${config.completionTopic}`;
}

/**
 * Builds the Batch job for one accepted upload from its product's `inference` config: the
 * container runnable, resources, fan-out, retries, the task contract's environment, where the
 * VMs run and as whom, labels, Cloud Logging, and JOB_STATE_CHANGED notifications of the
 * terminal states to the completion topic (onComplete's trigger).
 *
 * Throws a PermanentError when the product is not configured: the caller checks that first, and
 * no redelivery of the upload would make it configured.
 */
export function buildInferenceJob(config: Config, input: InferenceJobInput): BatchJob {
  const product = config.products[input.product];
  if (!product) throw new PermanentError(`product ${input.product} is not configured`);
  const inference = product.inference;

  const taskCount = taskCountFor(input.size, inference.shardBytes, inference.maxTasks);
  const variables: Record<string, string> = {
    // The product's own variables first: the contract's below always win.
    ...inference.env,
    [TASK_ENV.inputUri]: objectUri(input.bucket, input.name),
    [TASK_ENV.inputGeneration]: input.generation,
    [TASK_ENV.outputUri]: objectUri(input.bucket, outputPrefix(input.product, input.client, input.jobId)),
    [TASK_ENV.product]: input.product,
    [TASK_ENV.client]: input.client,
  };

  return {
    taskGroups: [
      {
        taskCount,
        parallelism: Math.min(inference.parallelism, taskCount),
        taskSpec: {
          runnables: [
            {
              container: {
                imageUri: inference.image,
                ...(inference.entrypoint !== undefined ? { entrypoint: inference.entrypoint } : {}),
                commands: [...inference.commands],
              },
            },
          ],
          computeResource: { cpuMilli: inference.cpuMilli, memoryMib: inference.memoryMib },
          maxRunDuration: parseDuration(inference.maxRunDuration),
          maxRetryCount: inference.maxRetryCount,
          environment: { variables },
        },
      },
    ],
    allocationPolicy: {
      instances: [{ policy: { machineType: inference.machineType } }],
      ...(inference.allowedLocations.length > 0
        ? { location: { allowedLocations: [...inference.allowedLocations] } }
        : {}),
      ...(product.serviceAccount ? { serviceAccount: { email: product.serviceAccount } } : {}),
    },
    labels: labels({ product: input.product, client: input.client, trigger: 'upload' }),
    logsPolicy: { destination: 'CLOUD_LOGGING' },
    notifications: NOTIFIED_JOB_STATES.map((newJobState) => ({
      pubsubTopic: completionTopicName(config),
      message: { type: 'JOB_STATE_CHANGED' as const, newJobState },
    })),
  };
}

/**
 * The job states Batch notifies the completion topic of: one `JobNotification` per state
 * (`Message` takes one `new_job_state`, google.cloud.batch.v1.JobNotification.Message), so that
 * onComplete is never invoked for QUEUED, SCHEDULED or RUNNING. SUCCEEDED, FAILED and CANCELLED
 * end a job; DELETION_IN_PROGRESS is how a job deleted before it finished makes itself known
 * (no final state follows it), and onComplete reports that as failed.
 */
export const NOTIFIED_JOB_STATES = ['SUCCEEDED', 'FAILED', 'CANCELLED', 'DELETION_IN_PROGRESS'] as const;
