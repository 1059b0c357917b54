import type { HttpFunction, Request, Response } from '@google-cloud/functions-framework';
import type { CloudEventV1 } from 'cloudevents';
import { HttpStatus } from './http-status.js';
import type { Logger } from './logger.js';

/**
 * The HTTP face of a CloudEvent function: a guard that answers malformed requests with a 4xx
 * and a JSON message before any function code runs, then hands a well-formed CloudEvent to the
 * handler (204 when it resolves: acked; 500 when it rejects: the trigger retries).
 *
 * Why not functions-framework's own `cloudEvent()` registration: its middleware reads the body
 * before any function code runs and crashes on what no trigger sends but anyone can (an empty
 * body with no headers, a `text/plain` body, a GET), answering 500 with an HTML stack trace,
 * which a trigger would retry forever. Registered with `http()`, the request reaches this guard
 * after functions-framework's body parsers only (a body declared `application/json` that is not
 * JSON is still refused by those parsers, with a 400).
 *
 * The split: a request that is no CloudEvent at all (what Eventarc never sends, so a caller's
 * mistake) is refused here with a 4xx; a well-formed event whose content is wrong (a path that is
 * not an input, a malformed notification) reaches the handler, which acks it (204) with an ERROR
 * log, since Eventarc and Pub/Sub push retry any status other than 2xx, 4xx included.
 *
 * Accepted, as functions-framework accepts them:
 * - binary content mode (Eventarc): `ce-specversion`, `ce-id`, `ce-type`, `ce-source` headers
 *   (every `ce-*` header becomes an attribute, as functions-framework reads them) and JSON data;
 * - structured content mode: an `application/cloudevents+json` body;
 * - a raw Pub/Sub push (`{message, subscription}`), made into the
 *   `google.cloud.pubsub.topic.v1.messagePublished` event Eventarc would deliver; the topic comes
 *   from a push endpoint path `/projects/P/topics/T`, as functions-framework reads it.
 */
export function cloudEventEndpoint(
  name: string,
  handler: (event: CloudEventV1<unknown>) => Promise<void>,
  log: Logger,
): HttpFunction {
  const functionLog = log.child({ function: name });
  return async (req: Request, res: Response) => {
    const parsed = cloudEventFromRequest({
      method: req.method,
      path: req.path,
      headers: req.headers,
      body: req.body,
    });
    if ('status' in parsed) {
      functionLog.warn(
        { status: parsed.status, method: req.method, contentType: req.get('content-type') ?? null },
        `request refused before the function: ${parsed.error}`,
      );
      if (parsed.status === HttpStatus.METHOD_NOT_ALLOWED) res.set('Allow', 'POST');
      res.status(parsed.status).json({ error: parsed.error });
      return;
    }
    try {
      await handler(parsed.event);
      res.status(HttpStatus.NO_CONTENT).end();
    } catch {
      // The handler's wrapper has logged why at ERROR; the status alone tells the trigger to retry.
      res
        .status(HttpStatus.INTERNAL_SERVER_ERROR)
        .json({ error: `${name} failed on this event; the trigger will retry it` });
    }
  };
}

/** The Eventarc type of a Pub/Sub message (what a raw push is turned into). */
const PUBSUB_MESSAGE_PUBLISHED = 'google.cloud.pubsub.topic.v1.messagePublished';

/** The context attributes a CloudEvent cannot be without (CloudEvents 1.0, "REQUIRED"). */
const REQUIRED = ['specversion', 'id', 'type', 'source'] as const;

const EXPECTED =
  'expected a CloudEvent: binary content mode (ce-specversion, ce-id, ce-type and ce-source headers, JSON data), ' +
  'structured content mode (application/cloudevents+json), or a Pub/Sub push ({"message", "subscription"})';

/** What the guard reads of a request (functions-framework has parsed the body by then). */
export interface CloudEventRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** An object or array (JSON), a string (text/*), a Buffer (any other type), or undefined. */
  body: unknown;
}

export type CloudEventRequestResult = { event: CloudEventV1<unknown> } | { status: number; error: string };

/**
 * Reads a CloudEvent out of a request, or says why it is none with a 4xx status: 405 for a
 * method other than POST, 400 for a body that is missing, not JSON or not a JSON object, and
 * for a request that is no CloudEvent in any mode (naming what is missing).
 */
export function cloudEventFromRequest(req: CloudEventRequest): CloudEventRequestResult {
  if (req.method !== 'POST')
    return refuse(HttpStatus.METHOD_NOT_ALLOWED, `method ${req.method} not allowed: POST a CloudEvent`);

  const headers = ceHeaders(req.headers);
  const body = jsonBody(req.body);
  if ('error' in body) return refuse(HttpStatus.BAD_REQUEST, body.error);

  if (Object.keys(headers).length > 0) {
    const missing = REQUIRED.filter((attribute) => !headers[attribute]);
    if (missing.length > 0) {
      return refuse(
        HttpStatus.BAD_REQUEST,
        `binary-mode CloudEvent without ${missing.map((a) => `ce-${a}`).join(', ')}: ${EXPECTED}`,
      );
    }
    if (!isObject(body.value))
      return refuse(HttpStatus.BAD_REQUEST, `the event data must be a JSON object: ${EXPECTED}`);
    return { event: { ...headers, data: body.value } as unknown as CloudEventV1<unknown> };
  }

  const value = body.value;
  if (!isObject(value)) return refuse(HttpStatus.BAD_REQUEST, `the body must be a JSON object: ${EXPECTED}`);

  if (contentType(req.headers).startsWith('application/cloudevents+json') || 'specversion' in value) {
    const missing = REQUIRED.filter((attribute) => typeof value[attribute] !== 'string' || !value[attribute]);
    if (missing.length > 0)
      return refuse(
        HttpStatus.BAD_REQUEST,
        `structured CloudEvent without ${missing.join(', ')}: ${EXPECTED}`,
      );
    return { event: value as unknown as CloudEventV1<unknown> };
  }

  if (isObject(value.message) && 'subscription' in value) {
    const message = value.message;
    const messageId = message.messageId ?? message.message_id;
    if (typeof messageId !== 'string' || !messageId)
      return refuse(HttpStatus.BAD_REQUEST, 'Pub/Sub push without message.messageId');
    const publishTime = message.publishTime ?? message.publish_time;
    const topic = /projects\/[^/?]+\/topics\/[^/?]+/.exec(req.path)?.[0];
    return {
      event: {
        specversion: '1.0',
        id: messageId,
        type: PUBSUB_MESSAGE_PUBLISHED,
        source: `//pubsub.googleapis.com/${topic ?? 'projects/_/topics/_'}`,
        ...(typeof publishTime === 'string' ? { time: publishTime } : {}),
        datacontenttype: 'application/json',
        data: { message, subscription: value.subscription },
      },
    };
  }

  return refuse(HttpStatus.BAD_REQUEST, `no CloudEvent in the request: ${EXPECTED}`);
}

function refuse(status: number, error: string): { status: number; error: string } {
  return { status, error };
}

/** The `ce-*` headers as attributes (`ce-id` → `id`), as functions-framework reads them. */
function ceHeaders(headers: CloudEventRequest['headers']): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const first = Array.isArray(value) ? value[0] : value;
    if (name.toLowerCase().startsWith('ce-') && typeof first === 'string') {
      attributes[name.slice(3).toLowerCase()] = first;
    }
  }
  return attributes;
}

function contentType(headers: CloudEventRequest['headers']): string {
  const value = headers['content-type'];
  return (Array.isArray(value) ? value[0] : value)?.toLowerCase() ?? '';
}

/**
 * The body as JSON. functions-framework's parsers leave JSON parsed, text/* as a string and any
 * other type as a Buffer (Scheduler and some tools send JSON as octet-stream), so the last two
 * are parsed here; nothing at all (no body, or an empty one) is an error.
 */
function jsonBody(body: unknown): { value: unknown } | { error: string } {
  let text: string;
  if (Buffer.isBuffer(body)) text = body.toString('utf8');
  else if (typeof body === 'string') text = body;
  else if (body === undefined || body === null) text = '';
  else return { value: body };
  if (text.trim() === '') return { error: `empty body: ${EXPECTED}` };
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    return { error: `the body is not JSON (${(err as Error).message}): ${EXPECTED}` };
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
