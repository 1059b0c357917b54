/**
 * The local Cloud Storage server's lifecycle: it builds the catalog over a backend, listens,
 * answers every request through the route table (routes.ts), tells finalize listeners about new
 * objects, and closes in order. The GCS semantics live in catalog.ts, the HTTP API in handlers/.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '#shared/runtime/logger.js';
import { Catalog } from './catalog.js';
import type { StorageContext } from './handlers/context.js';
import { sendError } from './http.js';
import { objectResource, StorageApiError, type StorageObjectResource } from './resources.js';
import { routeRequest } from './routes.js';
import { DirectoryBackend, MemoryBackend } from './store.js';
import { ResumableSessions } from './uploads.js';
import { type RefusedWrites, WriteRefusal } from './write-refusal.js';

export type { StorageObjectResource } from './resources.js';

/** A running local GCS JSON API server. */
export interface LocalStorageServer {
  /** 'http://127.0.0.1:PORT' — usable as STORAGE_EMULATOR_HOST and as Storage apiEndpoint. */
  url: string;
  port: number;
  /** Subscribe to object finalize (every completed upload/copy/rewrite/compose). Returns unsubscribe. */
  onFinalize(listener: (object: StorageObjectResource) => void): () => void;
  /** From now on, answer the object writes `covers` selects (default: all) with 503 + Retry-After. */
  refuseWrites(reason: string, covers?: RefusedWrites): void;
  close(): Promise<void>;
}

export interface StorageServerOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1: nothing listens beyond loopback unless asked. */
  host?: string;
  /** Keep buckets and objects in this directory (survives restarts); default: in memory. */
  dataDir?: string;
}

const log = createLogger({ name: 'local-storage' });

/**
 * Starts a GCS JSON API server that the real `@google-cloud/storage` client talks to through
 * `apiEndpoint` or `STORAGE_EMULATOR_HOST`: buckets, simple/multipart/resumable uploads, ranged
 * downloads with `x-goog-hash`, listing, metadata, copy/rewrite/compose, preconditions.
 *
 * @example
 * const server = await startStorageServer();
 * const storage = new Storage({ apiEndpoint: server.url, projectId: 'local' });
 * server.onFinalize((object) => console.log('finalized', object.name, object.generation));
 */
export async function startStorageServer(options: StorageServerOptions = {}): Promise<LocalStorageServer> {
  const backend = options.dataDir ? new DirectoryBackend(options.dataDir) : new MemoryBackend();
  const listeners = new Set<(object: StorageObjectResource) => void>();
  let baseUrl = '';
  const catalog = await Catalog.open(backend, (record) => {
    const resource = objectResource(record, baseUrl);
    for (const listener of listeners) {
      // A listener's failure is its own: it must not fail the upload that triggered it.
      try {
        const result: unknown = listener(structuredClone(resource));
        if (result instanceof Promise)
          result.catch((error) => log.error({ err: error }, 'onFinalize listener failed'));
      } catch (error) {
        log.error({ err: error }, 'onFinalize listener failed');
      }
    }
  });
  const sessions = new ResumableSessions(
    () => backend.createBlob(),
    (request, blob) => catalog.finalize(request, blob),
  );
  const context: StorageContext = { catalog, sessions, baseUrl: () => baseUrl };
  const refusal = new WriteRefusal();

  const server: Server = createServer((req, res) => {
    handle(context, refusal, req, res).catch((error) => {
      log.error({ err: error }, 'storage request failed unexpectedly');
      res.destroy();
    });
  });
  applyBurstTimeouts(server);
  const host = options.host ?? '127.0.0.1';
  server.listen({ port: options.port ?? 0, host, backlog: LISTEN_BACKLOG });
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  baseUrl = `http://${urlHost}:${port}`;
  log.debug({ url: baseUrl, dataDir: options.dataDir }, 'local storage server listening');

  let closing: Promise<void> | undefined;
  return {
    url: baseUrl,
    port,
    onFinalize(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    refuseWrites: (reason, covers) => refusal.refuse(reason, covers),
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
        await sessions.closeAll();
        await backend.close();
        listeners.clear();
      })();
      return closing;
    },
  };
}

// ---- connections ----

/**
 * Pending connections the kernel queues while the process is busy (Linux caps it at
 * net.core.somaxconn, 4096 by default). Node's default of 511 is below one burst of the
 * Storage client, whose agent opens a socket per concurrent request (maxSockets: Infinity).
 */
const LISTEN_BACKLOG = 4096;

/**
 * Idle keep-alive sockets are closed by the server after this long. The Node client's agent
 * (keepAlive, no idle timeout of its own) retires a free socket one second before the
 * `Keep-Alive: timeout=N` the server announces. With Node's default of 5 s, a client stalled
 * for a second on a loaded machine reuses a socket the server is about to close; and when the
 * server's event loop was blocked meanwhile, its expired keep-alive timer runs before it reads
 * the request waiting on that socket, so it closes a socket with unread data: the client gets
 * ECONNRESET (issue 9; reproduced in test/integration/storage-burst.test.ts). A minute of idle
 * time keeps that race out of any burst (Google's front ends keep idle connections for minutes).
 */
const KEEP_ALIVE_MS = 65_000;

/**
 * Timeouts set for bursts: keep-alive as above, headers allowed a little longer than keep-alive
 * (Node's rule, or the header timer can fire on a socket the client just reused), and no cap on
 * a whole request. Node's default requestTimeout (300 s) destroys the socket of any upload still
 * being received after five minutes — which is what a 500-upload burst on a saturated machine
 * takes — so the client sees a reset for an upload that was progressing.
 */
function applyBurstTimeouts(server: Server): void {
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  server.headersTimeout = KEEP_ALIVE_MS + 5_000;
  server.requestTimeout = 0;
}

// ---- requests ----

/**
 * Answers one request. This is the one place a routed request is dispatched, reads and writes
 * alike; every failure becomes a GCS-shaped error answer.
 */
async function handle(
  context: StorageContext,
  refusal: WriteRefusal,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  try {
    const route = routeRequest(req, res);
    const { api, query } = route.call;
    refusal.check(req.method ?? 'GET', api, route.segments, query, (id) => context.sessions.get(id)?.request);
    await route.handler(context, route.call);
  } catch (error) {
    if (error instanceof StorageApiError) {
      log.debug({ method: req.method, url: req.url, status: error.status }, error.message);
      sendError(res, error);
    } else {
      log.error({ err: error, method: req.method, url: req.url }, 'storage request failed');
      sendError(res, new StorageApiError(500, 'backendError', 'Internal error'));
    }
  }
}
