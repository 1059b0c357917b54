import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { cloudEvent } from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import type { CloudEventV1 } from 'cloudevents';
import { headerValue } from '#local/eventarc/router.js';

/**
 * Runs registered functions exactly as functions-framework serves them (its own Express app,
 * body parsers and CloudEvent handling, via `getTestServer`) on 127.0.0.1, and POSTs events
 * the way Eventarc does: binary content mode, context attributes as `ce-*` headers.
 */

export const FIXTURES_DIR = join(import.meta.dirname, '..', 'fixtures', 'eventarc');

/** Every request gives up after this: a test never hangs on a function that does not answer. */
const REQUEST_TIMEOUT_MS = 15_000;

export interface FunctionResponse {
  status: number;
  headers: Headers;
  body: string;
}

export interface FunctionServer {
  /** `http://127.0.0.1:PORT/` */
  url: string;
  /** POSTs a raw request (any headers, any body or none). */
  post(
    body: string | Buffer | undefined,
    headers?: Record<string, string>,
    path?: string,
  ): Promise<FunctionResponse>;
  /** POSTs a binary-mode CloudEvent. */
  postEvent(event: HttpEvent): Promise<FunctionResponse>;
  close(): Promise<void>;
}

/** A CloudEvent on the wire: the headers and the JSON body Eventarc sends. */
export interface HttpEvent {
  headers: Record<string, string>;
  body: unknown;
}

/**
 * Starts a function that is already registered with functions-framework (`cloudEvent(name, …)`
 * or `http(name, …)`, e.g. by importing `functions/index.ts`) on a free loopback port.
 */
export async function startFunction(name: string): Promise<FunctionServer> {
  const server: Server = getTestServer(name);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}/`;

  const post: FunctionServer['post'] = async (body, headers = {}, path = '') => {
    const response = await fetch(new URL(path, url), {
      method: 'POST',
      headers,
      ...(body !== undefined ? { body } : {}),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    return { status: response.status, headers: response.headers, body: await response.text() };
  };

  return {
    url,
    post,
    postEvent: (event) =>
      post(typeof event.body === 'string' ? event.body : JSON.stringify(event.body), event.headers),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** Registers a CloudEvent function under `name` and starts it (see {@link startFunction}). */
export async function serveCloudEventFunction(
  name: string,
  handler: (event: CloudEventV1<unknown>) => Promise<void>,
): Promise<FunctionServer> {
  cloudEvent(name, handler);
  return startFunction(name);
}

/** Reads a fixture of `test/fixtures/eventarc/` (`{ headers, body }`, as Eventarc sends it). */
export function loadEventFixture(file: string): HttpEvent {
  const fixture = JSON.parse(readFileSync(join(FIXTURES_DIR, file), 'utf8')) as HttpEvent;
  return { headers: fixture.headers, body: fixture.body };
}

export interface StorageEventFields {
  bucket: string;
  name: string;
  generation: string | number;
  size: string | number;
  /** CloudEvent id; default: derived from bucket, name and generation (as GCS does, one per finalize). */
  id?: string;
  /** CloudEvent time; default: now (so the max event age never drops it). */
  time?: string;
  contentType?: string;
}

/**
 * An Eventarc `google.cloud.storage.object.v1.finalized` event for one object, built from the
 * captured-shape fixture with the object's fields (and the attributes that name it) replaced.
 */
export function storageFinalizedEvent(fields: StorageEventFields): HttpEvent {
  const template = loadEventFixture('storage-object-finalized.json');
  const generation = String(fields.generation);
  const encoded = encodeURIComponent(fields.name);
  const body = {
    ...(template.body as Record<string, unknown>),
    id: `${fields.bucket}/${fields.name}/${generation}`,
    selfLink: `https://www.googleapis.com/storage/v1/b/${fields.bucket}/o/${encoded}`,
    mediaLink: `https://storage.googleapis.com/download/storage/v1/b/${fields.bucket}/o/${encoded}?generation=${generation}&alt=media`,
    name: fields.name,
    bucket: fields.bucket,
    generation: fields.generation,
    size: fields.size,
    ...(fields.contentType ? { contentType: fields.contentType } : {}),
  };
  return {
    headers: {
      ...template.headers,
      'ce-id': fields.id ?? `${generation}${fields.name.length}`,
      'ce-source': `//storage.googleapis.com/projects/_/buckets/${fields.bucket}`,
      'ce-subject': headerValue(`objects/${fields.name}`),
      'ce-time': fields.time ?? new Date().toISOString(),
      'ce-bucket': fields.bucket,
    },
    body,
  };
}

/**
 * The same event as a GCS object resource (as the local storage server's `onFinalize` hands
 * it over) would produce: what the local Eventarc router POSTs.
 */
export function eventForObject(
  object: { bucket: string; name: string; generation: string; size: string },
  overrides: { id?: string; time?: string } = {},
): HttpEvent {
  const event = storageFinalizedEvent({
    bucket: object.bucket,
    name: object.name,
    generation: object.generation,
    size: object.size,
    ...overrides,
  });
  return { headers: event.headers, body: object };
}

export interface PubSubEventFields {
  project: string;
  topic: string;
  messageId: string;
  data: Buffer;
  attributes: Record<string, string>;
  publishTime: Date;
}

/**
 * An Eventarc `google.cloud.pubsub.topic.v1.messagePublished` event for one message (binary
 * mode), delivered through the `eventarc-on-complete` subscription of `project`.
 */
export function pubsubPublishedEvent(fields: PubSubEventFields): HttpEvent {
  const publishTime = fields.publishTime.toISOString();
  return {
    headers: {
      'content-type': 'application/json',
      'ce-specversion': '1.0',
      'ce-id': fields.messageId,
      'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
      'ce-source': `//pubsub.googleapis.com/projects/${fields.project}/topics/${fields.topic}`,
      'ce-time': publishTime,
    },
    body: {
      message: {
        data: fields.data.toString('base64'),
        attributes: fields.attributes,
        messageId: fields.messageId,
        publishTime,
      },
      subscription: `projects/${fields.project}/subscriptions/eventarc-on-complete`,
    },
  };
}
