import { type CloudEvent, HTTP } from 'cloudevents';
import { PermanentError } from '../../runtime/errors.js';
import { PUBSUB_MAX_ATTRIBUTE_BYTES } from './event-data.js';

/**
 * A result event as a Pub/Sub message and back, in the binary content mode of Google's Pub/Sub
 * protocol binding for CloudEvents: `ce-*` attributes, `content-type`, the data as the body.
 */

/** A message ready for `Publisher.publish`. */
export interface PubSubMessage {
  data: Buffer;
  attributes: Record<string, string>;
}

/**
 * Maps an event to a Pub/Sub message in the binary content mode. The SDK's HTTP binary
 * serializer already produces exactly the binding's attribute names (lower-case `ce-` + the
 * attribute, and `content-type` for `datacontenttype`, §3.1.1 of the Pub/Sub binding), so its
 * headers become the message attributes and its body the message data.
 */
export function toPubSubMessage(event: CloudEvent<unknown>): PubSubMessage {
  const { headers, body } = HTTP.binary(event);
  const attributes: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (value !== undefined && value !== null) attributes[key.toLowerCase()] = String(value);
  }
  // The SDK's default content type carries a charset; the contract says plain application/json.
  attributes['content-type'] = event.datacontenttype ?? 'application/json';
  for (const [key, value] of Object.entries(attributes)) {
    // The builders keep every attribute short; this stops a future one from being refused by Pub/Sub.
    if (Buffer.byteLength(value, 'utf8') > PUBSUB_MAX_ATTRIBUTE_BYTES) {
      throw new PermanentError(
        `result event ${event.id}: attribute ${key} has ${Buffer.byteLength(value, 'utf8')} bytes, over Pub/Sub's ${PUBSUB_MAX_ATTRIBUTE_BYTES}`,
      );
    }
  }
  return { data: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8'), attributes };
}

/**
 * Reads a binary-mode message back into a CloudEvent: what a consumer does (and the tests).
 * Throws when the message is not a CloudEvent.
 */
export function fromPubSubMessage<T = unknown>(message: {
  data: Buffer | string;
  attributes: Record<string, string>;
}): CloudEvent<T> {
  const body = typeof message.data === 'string' ? message.data : message.data.toString('utf8');
  return HTTP.toEvent<T>({ headers: message.attributes, body }) as CloudEvent<T>;
}
