/**
 * The narrow ports the core talks through. Adapters in this folder implement them over the
 * Google clients and translate SDK errors into the errors of `shared/runtime/errors.ts`
 * (gRPC ALREADY_EXISTS → AlreadyExistsError, NOT_FOUND → NotFoundError, 412 →
 * PreconditionFailedError, UNAVAILABLE / DEADLINE_EXCEEDED / RESOURCE_EXHAUSTED / INTERNAL / 5xx
 * → TransientError, PERMISSION_DENIED / UNAUTHENTICATED / 401 / 403 → PermissionDeniedError, a
 * TransientError naming the missing permission). The core never imports `@google-cloud/*`; unit
 * tests hand in fakes.
 */

/** Objects in the platform's bucket. */
export interface ObjectStore {
  /**
   * Creates `name` only if it does not exist (`ifGenerationMatch: 0`).
   * Resolves true when this call created it, false when it existed already.
   */
  createIfAbsent(name: string, body: string, contentType?: string): Promise<boolean>;
  /** The object's text, or undefined when it does not exist. */
  readText(name: string): Promise<string | undefined>;
  /** Objects under a prefix, with their sizes in bytes. */
  list(prefix: string): Promise<Array<{ name: string; size: number }>>;
}

/** Publishing to Pub/Sub topics of the platform's project. */
export interface Publisher {
  /** Publishes one message; resolves with the message id. A missing topic is a TransientError (it may be created). */
  publish(topic: string, data: Buffer, attributes: Record<string, string>): Promise<string>;
}
