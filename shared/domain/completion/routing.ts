import type { Config } from '../../config/schema.js';
import { PermanentError } from '../../runtime/errors.js';
import type { FlowCompletion } from './classify.js';
import type { FinishedJobResource } from './finished-job.js';

/**
 * Whose result it is: the product and client a finished job or flow reports to, checked against
 * the config. A job or flow that is not Batchwire's, or not for a configured client, has no
 * output topic; it is refused with a {@link ForeignJobError} (acked, logged at ERROR).
 */

/** A notification for a job Batchwire did not create, or whose client is not configured: acked. */
export class ForeignJobError extends PermanentError {}

/**
 * Product and client of a job, from its labels, checked against the config: a job without them,
 * or for a client that is not configured, is not Batchwire's to report.
 */
export function routeJob(
  job: Pick<FinishedJobResource, 'name' | 'labels'>,
  config: Pick<Config, 'products'>,
): { product: string; client: string } {
  const product = job.labels?.product;
  const client = job.labels?.client;
  if (!product || !client) {
    throw new ForeignJobError(`job ${job.name} has no product/client labels: not a Batchwire job`);
  }
  if (!config.products[product]?.clients.includes(client)) {
    throw new ForeignJobError(
      `job ${job.name} is for ${product}/${client}, which is not a configured client`,
    );
  }
  return { product, client };
}

/**
 * The clients a flow's result goes to, checked against the config: the flow's client, or every
 * client of the product for a product-scoped flow (each gets its own event, own id).
 */
export function flowRecipients(completion: FlowCompletion, config: Pick<Config, 'products'>): string[] {
  const product = config.products[completion.product];
  if (!product) throw new ForeignJobError(`flow completion for unknown product ${completion.product}`);
  if (!product.flows[completion.flow]) {
    throw new ForeignJobError(`flow ${completion.flow} is not configured for product ${completion.product}`);
  }
  if (completion.client !== null && !product.clients.includes(completion.client)) {
    throw new ForeignJobError(
      `flow completion for ${completion.product}/${completion.client}: not a configured client`,
    );
  }
  return completion.client !== null ? [completion.client] : [...product.clients];
}
