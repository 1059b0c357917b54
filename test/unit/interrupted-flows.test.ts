import { describe, expect, it } from 'vitest';
import { interruptedFlowCompletions, PLATFORM_STOPPED } from '#local/platform/interrupted-flows.js';
import type { ExecutionResource } from '#local/workflows/server.js';
import { parseFlowCompletion } from '#shared/domain/completion/classify.js';

function execution(name: string, argument: unknown): ExecutionResource {
  return {
    name,
    start_time: { seconds: '1796200000', nanos: 500_000_000 },
    end_time: null,
    duration: null,
    state: 'CANCELLED',
    argument: typeof argument === 'string' ? argument : JSON.stringify(argument),
    result: '',
    error: null,
    workflow_revision_id: '000001-abc',
    call_log_level: 'CALL_LOG_LEVEL_UNSPECIFIED',
    status: null,
    labels: {},
  };
}

describe('interruptedFlowCompletions', () => {
  it('reports each flow cut short as FAILED because the platform stopped, and skips what is not a flow', () => {
    // Arrange
    const flow = execution('projects/p/locations/l/workflows/train/executions/e1', {
      flow: 'train',
      product: 'mlops-template',
      client: 'acme',
      completionTopic: 'projects/p/topics/completions',
    });
    const productFlow = execution('projects/p/locations/l/workflows/metadata/executions/e2', {
      flow: 'metadata',
      product: 'mlops-template',
      client: null,
      completionTopic: 'projects/p/topics/completions',
    });
    const notAFlow = execution('projects/p/locations/l/workflows/mine/executions/e3', { name: 'x' });
    const notJson = execution('projects/p/locations/l/workflows/mine/executions/e4', '');
    const finishedAt = new Date('2026-12-02T10:00:00Z');

    // Act
    const messages = interruptedFlowCompletions(
      [flow, productFlow, notAFlow, notJson],
      finishedAt,
      PLATFORM_STOPPED,
    );

    // Assert: what onComplete reads, exactly as a flow's own last step would publish it.
    expect(messages.map((m) => m.topic)).toEqual([
      'projects/p/topics/completions',
      'projects/p/topics/completions',
    ]);
    const [first, second] = messages.map((m) => parseFlowCompletion(JSON.stringify(m.completion)));
    expect(first).toEqual({
      type: 'flow',
      version: 1,
      flow: 'train',
      product: 'mlops-template',
      client: 'acme',
      execution: flow.name,
      state: 'FAILED',
      startedAt: new Date(1_796_200_000_500).toISOString(),
      finishedAt: '2026-12-02T10:00:00.000Z',
      outputs: null,
      error: PLATFORM_STOPPED,
    });
    expect(second?.client).toBeNull();
    expect(PLATFORM_STOPPED).toMatch(/platform stopped/);
  });
});
