import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FunctionServer, startFunction } from '../helpers/functions.js';
import { REPO_ROOT } from '../helpers/platform.js';

/**
 * Bad input never answers 5xx (a trigger would retry it forever): the package's real functions
 * (functions/index.ts, with the repository's batchwire.yaml), served by functions-framework as
 * in production, get malformed requests over HTTP. Each is refused with a 4xx and a JSON
 * message before any handler runs, and a message whose own content is wrong (a 100 KB JobName)
 * is acked, not retried. No Google service is reachable here: a request that got as far as a
 * client call would fail with a 500, so the answers below also prove that none did.
 */

const PROJECT = 'batchwire-local';
const savedConfig = process.env.BATCHWIRE_CONFIG;
const servers: Record<string, FunctionServer> = {};

beforeAll(async () => {
  process.env.BATCHWIRE_CONFIG = join(REPO_ROOT, 'batchwire.yaml');
  await import('#functions/index.js');
  for (const name of ['onUpload', 'onComplete', 'onSchedule']) servers[name] = await startFunction(name);
});

afterAll(async () => {
  await Promise.all(Object.values(servers).map((server) => server.close()));
  if (savedConfig === undefined) delete process.env.BATCHWIRE_CONFIG;
  else process.env.BATCHWIRE_CONFIG = savedConfig;
});

async function send(
  name: string,
  init: { method?: string; headers?: Record<string, string>; body?: string },
  path = '',
): Promise<{ status: number; contentType: string | null; body: string }> {
  const server = servers[name] as FunctionServer;
  const response = await fetch(new URL(path, server.url), {
    method: init.method ?? 'POST',
    headers: init.headers ?? {},
    ...(init.body !== undefined ? { body: init.body } : {}),
    signal: AbortSignal.timeout(15_000),
  });
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    body: await response.text(),
  };
}

const ceHeaders = (type: string, id: string) => ({
  'content-type': 'application/json',
  'ce-specversion': '1.0',
  'ce-id': id,
  'ce-type': type,
  'ce-source': `//pubsub.googleapis.com/projects/${PROJECT}/topics/batchwire-completions`,
  'ce-time': new Date().toISOString(),
});

const MALFORMED: Array<
  [string, { method?: string; headers?: Record<string, string>; body?: string }, number]
> = [
  ['a GET', { method: 'GET' }, 405],
  ['an empty POST with no headers', {}, 400],
  ['a non-JSON text/plain body', { headers: { 'content-type': 'text/plain' }, body: 'hello' }, 400],
  [
    'a non-JSON octet-stream body',
    { headers: { 'content-type': 'application/octet-stream' }, body: '\u0001x' },
    400,
  ],
  ['a JSON array', { headers: { 'content-type': 'application/json' }, body: '[1, 2]' }, 400],
];

describe.each(['onUpload', 'onComplete'])(
  '%s refuses malformed requests with a 4xx before its handler',
  (name) => {
    it.each(MALFORMED)('answers %s with %i and a JSON message', async (_what, request, status) => {
      // Act
      const response = await send(name, request);

      // Assert
      expect(response.status).toBe(status);
      expect(response.contentType).toMatch(/^application\/json/);
      expect(JSON.parse(response.body).error).toMatch(/CloudEvent/);
    });

    it('answers a JSON object that is no CloudEvent in any mode with 400', async () => {
      const response = await send(name, {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ hello: 'world' }),
      });
      expect(response.status).toBe(400);
      expect(JSON.parse(response.body).error).toMatch(/no CloudEvent/);
    });

    it('answers a binary-mode event that lacks ce-source with 400 naming it', async () => {
      const { 'ce-source': _dropped, ...headers } = ceHeaders(
        'google.cloud.storage.object.v1.finalized',
        'no-source',
      );
      const response = await send(name, { headers, body: '{}' });
      expect(response.status).toBe(400);
      expect(JSON.parse(response.body).error).toContain('ce-source');
    });

    it('answers a binary-mode event whose data is not JSON with 400', async () => {
      const headers = {
        ...ceHeaders('google.cloud.storage.object.v1.finalized', 'text'),
        'content-type': 'text/plain',
      };
      const response = await send(name, { headers, body: 'not json' });
      expect(response.status).toBe(400);
    });

    it('answers malformed JSON declared as application/json with 400 (functions-framework’s parser)', async () => {
      const response = await send(name, { headers: { 'content-type': 'application/json' }, body: '{"a": ' });
      expect(response.status).toBe(400);
    });
  },
);

describe('onSchedule refuses malformed requests with a 4xx', () => {
  it.each(MALFORMED)('answers %s with %i and a JSON message', async (_what, request, status) => {
    const response = await send('onSchedule', request);
    expect(response.status).toBe(status);
    expect(JSON.parse(response.body).error).toEqual(expect.any(String));
  });
});

describe('well-formed events still reach the handlers through the guard', () => {
  const taskNotification = {
    message: {
      data: Buffer.from('Task state was updated').toString('base64'),
      attributes: { Type: 'TASK_STATE_CHANGED', JobName: 'bw-x', JobUID: 'bw-x-1', NewTaskState: 'RUNNING' },
      messageId: 'push-1',
      publishTime: new Date().toISOString(),
    },
    subscription: `projects/${PROJECT}/subscriptions/on-complete-push`,
  };

  it('onComplete acks a binary-mode messagePublished event it has nothing to do for (204)', async () => {
    const response = await send('onComplete', {
      headers: ceHeaders('google.cloud.pubsub.topic.v1.messagePublished', 'binary-1'),
      body: JSON.stringify(taskNotification),
    });
    expect(response.status).toBe(204);
  });

  it('onComplete takes a raw Pub/Sub push at /projects/P/topics/T as that event (204)', async () => {
    const response = await send(
      'onComplete',
      { headers: { 'content-type': 'application/json' }, body: JSON.stringify(taskNotification) },
      `projects/${PROJECT}/topics/batchwire-completions`,
    );
    expect(response.status).toBe(204);
  });

  it('onUpload acks an object outside any inputs/ prefix (204)', async () => {
    const response = await send('onUpload', {
      headers: {
        ...ceHeaders('google.cloud.storage.object.v1.finalized', 'outside-1'),
        'ce-source': '//storage.googleapis.com/projects/_/buckets/batchwire-local-batch',
      },
      body: JSON.stringify({
        bucket: 'batchwire-local-batch',
        name: 'elsewhere/x.jsonl',
        generation: '1',
        size: '3',
      }),
    });
    expect(response.status).toBe(204);
  });
});

describe('onComplete: a permanent fault in the message itself is acked, not retried', () => {
  it('acks a job notification with a 100 KB JobName without calling GetJob (204, not 500)', async () => {
    // Arrange: the name is checked before GetJob, which would fail here (no Batch is reachable)
    const message = {
      message: {
        data: Buffer.from('Job state was updated').toString('base64'),
        attributes: {
          Type: 'JOB_STATE_CHANGED',
          JobName: `projects/${PROJECT}/locations/europe-west2/jobs/${'j'.repeat(100_000)}`,
          JobUID: 'bw-x-1',
          NewJobState: 'SUCCEEDED',
          Region: 'europe-west2',
        },
        messageId: 'huge-name-1',
        publishTime: new Date().toISOString(),
      },
      subscription: `projects/${PROJECT}/subscriptions/eventarc-on-complete`,
    };

    // Act
    const response = await send('onComplete', {
      headers: ceHeaders('google.cloud.pubsub.topic.v1.messagePublished', 'huge-name-1'),
      body: JSON.stringify(message),
    });

    // Assert
    expect(response.status).toBe(204);
  });
});
