import type { TaskContract } from '../batch-job.js';
import { isFinalJobState } from '../batch-states.js';
import type { FlowResultData, InferenceResultData, ResultOutputs } from '../results/event-data.js';
import type { FlowCompletion, JobStateNotification } from './classify.js';
import {
  type FinishedJobResource,
  failureReason,
  type JobEnding,
  jobTaskCount,
  jobTimings,
  jobTransitions,
} from './finished-job.js';

/**
 * What a result says, decided from what is known once a job or flow has ended. Pure: reading
 * the job, listing its outputs and publishing are the handler's (handle.ts).
 */

/**
 * How the notified job ended: the final state notified, or DELETED for a job deleted before it
 * finished. Undefined for a deletion after the final state: the result came with that state.
 */
export function jobEnding(
  notification: Pick<JobStateNotification, 'disposition' | 'newState'>,
  job: FinishedJobResource,
): JobEnding | undefined {
  if (notification.disposition !== 'deleted') return notification.newState as JobEnding;
  const finished = jobTransitions(job).some((t) => isFinalJobState(t.to));
  return finished ? undefined : 'DELETED';
}

/** A finished job as the handler has gathered it. */
export interface EndedJob {
  /** The job as GetJob returned it. */
  job: FinishedJobResource;
  /** `projects/P/locations/L/jobs/J`. */
  name: string;
  /** The uid the notification named (the job's own, checked by the handler). */
  uid: string;
  ending: JobEnding;
  product: string;
  client: string;
  /** What the job was asked to read and where it was asked to write. */
  contract: TaskContract;
  outputs: ResultOutputs;
}

/** The data of an inference result (version 2) for a job that ended. */
export function inferenceResultData(ended: EndedJob): InferenceResultData {
  const { job, ending } = ended;
  const succeeded = ending === 'SUCCEEDED';
  return {
    version: 2,
    status: succeeded ? 'succeeded' : 'failed',
    product: ended.product,
    client: ended.client,
    input: { uri: ended.contract.inputUri, generation: ended.contract.inputGeneration ?? null },
    outputs: ended.outputs,
    job: { name: ended.name, uid: ended.uid, taskCount: jobTaskCount(job), state: ending },
    timings: jobTimings(job, ending === 'DELETED' ? ['DELETION_IN_PROGRESS'] : [ending]),
    reason: ending === 'SUCCEEDED' ? null : failureReason(job, ending),
  };
}

/**
 * The time of an inference result: when the job finished, else when Batch notified, else when
 * the job was created. Never when this runs, so that a republished event is identical.
 */
export function inferenceResultTime(data: InferenceResultData, publishTime: string | undefined): string {
  return data.timings.finished ?? publishTime ?? data.timings.created ?? new Date(0).toISOString();
}

/** The data of a flow result for one client the flow concerns. */
export function flowResultData(completion: FlowCompletion, client: string): FlowResultData {
  const succeeded = completion.state === 'SUCCEEDED';
  return {
    version: 1,
    status: succeeded ? 'succeeded' : 'failed',
    product: completion.product,
    client,
    scope: completion.client === null ? 'product' : 'client',
    flow: completion.flow,
    execution: completion.execution,
    timings: {
      started: new Date(completion.startedAt).toISOString(),
      finished: new Date(completion.finishedAt).toISOString(),
    },
    outputs: completion.outputs,
    reason: succeeded
      ? null
      : completion.error?.trim() ||
        `flow ${completion.flow} failed without an error message; see the logs of execution ${completion.execution}`,
  };
}
