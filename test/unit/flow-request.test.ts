import { describe, expect, it } from 'vitest';
import { InvalidFlowRequestError, parseFlowRequest } from '#shared/domain/flow-request.js';
import { repoConfig } from '../helpers/config.js';

const config = repoConfig({
  extraFlows:
    '      refit:\n        target: { runJob: refit-job, args: [--fast] }\n        scope: client\n        params: { epochs: 3, lr: 0.1 }\n',
});

describe('parseFlowRequest', () => {
  it('accepts a client-scoped flow naming a configured client, merging params over the configured ones', () => {
    const request = parseFlowRequest(
      { flow: 'refit', product: 'mlops-template', client: 'acme', params: { lr: 0.5 } },
      config,
    );
    expect(request).toMatchObject({
      flow: 'refit',
      product: 'mlops-template',
      client: 'acme',
      params: { epochs: 3, lr: 0.5 },
    });
    expect(request.flowConfig.target).toEqual({ runJob: 'refit-job', args: ['--fast'] });
  });

  it('accepts a product-scoped flow without a client (client null)', () => {
    const request = parseFlowRequest({ flow: 'metadata', product: 'mlops-template' }, config);
    expect(request.client).toBeNull();
    expect(request.params).toEqual({});
  });

  it.each([
    ['a JSON array', ['train'], 'body must be a JSON object'],
    ['a string', 'train', 'body must be a JSON object'],
    ['null', null, 'body must be a JSON object'],
    ['no flow', { product: 'mlops-template', client: 'acme' }, 'flow is required'],
    ['no product', { flow: 'train', client: 'acme' }, 'product is required'],
    ['a flow that is not a string', { flow: 7, product: 'mlops-template' }, 'flow must be a string'],
    ['a malformed product id', { flow: 'train', product: 'Bad Product' }, 'product must be a product id'],
    [
      'params that are not an object',
      { flow: 'metadata', product: 'mlops-template', params: [1] },
      'params must be a JSON object',
    ],
    [
      'an unknown field',
      { flow: 'train', product: 'mlops-template', cleint: 'acme' },
      'unknown field(s) "cleint"',
    ],
    ['an unknown product', { flow: 'train', product: 'nope-product' }, 'unknown product "nope-product"'],
    [
      'an unknown flow',
      { flow: 'deploy', product: 'mlops-template' },
      'unknown flow "deploy" for product "mlops-template" (configured: refit, train, metadata)',
    ],
    [
      'an unknown client',
      { flow: 'train', product: 'mlops-template', client: 'initech' },
      'unknown client "initech" for product "mlops-template"',
    ],
    [
      'no client for a client-scoped flow',
      { flow: 'train', product: 'mlops-template' },
      'flow "train" runs per client: the body must name a "client"',
    ],
    [
      'a client for a product-scoped flow',
      { flow: 'metadata', product: 'mlops-template', client: 'acme' },
      'flow "metadata" runs per product: the body must not name a client (got "acme")',
    ],
  ])('refuses %s with a message naming the problem', (_case, body, message) => {
    let error: unknown;
    try {
      parseFlowRequest(body, config);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidFlowRequestError);
    expect((error as Error).message).toContain(message);
    expect((error as InvalidFlowRequestError).retryable).toBe(false);
  });

  it('does not treat inherited object keys as configured products or flows', () => {
    expect(() => parseFlowRequest({ flow: 'train', product: 'constructor' }, config)).toThrow(
      'unknown product "constructor"',
    );
    expect(() => parseFlowRequest({ flow: 'constructor', product: 'mlops-template' }, config)).toThrow(
      'unknown flow',
    );
  });
});
