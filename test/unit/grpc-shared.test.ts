import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import {
  finishedOperation,
  type Operation,
  OperationStore,
  operationsHttpRules,
} from '#local/grpc/operations.js';
import { grpcError } from '#local/grpc/protos.js';
import { FaultInjector, unaryHandlers } from '#local/grpc/unary.js';

const LOCATION = 'projects/p/locations/r';
const response = () => ({ type_url: 'type.googleapis.com/google.protobuf.Empty', value: Buffer.alloc(0) });

/** Calls a unary handler as grpc-js would and resolves with what it answered. */
function call<Req, Res>(handler: grpc.handleUnaryCall<Req, Res>, request: Req) {
  return new Promise<{ error: grpc.ServiceError | null; value?: Res | null }>((resolve) => {
    handler({ request } as grpc.ServerUnaryCall<Req, Res>, (error, value) =>
      resolve({ error: error as grpc.ServiceError | null, value }),
    );
  });
}

describe('unary handlers', () => {
  it('answers with what the implementation returns or resolves with', async () => {
    const unary = unaryHandlers();
    expect(
      await call(
        unary('Echo', (request: { text: string }) => request.text),
        { text: 'hi' },
      ),
    ).toEqual({
      error: null,
      value: 'hi',
    });
    expect(
      (
        await call(
          unary('Later', async () => 42),
          {},
        )
      ).value,
    ).toBe(42);
  });

  it('keeps a thrown gRPC status and turns anything else into INTERNAL with its message', async () => {
    const unary = unaryHandlers();
    const missing = await call(
      unary('Get', () => {
        throw grpcError(grpc.status.NOT_FOUND, 'no such thing');
      }),
      {},
    );
    expect(missing.error?.code).toBe(grpc.status.NOT_FOUND);
    const broken = await call(
      unary('Get', () => {
        throw new TypeError('boom');
      }),
      {},
    );
    expect(broken.error?.code).toBe(grpc.status.INTERNAL);
    expect(broken.error?.details).toBe('boom');
  });

  it('fails the next calls of a method with the injected faults, in order, then recovers', async () => {
    const faults = new FaultInjector();
    const unary = unaryHandlers(faults);
    const handler = unary('CreateJob', () => 'created');
    faults.inject('CreateJob', grpc.status.UNAVAILABLE, 2);
    faults.inject('CreateJob', grpc.status.PERMISSION_DENIED);
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await call(handler, {})).error?.code ?? 'ok');
    expect(codes).toEqual([
      grpc.status.UNAVAILABLE,
      grpc.status.UNAVAILABLE,
      grpc.status.PERMISSION_DENIED,
      'ok',
    ]);
    expect(
      (
        await call(
          unary('GetJob', () => 'job'),
          {},
        )
      ).value,
    ).toBe('job');
  });
});

describe('operation store', () => {
  it('answers GetOperation, ListOperations and DeleteOperation for the operations added', () => {
    const store = new OperationStore();
    store.add(finishedOperation(`${LOCATION}/operations/a`, response));
    store.add(finishedOperation('projects/p/locations/other/operations/b', response));
    expect(store.message(store.get(`${LOCATION}/operations/a`))).toEqual({
      name: `${LOCATION}/operations/a`,
      done: true,
      response: response(),
    });
    expect(store.list({ name: LOCATION }).operations.map((op) => op.name)).toEqual([
      `${LOCATION}/operations/a`,
    ]);
    expect(() => store.get(`${LOCATION}/operations/missing`)).toThrow(/was not found/);
    expect(() => store.get('operations/a')).toThrow(/name must be/);
    expect(() => store.list({ name: LOCATION, filter: 'done=true' })).toThrow(/not supported/);
  });

  it('forgets the oldest finished operations beyond 1,000, and keeps those under way', () => {
    // Arrange: one operation under way, then 1,001 finished ones (a DeleteJob each)
    const store = new OperationStore();
    store.add({ name: `${LOCATION}/operations/running`, done: false });

    // Act
    for (let i = 0; i <= 1_000; i++)
      store.add(finishedOperation(`${LOCATION}/operations/done-${i}`, response));

    // Assert
    expect(() => store.get(`${LOCATION}/operations/done-0`)).toThrow(/was not found/);
    expect(store.get(`${LOCATION}/operations/done-1`).done).toBe(true);
    expect(store.get(`${LOCATION}/operations/done-1000`).done).toBe(true);
    expect(store.get(`${LOCATION}/operations/running`).done).toBe(false);
  });

  it('wakes a WaitOperation caller when the operation completes, with its error', async () => {
    const store = new OperationStore();
    const operation: Operation = store.add({ name: `${LOCATION}/operations/run`, done: false });
    const waiting = store.wait({ name: operation.name, timeout: { seconds: '300' } });
    store.complete(operation, { error: { code: grpc.status.CANCELLED, message: 'cancelled' } });
    expect(await waiting).toEqual({
      name: operation.name,
      done: true,
      error: { code: grpc.status.CANCELLED, message: 'cancelled', details: [] },
    });
  });

  it('hands CancelOperation of an operation under way to the service, and ignores a done one', async () => {
    const cancelled: string[] = [];
    const store = new OperationStore((operation) => cancelled.push(operation.name));
    store.add({ name: `${LOCATION}/operations/running`, done: false });
    store.add(finishedOperation(`${LOCATION}/operations/done`, response));
    const handlers = store.handlers(unaryHandlers()) as Record<
      string,
      grpc.handleUnaryCall<unknown, unknown>
    >;
    const cancel = handlers.CancelOperation as grpc.handleUnaryCall<unknown, unknown>;
    await call(cancel, { name: `${LOCATION}/operations/running` });
    await call(cancel, { name: `${LOCATION}/operations/done` });
    expect(cancelled).toEqual([`${LOCATION}/operations/running`]);
  });
});

describe('operations REST bindings', () => {
  it('gives the paths of the service configs under the API version, for the methods listed', () => {
    expect(
      operationsHttpRules('v2', [
        'GetOperation',
        'ListOperations',
        'DeleteOperation',
        'CancelOperation',
        'WaitOperation',
      ]),
    ).toEqual([
      {
        selector: 'google.longrunning.Operations.GetOperation',
        get: '/v2/{name=projects/*/locations/*/operations/*}',
      },
      {
        selector: 'google.longrunning.Operations.ListOperations',
        get: '/v2/{name=projects/*/locations/*}/operations',
      },
      {
        selector: 'google.longrunning.Operations.DeleteOperation',
        delete: '/v2/{name=projects/*/locations/*/operations/*}',
      },
      {
        selector: 'google.longrunning.Operations.CancelOperation',
        post: '/v2/{name=projects/*/locations/*/operations/*}:cancel',
        body: '*',
      },
      {
        selector: 'google.longrunning.Operations.WaitOperation',
        post: '/v2/{name=projects/*/locations/*/operations/*}:wait',
        body: '*',
      },
    ]);
  });
});
