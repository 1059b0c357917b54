import type { HttpFunction, Request, Response } from '@google-cloud/functions-framework';
import type { ObjectStore } from '../shared/clients/ports.js';
import { getConfig } from '../shared/config/load.js';
import type { Config } from '../shared/config/schema.js';
import { InvalidFlowRequestError, parseFlowRequest } from '../shared/domain/flow-request.js';
import {
  type FlowExecutions,
  FlowStartInProgressError,
  startFlow,
  triggerFromHeaders,
} from '../shared/domain/flow-start.js';
import { PermissionDeniedError, TransientError } from '../shared/runtime/errors.js';
import { type Logger, logger as rootLogger, traceField } from '../shared/runtime/logger.js';

/** Bodies above this are refused with 413: a flow request is a few hundred bytes. */
export const MAX_BODY_BYTES = 64 * 1024;

export interface OnScheduleDeps {
  config: Config;
  executions: FlowExecutions;
  /** The platform's bucket (dedupe claims). */
  store: ObjectStore;
  log: Logger;
  now?: () => Date;
  maxBodyBytes?: number;
  /** See FlowStartDeps.claimLeaseMs. */
  claimLeaseMs?: number;
}

/** Builds the default clients on first use, so that a cold start loads no Google client it does not need yet. */
async function defaultDeps(config: Config): Promise<Pick<OnScheduleDeps, 'executions' | 'store'>> {
  const [{ WorkflowsExecutionsAdapter }, storage] = await Promise.all([
    import('../shared/clients/workflows.js'),
    import('../shared/clients/storage.js'),
  ]);
  return {
    executions: new WorkflowsExecutionsAdapter(),
    store: storage.createObjectStore({ bucket: config.bucket }),
  };
}

/**
 * The onSchedule HTTP function: Cloud Scheduler (or an operator) POSTs
 * `{flow, product, client?, params?}`; the flow's workflow execution is started once per tick.
 *
 * Answers: 202 with what it started; 200 with the same execution for a repeat of a tick; 400
 * naming the problem of a bad body; 405 for other methods; 413 for a body over 64 KiB; 409 while
 * another attempt of the same tick is starting it, and 503 when a Google service is unavailable
 * (both with Retry-After, so Scheduler's retry cures them). Bad input never answers 500.
 *
 * Config is read when the function is created (cold start): a bad config fails the deploy, not a tick.
 */
export function createOnSchedule(overrides: Partial<OnScheduleDeps> = {}): HttpFunction {
  const config = overrides.config ?? getConfig();
  const log = overrides.log ?? rootLogger.child({ function: 'onSchedule' });
  const maxBodyBytes = overrides.maxBodyBytes ?? MAX_BODY_BYTES;
  let clients: Promise<Pick<OnScheduleDeps, 'executions' | 'store'>> | undefined;
  const resolveClients = () => {
    if (overrides.executions && overrides.store)
      return { executions: overrides.executions, store: overrides.store };
    clients ??= defaultDeps(config).then(
      (made) => ({
        executions: overrides.executions ?? made.executions,
        store: overrides.store ?? made.store,
      }),
      (err: unknown) => {
        // Not cached: a failed load must not answer every later tick of this instance with it.
        clients = undefined;
        throw new TransientError(`cannot load the Google clients: ${(err as Error).message}`, { cause: err });
      },
    );
    return clients;
  };

  return async (req: Request, res: Response) => {
    const requestLog = log.child({
      ...traceField(config.project, req.get('traceparent')),
      ...(req.get('x-cloudscheduler-jobname') ? { schedulerJob: req.get('x-cloudscheduler-jobname') } : {}),
    });

    if (req.method !== 'POST') {
      res.set('Allow', 'POST');
      reply(res, 405, { error: `method ${req.method} not allowed: POST a JSON body` });
      return;
    }

    const body = readBody(req, maxBodyBytes);
    if ('status' in body) {
      requestLog.warn({ status: body.status }, `onSchedule refused a request: ${body.error}`);
      reply(res, body.status, { error: body.error });
      return;
    }

    try {
      const request = parseFlowRequest(body.value, config);
      const flowLog = requestLog.child({
        flow: request.flow,
        product: request.product,
        client: request.client,
      });
      const trigger = triggerFromHeaders(req.headers, request.flowConfig, overrides.now?.() ?? new Date());
      const result = await startFlow(request, trigger, {
        config,
        ...(await resolveClients()),
        ...(overrides.now ? { now: overrides.now } : {}),
        ...(overrides.claimLeaseMs !== undefined ? { claimLeaseMs: overrides.claimLeaseMs } : {}),
      });
      const deduped = result.status === 'deduped';
      flowLog.info(
        { execution: result.execution, runId: result.runId, trigger: trigger.kind, deduped },
        deduped ? 'flow already started for this tick' : 'flow started',
      );
      reply(res, deduped ? 200 : 202, {
        execution: result.execution,
        flow: request.flow,
        product: request.product,
        client: request.client,
        runId: result.runId,
        deduped,
      });
    } catch (err) {
      if (err instanceof InvalidFlowRequestError) {
        requestLog.warn(`onSchedule refused a request: ${err.message}`);
        reply(res, 400, { error: err.message });
      } else if (err instanceof FlowStartInProgressError) {
        res.set('Retry-After', String(err.retryAfterSeconds));
        reply(res, 409, { error: err.message });
      } else if (err instanceof TransientError) {
        // A missing grant is retryable too (PermissionDeniedError): the entry names what to grant.
        const denied =
          err instanceof PermissionDeniedError
            ? { permission: err.permission, operation: err.operation }
            : {};
        requestLog.error({ err, ...denied }, `flow not started, the caller should retry: ${err.message}`);
        res.set('Retry-After', '10');
        reply(res, 503, { error: 'a Google Cloud service is unavailable; retry later' });
      } else {
        requestLog.error({ err }, `flow not started: ${(err as Error).message}`);
        reply(res, 500, { error: 'internal error: the flow was not started' });
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
function readBody(req: Request, maxBodyBytes: number): BodyResult {
  const declared = Number(req.get('content-length'));
  const raw = (req as Request & { rawBody?: Buffer }).rawBody;
  const size = raw?.length ?? (Number.isFinite(declared) ? declared : 0);
  if (size > maxBodyBytes || (Number.isFinite(declared) && declared > maxBodyBytes)) {
    return { status: 413, error: `body too large: ${size} bytes, the limit is ${maxBodyBytes}` };
  }
  let text: string;
  if (raw !== undefined) text = raw.toString('utf8');
  else if (typeof req.body === 'string') text = req.body;
  else if (req.body && typeof req.body === 'object' && !Buffer.isBuffer(req.body)) return { value: req.body };
  else text = '';
  if (text.trim() === '') {
    return {
      status: 400,
      error: 'empty body: expected a JSON object {"flow", "product", "client"?, "params"?}',
    };
  }
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    return { status: 400, error: `body is not valid JSON: ${(err as Error).message}` };
  }
}
