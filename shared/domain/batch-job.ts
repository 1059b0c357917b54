import { DURATION_PATTERN } from '../config/schema.js';
import { ConfigError } from '../runtime/errors.js';
import type { JobState } from './batch-states.js';

/**
 * The Cloud Batch v1 `Job` as Batchwire builds it: a plain TypeScript mirror of the subset of
 * `google.cloud.batch.v1.Job` we set, in the camelCase JSON form the `@google-cloud/batch`
 * client accepts (protobufjs `fromObject`: enums as their names, `google.protobuf.Duration` as
 * `{ seconds, nanos }`, int64 as numbers or decimal strings). Kept free of SDK imports so the
 * core and its unit tests never load the client.
 *
 * **Where the input is recorded.** Labels cannot hold an object name or a generation (values
 * are ≤63 characters of `[a-z0-9_-]`), and Batch's job notification carries no labels anyway.
 * So the task contract's environment variables are the record: `BATCHWIRE_INPUT_URI`
 * (`gs://bucket/name`), `BATCHWIRE_INPUT_GENERATION`, `BATCHWIRE_OUTPUT_URI`,
 * `BATCHWIRE_PRODUCT` and `BATCHWIRE_CLIENT` live in
 * `taskGroups[0].taskSpec.environment.variables`, and onComplete reads them back from GetJob
 * with {@link readTaskContract}.
 */

/** A `google.protobuf.Duration` in the client's JSON form. */
export interface Duration {
  seconds: number | string;
  nanos?: number;
}

export interface BatchContainer {
  imageUri: string;
  entrypoint?: string;
  commands?: string[];
}

export interface BatchRunnable {
  container: BatchContainer;
}

export interface BatchEnvironment {
  variables: Record<string, string>;
}

export interface BatchTaskSpec {
  runnables: BatchRunnable[];
  computeResource?: { cpuMilli?: number | string; memoryMib?: number | string };
  maxRunDuration?: Duration;
  maxRetryCount?: number;
  environment?: BatchEnvironment;
}

export interface BatchTaskGroup {
  taskSpec: BatchTaskSpec;
  taskCount?: number | string;
  parallelism?: number | string;
}

export interface BatchAllocationPolicy {
  location?: { allowedLocations: string[] };
  instances?: Array<{ policy: { machineType: string } }>;
  serviceAccount?: { email: string };
  labels?: Record<string, string>;
}

export type BatchJobNotificationType = 'JOB_STATE_CHANGED' | 'TASK_STATE_CHANGED';

export interface BatchJobNotification {
  /** `projects/{project}/topics/{topic}` */
  pubsubTopic: string;
  message: { type: BatchJobNotificationType; newJobState?: string };
}

/** The job sent in CreateJob. */
export interface BatchJob {
  taskGroups: BatchTaskGroup[];
  allocationPolicy?: BatchAllocationPolicy;
  labels?: Record<string, string>;
  logsPolicy?: { destination: 'CLOUD_LOGGING' | 'PATH'; logsPath?: string };
  notifications?: BatchJobNotification[];
}

/** Job states as Batch reports them (`google.cloud.batch.v1.JobStatus.State`). */
export type BatchJobState = 'STATE_UNSPECIFIED' | JobState;

/** A job as GetJob returns it: what we sent plus the output-only fields we read. */
export interface BatchJobResource extends BatchJob {
  /** `projects/P/locations/L/jobs/ID` */
  name: string;
  uid: string;
  status?: { state?: BatchJobState | string; runDuration?: Duration | null } | null;
  createTime?: { seconds?: number | string; nanos?: number } | null;
  updateTime?: { seconds?: number | string; nanos?: number } | null;
}

/** What createJob resolves with. */
export interface CreatedJob {
  name: string;
  uid: string;
}

/**
 * The port the core submits jobs through (implemented over `@google-cloud/batch` in
 * `shared/clients/batch.ts`). The parent (`projects/P/locations/REGION`) is the adapter's.
 */
export interface BatchJobs {
  /**
   * Creates a job. Throws AlreadyExistsError when the id is taken (for a deterministic id:
   * "done"), TransientError when a retry may succeed, PermanentError otherwise.
   */
  createJob(request: { jobId: string; job: BatchJob; requestId: string }): Promise<CreatedJob>;
  /** Reads a job by full name or bare id. Throws NotFoundError when it does not exist. */
  getJob(nameOrId: string): Promise<BatchJobResource>;
}

/**
 * The environment variables of the task contract: the first five are set on every inference
 * task; a flow's Cloud Run job gets `outputUri`, `product`, `client` (when it has one) and the
 * flow ones below.
 */
export const TASK_ENV = {
  inputUri: 'BATCHWIRE_INPUT_URI',
  inputGeneration: 'BATCHWIRE_INPUT_GENERATION',
  outputUri: 'BATCHWIRE_OUTPUT_URI',
  product: 'BATCHWIRE_PRODUCT',
  client: 'BATCHWIRE_CLIENT',
  flow: 'BATCHWIRE_FLOW',
  /** Comma-separated: the clients a product-wide flow runs for. */
  clients: 'BATCHWIRE_CLIENTS',
  bucket: 'BATCHWIRE_BUCKET',
  runId: 'BATCHWIRE_RUN_ID',
  /** JSON: the flow's params. */
  params: 'BATCHWIRE_PARAMS',
} as const;

/** The task contract as read back from a job. */
export interface TaskContract {
  inputUri: string;
  /** Absent on jobs not built by onUpload (e.g. a flow's training job). */
  inputGeneration?: string;
  outputUri: string;
  product: string;
  client: string;
}

/** The part of a job (as built, or as GetJob returns it with nullable fields) that holds the contract. */
export interface JobEnvironmentView {
  taskGroups?: ReadonlyArray<{
    taskSpec?: { environment?: { variables?: Readonly<Record<string, string>> | null } | null } | null;
  } | null> | null;
}

/**
 * Reads the task contract back from a job (GetJob's answer). Returns undefined when the job
 * does not carry it, i.e. it was not started by Batchwire.
 */
export function readTaskContract(job: JobEnvironmentView): TaskContract | undefined {
  const variables = job.taskGroups?.[0]?.taskSpec?.environment?.variables;
  if (!variables) return undefined;
  const inputUri = variables[TASK_ENV.inputUri];
  const outputUri = variables[TASK_ENV.outputUri];
  const product = variables[TASK_ENV.product];
  const client = variables[TASK_ENV.client];
  if (!inputUri || !outputUri || !product || !client) return undefined;
  const inputGeneration = variables[TASK_ENV.inputGeneration];
  return { inputUri, outputUri, product, client, ...(inputGeneration ? { inputGeneration } : {}) };
}

/**
 * Parses a Batch / Cloud Run duration string such as `"3600s"` or `"1.5s"` into the
 * `{ seconds, nanos }` form the client needs (it does not accept the JSON string form).
 * Durations come from the config, which checks them with the same pattern: one that does not
 * match is a ConfigError (acked: no redelivery cures it), not a retried crash.
 */
export function parseDuration(value: string): Duration {
  const match = DURATION_PATTERN.exec(value);
  if (!match) throw new ConfigError(`not a duration in seconds: ${value}`);
  const nanos = match[2] ? Number(match[2].padEnd(9, '0')) : 0;
  return { seconds: Number(match[1]), nanos };
}
