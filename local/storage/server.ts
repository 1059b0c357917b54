import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { createLogger } from '../../shared/runtime/logger.js';
import { Catalog, type ListObjectsQuery, type Preconditions, validateName } from './catalog.js';
import { applyFieldMask, parseFieldMask } from './fields.js';
import { compileGlob } from './glob.js';
import { parseGoogHash } from './hashes.js';
import { multipartBoundary, readMultipart } from './multipart.js';
import {
  applyObjectFields,
  bucketResource,
  invalidArgument,
  MUTABLE_OBJECT_KEYS,
  type MutableObjectFields,
  type ObjectRecord,
  objectResource,
  StorageApiError,
  type StorageObjectResource,
} from './resources.js';
import { type BlobWriter, type CommittedBlob, DirectoryBackend, MemoryBackend } from './store.js';
import { parseContentRange, ResumableSessions } from './uploads.js';
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

type Api = 'json' | 'upload' | 'download';

const JSON_TYPE = 'application/json; charset=UTF-8';
const MAX_JSON_BYTES = 16 * 1024 * 1024;

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
  const refusal = new WriteRefusal();
  const handler = new RequestHandler(catalog, sessions, () => baseUrl, refusal);

  const server: Server = createServer((req, res) => {
    handler.handle(req, res).catch((error) => {
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

// ---- request plumbing ----

function send(
  res: ServerResponse,
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
): void {
  if (body === undefined || status === 204 || status === 304) {
    res.writeHead(status, headers).end();
    return;
  }
  const text = JSON.stringify(body);
  res
    .writeHead(status, {
      'Content-Type': JSON_TYPE,
      'Content-Length': String(Buffer.byteLength(text)),
      ...headers,
    })
    .end(res.req.method === 'HEAD' ? undefined : text);
}

/**
 * Answers 200 with a resource, or with the part of it that `fields=` selects (partial response:
 * gcloud asks for e.g. `fields=items/name,items/size,nextPageToken`).
 */
function sendResource(res: ServerResponse, resource: unknown): void {
  const url = res.req.url ?? '';
  const at = url.indexOf('?');
  const fields = at < 0 ? null : new URLSearchParams(url.slice(at + 1)).get('fields');
  send(res, 200, fields === null ? resource : applyFieldMask(resource, parseFieldMask(fields)));
}

function sendError(res: ServerResponse, error: StorageApiError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  send(res, error.status, error.body(), error.headers);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_JSON_BYTES)
      throw new StorageApiError(413, 'uploadTooLarge', 'The request body is too large.');
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new StorageApiError(400, 'parseError', 'Parse Error');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new StorageApiError(400, 'parseError', 'The request body must be a JSON object.');
  }
  return value as Record<string, unknown>;
}

function intParam(query: URLSearchParams, key: string): number | undefined {
  const value = query.get(key);
  if (value === null || value === '') return undefined;
  if (!/^-?\d{1,19}$/.test(value)) throw invalidArgument(`Invalid value for parameter ${key}: ${value}`);
  return Number(value);
}

/**
 * A boolean query parameter as Google's front end reads it: `true`/`false` in any case
 * (gcloud and Python send `True`), absent or empty is false; anything else is a 400, not false.
 */
function boolParam(query: URLSearchParams, key: string): boolean {
  const value = query.get(key);
  if (value === null || value === '') return false;
  const lower = value.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  throw invalidArgument(`Invalid boolean value for parameter ${key}: ${value}`);
}

function preconditions(query: URLSearchParams, prefix = 'if'): Preconditions {
  const result: Preconditions = {};
  for (const key of [
    'GenerationMatch',
    'GenerationNotMatch',
    'MetagenerationMatch',
    'MetagenerationNotMatch',
  ] as const) {
    const value = intParam(query, `${prefix}${key}`);
    if (value !== undefined) result[`if${key}`] = value;
  }
  return result;
}

function optional(query: URLSearchParams, key: string): string | undefined {
  return query.get(key) ?? undefined;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Splits `/storage/v1/b/...`, `/upload/storage/v1/b/...` (also `/resumable/upload/…`),
 * `/download/storage/v1/b/...` and the bare `/b/...` (the client drops `/storage/v1` when
 * STORAGE_EMULATOR_HOST is set) into decoded
 * path segments. Splitting happens before decoding, so `%2F` inside an object name stays in it;
 * the path is never normalised, so objects named `..` or `a/./b` are reachable.
 */
function parsePath(rawPath: string): { api: Api; segments: string[] } {
  const prefixes: Array<[string, Api]> = [
    ['/upload/storage/v1/', 'upload'],
    // gcloud (apitools) starts resumable uploads on this path; Google answers it like /upload.
    ['/resumable/upload/storage/v1/', 'upload'],
    ['/download/storage/v1/', 'download'],
    ['/storage/v1/', 'json'],
    ['/', 'json'],
  ];
  for (const [prefix, api] of prefixes) {
    if (!rawPath.startsWith(prefix)) continue;
    try {
      const segments = rawPath.slice(prefix.length).split('/').map(decodeURIComponent);
      if (segments.length <= 3 && segments[segments.length - 1] === '') segments.pop();
      return { api, segments };
    } catch {
      throw invalidArgument('Malformed percent-encoding in the request path.');
    }
  }
  throw new StorageApiError(404, 'notFound', 'Not Found');
}

/** A parsed `Range: bytes=…` for an object of `size` bytes; undefined serves the whole object. */
function parseRange(value: string | undefined, size: number): { start: number; end: number } | undefined {
  if (!value || size === 0) return undefined;
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(value);
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) throw rangeNotSatisfiable(size);
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size || end < start) throw rangeNotSatisfiable(size);
  return { start, end };
}

function rangeNotSatisfiable(size: number): StorageApiError {
  return new StorageApiError(416, 'requestedRangeNotSatisfiable', 'Request range not satisfiable', {
    'Content-Range': `bytes */${size}`,
  });
}

/** Routes one request to the catalog. Every failure becomes a GCS-shaped error answer. */
class RequestHandler {
  constructor(
    private readonly catalog: Catalog,
    private readonly sessions: ResumableSessions,
    private readonly baseUrl: () => string,
    private readonly refusal: WriteRefusal,
  ) {}

  private resource(record: ObjectRecord): StorageObjectResource {
    return objectResource(record, this.baseUrl());
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await this.route(req, res);
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

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const at = url.indexOf('?');
    const rawPath = at < 0 ? url : url.slice(0, at);
    const query = new URLSearchParams(at < 0 ? '' : url.slice(at + 1));
    const method = req.method ?? 'GET';
    const { api, segments } = parsePath(rawPath);
    this.refusal.check(method, api, segments, query, (id) => this.sessions.get(id)?.request);
    // A malformed selector is refused before any work, not after an upload has landed.
    const fields = query.get('fields');
    if (fields !== null) parseFieldMask(fields);

    if (segments[0] === 'projects' && segments[2] === 'serviceAccount' && method === 'GET') {
      sendResource(res, {
        kind: 'storage#serviceAccount',
        email_address: `service-0@gs-project-accounts.iam.gserviceaccount.com`,
      });
      return;
    }
    if (segments[0] !== 'b') throw new StorageApiError(404, 'notFound', 'Not Found');
    const bucket = segments[1];

    if (api === 'upload') {
      if (bucket === undefined || segments[2] !== 'o' || segments.length !== 3) {
        throw new StorageApiError(404, 'notFound', 'Not Found');
      }
      await this.upload(req, res, bucket, query);
      return;
    }

    if (bucket === undefined) {
      if (method === 'GET') return this.listBuckets(res, query);
      if (method === 'POST') return this.createBucket(req, res, query);
      throw methodNotAllowed();
    }
    if (segments.length === 2) return this.bucketRoute(req, res, bucket, query);
    if (segments.length === 3 && segments[2] === 'storageLayout') {
      if (method !== 'GET') throw methodNotAllowed();
      return this.storageLayout(res, bucket);
    }
    if (segments[2] !== 'o') throw new StorageApiError(501, 'notImplemented', `Not implemented: ${rawPath}`);
    if (segments.length === 3) {
      if (method === 'GET') return this.listObjects(res, bucket, query);
      throw methodNotAllowed();
    }

    const rest = segments.slice(3);
    const [first, action] = rest as [string, string | undefined];
    if (
      (action === 'copyTo' || action === 'rewriteTo') &&
      rest[2] === 'b' &&
      rest[4] === 'o' &&
      rest.length >= 6
    ) {
      if (method !== 'POST') throw methodNotAllowed();
      return this.copy(req, res, query, {
        sourceBucket: bucket,
        sourceName: first,
        destinationBucket: rest[3] as string,
        destinationName: rest.slice(5).join('/'),
        rewrite: action === 'rewriteTo',
      });
    }
    if (action === 'compose' && rest.length === 2 && method === 'POST')
      return this.compose(req, res, bucket, first, query);
    // Anything else is an object name; unencoded slashes are tolerated for hand-written URLs.
    const name = rest.join('/');
    switch (method) {
      case 'GET':
      case 'HEAD':
        if (api === 'download' || query.get('alt') === 'media')
          return this.download(req, res, bucket, name, query);
        return this.getObject(res, bucket, name, query);
      case 'PATCH':
      case 'PUT':
        return this.updateObject(req, res, bucket, name, query, method === 'PUT');
      case 'DELETE':
        await this.catalog.deleteObject(bucket, name, {
          generation: intParam(query, 'generation'),
          preconditions: preconditions(query),
        });
        send(res, 204);
        return;
      default:
        throw methodNotAllowed();
    }
  }

  // ---- buckets ----

  private listBuckets(res: ServerResponse, query: URLSearchParams): void {
    const page = this.catalog.listBuckets({
      prefix: optional(query, 'prefix'),
      maxResults: intParam(query, 'maxResults'),
      pageToken: optional(query, 'pageToken'),
    });
    sendResource(res, {
      kind: 'storage#buckets',
      ...(page.items.length > 0 ? { items: page.items.map((b) => bucketResource(b, this.baseUrl())) } : {}),
      ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
    });
  }

  private async createBucket(
    req: IncomingMessage,
    res: ServerResponse,
    query: URLSearchParams,
  ): Promise<void> {
    const body = await readJson(req);
    const record = await this.catalog.createBucket(query.get('project') ?? '', body);
    sendResource(res, bucketResource(record, this.baseUrl()));
  }

  private async bucketRoute(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    query: URLSearchParams,
  ): Promise<void> {
    switch (req.method) {
      case 'GET': {
        const record = this.catalog.bucket(bucket);
        sendResource(res, bucketResource(record, this.baseUrl()));
        return;
      }
      case 'PATCH':
      case 'PUT': {
        const body = await readJson(req);
        const record = await this.catalog.patchBucket(bucket, body, preconditions(query));
        sendResource(res, bucketResource(record, this.baseUrl()));
        return;
      }
      case 'DELETE':
        await this.catalog.deleteBucket(bucket, preconditions(query));
        send(res, 204);
        return;
      default:
        throw methodNotAllowed();
    }
  }

  /** Buckets.getStorageLayout: gcloud asks before mv and rm -r (flat namespace unless set at creation). */
  private storageLayout(res: ServerResponse, bucket: string): void {
    const record = this.catalog.bucket(bucket);
    const hierarchical = record.extra.hierarchicalNamespace as { enabled?: unknown } | undefined;
    sendResource(res, {
      kind: 'storage#storageLayout',
      bucket: record.name,
      location: record.location,
      locationType: 'region',
      hierarchicalNamespace: { enabled: hierarchical?.enabled === true },
    });
  }

  // ---- objects ----

  private listObjects(res: ServerResponse, bucket: string, query: URLSearchParams): void {
    const listQuery: ListObjectsQuery = {
      prefix: optional(query, 'prefix'),
      delimiter: optional(query, 'delimiter'),
      pageToken: optional(query, 'pageToken'),
      maxResults: intParam(query, 'maxResults'),
      versions: boolParam(query, 'versions'),
      startOffset: optional(query, 'startOffset'),
      endOffset: optional(query, 'endOffset'),
      includeTrailingDelimiter: boolParam(query, 'includeTrailingDelimiter'),
    };
    const glob = optional(query, 'matchGlob');
    if (glob) listQuery.matchGlob = compileGlob(glob);
    const page = this.catalog.listObjects(bucket, listQuery);
    sendResource(res, {
      kind: 'storage#objects',
      ...(page.prefixes.length > 0 ? { prefixes: page.prefixes } : {}),
      ...(page.items.length > 0 ? { items: page.items.map((record) => this.resource(record)) } : {}),
      ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
    });
  }

  private getObject(res: ServerResponse, bucket: string, name: string, query: URLSearchParams): void {
    const record = this.catalog.getObject(bucket, name, intParam(query, 'generation'));
    this.catalog.checkPreconditions(record, preconditions(query), true);
    sendResource(res, this.resource(record));
  }

  private async updateObject(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    name: string,
    query: URLSearchParams,
    replace: boolean,
  ): Promise<void> {
    const body = await readJson(req);
    const record = await this.catalog.updateObject(bucket, name, body, {
      generation: intParam(query, 'generation'),
      preconditions: preconditions(query),
      replace,
    });
    sendResource(res, this.resource(record));
  }

  private async download(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    name: string,
    query: URLSearchParams,
  ): Promise<void> {
    const record = this.catalog.getObject(bucket, name, intParam(query, 'generation'));
    this.catalog.checkPreconditions(record, preconditions(query), true);
    const { fields } = record;
    const storedEncoding = fields.contentEncoding ?? 'identity';
    const headers: Record<string, string> = {
      'Content-Type': fields.contentType ?? 'application/octet-stream',
      'x-goog-hash': `crc32c=${record.crc32c},md5=${record.md5Hash}`,
      'x-goog-generation': String(record.generation),
      'x-goog-metageneration': String(record.metageneration),
      'x-goog-stored-content-encoding': storedEncoding,
      'x-goog-stored-content-length': String(record.size),
      'x-goog-storage-class': record.storageClass,
      ETag: `"${Buffer.from(record.md5Hash, 'base64').toString('hex')}"`,
      'Last-Modified': new Date(record.updated).toUTCString(),
      'Accept-Ranges': 'bytes',
      'Cache-Control': fields.cacheControl ?? 'no-cache, no-store, max-age=0, must-revalidate',
    };
    if (fields.contentDisposition) headers['Content-Disposition'] = fields.contentDisposition;
    if (fields.contentLanguage) headers['Content-Language'] = fields.contentLanguage;

    // Decompressive transcoding: gzip-stored objects are served gunzipped to clients that do
    // not accept gzip (whole object only, like GCS).
    const acceptsGzip = /\bgzip\b/i.test(header(req, 'accept-encoding') ?? '');
    if (storedEncoding === 'gzip' && !acceptsGzip) {
      res.writeHead(200, headers);
      if (req.method === 'HEAD') return void res.end();
      const stream = await this.catalog.read(record, 0, record.size - 1);
      await pipeline(stream, createGunzip(), res).catch(() => res.destroy());
      return;
    }
    if (fields.contentEncoding) headers['Content-Encoding'] = fields.contentEncoding;

    const range = parseRange(header(req, 'range'), record.size);
    const start = range?.start ?? 0;
    const end = range?.end ?? record.size - 1;
    headers['Content-Length'] = String(end - start + 1);
    if (range) headers['Content-Range'] = `bytes ${start}-${end}/${record.size}`;
    const stream = await this.catalog.read(record, start, end);
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === 'HEAD') {
      stream.destroy();
      res.end();
      return;
    }
    // A client that hangs up mid-download is not a server error.
    await pipeline(stream, res).catch(() => res.destroy());
  }

  // ---- uploads ----

  private async upload(req: IncomingMessage, res: ServerResponse, bucket: string, query: URLSearchParams) {
    const uploadId = query.get('upload_id');
    const method = req.method ?? 'POST';
    if (uploadId) {
      const session = this.sessions.get(uploadId);
      if (method === 'DELETE') {
        if (!(await this.sessions.cancel(uploadId))) throw noSuchUpload();
        // GCS answers a cancelled session with 499 (Client Closed Request).
        res.writeHead(499, { 'Content-Length': '0' }).end();
        return;
      }
      if (method !== 'PUT' && method !== 'POST') throw methodNotAllowed();
      if (!session || session.request.bucket !== bucket) throw noSuchUpload();
      const range = parseContentRange(header(req, 'content-range'));
      const outcome = await this.sessions.receive(
        session,
        req,
        range,
        parseGoogHash(req.headers['x-goog-hash']),
      );
      if (outcome.done) {
        sendResource(res, this.resource(outcome.record));
        return;
      }
      // 308 Resume Incomplete: Range says which bytes are persisted (none: no Range header).
      const headers: Record<string, string> = { 'Content-Length': '0' };
      if (outcome.persisted > 0) headers.Range = `bytes=0-${outcome.persisted - 1}`;
      res.writeHead(308, headers).end();
      return;
    }
    if (method !== 'POST') throw methodNotAllowed();
    this.catalog.bucket(bucket);
    const uploadType = query.get('uploadType');
    switch (uploadType) {
      case 'media':
        return this.simpleUpload(req, res, bucket, query);
      case 'multipart':
        return this.multipartUpload(req, res, bucket, query);
      case 'resumable':
        return this.startResumable(req, res, bucket, query);
      default:
        throw invalidArgument(
          'Upload requests must include an uploadType URL parameter (media, multipart or resumable).',
        );
    }
  }

  /** Streams the body into a new blob; aborts it if the request fails half-way. */
  private async receiveBlob(fill: (writer: BlobWriter) => Promise<void>): Promise<CommittedBlob> {
    const writer = this.catalog.backend.createBlob();
    try {
      await fill(writer);
      return await writer.commit();
    } catch (error) {
      await writer.abort();
      throw error;
    }
  }

  private async simpleUpload(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    query: URLSearchParams,
  ) {
    const name = query.get('name');
    if (!name) throw invalidArgument('Required parameter: name');
    validateName(name);
    const conditions = preconditions(query);
    const blob = await this.receiveBlob(async (writer) => {
      for await (const chunk of req) await writer.write(chunk as Buffer);
    });
    const fields: MutableObjectFields = {
      contentType: header(req, 'content-type') ?? 'application/octet-stream',
    };
    if (query.get('contentEncoding')) fields.contentEncoding = query.get('contentEncoding') as string;
    const record = await this.catalog.finalize(
      {
        bucket,
        name,
        fields,
        preconditions: conditions,
        expected: parseGoogHash(req.headers['x-goog-hash']),
      },
      blob,
    );
    sendResource(res, this.resource(record));
  }

  private async multipartUpload(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    query: URLSearchParams,
  ) {
    const boundary = multipartBoundary(header(req, 'content-type'));
    const conditions = preconditions(query);
    let head: Awaited<ReturnType<typeof readMultipart>> | undefined;
    const blob = await this.receiveBlob(async (writer) => {
      head = await readMultipart(req, boundary, (chunk) => writer.write(chunk));
    });
    const { metadata, mediaContentType } = head as NonNullable<typeof head>;
    const name = query.get('name') ?? (typeof metadata.name === 'string' ? metadata.name : undefined);
    const fields: MutableObjectFields = {};
    try {
      if (!name) throw invalidArgument('Required parameter: name');
      applyObjectFields(fields, metadata);
    } catch (error) {
      // finalize() owns the blob from here on; before it, a bad request must not leak it.
      await this.catalog.backend.deleteBlob(blob.blobId);
      throw error;
    }
    fields.contentType ??= mediaContentType ?? 'application/octet-stream';
    const record = await this.catalog.finalize(
      {
        bucket,
        name,
        fields,
        preconditions: conditions,
        expected: { ...declaredHashes(metadata), ...parseGoogHash(req.headers['x-goog-hash']) },
      },
      blob,
    );
    sendResource(res, this.resource(record));
  }

  private async startResumable(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    query: URLSearchParams,
  ) {
    const metadata = await readJson(req);
    const name = query.get('name') ?? (typeof metadata.name === 'string' ? metadata.name : undefined);
    if (!name) throw invalidArgument('Required parameter: name');
    validateName(name);
    const fields: MutableObjectFields = {};
    applyObjectFields(fields, metadata);
    fields.contentType =
      header(req, 'x-upload-content-type') ?? fields.contentType ?? 'application/octet-stream';
    // Preconditions are evaluated when the upload completes, as GCS does (the initiation
    // succeeds even if the object exists; the final chunk then gets the 412).
    const conditions = preconditions(query);
    const session = this.sessions.create({
      bucket,
      name,
      fields,
      preconditions: conditions,
      expected: declaredHashes(metadata),
    });
    const host = header(req, 'host') ?? new URL(this.baseUrl()).host;
    const location =
      `http://${host}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o` +
      `?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${session.id}`;
    res
      .writeHead(200, { Location: location, 'X-GUploader-UploadID': session.id, 'Content-Length': '0' })
      .end();
  }

  // ---- copy, rewrite, compose ----

  private async copy(
    req: IncomingMessage,
    res: ServerResponse,
    query: URLSearchParams,
    target: {
      sourceBucket: string;
      sourceName: string;
      destinationBucket: string;
      destinationName: string;
      rewrite: boolean;
    },
  ): Promise<void> {
    const body = await readJson(req);
    const source = this.catalog.getObject(
      target.sourceBucket,
      target.sourceName,
      intParam(query, 'sourceGeneration'),
    );
    this.catalog.checkPreconditions(source, preconditions(query, 'ifSource'));
    validateName(target.destinationName);
    const destinationConditions = preconditions(query);
    this.catalog.checkPreconditions(
      this.catalog.current(target.destinationBucket, target.destinationName),
      destinationConditions,
    );
    // As in GCS: metadata in the body replaces the source's; without any, the source's is copied.
    let fields: MutableObjectFields;
    if (MUTABLE_OBJECT_KEYS.some((key) => key in body)) {
      fields = {};
      applyObjectFields(fields, body);
      fields.contentType ??= source.fields.contentType;
    } else {
      fields = structuredClone(source.fields);
    }
    const blob = await this.receiveBlob(async (writer) => {
      for await (const chunk of await this.catalog.read(source, 0, source.size - 1))
        await writer.write(chunk);
    });
    const record = await this.catalog.finalize(
      {
        bucket: target.destinationBucket,
        name: target.destinationName,
        fields,
        preconditions: destinationConditions,
        ...(source.componentCount !== undefined ? { componentCount: source.componentCount } : {}),
      },
      blob,
    );
    if (!target.rewrite) {
      sendResource(res, this.resource(record));
      return;
    }
    sendResource(res, {
      kind: 'storage#rewriteResponse',
      totalBytesRewritten: String(record.size),
      objectSize: String(record.size),
      done: true,
      resource: this.resource(record),
    });
  }

  private async compose(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    name: string,
    query: URLSearchParams,
  ): Promise<void> {
    const body = await readJson(req);
    const sourceObjects = body.sourceObjects;
    if (!Array.isArray(sourceObjects) || sourceObjects.length === 0 || sourceObjects.length > 32) {
      throw invalidArgument('The number of source components provided must be between 1 and 32.');
    }
    const sources = sourceObjects.map((entry: unknown) => {
      const source = entry as {
        name?: unknown;
        generation?: unknown;
        objectPreconditions?: { ifGenerationMatch?: unknown } | null;
      };
      if (typeof source?.name !== 'string') throw invalidArgument('Each source object needs a name.');
      // Python's client sends `"generation": null` for "the live version".
      const generation =
        source.generation === undefined || source.generation === null ? undefined : Number(source.generation);
      if (generation !== undefined && !Number.isSafeInteger(generation)) {
        throw invalidArgument(`Invalid generation for source object ${source.name}.`);
      }
      const record = this.catalog.getObject(bucket, source.name, generation);
      const expected = source.objectPreconditions?.ifGenerationMatch;
      if (expected !== undefined && expected !== null && Number(expected) !== record.generation) {
        throw new StorageApiError(
          412,
          'conditionNotMet',
          'At least one of the pre-conditions you specified did not hold.',
        );
      }
      return record;
    });
    validateName(name);
    const conditions = preconditions(query);
    this.catalog.checkPreconditions(this.catalog.current(bucket, name), conditions);
    const fields: MutableObjectFields = {};
    const destination = body.destination;
    if (destination && typeof destination === 'object')
      applyObjectFields(fields, destination as Record<string, unknown>);
    fields.contentType ??= sources[0]?.fields.contentType ?? 'application/octet-stream';
    const componentCount = sources.reduce((sum, source) => sum + (source.componentCount ?? 1), 0);
    if (componentCount > 1024) throw invalidArgument('The composite object would exceed 1024 components.');
    const blob = await this.receiveBlob(async (writer) => {
      for (const source of sources) {
        for await (const chunk of await this.catalog.read(source, 0, source.size - 1))
          await writer.write(chunk);
      }
    });
    const record = await this.catalog.finalize(
      { bucket, name, fields, preconditions: conditions, componentCount },
      blob,
    );
    sendResource(res, this.resource(record));
  }
}

function declaredHashes(metadata: Record<string, unknown>): { crc32c?: string; md5Hash?: string } {
  return {
    ...(typeof metadata.crc32c === 'string' ? { crc32c: metadata.crc32c } : {}),
    ...(typeof metadata.md5Hash === 'string' ? { md5Hash: metadata.md5Hash } : {}),
  };
}

function methodNotAllowed(): StorageApiError {
  return new StorageApiError(405, 'methodNotAllowed', 'Method not allowed for this resource.');
}

function noSuchUpload(): StorageApiError {
  return new StorageApiError(404, 'notFound', 'No such upload session.');
}
