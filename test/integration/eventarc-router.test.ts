import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PubSub } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type EventarcRouter, type RouterActivity, startEventarcRouter } from '#local/eventarc/router.js';
import { type LocalStorageServer, startStorageServer } from '#local/storage/server.js';

/**
 * The local Eventarc router against the real local Cloud Storage and the real Storage client:
 * each delivery has the destination function's timeout as its deadline; a stop drains what is
 * under way for a bounded time; with a data folder, what a stop cut short is delivered by the
 * next router. The destination is a plain HTTP server standing in for a function, so a test
 * decides when (and whether) it answers.
 */

const BUCKET = 'router-test-bucket';

interface Destination {
  url: string;
  /** The `ce-id` of every request received, in arrival order. */
  received: string[];
  close(): Promise<void>;
}

async function startDestination(
  answer: (attempt: number, req: IncomingMessage, res: ServerResponse) => void,
): Promise<Destination> {
  const received: string[] = [];
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received.push(String(req.headers['ce-id']));
      answer(received.length, req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let storageServer: LocalStorageServer;
let storage: Storage;
let pubsub: PubSub;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  storageServer = await startStorageServer();
  storage = new Storage({ apiEndpoint: storageServer.url, projectId: 'router-test' });
  await storage.createBucket(BUCKET);
  pubsub = new PubSub({ projectId: 'router-test' });
});

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

afterAll(async () => {
  await pubsub.close();
  await storageServer.close();
});

async function router(
  destination: Destination,
  options: { timeoutMs?: number; dataDir?: string; activity?: RouterActivity[] } = {},
): Promise<EventarcRouter> {
  const started = await startEventarcRouter({
    storage: storageServer,
    pubsub,
    storageTriggers: [
      {
        name: 'on-upload',
        bucket: BUCKET,
        destination: destination.url,
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      },
    ],
    retry: { initialDelayMs: 50, maxDelayMs: 200 },
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
    onActivity: (activity) => options.activity?.push(activity),
  });
  cleanups.push(() => started.close({ drainMs: 0 }));
  return started;
}

describe('delivery deadline', () => {
  it('counts a handler past the function timeout as failed and retries the same event', async () => {
    // Arrange: a function that never answers its first request, and answers the second.
    const destination = await startDestination((attempt, _req, res) => {
      if (attempt > 1) res.writeHead(204).end();
    });
    cleanups.push(() => destination.close());
    const activity: RouterActivity[] = [];
    const routing = await router(destination, { timeoutMs: 300, activity });

    // Act
    await storage.bucket(BUCKET).file('p/c/inputs/deadline.jsonl').save('{}\n');

    // Assert: two attempts of one event, the first counted failed for its deadline.
    await vi.waitFor(() => expect(destination.received).toHaveLength(2), { timeout: 10_000 });
    await routing.idle();
    expect(new Set(destination.received).size).toBe(1);
    const retry = activity.find((a) => a.kind === 'event.retry');
    expect(retry?.message).toContain("no answer within the function's timeout (300 ms)");
    expect(activity.some((a) => a.kind === 'event.delivered')).toBe(true);
  });

  it('defaults to the 60 s gen2 gives an event function deployed without --timeout', async () => {
    const { EVENTARC_RETRY, EVENT_FUNCTION_TIMEOUT_MS } = await import('#local/eventarc/delivery.js');
    expect(EVENT_FUNCTION_TIMEOUT_MS).toBe(60_000);
    expect(EVENTARC_RETRY.attemptTimeoutMs).toBe(EVENT_FUNCTION_TIMEOUT_MS);
  });
});

describe('stop', () => {
  it('lets a delivery under way finish before it stops', async () => {
    // Arrange: a function that takes 500 ms.
    const destination = await startDestination((_attempt, _req, res) => {
      setTimeout(() => res.writeHead(204).end(), 500);
    });
    cleanups.push(() => destination.close());
    const activity: RouterActivity[] = [];
    const routing = await router(destination, { activity });
    await storage.bucket(BUCKET).file('p/c/inputs/drain.jsonl').save('{}\n');
    await vi.waitFor(() => expect(destination.received).toHaveLength(1), { timeout: 10_000 });

    // Act: stop while it runs.
    await routing.close({ drainMs: 5_000 });

    // Assert: it was delivered, not cut short.
    expect(activity.filter((a) => a.kind === 'event.delivered')).toHaveLength(1);
    expect(activity.some((a) => a.kind === 'event.kept')).toBe(false);
  });

  it('keeps what the drain could not finish, and the next router delivers it with the same id', async () => {
    // Arrange: a function that hangs, a router with a data folder.
    const dataDir = mkdtempSync(join(tmpdir(), 'batchwire-router-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const hanging = await startDestination(() => {});
    cleanups.push(() => hanging.close());
    const activity: RouterActivity[] = [];
    const first = await router(hanging, { dataDir, activity });
    await storage.bucket(BUCKET).file('p/c/inputs/kept.jsonl').save('{}\n');
    await vi.waitFor(() => expect(hanging.received).toHaveLength(1), { timeout: 10_000 });

    // Act: a stop whose drain runs out, then a new router on the same folder.
    await first.close({ drainMs: 200 });
    expect(activity.some((a) => a.kind === 'event.kept' && a.message.includes('kept.jsonl'))).toBe(true);
    expect(readdirSync(dataDir).filter((f) => f.endsWith('.json'))).toHaveLength(1);
    const answering = await startDestination((_attempt, _req, res) => res.writeHead(204).end());
    cleanups.push(() => answering.close());
    const second = await router(answering, { dataDir });

    // Assert: delivered once, as the same event, and no longer kept.
    await vi.waitFor(() => expect(answering.received).toHaveLength(1), { timeout: 10_000 });
    await second.idle();
    expect(answering.received[0]).toBe(hanging.received[0]);
    expect(readdirSync(dataDir).filter((f) => f.endsWith('.json'))).toHaveLength(0);
    expect(existsSync(dataDir)).toBe(true);
  });
});
