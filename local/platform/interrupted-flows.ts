import {
  FLOW_COMPLETED,
  type FlowCompletion,
  FlowCompletionSchema,
} from '#shared/domain/completion/classify.js';
import { millis } from '../grpc/timestamp.js';
import type { ExecutionResource } from '../workflows/server.js';

/** Why a flow that a stop cut short failed, as its client reads it in `flow.failed`. */
export const PLATFORM_STOPPED =
  'the local platform stopped while the flow was running (its execution was cancelled); run the flow again';

/**
 * Why a flow failed that was running when the platform ended without a stop (SIGKILL, a crash,
 * the OOM killer), as its client reads it in `flow.failed` after the next start. Not
 * {@link PLATFORM_STOPPED}: nothing cancelled this execution, it was lost with the process.
 */
export const PLATFORM_STOPPED_UNEXPECTEDLY =
  'the local platform stopped unexpectedly (a crash or a kill) while the flow was running; run the flow again';

/** A FLOW_COMPLETED message to publish, and where. */
export interface FlowCompletionMessage {
  topic: string;
  completion: FlowCompletion;
}

/**
 * The FLOW_COMPLETED (FAILED) messages of the flow executions a stop (or a crash) cut short,
 * each failed with `reason`. A flow reports how it ended from its own last step, which an
 * execution cut short never reaches: without these, its client would never hear of it.
 * Executions that are not flows (their argument is not a flow's, e.g. `batchwire workflow run`)
 * are left out.
 */
export function interruptedFlowCompletions(
  executions: readonly ExecutionResource[],
  finishedAt: Date,
  reason: string,
): FlowCompletionMessage[] {
  const messages: FlowCompletionMessage[] = [];
  for (const execution of executions) {
    let argument: Record<string, unknown>;
    try {
      argument = JSON.parse(execution.argument) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (typeof argument?.completionTopic !== 'string') continue;
    const started = millis(execution.start_time) as number;
    const completion = FlowCompletionSchema.safeParse({
      type: 'flow',
      version: 1,
      flow: argument.flow,
      product: argument.product,
      client: argument.client ?? null,
      execution: execution.name,
      state: 'FAILED',
      startedAt: new Date(started).toISOString(),
      finishedAt: finishedAt.toISOString(),
      outputs: null,
      error: reason,
    });
    if (completion.success) messages.push({ topic: argument.completionTopic, completion: completion.data });
  }
  return messages;
}

/** Publishes them as a flow's last step does: JSON data, attribute `Type: FLOW_COMPLETED`. */
export async function publishFlowCompletions(
  project: string,
  messages: readonly FlowCompletionMessage[],
): Promise<void> {
  if (messages.length === 0) return;
  const { PubSub } = await import('@google-cloud/pubsub');
  const pubsub = new PubSub({ projectId: project });
  try {
    for (const { topic, completion } of messages) {
      await pubsub.topic(topic).publishMessage({
        data: Buffer.from(JSON.stringify(completion)),
        attributes: { Type: FLOW_COMPLETED },
      });
    }
  } finally {
    await pubsub.close();
  }
}
