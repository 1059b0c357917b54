import type { Message } from '@google-cloud/pubsub';

/** A result CloudEvent as received from a client's output topic (Pub/Sub binary content mode). */
export interface ReceivedEvent {
  id: string;
  type: string;
  subject?: string;
  time?: string;
  data: unknown;
}

/** Reads a Pub/Sub message in the CloudEvents binary content mode: `ce-*` attributes, JSON data. */
export function receivedEvent(message: Message): ReceivedEvent {
  const attributes = message.attributes;
  let data: unknown;
  try {
    data = JSON.parse(message.data.toString('utf8'));
  } catch {
    data = message.data.toString('utf8');
  }
  return {
    id: attributes['ce-id'] ?? message.id,
    type: attributes['ce-type'] ?? '(not a CloudEvent)',
    ...(attributes['ce-subject'] ? { subject: attributes['ce-subject'] } : {}),
    ...(attributes['ce-time'] ? { time: attributes['ce-time'] } : {}),
    data,
  };
}

/** The event as a short block of text for a terminal. */
export function formatEvent(event: ReceivedEvent): string {
  return [
    `${event.type}  id=${event.id}${event.subject ? `  subject=${event.subject}` : ''}`,
    JSON.stringify(event.data, null, 2),
  ]
    .join('\n')
    .replace(/\n/g, '\n  ');
}
