import { ID_PATTERN } from '../config/schema.js';
import { REJECTIONS_PREFIX } from './object-path.js';

/**
 * A rejected upload: a file under a known product's `inputs/` that Batchwire will not run.
 * Recorded as JSON at {@link rejectionRecordName} (where the client, or support, can see it),
 * and published by the core (publishRejection) so it also reaches the client's topic as an event.
 */

/** Why an upload was rejected; stable codes that downstream users may switch on. */
export type RejectionReason = 'unknown-client' | 'bad-name' | 'bad-extension' | 'too-large' | 'empty';

export const REJECTION_REASONS: readonly RejectionReason[] = [
  'unknown-client',
  'bad-name',
  'bad-extension',
  'too-large',
  'empty',
];

/** The rejection record (version 1 of the record format). */
export interface Rejection {
  version: 1;
  /** Deterministic per object version (the job id's hash): the record's file name and an event id seed. */
  key: string;
  product: string;
  /** The client segment of the name as uploaded (may be an unknown client). */
  client: string;
  bucket: string;
  name: string;
  /** `gs://bucket/name` */
  objectUri: string;
  generation: string;
  size: number;
  reason: RejectionReason;
  /** A sentence for humans: what is wrong and what is accepted. */
  message: string;
  /** When the rejection was decided (ISO 8601). The first record written wins. */
  rejectedAt: string;
}

/** Client segment used in the record path when the uploaded one is not a valid id (unsafe as a path). */
export const INVALID_CLIENT_SEGMENT = '_invalid-client';

/**
 * Where a rejection is recorded: `_batchwire/rejections/{product}/{client}/{key}.json`. A
 * client segment that is not a valid id (it came from the uploaded name) is replaced so the
 * record path stays well-formed.
 */
export function rejectionRecordName(rejection: Pick<Rejection, 'product' | 'client' | 'key'>): string {
  const client = ID_PATTERN.test(rejection.client) ? rejection.client : INVALID_CLIENT_SEGMENT;
  return `${REJECTIONS_PREFIX}${rejection.product}/${client}/${rejection.key}.json`;
}

/** The record's JSON body (pretty-printed: humans read it in the console). */
export function serializeRejection(rejection: Rejection): string {
  return `${JSON.stringify(rejection, null, 2)}\n`;
}
