import type { Api } from './handlers/context.js';
import { StorageApiError } from './resources.js';

/**
 * Which object writes a refusal covers, by bucket and object name. A request that names its
 * object only in its body (a multipart upload without `?name=`) is refused whatever it writes.
 */
export type RefusedWrites = (bucket: string, name: string) => boolean;

/** The object a request would create, as far as its method and URL tell. */
export interface WriteTarget {
  bucket: string;
  /** Undefined when only the body names it. */
  name?: string;
}

/** How long a client is told to wait: about what a restart of the local platform takes. */
const RETRY_AFTER_SECONDS = 30;

/**
 * New object writes refused while the platform stops, so that no upload is acknowledged that
 * may never become a job. A refused write gets a 503 with `Retry-After`, which the Google
 * clients retry (with backoff); reads, listings and deletions go on as before.
 *
 * Only the writes that create an object (uploads, including each part of a resumable one, and
 * copy, rewrite, compose) are checked, against the refusal's filter: what the platform itself
 * still writes while its deliveries drain (claims, outputs) is let through.
 */
export class WriteRefusal {
  private refusal: { reason: string; covers: RefusedWrites } | undefined;

  /** From now on, refuse the writes `covers` selects (default: all), saying `reason`. */
  refuse(reason: string, covers: RefusedWrites = () => true): void {
    this.refusal = { reason, covers };
  }

  /**
   * Throws a 503 when the request would create an object that is refused.
   * `sessionObject` finds the object a resumable session (by its upload id) writes.
   */
  check(
    method: string,
    api: Api,
    segments: readonly string[],
    query: URLSearchParams,
    sessionObject: (uploadId: string) => WriteTarget | undefined,
  ): void {
    if (!this.refusal) return;
    const target = writeTarget(method, api, segments, query, sessionObject);
    if (!target) return;
    if (target.name !== undefined && !this.refusal.covers(target.bucket, target.name)) return;
    throw new StorageApiError(503, 'backendError', `${this.refusal.reason}; retry later`, {
      'Retry-After': String(RETRY_AFTER_SECONDS),
    });
  }
}

/**
 * The object a request creates, or undefined for every request that creates none (reads,
 * listings, metadata changes, deletions, bucket operations, a resumable session's cancel).
 * `segments` are the decoded path segments after the API prefix (`b/{bucket}/o/…`).
 */
export function writeTarget(
  method: string,
  api: Api,
  segments: readonly string[],
  query: URLSearchParams,
  sessionObject: (uploadId: string) => WriteTarget | undefined,
): WriteTarget | undefined {
  if (segments[0] !== 'b' || segments[1] === undefined || segments[2] !== 'o') return undefined;
  const bucket = segments[1];
  if (api === 'upload') {
    if (method === 'DELETE') return undefined;
    const uploadId = query.get('upload_id');
    const session = uploadId ? sessionObject(uploadId) : undefined;
    if (session) return session;
    const name = query.get('name');
    return name === null ? { bucket } : { bucket, name };
  }
  if (api !== 'json' || method !== 'POST') return undefined;
  const [, , , source, action, ...destination] = segments;
  if (source === undefined) return undefined;
  if (action === 'compose' && destination.length === 0) return { bucket, name: source };
  if ((action === 'copyTo' || action === 'rewriteTo') && destination[0] === 'b' && destination[2] === 'o') {
    return { bucket: destination[1] as string, name: destination.slice(3).join('/') };
  }
  return undefined;
}
