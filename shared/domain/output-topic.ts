/**
 * The topic a client's results are published to: one per (product, client), so each client
 * subscribes to its own results only and IAM can be granted per topic.
 *
 * @example
 * outputTopic('mlops-template', 'acme') // 'batch-mlops-template-acme-outputs'
 */
export function outputTopic(product: string, client: string): string {
  return `batch-${product}-${client}-outputs`;
}
