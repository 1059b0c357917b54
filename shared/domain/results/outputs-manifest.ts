import type { ObjectStore } from '../../clients/ports.js';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../runtime/logger.js';
import { objectUri, parseObjectUri } from '../object-path.js';
import type { ResultOutputs } from './event-data.js';

/**
 * The outputs manifest: the list of what a job wrote, kept in one object next to the outputs
 * (where the client may read it) so that the result event carries only its URI and counts.
 * Its shape is part of the output contract, like the events.
 */

/** An object written by a job, with its size in bytes. */
export interface OutputObject {
  /** Object name in the bucket, e.g. `mlops-template/acme/outputs/<job-id>/part-0.jsonl`. */
  name: string;
  /** `gs://bucket/name`. */
  uri: string;
  size: number;
}

/** The manifest object onComplete writes once per job under its output prefix. */
export interface OutputsManifest {
  kind: 'batchwire.outputs-manifest';
  version: 1;
  /** The job it lists: `projects/P/locations/L/jobs/J` and its uid. */
  job: { name: string; uid: string };
  prefix: string;
  objectCount: number;
  totalBytes: number;
  /** Every object under the prefix when the job finished, sorted by name. */
  objects: OutputObject[];
}

/** The name of a job's outputs manifest: next to what it lists, where the client may read it. */
export const OUTPUTS_MANIFEST_FILE = '_batchwire-outputs.json';

/**
 * What a job wrote, for its result: the objects under its output prefix (when that is in the
 * platform's bucket) are listed once into a manifest object next to them
 * ({@link OUTPUTS_MANIFEST_FILE}, created only if absent), and the event carries its URI and
 * counts. A result thus stays a few kilobytes however many objects the job wrote.
 *
 * Safe to run twice: a redelivery finds the manifest and reports what it says, so a republished
 * result is identical to the first. A manifest left by another job of the same id (deleted and
 * created again) is not trusted: the counts then come from a fresh listing, without a manifest.
 */
export async function recordOutputs(
  outputUri: string,
  job: OutputsManifest['job'],
  deps: { config: Pick<Config, 'bucket'>; store: ObjectStore; log: Logger },
): Promise<ResultOutputs> {
  const parsed = parseObjectUri(outputUri);
  if (!parsed || parsed.bucket !== deps.config.bucket) {
    return { prefix: outputUri, manifest: null, objectCount: 0, totalBytes: 0 };
  }
  const folder = parsed.name.endsWith('/') || parsed.name === '' ? parsed.name : `${parsed.name}/`;
  const manifestName = `${folder}${OUTPUTS_MANIFEST_FILE}`;
  const manifestUri = objectUri(parsed.bucket, manifestName);

  // Listed and created first, read only when the create finds one there: a job's result is
  // usually handled once, and then this costs no read of a manifest that does not exist yet.
  const objects = (await deps.store.list(parsed.name))
    .filter((o) => o.name !== manifestName)
    .map((o) => ({ name: o.name, uri: objectUri(parsed.bucket, o.name), size: o.size }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const manifest: OutputsManifest = {
    kind: 'batchwire.outputs-manifest',
    version: 1,
    job,
    prefix: outputUri,
    objectCount: objects.length,
    totalBytes: objects.reduce((sum, o) => sum + o.size, 0),
    objects,
  };
  if (await deps.store.createIfAbsent(manifestName, JSON.stringify(manifest), 'application/json')) {
    return outputsOf(outputUri, manifestUri, manifest);
  }
  // A redelivery, or another delivery that got here first: its listing is the one reported.
  const stored = parseManifest(await deps.store.readText(manifestName));
  if (stored?.job.uid === job.uid) return outputsOf(outputUri, manifestUri, stored);
  deps.log.warn(
    { manifest: manifestUri, manifestJobUid: stored?.job.uid },
    'outputs manifest belongs to another job of the same id; reporting a fresh listing without it',
  );
  return outputsOf(outputUri, null, manifest);
}

function outputsOf(prefix: string, manifest: string | null, listed: OutputsManifest): ResultOutputs {
  return { prefix, manifest, objectCount: listed.objectCount, totalBytes: listed.totalBytes };
}

function parseManifest(text: string | undefined): OutputsManifest | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as Partial<OutputsManifest>;
    return value.kind === 'batchwire.outputs-manifest' &&
      typeof value.job?.uid === 'string' &&
      typeof value.objectCount === 'number' &&
      typeof value.totalBytes === 'number'
      ? (value as OutputsManifest)
      : undefined;
  } catch {
    return undefined;
  }
}
