import { TaskConfigError } from './errors.js';

/** A parsed `gs://bucket/name` address; `generation` comes from a `#<generation>` suffix. */
export interface GcsUri {
  bucket: string;
  name: string;
  generation?: string;
}

const GCS_URI = /^gs:\/\/([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])\/(.*?)(?:#(\d+))?$/;

/**
 * Parses `gs://bucket/object[#generation]` (the `#generation` suffix is gsutil's syntax for
 * one version of an object). `name` may be empty for a bucket-level prefix.
 *
 * @example parseGcsUri('gs://b/p/c/inputs/x.jsonl#17') // { bucket: 'b', name: 'p/c/inputs/x.jsonl', generation: '17' }
 */
export function parseGcsUri(uri: string, variable = 'URI'): GcsUri {
  const match = GCS_URI.exec(uri.trim());
  if (!match) throw new TaskConfigError(`${variable} must be gs://BUCKET/NAME, got "${uri}"`);
  const [, bucket, name, generation] = match as unknown as [string, string, string, string | undefined];
  return generation === undefined ? { bucket, name } : { bucket, name, generation };
}

/** Parses a prefix (`gs://bucket/some/prefix/`), adding the trailing slash when it is missing. */
export function parseGcsPrefix(uri: string, variable = 'URI'): GcsUri {
  const parsed = parseGcsUri(uri, variable);
  if (parsed.generation !== undefined)
    throw new TaskConfigError(`${variable} is a prefix and takes no #generation`);
  const name = parsed.name === '' || parsed.name.endsWith('/') ? parsed.name : `${parsed.name}/`;
  return { bucket: parsed.bucket, name };
}

/** Formats a bucket and object name as `gs://bucket/name`. */
export function formatGcsUri(bucket: string, name: string): string {
  return `gs://${bucket}/${name}`;
}
