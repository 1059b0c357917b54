import * as grpc from '@grpc/grpc-js';
import { paginate } from './paging.js';
import { grpcError } from './protos.js';
import type { HttpRule } from './rest-transcoder.js';
import type { unaryHandlers } from './unary.js';

/**
 * The long-running operations of a local service and `google.longrunning.Operations` over
 * them (Get, List, Delete, Cancel, Wait), as the Google clients' `operation.promise()` and
 * `checkXxxProgress` poll them. A service adds an operation when a method answers with one and
 * completes it when the work ends; the store answers the rest.
 */

/** google.protobuf.Any as proto-loader (keepCase) encodes it. */
export interface AnyMessage {
  type_url: string;
  value: Buffer;
}

export interface Operation {
  name: string;
  done: boolean;
  /** Encodes the current metadata (read at each GetOperation, so it follows the work). */
  metadata?: () => AnyMessage;
  /** Encodes the response of a done operation that succeeded. */
  response?: () => AnyMessage;
  /** The status of a done operation that failed. */
  error?: { code: number; message: string };
}

const OPERATION_NAME = /^projects\/[^/]+\/locations\/[^/]+\/operations\/[^/]+$/;
const LOCATION = /^projects\/[^/]+\/locations\/[^/]+$/;
/** WaitOperation's default and longest wait, as the API documents them. */
const DEFAULT_WAIT_MS = 60_000;
const MAX_WAIT_MS = 300_000;
/**
 * Finished operations kept for GetOperation and ListOperations; the oldest are forgotten first,
 * as Google expires finished operations. Without a bound, a platform that runs for days would
 * hold one operation per DeleteJob it ever answered. Operations under way are always kept.
 */
const KEEP_DONE = 1_000;

/** The methods of `google.longrunning.Operations`. */
export type OperationsMethod =
  | 'GetOperation'
  | 'ListOperations'
  | 'DeleteOperation'
  | 'CancelOperation'
  | 'WaitOperation';

/**
 * The REST bindings of `google.longrunning.Operations` a service config (`batch_v1.yaml`,
 * `run_v2.yaml`…) gives: the same paths under the API's version, for the methods it lists.
 */
export function operationsHttpRules(version: string, methods: OperationsMethod[]): HttpRule[] {
  const operation = `/${version}/{name=projects/*/locations/*/operations/*}`;
  const rules: Record<OperationsMethod, Omit<HttpRule, 'selector'>> = {
    GetOperation: { get: operation },
    ListOperations: { get: `/${version}/{name=projects/*/locations/*}/operations` },
    DeleteOperation: { delete: operation },
    CancelOperation: { post: `${operation}:cancel`, body: '*' },
    WaitOperation: { post: `${operation}:wait`, body: '*' },
  };
  return methods.map((method) => ({
    selector: `google.longrunning.Operations.${method}`,
    ...rules[method],
  }));
}

/**
 * An operation that is done when it is created, answering with `response` (encoded when read,
 * so it shows the resource as it is then); `withMetadata`: the same message is its metadata.
 */
export function finishedOperation(name: string, response: () => AnyMessage, withMetadata = false): Operation {
  return { name, done: true, ...(withMetadata ? { metadata: response } : {}), response };
}

export class OperationStore<Op extends Operation = Operation> {
  private readonly operations = new Map<string, Op>();
  private readonly waiters = new Map<string, Array<() => void>>();

  /** `onCancel`: what CancelOperation does to the work of an operation (default: nothing). */
  constructor(private readonly onCancel: (operation: Op) => void = () => {}) {}

  add<T extends Op>(operation: T): T {
    this.operations.set(operation.name, operation);
    this.forgetOldestDone();
    return operation;
  }

  /** Forgets finished operations, oldest first, beyond {@link KEEP_DONE}. */
  private forgetOldestDone(): void {
    let done = 0;
    for (const operation of this.operations.values()) if (operation.done) done++;
    if (done <= KEEP_DONE) return;
    for (const [name, operation] of this.operations) {
      if (done <= KEEP_DONE) break;
      if (!operation.done) continue;
      this.operations.delete(name);
      done--;
    }
  }

  /** The operation named `name`: INVALID_ARGUMENT for a malformed name, NOT_FOUND for an unknown one. */
  get(name: string): Op {
    if (!OPERATION_NAME.test(name ?? ''))
      throw grpcError(
        grpc.status.INVALID_ARGUMENT,
        `name must be projects/*/locations/*/operations/*, got "${name}"`,
      );
    const operation = this.operations.get(name);
    if (!operation) throw grpcError(grpc.status.NOT_FOUND, `Operation '${name}' was not found`);
    return operation;
  }

  /** Ends `operation` with a response or an error and wakes its WaitOperation callers. */
  complete(operation: Op, outcome: Pick<Operation, 'response' | 'error'>): void {
    Object.assign(operation, outcome, { done: true });
    for (const wake of this.waiters.get(operation.name)?.splice(0) ?? []) wake();
    this.waiters.delete(operation.name);
  }

  /** The `google.longrunning.Operation` message of `operation`. */
  message(operation: Op): Record<string, unknown> {
    const message: Record<string, unknown> = { name: operation.name, done: operation.done };
    if (operation.metadata) message.metadata = operation.metadata();
    if (operation.done && operation.error)
      message.error = { code: operation.error.code, message: operation.error.message, details: [] };
    else if (operation.done && operation.response) message.response = operation.response();
    return message;
  }

  list(request: { name: string; filter?: string; page_size?: number; page_token?: string }): {
    operations: Record<string, unknown>[];
    next_page_token: string;
  } {
    if (!LOCATION.test(request.name ?? ''))
      throw grpcError(
        grpc.status.INVALID_ARGUMENT,
        `name must be projects/{project}/locations/{location}, got "${request.name}"`,
      );
    if (request.filter?.trim())
      throw grpcError(grpc.status.INVALID_ARGUMENT, `operation filters are not supported: ${request.filter}`);
    const all = [...this.operations.values()].filter((operation) =>
      operation.name.startsWith(`${request.name}/operations/`),
    );
    const { page, next_page_token } = paginate(all, request, { scope: request.name });
    return { operations: page.map((operation) => this.message(operation)), next_page_token };
  }

  /** Resolves with the operation once it is done or `timeout` (default 60 s, at most 300 s) passed. */
  async wait(request: { name: string; timeout?: { seconds?: string | number } | null }) {
    const operation = this.get(request.name);
    if (!operation.done) {
      const timeoutMs = Math.min(
        Number(request.timeout?.seconds ?? 0) * 1000 || DEFAULT_WAIT_MS,
        MAX_WAIT_MS,
      );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        const waiters = this.waiters.get(operation.name) ?? [];
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
        this.waiters.set(operation.name, waiters);
      });
    }
    return this.message(operation);
  }

  /** The `google.longrunning.Operations` implementation over this store. */
  handlers(unary: ReturnType<typeof unaryHandlers>): grpc.UntypedServiceImplementation {
    return {
      GetOperation: unary('GetOperation', (request: { name: string }) =>
        this.message(this.get(request.name)),
      ),
      ListOperations: unary(
        'ListOperations',
        (request: { name: string; filter: string; page_size: number; page_token: string }) =>
          this.list(request),
      ),
      DeleteOperation: unary('DeleteOperation', (request: { name: string }) => {
        this.operations.delete(this.get(request.name).name);
        return {};
      }),
      CancelOperation: unary('CancelOperation', (request: { name: string }) => {
        const operation = this.get(request.name);
        if (!operation.done) this.onCancel(operation);
        return {};
      }),
      WaitOperation: unary(
        'WaitOperation',
        (request: { name: string; timeout?: { seconds?: string } | null }) => this.wait(request),
      ),
    };
  }
}
