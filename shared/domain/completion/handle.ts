import type { ObjectStore } from '../../clients/ports.js';
import type { Config } from '../../config/schema.js';
import { outputTopic } from '../../plan/names.js';
import { NotFoundError } from '../../runtime/errors.js';
import { type BatchJobs, readTaskContract } from '../batch-job.js';
import { flowResultEvent, inferenceResultEvent } from '../results/build-events.js';
import { recordOutputs } from '../results/outputs-manifest.js';
import { type PublishOnceDeps, type PublishOutcome, publishOnce } from '../results/publish-once.js';
import { classifyMessage, type FlowCompletion, fullJobName, type JobStateNotification } from './classify.js';
import type { FinishedJobResource } from './finished-job.js';
import type { CompletionMessage } from './message.js';
import { flowResultData, inferenceResultData, inferenceResultTime, jobEnding } from './result-data.js';
import { ForeignJobError, flowRecipients, routeJob } from './routing.js';

/**
 * onComplete's core: one completion message in, at most one result per client out. A finished
 * job is read back from Batch (its labels route it, its task contract names its input and
 * outputs), its outputs are recorded in a manifest, and its result event is published once; a
 * flow completion becomes one result per client it concerns.
 */

export interface CompletionDeps extends PublishOnceDeps {
  config: Pick<Config, 'project' | 'region' | 'bucket' | 'products'>;
  /** Batch (only GetJob is used). Throws NotFoundError / TransientError. */
  jobs: Pick<BatchJobs, 'getJob'>;
  store: ObjectStore;
}

/** What handling one message did (logged, and asserted by tests). */
export type CompletionOutcome =
  | { kind: 'ignored'; reason: string }
  | { kind: 'published'; results: Array<{ topic: string; eventId: string; outcome: PublishOutcome }> };

/**
 * The core of onComplete: classify the message, and for a finished job or flow publish its
 * result (once) to the client's output topic. Throws a PermanentError for what no retry cures
 * (the wrapper acks it with an ERROR log) and lets transient faults (Batch, Pub/Sub or Storage
 * unreachable, output topic missing) propagate so the trigger retries.
 */
export async function handleCompletion(
  message: CompletionMessage,
  deps: CompletionDeps,
): Promise<CompletionOutcome> {
  const classified = classifyMessage(message);
  switch (classified.kind) {
    case 'other':
      deps.log.debug({ type: classified.type }, 'completion message ignored: not a job state or flow');
      return { kind: 'ignored', reason: `type ${classified.type}` };
    case 'flow':
      return handleFlowCompletion(classified.completion, message.messageId, deps);
    case 'job-state':
      return handleJobState(classified, message, deps);
  }
}

async function handleJobState(
  notification: JobStateNotification,
  message: CompletionMessage,
  deps: CompletionDeps,
): Promise<CompletionOutcome> {
  const log = deps.log.child({ job: notification.jobName, jobUid: notification.jobUid });
  if (notification.disposition === 'ignore') {
    // No GetJob: Batch sends several of these per job and none of them ends it.
    log.debug({ state: notification.newState }, 'job not finished yet; nothing to publish');
    return { kind: 'ignored', reason: `state ${notification.newState}` };
  }

  const name = fullJobName(notification.jobName, notification.region, deps.config);
  let job: FinishedJobResource;
  try {
    job = (await deps.jobs.getJob(name)) as FinishedJobResource;
  } catch (err) {
    if (err instanceof NotFoundError) {
      // Without the job there are no labels to route by, nor an input to report.
      throw new ForeignJobError(
        `job ${name} (${notification.newState}) no longer exists; its result cannot be routed to a client`,
        { cause: err },
      );
    }
    throw err;
  }
  if (job.uid && job.uid !== notification.jobUid) {
    // A job re-created under the same id: this notification is about the old one, now gone.
    throw new ForeignJobError(
      `job ${name} now has uid ${job.uid}, not ${notification.jobUid}; the notified job no longer exists`,
    );
  }

  const { product, client } = routeJob(job, deps.config);
  const jobLog = log.child({ product, client });

  const ending = jobEnding(notification, job);
  if (ending === undefined) {
    jobLog.debug('job deleted after it finished; its result came with the final state');
    return { kind: 'ignored', reason: 'deleted after finishing' };
  }

  const contract = readTaskContract(job as unknown as Parameters<typeof readTaskContract>[0]);
  if (!contract) {
    throw new ForeignJobError(`job ${name} has no Batchwire task contract (BATCHWIRE_INPUT_URI…)`);
  }
  const jobName = job.name || name;
  const outputs = await recordOutputs(
    contract.outputUri,
    { name: jobName, uid: notification.jobUid },
    { ...deps, log: jobLog },
  );
  const data = inferenceResultData({
    job,
    name: jobName,
    uid: notification.jobUid,
    ending,
    product,
    client,
    contract,
    outputs,
  });
  const event = inferenceResultEvent(deps.config.project, data, {
    time: inferenceResultTime(data, message.publishTime),
  });
  const topic = outputTopic(product, client);
  const outcome = await publishOnce(event, topic, message.messageId, { ...deps, log: jobLog });
  return { kind: 'published', results: [{ topic, eventId: event.id, outcome }] };
}

async function handleFlowCompletion(
  completion: FlowCompletion,
  deliveryId: string,
  deps: CompletionDeps,
): Promise<CompletionOutcome> {
  const log = deps.log.child({
    flow: completion.flow,
    product: completion.product,
    execution: completion.execution,
  });
  const clients = flowRecipients(completion, deps.config);
  const results: Array<{ topic: string; eventId: string; outcome: PublishOutcome }> = [];
  // Sequential and stopping at the first failure: a retry skips the clients already served.
  for (const client of clients) {
    const event = flowResultEvent(deps.config.project, flowResultData(completion, client));
    const topic = outputTopic(completion.product, client);
    const outcome = await publishOnce(event, topic, deliveryId, { ...deps, log: log.child({ client }) });
    results.push({ topic, eventId: event.id, outcome });
  }
  return { kind: 'published', results };
}
