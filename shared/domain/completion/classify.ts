import { z } from 'zod';
import { type Config, ID_PATTERN } from '../../config/schema.js';
import { MalformedEventError } from '../../runtime/errors.js';
import { isFinalJobState } from '../batch-states.js';
import type { CompletionMessage } from './message.js';

/**
 * What arrives on the completion topic, and what onComplete makes of it.
 *
 * Two kinds of message share the topic, told apart by the `Type` attribute:
 *
 * - `JOB_STATE_CHANGED`: Cloud Batch's job notification. The attributes are the contract
 *   (`JobName`, `JobUID`, `NewJobState`, `Region`); the body is free text and ignored. It
 *   carries no labels, so GetJob recovers product, client, input and output.
 * - `FLOW_COMPLETED`: published by a flow's last step (see {@link FlowCompletionSchema}).
 *
 * This module tells them apart and checks each against its contract before any call is made.
 */

/** How onComplete treats a job state. */
export type JobDisposition =
  /** SUCCEEDED, FAILED, CANCELLED: the job is over, publish its result. */
  | 'final'
  /** DELETION_IN_PROGRESS: a failure if the job had not finished, else nothing. */
  | 'deleted'
  /** QUEUED, SCHEDULED, RUNNING, CANCELLATION_IN_PROGRESS…: not over yet. */
  | 'ignore';

export interface JobStateNotification {
  kind: 'job-state';
  /** `JobName` as sent: a full resource name or a bare job id. */
  jobName: string;
  jobUid: string;
  newState: string;
  region: string | null;
  disposition: JobDisposition;
}

/** The completion message of a flow (version 1), published by a flow's last step. */
export const FlowCompletionSchema = z.object({
  type: z.literal('flow'),
  version: z.literal(1),
  flow: z.string().regex(ID_PATTERN),
  product: z.string().regex(ID_PATTERN),
  /** The client the flow ran for; null for a product-scoped flow (every client is told). */
  client: z.string().regex(ID_PATTERN).nullable(),
  /** `projects/P/locations/L/workflows/W/executions/E`, or a Cloud Run operation name. */
  execution: z.string().min(1).max(1024),
  state: z.enum(['SUCCEEDED', 'FAILED']),
  startedAt: z.iso.datetime({ offset: true }),
  finishedAt: z.iso.datetime({ offset: true }),
  outputs: z
    .object({ prefix: z.string().regex(/^gs:\/\/[^/]+\//, 'a gs://bucket/prefix/ URI') })
    .nullable()
    .default(null),
  /** What went wrong, when state is FAILED. */
  error: z.string().nullable().default(null),
});

export type FlowCompletion = z.infer<typeof FlowCompletionSchema>;

export interface FlowCompletionMessage {
  kind: 'flow';
  completion: FlowCompletion;
}

export interface OtherMessage {
  kind: 'other';
  /** The `Type` attribute, e.g. TASK_STATE_CHANGED. */
  type: string;
}

export type ClassifiedMessage = JobStateNotification | FlowCompletionMessage | OtherMessage;

export const JOB_STATE_CHANGED = 'JOB_STATE_CHANGED';
export const FLOW_COMPLETED = 'FLOW_COMPLETED';

/**
 * A job name as Batch writes it in `JobName` (`projects/{project id or number}/locations/
 * {region}/jobs/{job id}`), or a bare job id; Batch job ids are `^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`.
 */
export const JOB_NAME_PATTERN =
  /^(?:projects\/[a-z0-9][a-z0-9-]{0,62}\/locations\/[a-z0-9-]{1,63}\/jobs\/)?[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** Batch's job uid (the job id with a suffix), bounded. */
const JOB_UID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
/** A `google.cloud.batch.v1.JobStatus.State` name. */
const JOB_STATE_PATTERN = /^[A-Z_]{1,64}$/;
const REGION_PATTERN = /^[a-z0-9-]{1,63}$/;

/** The job state a notification announces, and what onComplete does with it. */
export function jobDisposition(state: string): JobDisposition {
  if (isFinalJobState(state)) return 'final';
  return state === 'DELETION_IN_PROGRESS' ? 'deleted' : 'ignore';
}

/**
 * Classifies a completion message by its `Type` attribute. Throws a MalformedEventError
 * (acked with an ERROR log) when the type is missing, a job notification lacks an attribute,
 * or a flow completion is not valid JSON of the documented shape.
 */
export function classifyMessage(message: CompletionMessage): ClassifiedMessage {
  const attribute = (name: string) => readAttribute(message.attributes, name);
  const type = attribute('Type');
  if (!type) {
    throw new MalformedEventError(
      `completion message ${message.messageId} has no Type attribute (expected ${JOB_STATE_CHANGED} or ${FLOW_COMPLETED})`,
    );
  }
  if (type === JOB_STATE_CHANGED) {
    const jobName = attribute('JobName');
    const jobUid = attribute('JobUID');
    const newState = attribute('NewJobState');
    const missing = [
      ['JobName', jobName],
      ['JobUID', jobUid],
      ['NewJobState', newState],
    ]
      .filter(([, value]) => !value)
      .map(([name]) => name);
    if (!jobName || !jobUid || !newState) {
      throw new MalformedEventError(
        `job notification ${message.messageId} lacks attribute(s) ${missing.join(', ')}`,
      );
    }
    // Checked before GetJob: a name Batch never writes (100 KB, slashes in the id…) would make
    // the call fail in ways that look transient (a reset stream) and be retried for a day.
    const region = attribute('Region');
    const bad = [
      ['JobName', jobName, JOB_NAME_PATTERN],
      ['JobUID', jobUid, JOB_UID_PATTERN],
      ['NewJobState', newState, JOB_STATE_PATTERN],
      ['Region', region, REGION_PATTERN],
    ] as const;
    for (const [name, value, pattern] of bad) {
      if (value !== undefined && !pattern.test(value)) {
        throw new MalformedEventError(
          `job notification ${message.messageId} has an invalid ${name} (${value.length} characters: ${JSON.stringify(value.slice(0, 80))}${value.length > 80 ? '…' : ''}); expected ${pattern}`,
        );
      }
    }
    return {
      kind: 'job-state',
      jobName,
      jobUid,
      newState,
      region: attribute('Region') ?? null,
      disposition: jobDisposition(newState),
    };
  }
  if (type === FLOW_COMPLETED) {
    return { kind: 'flow', completion: parseFlowCompletion(message.data) };
  }
  return { kind: 'other', type };
}

/** Parses and validates a flow completion body. Throws MalformedEventError naming every bad field. */
export function parseFlowCompletion(body: Buffer | string): FlowCompletion {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new MalformedEventError(`flow completion is not JSON: ${text.slice(0, 200)}`);
  }
  const result = FlowCompletionSchema.safeParse(raw);
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new MalformedEventError(`invalid flow completion: ${issues.join('; ')}`);
  }
  return result.data;
}

/** Batch spells the attributes in PascalCase; accept any case so a hand-written test message works too. */
function readAttribute(attributes: Record<string, string>, name: string): string | undefined {
  if (attributes[name]) return attributes[name];
  const lower = name.toLowerCase();
  for (const [key, value] of Object.entries(attributes)) {
    if (key.toLowerCase() === lower && value) return value;
  }
  return undefined;
}

/**
 * The job's full resource name. Batch sends `JobName` as the full name; a bare id (as some
 * tools send it) is completed with the notification's region, else the configured one.
 */
export function fullJobName(
  jobName: string,
  region: string | null,
  config: Pick<Config, 'project' | 'region'>,
): string {
  if (jobName.startsWith('projects/')) return jobName;
  return `projects/${config.project}/locations/${region ?? config.region}/jobs/${jobName}`;
}
