import { MalformedEventError } from '../../runtime/errors.js';

/**
 * The Pub/Sub message onComplete is handed: read out of the CloudEvent the trigger delivers,
 * before anything looks at what the message says (see classify.ts for that).
 */

/** One Pub/Sub message, as the trigger hands it over. */
export interface CompletionMessage {
  data: Buffer;
  attributes: Record<string, string>;
  messageId: string;
  publishTime?: string;
}

/**
 * Reads the Pub/Sub message out of a `google.cloud.pubsub.topic.v1.messagePublished` event's
 * data: `{ message: { data (base64), attributes, messageId, publishTime }, subscription }`.
 * Eventarc sends exactly that; functions-framework turns a raw push (to a path
 * `/projects/P/topics/T`) into the same shape, with `@type` added and `subscription` dropped.
 */
export function messageFromEventData(data: unknown): CompletionMessage {
  const parsed = typeof data === 'string' ? safeJson(data) : data;
  const message = (parsed as { message?: unknown } | undefined)?.message as
    | Record<string, unknown>
    | undefined;
  if (!message || typeof message !== 'object') {
    throw new MalformedEventError('not a Pub/Sub messagePublished event: no `message` in the event data');
  }
  const attributes: Record<string, string> = {};
  if (message.attributes && typeof message.attributes === 'object') {
    for (const [key, value] of Object.entries(message.attributes as Record<string, unknown>)) {
      if (typeof value === 'string') attributes[key] = value;
    }
  }
  const body = typeof message.data === 'string' ? Buffer.from(message.data, 'base64') : Buffer.alloc(0);
  const messageId = String(message.messageId ?? message.message_id ?? '');
  const publishTime = message.publishTime ?? message.publish_time;
  return {
    data: body,
    attributes,
    messageId,
    ...(typeof publishTime === 'string' ? { publishTime } : {}),
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
