import * as grpc from '@grpc/grpc-js';
import { grpcError } from './protos.js';

/**
 * Unary handlers of the local gRPC services: a handler returns (or resolves with) the answer
 * or throws; a thrown `grpcError` is the call's status, anything else is INTERNAL with its
 * message. Test hooks make the next calls of a method fail with a chosen status first.
 */

/** A method's implementation: the request in, the response out (or a thrown status). */
export type UnaryImplementation<Req, Res> = (
  request: Req,
  call: grpc.ServerUnaryCall<Req, Res>,
) => Res | Promise<Res>;

/** The status a call ends with for what its handler threw. */
export function toServiceError(error: unknown): grpc.ServiceError {
  const candidate = error as grpc.ServiceError | undefined;
  if (typeof candidate?.code === 'number') return candidate;
  return grpcError(grpc.status.INTERNAL, (error as Error | undefined)?.message ?? String(error));
}

/** Faults queued per method: each call of the method takes the next one and fails with it. */
export class FaultInjector {
  private readonly queued = new Map<string, grpc.status[]>();

  /** The next `times` calls of `method` ('CreateJob', 'RunJob'…) fail with `code`. */
  inject(method: string, code: grpc.status, times = 1): void {
    const queue = this.queued.get(method) ?? [];
    for (let i = 0; i < times; i++) queue.push(code);
    this.queued.set(method, queue);
  }

  /** Throws the next fault queued for `method`, if any. */
  take(method: string): void {
    const queue = this.queued.get(method);
    const code = queue?.shift();
    if (queue?.length === 0) this.queued.delete(method);
    if (code !== undefined) throw grpcError(code, `injected fault in ${method}`);
  }
}

/** Builds the unary handlers of one service, with the faults of `faults` (if given) applied first. */
export function unaryHandlers(faults?: FaultInjector) {
  return <Req, Res>(
    method: string,
    implementation: UnaryImplementation<Req, Res>,
  ): grpc.handleUnaryCall<Req, Res> =>
    (call, callback) => {
      Promise.resolve()
        .then(() => {
          faults?.take(method);
          return implementation(call.request, call);
        })
        .then(
          (response) => callback(null, response),
          (error: unknown) => callback(toServiceError(error)),
        );
    };
}
