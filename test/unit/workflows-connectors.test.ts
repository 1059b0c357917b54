import { describe, expect, it } from 'vitest';
import {
  connectorError,
  createLocalConnectors,
  LOCAL_CONNECTOR_NAMES,
  toProtoRequest,
  toRestJson,
} from '#local/workflows/connectors.js';
import { WorkflowException } from '#local/workflows/errors.js';

describe('local connectors (no network)', () => {
  it('provides every advertised connector without loading any client', () => {
    const registry = createLocalConnectors({ project: 'p', region: 'europe-west2', env: {} });
    expect(Object.keys(registry).sort()).toEqual([...LOCAL_CONNECTOR_NAMES].sort());
  });

  it('turns REST durations into proto Durations for the gax client', () => {
    expect(
      toProtoRequest({
        taskGroups: [{ taskSpec: { maxRunDuration: '3600s', note: '5s' } }],
        timeout: '1.5s',
      }),
    ).toEqual({
      taskGroups: [{ taskSpec: { maxRunDuration: { seconds: 3600, nanos: 0 }, note: '5s' } }],
      timeout: { seconds: 1, nanos: 500_000_000 },
    });
  });

  it('turns a gax response into REST JSON: defaults omitted, RFC 3339 times, "Ns" durations', () => {
    const response = {
      name: 'projects/p/locations/l/jobs/j',
      uid: '',
      priority: '0',
      labels: {},
      createTime: { seconds: '1700000000', nanos: 500_000_000 },
      status: {
        state: 'SUCCEEDED',
        statusEvents: [],
        runDuration: { seconds: '12', nanos: 0 },
        taskGroups: {},
      },
      allocationPolicy: null,
      notifications: [
        { pubsubTopic: 't', message: { type: 'JOB_STATE_CHANGED', newJobState: 'STATE_UNSPECIFIED' } },
      ],
      scheduled: false,
    };
    expect(toRestJson(response)).toEqual({
      name: 'projects/p/locations/l/jobs/j',
      priority: '0',
      createTime: '2023-11-14T22:13:20.500Z',
      status: { state: 'SUCCEEDED', runDuration: '12s' },
      notifications: [{ pubsubTopic: 't', message: { type: 'JOB_STATE_CHANGED' } }],
    });
  });

  it.each([
    [{ code: 5, message: '5 NOT_FOUND: no such job' }, 404, 'NOT_FOUND', 'no such job'],
    [{ code: 6, message: 'exists' }, 409, 'ALREADY_EXISTS', 'exists'],
    [{ code: 14, message: 'down' }, 503, 'UNAVAILABLE', 'down'],
    [{ code: 412, message: 'precondition' }, 412, 'UNKNOWN', 'precondition'],
  ])('maps client error %j to an HttpError %s', (error, code, status, message) => {
    const raised = connectorError(error);
    expect(raised).toBeInstanceOf(WorkflowException);
    expect(raised.value).toEqual({
      code,
      message: `HTTP server responded with error code ${code}`,
      tags: ['HttpError'],
      headers: {},
      body: { error: { code, message, status } },
    });
  });

  it('reports a refused connection as ConnectionError', () => {
    expect(connectorError(new Error('connect ECONNREFUSED 127.0.0.1:1')).value).toMatchObject({
      tags: ['ConnectionError'],
    });
  });

  it('rejects a publish without messages as a 400 HttpError before any client is used', async () => {
    const registry = createLocalConnectors({ project: 'p', region: 'r', env: {} });
    const publish = registry['googleapis.pubsub.v1.projects.topics.publish'];
    const error = await publish?.({ topic: 'projects/p/topics/t', body: { messages: [] } }, {}).catch(
      (e: unknown) => e,
    );
    expect((error as WorkflowException).value).toMatchObject({ code: 400, tags: ['HttpError'] });
  });
});
