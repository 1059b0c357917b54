import { describe, expect, it } from 'vitest';
import { cloudEventFromRequest } from '#shared/runtime/cloud-event-endpoint.js';

/**
 * The guard in front of the CloudEvent functions, on requests as functions-framework's body
 * parsers leave them (JSON parsed, text/* a string, anything else a Buffer).
 */

const BINARY = {
  'content-type': 'application/json',
  'ce-specversion': '1.0',
  'ce-id': 'e-1',
  'ce-type': 'google.cloud.storage.object.v1.finalized',
  'ce-source': '//storage.googleapis.com/projects/_/buckets/b',
  'ce-subject': 'objects/p/c/inputs/a.jsonl',
};

describe('cloudEventFromRequest', () => {
  it('reads a binary-mode event: every ce-* header an attribute, the JSON body its data', () => {
    const result = cloudEventFromRequest({ method: 'POST', path: '/', headers: BINARY, body: { name: 'a' } });
    expect(result).toEqual({
      event: {
        specversion: '1.0',
        id: 'e-1',
        type: 'google.cloud.storage.object.v1.finalized',
        source: '//storage.googleapis.com/projects/_/buckets/b',
        subject: 'objects/p/c/inputs/a.jsonl',
        data: { name: 'a' },
      },
    });
  });

  it('parses JSON data sent as octet-stream (a Buffer) or text (a string)', () => {
    for (const body of [Buffer.from('{"name":"a"}'), '{"name":"a"}']) {
      const result = cloudEventFromRequest({ method: 'POST', path: '/', headers: BINARY, body });
      expect(result).toMatchObject({ event: { id: 'e-1', data: { name: 'a' } } });
    }
  });

  it('reads a structured-mode event as it is', () => {
    const event = { specversion: '1.0', id: 's-1', type: 't', source: '//s', data: { x: 1 } };
    const result = cloudEventFromRequest({
      method: 'POST',
      path: '/',
      headers: { 'content-type': 'application/cloudevents+json' },
      body: event,
    });
    expect(result).toEqual({ event });
  });

  it('turns a raw Pub/Sub push into the messagePublished event Eventarc would deliver, topic from the path', () => {
    const message = {
      data: 'aGk=',
      attributes: { Type: 'X' },
      messageId: 'm-1',
      publishTime: '2025-03-01T04:00:00Z',
    };
    const result = cloudEventFromRequest({
      method: 'POST',
      path: '/projects/p1/topics/completions',
      headers: { 'content-type': 'application/json' },
      body: { message, subscription: 'projects/p1/subscriptions/s' },
    });
    expect(result).toEqual({
      event: {
        specversion: '1.0',
        id: 'm-1',
        type: 'google.cloud.pubsub.topic.v1.messagePublished',
        source: '//pubsub.googleapis.com/projects/p1/topics/completions',
        time: '2025-03-01T04:00:00Z',
        datacontenttype: 'application/json',
        data: { message, subscription: 'projects/p1/subscriptions/s' },
      },
    });
  });

  it.each([
    ['a GET', { method: 'GET', headers: {}, body: undefined }, 405, /method GET/],
    ['no body at all', { method: 'POST', headers: {}, body: undefined }, 400, /empty body/],
    ['an empty Buffer', { method: 'POST', headers: {}, body: Buffer.alloc(0) }, 400, /empty body/],
    [
      'text that is not JSON',
      { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' },
      400,
      /not JSON/,
    ],
    ['a JSON array', { method: 'POST', headers: {}, body: [1] }, 400, /JSON object/],
    ['a JSON object of no mode', { method: 'POST', headers: {}, body: { a: 1 } }, 400, /no CloudEvent/],
    [
      'binary mode without ce-id',
      { method: 'POST', headers: { ...BINARY, 'ce-id': undefined }, body: {} },
      400,
      /ce-id/,
    ],
    [
      'binary mode with a string as data',
      { method: 'POST', headers: BINARY, body: '"text"' },
      400,
      /JSON object/,
    ],
    [
      'structured mode without a source',
      {
        method: 'POST',
        headers: { 'content-type': 'application/cloudevents+json' },
        body: { specversion: '1.0', id: 'x', type: 't' },
      },
      400,
      /without source/,
    ],
    [
      'a push without messageId',
      { method: 'POST', headers: {}, body: { message: {}, subscription: 's' } },
      400,
      /messageId/,
    ],
  ])('refuses %s with %i', (_what, request, status, message) => {
    const result = cloudEventFromRequest({ path: '/', ...request });
    expect(result).toMatchObject({ status, error: expect.stringMatching(message) });
  });
});
