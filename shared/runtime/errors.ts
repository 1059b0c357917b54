/**
 * One error family for the whole platform. The event wrapper decides from `retryable` alone
 * whether a trigger is failed (so it is redelivered) or acked: retryable unless made permanent
 * on purpose, as transient faults are the ones a redelivery can cure.
 */
export class BatchwireError extends Error {
  readonly retryable: boolean = true;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A fault that a later attempt may not meet: the service was unavailable, slow or overloaded. */
export class TransientError extends BatchwireError {}

/**
 * A Google API refused the call for lack of a permission (gRPC PERMISSION_DENIED /
 * UNAUTHENTICATED, HTTP 401 / 403). Retryable on purpose: a missing grant is an operator's
 * mistake that is fixed within the trigger's retry window, and acking would drop every event
 * until then (no job, no result, no rejection). The message names what to grant.
 */
export class PermissionDeniedError extends TransientError {
  /** The IAM permission that was missing (from the error, else what the operation needs), when known. */
  readonly permission: string | undefined;
  /** What was being done, e.g. `CreateJob bw-acme-…`. */
  readonly operation: string;

  constructor(
    message: string,
    details: { operation: string; permission?: string | undefined },
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.operation = details.operation;
    this.permission = details.permission;
  }
}

/**
 * Another attempt of the same request is in progress: retry after `retryAfterSeconds` (an HTTP
 * function answers 409 with Retry-After), and that retry finds the work done.
 */
export class InProgressError extends TransientError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/** A fault that no retry cures: the input, the event or the request is wrong. */
export class PermanentError extends BatchwireError {
  override readonly retryable: boolean = false;
}

/** The config file is missing or invalid: the function cannot start. */
export class ConfigError extends PermanentError {}

/** The thing to create exists already; for idempotent creates this means "done". */
export class AlreadyExistsError extends PermanentError {}

/** The thing asked for does not exist. */
export class NotFoundError extends PermanentError {}

/** A precondition (such as `ifGenerationMatch`) did not hold. */
export class PreconditionFailedError extends PermanentError {}

/** An event or request that cannot be understood. */
export class MalformedEventError extends PermanentError {}
