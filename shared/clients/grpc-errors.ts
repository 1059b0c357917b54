import {
  AlreadyExistsError,
  BatchwireError,
  NotFoundError,
  PermanentError,
  PermissionDeniedError,
  PreconditionFailedError,
  TransientError,
} from '../runtime/errors.js';
import { HttpStatus } from '../runtime/http-status.js';

/**
 * Translates Google client errors into the platform's error family, so the core and the event
 * wrapper decide retry-or-ack from the class alone and never look at SDK error shapes.
 */

/** gRPC status codes (google.rpc.Code), named for readability without loading @grpc/grpc-js. */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/**
 * The gRPC codes a later attempt may cure: the event is failed so the trigger redelivers it.
 * CANCELLED, UNKNOWN and ABORTED are among them (a torn-down channel, a broken stream, a
 * concurrency conflict): every call Batchwire makes is safe to repeat (deterministic ids and
 * request ids), so retrying costs nothing, while acking would lose the event's work.
 */
export const TRANSIENT_GRPC_CODES: ReadonlySet<number> = new Set([
  GrpcCode.CANCELLED,
  GrpcCode.UNKNOWN,
  GrpcCode.ABORTED,
  GrpcCode.DEADLINE_EXCEEDED,
  GrpcCode.RESOURCE_EXHAUSTED,
  GrpcCode.INTERNAL,
  GrpcCode.UNAVAILABLE,
]);

/**
/** What an adapter knows about the call that failed, besides its description. */
export interface CallContext {
  /**
   * The IAM permission the call needs (e.g. `batch.jobs.create`), named in a permission error
   * when Google's error does not name one itself.
   */
  permission?: string;
}

/**
 * Maps an error from a gax gRPC client (a GoogleError / ServiceError with a numeric `code`) to
 * a {@link BatchwireError}: ALREADY_EXISTS → AlreadyExistsError, NOT_FOUND → NotFoundError,
 * FAILED_PRECONDITION → PreconditionFailedError, PERMISSION_DENIED / UNAUTHENTICATED →
 * PermissionDeniedError (retryable: a grant fixes it), the codes of {@link TRANSIENT_GRPC_CODES}
 * → TransientError, any other code → PermanentError. An error without a gRPC code (the client
 * failed to load, a socket error) is treated as transient: retryable unless known to be permanent.
 *
 * @param action what was being done, for the message, e.g. `CreateJob bw-acme-…`
 */
export function fromGrpcError(err: unknown, action: string, context: CallContext = {}): BatchwireError {
  if (isBatchwireError(err)) return err;
  const code = (err as { code?: unknown } | undefined)?.code;
  const detail = (err as { details?: unknown } | undefined)?.details;
  const reason = typeof detail === 'string' && detail ? detail : errorMessage(err);
  if (typeof code !== 'number') return new TransientError(`${action}: ${reason}`, { cause: err });
  if (code === GrpcCode.PERMISSION_DENIED || code === GrpcCode.UNAUTHENTICATED) {
    return permissionDenied(err, action, `${grpcCodeName(code)}: ${reason}`, context);
  }
  const message = `${action}: ${grpcCodeName(code)}: ${reason}`;
  if (code === GrpcCode.ALREADY_EXISTS) return new AlreadyExistsError(message, { cause: err });
  if (code === GrpcCode.NOT_FOUND) return new NotFoundError(message, { cause: err });
  if (code === GrpcCode.FAILED_PRECONDITION) return new PreconditionFailedError(message, { cause: err });
  if (TRANSIENT_GRPC_CODES.has(code)) return new TransientError(message, { cause: err });
  return new PermanentError(message, { cause: err });
}

/** The request got no HTTP answer at all (connection refused or reset, a timeout). */
const NO_HTTP_STATUS = 0;

/**
 * Maps an error from an HTTP JSON client (`@google-cloud/storage`'s ApiError, `code` = HTTP
 * status): 404 → NotFoundError, 409 → AlreadyExistsError, 412 → PreconditionFailedError,
 * 401 / 403 → PermissionDeniedError (retryable: a grant fixes it), 408 / 429 / 5xx →
 * TransientError, other 4xx → PermanentError; no HTTP status (connection refused or reset,
 * timeouts) → TransientError.
 */
export function fromHttpError(err: unknown, action: string, context: CallContext = {}): BatchwireError {
  if (isBatchwireError(err)) return err;
  const code = (err as { code?: unknown } | undefined)?.code;
  const status =
    typeof code === 'number'
      ? code
      : typeof code === 'string' && /^\d{3}$/.test(code)
        ? Number(code)
        : NO_HTTP_STATUS;
  if (status === HttpStatus.UNAUTHORIZED || status === HttpStatus.FORBIDDEN) {
    return permissionDenied(err, action, `HTTP ${status}: ${errorMessage(err)}`, context);
  }
  const message = `${action}: ${status !== NO_HTTP_STATUS ? `HTTP ${status}: ` : ''}${errorMessage(err)}`;
  if (status === HttpStatus.NOT_FOUND) return new NotFoundError(message, { cause: err });
  if (status === HttpStatus.CONFLICT) return new AlreadyExistsError(message, { cause: err });
  if (status === HttpStatus.PRECONDITION_FAILED) return new PreconditionFailedError(message, { cause: err });
  if (
    status === NO_HTTP_STATUS ||
    status === HttpStatus.REQUEST_TIMEOUT ||
    status === HttpStatus.TOO_MANY_REQUESTS ||
    status >= HttpStatus.INTERNAL_SERVER_ERROR
  ) {
    return new TransientError(message, { cause: err });
  }
  return new PermanentError(message, { cause: err });
}

/**
 * A permission name (`service.resource.verb`) as Google's errors word it: "Permission
 * 'batch.jobs.create' denied on …" (gRPC APIs), "… does not have storage.objects.create access
 * to …" (Cloud Storage), "… permission 'pubsub.topics.publish' …".
 */
const PERMISSION_IN_TEXT = [
  /\bpermission\s+['"‘’]?([a-z][a-zA-Z0-9]*(?:\.[a-zA-Z0-9]+){2,})/i,
  /\bdoes not have ([a-z][a-zA-Z0-9]*(?:\.[a-zA-Z0-9]+){2,}) access\b/i,
];

/**
 * The permission a 401/403 / PERMISSION_DENIED error names: the `permission` of its ErrorInfo
 * detail (google.rpc.ErrorInfo, reason IAM_PERMISSION_DENIED, which gax exposes as
 * `errorInfoMetadata`), else one named in its message or in the HTTP error list, else undefined.
 */
export function deniedPermission(err: unknown): string | undefined {
  const e = err as
    | {
        errorInfoMetadata?: Record<string, unknown>;
        details?: unknown;
        message?: unknown;
        errors?: Array<{ message?: unknown }>;
      }
    | undefined;
  const fromInfo = e?.errorInfoMetadata?.permission;
  if (typeof fromInfo === 'string' && fromInfo) return fromInfo;
  const texts = [
    e?.details,
    e?.message,
    ...(Array.isArray(e?.errors) ? e.errors.map((x) => x?.message) : []),
  ];
  for (const text of texts) {
    if (typeof text !== 'string') continue;
    for (const pattern of PERMISSION_IN_TEXT) {
      const match = pattern.exec(text);
      if (match?.[1]) return match[1];
    }
  }
  return undefined;
}

function permissionDenied(
  err: unknown,
  action: string,
  reason: string,
  context: CallContext,
): PermissionDeniedError {
  const permission = deniedPermission(err) ?? context.permission;
  const grant = permission
    ? `missing permission ${permission} (grant a role that includes it)`
    : 'missing permission or credentials';
  return new PermissionDeniedError(
    `${action}: ${grant}; the event is retried until it is granted: ${reason}`,
    { operation: action, permission },
    { cause: err },
  );
}

/** `UNAVAILABLE` for 14, or the number itself when unknown. */
export function grpcCodeName(code: number): string {
  return Object.entries(GrpcCode).find(([, value]) => value === code)?.[0] ?? String(code);
}

function isBatchwireError(err: unknown): err is BatchwireError {
  return err instanceof BatchwireError;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
