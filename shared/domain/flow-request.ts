import { z } from 'zod';
import type { Config, FlowConfig, ProductConfig } from '../config/schema.js';
import { ID_PATTERN } from '../config/schema.js';
import { MalformedEventError } from '../runtime/errors.js';

/** A request body that cannot start a flow; its message names the problem and is safe to show the caller. */
export class InvalidFlowRequestError extends MalformedEventError {}

const idField = (what: string) =>
  z
    .string({ error: (issue) => (issue.input === undefined ? 'is required' : `must be a string`) })
    .regex(ID_PATTERN, `must be a ${what} id matching ${ID_PATTERN.source}`);

/**
 * The body Cloud Scheduler (or an operator) POSTs to onSchedule. Unknown fields are rejected:
 * a typo such as `"cleint"` must not silently start a product-wide run.
 */
export const FlowRequestBodySchema = z
  .object({
    flow: idField('flow'),
    product: idField('product'),
    client: idField('client').optional(),
    params: z.record(z.string(), z.unknown(), { error: 'must be a JSON object' }).optional(),
  })
  .strict();

export type FlowRequestBody = z.infer<typeof FlowRequestBodySchema>;

/** A validated request: the flow exists for the product and the client fits the flow's scope. */
export interface FlowRequest {
  flow: string;
  product: string;
  /** The client of a client-scoped flow; null for a product-scoped flow. */
  client: string | null;
  /** The flow's configured params with the request's params merged over them (shallow). */
  params: Record<string, unknown>;
  flowConfig: FlowConfig;
  productConfig: ProductConfig;
}

const BODY_SHAPE = '{"flow": id, "product": id, "client"?: id, "params"?: object}';

/**
 * Validates a parsed JSON body against the configured flows.
 *
 * @throws InvalidFlowRequestError naming the first problem: a malformed body, an unknown flow,
 *   product or client, or a client that does not fit the flow's scope.
 */
export function parseFlowRequest(body: unknown, config: Config): FlowRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new InvalidFlowRequestError(`body must be a JSON object ${BODY_SHAPE}`);
  }
  const parsed = FlowRequestBodySchema.safeParse(body);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      if (issue.code === 'unrecognized_keys')
        return `unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
      const key = issue.path.map(String).join('.');
      return key ? `${key} ${issue.message}` : issue.message;
    });
    throw new InvalidFlowRequestError(`invalid body: ${problems.join('; ')}; expected ${BODY_SHAPE}`);
  }
  const { flow, product, client, params } = parsed.data;

  const productConfig = Object.hasOwn(config.products, product) ? config.products[product] : undefined;
  if (!productConfig) throw new InvalidFlowRequestError(`unknown product "${product}"`);

  const flowConfig = Object.hasOwn(productConfig.flows, flow) ? productConfig.flows[flow] : undefined;
  if (!flowConfig) {
    const known = Object.keys(productConfig.flows);
    throw new InvalidFlowRequestError(
      `unknown flow "${flow}" for product "${product}"` +
        (known.length > 0 ? ` (configured: ${known.join(', ')})` : ' (it has no flows)'),
    );
  }

  if (flowConfig.scope === 'client') {
    if (client === undefined) {
      throw new InvalidFlowRequestError(
        `flow "${flow}" runs per client: the body must name a "client" of product "${product}"`,
      );
    }
    if (!productConfig.clients.includes(client)) {
      throw new InvalidFlowRequestError(`unknown client "${client}" for product "${product}"`);
    }
  } else if (client !== undefined) {
    throw new InvalidFlowRequestError(
      `flow "${flow}" runs per product: the body must not name a client (got "${client}")`,
    );
  }

  return {
    flow,
    product,
    client: client ?? null,
    params: { ...flowConfig.params, ...(params ?? {}) },
    flowConfig,
    productConfig,
  };
}
