import { randomUUID } from 'node:crypto';
import { outputTopic } from '#shared/plan/names.js';
import { attachToPlatform, cliConfig } from '../lib/context.js';
import { formatEvent, receivedEvent } from '../lib/events.js';
import { onStopSignal } from '../lib/signals.js';

/** `batchwire tail`: prints a client's output events as they arrive, until Ctrl-C. */
export async function tail(options: { product: string; client: string; json?: boolean }): Promise<void> {
  attachToPlatform();
  const { config } = cliConfig();
  const { PubSub } = await import('@google-cloud/pubsub');
  const pubsub = new PubSub({ projectId: config.project });
  const topic = pubsub.topic(outputTopic(options.product, options.client));
  const [subscription] = await topic.createSubscription(`tail-${randomUUID().slice(0, 8)}`);
  process.stderr.write(`listening on ${topic.name} (Ctrl-C stops)\n`);
  subscription.on('message', (message) => {
    const event = receivedEvent(message);
    process.stdout.write(`${options.json ? JSON.stringify(event) : formatEvent(event)}\n`);
    message.ack();
  });
  await new Promise<void>((resolve) => onStopSignal(resolve));
  await subscription.close();
  await subscription.delete().catch(() => {});
  await pubsub.close();
}
