/**
 * The HTTP plumbing of the local Cloud Storage server: JSON answers (with `fields=` partial
 * responses), GCS-shaped error answers, a bounded JSON body reader, and the typed reading of
 * query parameters and headers the handlers share.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Preconditions } from './catalog.js';
import { applyFieldMask, parseFieldMask } from './fields.js';
import { invalidArgument, StorageApiError } from './resources.js';

const JSON_TYPE = 'application/json; charset=UTF-8';
const MAX_JSON_BYTES = 16 * 1024 * 1024;

// ---- answers ----

/** Answers `status` with `body` as JSON (no body for 204/304 or when none is given). */
export function send(
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
export function sendResource(res: ServerResponse, resource: unknown): void {
  const url = res.req.url ?? '';
  const at = url.indexOf('?');
  const fields = at < 0 ? null : new URLSearchParams(url.slice(at + 1)).get('fields');
  send(res, 200, fields === null ? resource : applyFieldMask(resource, parseFieldMask(fields)));
}

/** Answers an error in the GCS JSON shape; a response already under way can only be cut. */
export function sendError(res: ServerResponse, error: StorageApiError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  send(res, error.status, error.body(), error.headers);
}

// ---- request bodies ----

/** A JSON object body (empty body: `{}`); 413 past 16 MiB, 400 for anything but an object. */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
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

// ---- query parameters and headers ----

export function intParam(query: URLSearchParams, key: string): number | undefined {
  const value = query.get(key);
  if (value === null || value === '') return undefined;
  if (!/^-?\d{1,19}$/.test(value)) throw invalidArgument(`Invalid value for parameter ${key}: ${value}`);
  return Number(value);
}

/**
 * A boolean query parameter as Google's front end reads it: `true`/`false` in any case
 * (gcloud and Python send `True`), absent or empty is false; anything else is a 400, not false.
 */
export function boolParam(query: URLSearchParams, key: string): boolean {
  const value = query.get(key);
  if (value === null || value === '') return false;
  const lower = value.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  throw invalidArgument(`Invalid boolean value for parameter ${key}: ${value}`);
}

export function optional(query: URLSearchParams, key: string): string | undefined {
  return query.get(key) ?? undefined;
}

/** The four preconditions, from `ifGenerationMatch`… (or `ifSourceGenerationMatch`… with prefix `ifSource`). */
export function preconditions(query: URLSearchParams, prefix = 'if'): Preconditions {
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

export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
