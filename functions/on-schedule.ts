import type { HttpFunction } from '@google-cloud/functions-framework';
import type { ObjectStore } from '#shared/clients/ports.js';
import type { Config } from '#shared/config/schema.js';
import { parseFlowRequest } from '#shared/domain/flow-request.js';
import { type FlowExecutions, startFlow, triggerFromHeaders } from '#shared/domain/flow-start.js';
import { httpFunction } from '#shared/runtime/http-function.js';
import { HttpStatus } from '#shared/runtime/http-status.js';
import { type Logger, logger } from '#shared/runtime/logger.js';

/** Bodies above this are refused with 413: a flow request is a few hundred bytes. */
export const MAX_BODY_BYTES = 64 * 1024;

export interface OnScheduleDeps {
  config: Config;
  executions: FlowExecutions;
  /** The platform's bucket (dedupe claims). */
  store: ObjectStore;
  /** The instance logger (default: the root logger); each request gets a child bound to its trace. */
  log?: Logger;
  now?: () => Date;
  maxBodyBytes?: number;
  /** See FlowStartDeps.claimLeaseMs. */
  claimLeaseMs?: number;
}

/**
 * The onSchedule HTTP function: Cloud Scheduler (or an operator) POSTs
 * `{flow, product, client?, params?}`; the flow's workflow execution is started once per tick.
 *
 * Answers: 202 with what it started; 200 with the same execution for a repeat of a tick; and,
 * from {@link httpFunction}: 400 naming the problem of a bad body; 405 for other methods; 413 for
 * a body over 64 KiB; 409 while another attempt of the same tick is starting it, and 503 when a
 * Google service is unavailable (both with Retry-After, so Scheduler's retry cures them).
 */
export function createOnSchedule(deps: OnScheduleDeps): HttpFunction {
  const { config } = deps;
  return httpFunction(
    'onSchedule',
    async ({ body, headers, log }) => {
      const request = parseFlowRequest(body, config);
      const trigger = triggerFromHeaders(headers, request.flowConfig, deps.now?.() ?? new Date());
      const result = await startFlow({ request, trigger }, deps);
      const deduped = result.status === 'deduped';
      log
        .child({ flow: request.flow, product: request.product, client: request.client })
        .info(
          { execution: result.execution, runId: result.runId, trigger: trigger.kind, deduped },
          deduped ? 'flow already started for this tick' : 'flow started',
        );
      return {
        status: deduped ? HttpStatus.OK : HttpStatus.ACCEPTED,
        body: {
          execution: result.execution,
          flow: request.flow,
          product: request.product,
          client: request.client,
          runId: result.runId,
          deduped,
        },
      };
    },
    {
      project: config.project,
      log: (deps.log ?? logger).child({ function: 'onSchedule' }),
      maxBodyBytes: deps.maxBodyBytes ?? MAX_BODY_BYTES,
      internalErrorMessage: 'internal error: the flow was not started',
      logHeaders: { schedulerJob: 'x-cloudscheduler-jobname' },
    },
  );
}
