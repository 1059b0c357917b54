import type { HttpFunction, Request, Response } from '@google-cloud/functions-framework';
import { BatchwireError, InProgressError, MalformedEventError, PermissionDeniedError } from './errors.js';
import { HttpStatus } from './http-status.js';
import { type Logger, traceField } from './logger.js';

/** What an HTTP handler receives: the parsed JSON body, the headers, a logger bound to the request. */
export interface HttpInput {
  body: unknown;
  headers: Request['headers'];
  log: Logger;
}

/** What an HTTP handler answers: a status and a JSON body. */
export interface HttpReply {
  status: number;
  body: Record<string, unknown>;
}

export type HttpHandler = (input: HttpInput) => Promise<HttpReply>;

export interface HttpFunctionOptions {
  /** Google Cloud project, for the trace field of log entries. */
  project: string;
  log: Logger;
  /** Bodies above this are refused with 413. */
  maxBodyBytes: number;
  /** The 500 answer's text: what did not happen. */
  internalErrorMessage: string;
  /** Request headers bound to the request's logger, as `{field: header}`. */
  logHeaders?: Record<string, string>;
}

/** Seconds a caller is told to wait (Retry-After) after a Google service was unavailable. */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 10;

/**
 * Wraps a JSON-over-HTTP handler as a functions-framework HTTP function, beside
 * {@link cloudEventFunction} for events. It owns what every such function answers besides its
 * own result, so that the handler is parse → core → return:
 *
 * - 405 for a method other than POST; 413 for a body over `maxBodyBytes`; 400 for an empty or
 *   non-JSON body and for a {@link MalformedEventError} from the handler (bad input never 500s);
 * - 409 with Retry-After for an {@link InProgressError}; 503 with Retry-After for any other
 *   retryable {@link BatchwireError} (a Google service unavailable, a missing grant);
 * - 500 for anything else (a bug), logged at ERROR.
 */
export function httpFunction(name: string, handler: HttpHandler, options: HttpFunctionOptions): HttpFunction {
  return async (req: Request, res: Response) => {
    const bound: Record<string, unknown> = { ...traceField(options.project, req.get('traceparent')) };
    for (const [field, header] of Object.entries(options.logHeaders ?? {})) {
      const value = req.get(header);
      if (value) bound[field] = value;
    }
    const log = options.log.child(bound);

    if (req.method !== 'POST') {
      res.set('Allow', 'POST');
      reply(res, HttpStatus.METHOD_NOT_ALLOWED, {
        error: `method ${req.method} not allowed: POST a JSON body`,
      });
      return;
    }

    const body = readJsonBody(req, options.maxBodyBytes);
    if ('status' in body) {
      log.warn({ status: body.status }, `${name} refused a request: ${body.error}`);
      reply(res, body.status, { error: body.error });
      return;
    }

    try {
      const answer = await handler({ body: body.value, headers: req.headers, log });
      reply(res, answer.status, answer.body);
    } catch (err) {
      if (err instanceof MalformedEventError) {
        log.warn(`${name} refused a request: ${err.message}`);
        reply(res, HttpStatus.BAD_REQUEST, { error: err.message });
      } else if (err instanceof InProgressError) {
        res.set('Retry-After', String(err.retryAfterSeconds));
        reply(res, HttpStatus.CONFLICT, { error: err.message });
      } else if (err instanceof BatchwireError && err.retryable) {
        // A missing grant is retryable too (PermissionDeniedError): the entry names what to grant.
        const denied =
          err instanceof PermissionDeniedError
            ? { permission: err.permission, operation: err.operation }
            : {};
        log.error({ err, ...denied }, `${name} failed, the caller should retry: ${err.message}`);
        res.set('Retry-After', String(UNAVAILABLE_RETRY_AFTER_SECONDS));
        reply(res, HttpStatus.SERVICE_UNAVAILABLE, {
          error: 'a Google Cloud service is unavailable; retry later',
        });
      } else {
        log.error({ err }, `${name} failed: ${(err as Error).message}`);
        reply(res, HttpStatus.INTERNAL_SERVER_ERROR, { error: options.internalErrorMessage });
      }
    }
  };
}

function reply(res: Response, status: number, body: Record<string, unknown>): void {
  res.status(status).json(body);
}

type BodyResult = { value: unknown } | { status: number; error: string };

/**
 * The request's JSON, from the raw bytes whatever the content type said: Scheduler sends
 * `application/octet-stream` unless told otherwise, and a form-encoded parse would turn a JSON
 * text into a key. (A body sent as `application/json` that is not JSON never gets here:
 * functions-framework's body parser answers 400 itself.)
 */
function readJsonBody(req: Request, maxBodyBytes: number): BodyResult {
  const declared = Number(req.get('content-length'));
  const raw = (req as Request & { rawBody?: Buffer }).rawBody;
  const size = raw?.length ?? (Number.isFinite(declared) ? declared : 0);
  if (size > maxBodyBytes || (Number.isFinite(declared) && declared > maxBodyBytes)) {
    return {
      status: HttpStatus.PAYLOAD_TOO_LARGE,
      error: `body too large: ${size} bytes, the limit is ${maxBodyBytes}`,
    };
  }
  let text: string;
  if (raw !== undefined) text = raw.toString('utf8');
  else if (typeof req.body === 'string') text = req.body;
  else if (req.body && typeof req.body === 'object' && !Buffer.isBuffer(req.body)) return { value: req.body };
  else text = '';
  if (text.trim() === '') {
    return {
      status: HttpStatus.BAD_REQUEST,
      error: 'empty body: expected a JSON object {"flow", "product", "client"?, "params"?}',
    };
  }
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    return { status: HttpStatus.BAD_REQUEST, error: `body is not valid JSON: ${(err as Error).message}` };
  }
}
