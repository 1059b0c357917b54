/**
 * What every handler of the local Cloud Storage server is given: the server's state (catalog,
 * resumable sessions, its own URL) and one routed request (the API it came through, its query,
 * the values the route's path captured).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Catalog } from '../catalog.js';
import type { ResumableSessions } from '../uploads.js';

/** Which front door a request came through: `/storage/v1`, `/upload/storage/v1` or `/download/storage/v1`. */
export type Api = 'json' | 'upload' | 'download';

/** The server's state, shared by every request. */
export interface StorageContext {
  readonly catalog: Catalog;
  readonly sessions: ResumableSessions;
  /** 'http://127.0.0.1:PORT', known once the server listens: resources link back to it. */
  baseUrl(): string;
}

/** One request as the router hands it over. */
export interface StorageCall<Params> {
  req: IncomingMessage;
  res: ServerResponse;
  api: Api;
  query: URLSearchParams;
  /** The path's captured values, already percent-decoded (`bucket`, `object`, …). */
  params: Params;
}

/** Answers one routed request; a thrown StorageApiError becomes the GCS error answer. */
export type Handler<Params> = (context: StorageContext, call: StorageCall<Params>) => Promise<void> | void;
