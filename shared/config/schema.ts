import { z } from 'zod';

/** Product and client ids, as the object layout and topic names require. */
export const ID_PATTERN = /^[a-z][a-z0-9-]{1,29}$/;

const id = (what: string) =>
  z.string().regex(ID_PATTERN, `${what} must match ${ID_PATTERN.source} (lowercase, 2-30 chars)`);

/**
 * A Cloud Batch / Cloud Run duration such as "3600s": whole seconds and at most nine decimals
 * (the nanoseconds of a protobuf Duration), so that every accepted value can be sent.
 */
export const DURATION_PATTERN = /^(\d+)(?:\.(\d{1,9}))?s$/;
const duration = z.string().regex(DURATION_PATTERN, 'a duration in seconds such as "3600s"');

/** How an inference job is built for every upload of a product. */
export const InferenceSchema = z
  .object({
    /** Container image of the inference task (the task contract's BATCHWIRE_* variables are set). */
    image: z.string().min(1),
    entrypoint: z.string().optional(),
    commands: z.array(z.string()).default([]),
    machineType: z.string().default('e2-standard-2'),
    /** Batch `allocationPolicy.location.allowedLocations`, e.g. `zones/europe-west2-a`. */
    allowedLocations: z.array(z.string()).default([]),
    cpuMilli: z.number().int().positive().default(2000),
    memoryMib: z.number().int().positive().default(2048),
    /** File extensions accepted under `inputs/`, with the dot, lowercase. */
    acceptedExtensions: z.array(z.string().regex(/^\.[a-z0-9]+$/)).default(['.jsonl', '.csv']),
    /** Uploads larger than this are rejected. */
    maxFileBytes: z
      .number()
      .int()
      .positive()
      .default(5 * 1024 ** 3),
    /** One task per `shardBytes` of input, at most `maxTasks`. */
    shardBytes: z
      .number()
      .int()
      .positive()
      .default(64 * 1024 ** 2),
    maxTasks: z.number().int().min(1).max(10_000).default(16),
    parallelism: z.number().int().min(1).default(4),
    maxRetryCount: z.number().int().min(0).max(10).default(2),
    maxRunDuration: duration.default('3600s'),
    /** Extra environment variables for every task. */
    env: z.record(z.string(), z.string()).default({}),
  })
  .strict();

/** Where a flow runs: a Cloud Workflows workflow (a file in `workflows/`) or a Cloud Run job. */
export const FlowTargetSchema = z.union([
  z
    .object({
      /** Workflow id; the definition is `workflows/<workflow>.workflows.yaml`. */
      workflow: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/),
    })
    .strict(),
  z
    .object({
      /** Cloud Run job id in the project's region. */
      runJob: z.string().regex(/^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/),
      /** Container args given to the job on every run (overrides). */
      args: z.array(z.string()).default([]),
    })
    .strict(),
]);

export const FlowSchema = z
  .object({
    target: FlowTargetSchema,
    /** `client`: one run per client, the body names it; `product`: one run for the whole product. */
    scope: z.enum(['client', 'product']),
    /** Cron expression for Cloud Scheduler (five fields). */
    schedule: z.string().min(1).optional(),
    timeZone: z.string().default('Etc/UTC'),
    /** Default params, merged under the params of a request. */
    params: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

export const ProductSchema = z
  .object({
    clients: z.array(id('client id')).min(1),
    /** Service account that Batch jobs and flows run as. */
    serviceAccount: z.string().email().optional(),
    inference: InferenceSchema,
    flows: z.record(id('flow id'), FlowSchema).default({}),
  })
  .strict();

/** The local cloud's own settings; ignored in Google Cloud. */
export const LocalSchema = z
  .object({
    /** Container image → local command (argv) that stands in for it when the local cloud runs a task. */
    images: z.record(z.string(), z.array(z.string()).min(1)).default({}),
  })
  .strict()
  .default({ images: {} });

/**
 * Default max event age: 23 hours, an hour under the 24 h for which Eventarc retries a failing
 * event (https://cloud.google.com/eventarc/docs/retry-events), so the age check can still fire
 * on the attempts Eventarc makes in its last hour (its backoff is at most 10 minutes).
 */
export const DEFAULT_MAX_EVENT_AGE_SECONDS = 82_800;

export const ConfigSchema = z
  .object({
    project: z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'a Google Cloud project id'),
    region: z.string().regex(/^[a-z]+-[a-z]+\d$/, 'a Google Cloud region such as europe-west2'),
    bucket: z.string().regex(/^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/, 'a Cloud Storage bucket name'),
    /** Topic that Batch job notifications and flow completions are published to. */
    completionTopic: z.string().regex(/^[a-zA-Z][a-zA-Z0-9._~%+-]{2,254}$/),
    /**
     * Events older than this are dropped with an ERROR log instead of retried forever. The
     * default (23 h) sits below Eventarc's own 24 h retry window: at 24 h Eventarc gives up
     * first, so the drop (and its ERROR log) would never happen.
     */
    maxEventAgeSeconds: z.number().int().positive().default(DEFAULT_MAX_EVENT_AGE_SECONDS),
    products: z
      .record(id('product id'), ProductSchema)
      .refine((p) => Object.keys(p).length > 0, 'at least one product'),
    local: LocalSchema,
  })
  .strict();

export type Config = z.infer<typeof ConfigSchema>;
export type ProductConfig = z.infer<typeof ProductSchema>;
export type InferenceConfig = z.infer<typeof InferenceSchema>;
export type FlowConfig = z.infer<typeof FlowSchema>;
export type FlowTarget = z.infer<typeof FlowTargetSchema>;
