import { errorMap, WorkflowException } from './errors.js';
import { isBytes, isMap, toJsonValue, typeName } from './values.js';

/**
 * Workflows' HTTP functions (`http.get`, `http.post`, `http.put`, `http.patch`, `http.delete`,
 * `http.request`): the interpreter really sends the request. Semantics follow Google's reference
 * (https://cloud.google.com/workflows/docs/reference/stdlib/http): a map or list body is sent as
 * JSON; the response is `{body, code, headers}` with a JSON body decoded and text as a string;
 * a status of 400 or more raises `HttpError` carrying the same fields; no connection raises
 * `ConnectionFailedError`, a broken one `ConnectionError`, the timeout `TimeoutError`.
 * `auth` (OIDC / OAuth2) is accepted and not acted on: the local cloud needs no tokens.
 */
export interface HttpRequestArgs {
  method: string;
  url: unknown;
  headers?: unknown;
  query?: unknown;
  body?: unknown;
  timeout?: unknown;
}

/** Workflows' default HTTP timeout (seconds); 1800 is its maximum. */
const DEFAULT_TIMEOUT_S = 300;
const MAX_TIMEOUT_S = 1800;

export async function httpRequest(args: HttpRequestArgs, signal?: AbortSignal): Promise<unknown> {
  const method = args.method.toUpperCase();
  if (typeof args.url !== 'string')
    throw errorMap('TypeError', `url must be a string, got ${typeName(args.url)}`);
  let url: URL;
  try {
    url = new URL(args.url);
  } catch {
    throw errorMap('ValueError', `invalid url "${args.url}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw errorMap('ValueError', `url must be http or https, got "${args.url}"`);
  }
  if (args.query !== undefined && args.query !== null) {
    if (!isMap(args.query)) throw errorMap('TypeError', `query must be a map, got ${typeName(args.query)}`);
    for (const [key, value] of Object.entries(args.query)) {
      for (const item of Array.isArray(value) ? value : [value])
        url.searchParams.append(key, scalarText(item));
    }
  }
  const headers = new Headers();
  if (args.headers !== undefined && args.headers !== null) {
    if (!isMap(args.headers))
      throw errorMap('TypeError', `headers must be a map, got ${typeName(args.headers)}`);
    for (const [key, value] of Object.entries(args.headers)) headers.set(key, scalarText(value));
  }
  let body: string | Uint8Array | undefined;
  if (args.body !== undefined && args.body !== null) {
    if (isBytes(args.body)) body = args.body;
    else if (typeof args.body === 'string' && !isJson(headers.get('content-type'))) body = args.body;
    else {
      body = JSON.stringify(toJsonValue(args.body));
      if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    }
  }
  const timeoutS = args.timeout === undefined || args.timeout === null ? DEFAULT_TIMEOUT_S : args.timeout;
  if (typeof timeoutS !== 'number' || timeoutS <= 0 || timeoutS > MAX_TIMEOUT_S) {
    throw errorMap('ValueError', `timeout must be a number of seconds in (0, ${MAX_TIMEOUT_S}]`);
  }
  const timeout = AbortSignal.timeout(timeoutS * 1000);
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers,
      ...(body === undefined ? {} : { body }),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
  } catch (err) {
    if (signal?.aborted) throw err;
    if (timeout.aborted)
      throw errorMap('TimeoutError', `${method} ${url.href} timed out after ${timeoutS} s`);
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const detail = cause?.code ?? cause?.message ?? (err as Error).message;
    // Refused or unresolved: no connection was made. Anything else broke an open connection.
    const tag = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH/.test(String(detail))
      ? 'ConnectionFailedError'
      : 'ConnectionError';
    throw errorMap(tag, `${method} ${url.href}: ${detail}`);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  const responseHeaders: Record<string, string> = {};
  response.headers.forEach((value, key) => {
    responseHeaders[canonicalHeader(key)] = value;
  });
  const result = {
    body: decodeBody(bytes, response.headers.get('content-type')),
    code: response.status,
    headers: responseHeaders,
  };
  if (response.status >= 400) {
    throw new WorkflowException({
      message: `HTTP server responded with error code ${response.status}`,
      tags: ['HttpError'],
      ...result,
    });
  }
  return result;
}

function isJson(contentType: string | null): boolean {
  return contentType !== null && /^application\/([\w.+-]+\+)?json\b/i.test(contentType);
}

/** JSON is decoded, text stays a string, anything else is bytes. */
function decodeBody(bytes: Uint8Array, contentType: string | null): unknown {
  if (bytes.length === 0) return null;
  const text = Buffer.from(bytes).toString('utf8');
  if (isJson(contentType)) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  if (contentType === null || /^text\//i.test(contentType)) return text;
  return bytes;
}

/** `content-type` → `Content-Type`, as Workflows shows response headers. */
function canonicalHeader(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => `${dash}${c.toUpperCase()}`);
}

function scalarText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw errorMap('TypeError', `header and query values must be scalars, got ${typeName(value)}`);
}
