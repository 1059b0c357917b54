import type { Bucket, File } from '@google-cloud/storage';
import { partName } from './env.js';
import { formatGcsUri } from './gcs-uri.js';
import { storageErrorCode } from './storage.js';

/**
 * Custom metadata on each `part-<index>.jsonl`. The counts are set only after the part's
 * upload has finished, so "the part has `batchwire-records`" is what "the part is complete"
 * means to the manifest check: the last task to complete its part sees every part complete.
 */
export const PART_METADATA = {
  records: 'batchwire-records',
  rejects: 'batchwire-rejects',
  rejectsObject: 'batchwire-rejects-object',
  taskCount: 'batchwire-task-count',
  inputGeneration: 'batchwire-input-generation',
  modelVersion: 'batchwire-model-version',
} as const;

/** One completed part as the manifest lists it. */
export interface ManifestPart {
  index: number;
  name: string;
  uri: string;
  size: number;
  generation: string;
  records: number;
  rejects: number;
  /** The object holding this shard's rejected lines, or null when there were none. */
  rejectsObject: string | null;
  modelVersion: string;
}

/** `manifest.json` under the output prefix: written once, when every part exists. */
export interface InferenceManifest {
  kind: 'batchwire.inference-manifest';
  schemaVersion: 1;
  input: { uri: string; generation: string; size: number; format: string };
  output: { prefix: string };
  taskCount: number;
  records: number;
  rejects: number;
  model: { version: string; uri: string | null };
  parts: ManifestPart[];
}

/**
 * The parts 0..taskCount-1 under `prefix` if all are complete for this input generation and
 * task count, else undefined (someone is still writing; they will check again when done).
 * `known` is a part this task has just written (its resource as the upload returned it): a
 * one-task job's only part, which needs no listing.
 */
export async function completedParts(
  bucket: Bucket,
  prefix: string,
  taskCount: number,
  inputGeneration: string,
  known?: { index: number; resource: File['metadata'] },
): Promise<ManifestPart[] | undefined> {
  const resources = new Map<string, File['metadata']>();
  if (known) resources.set(`${prefix}${partName(known.index)}`, known.resource);
  if (resources.size < taskCount) {
    const [files] = await bucket.getFiles({ prefix: `${prefix}part-`, autoPaginate: true });
    for (const file of files) if (!resources.has(file.name)) resources.set(file.name, file.metadata);
  }
  const parts: ManifestPart[] = [];
  for (let index = 0; index < taskCount; index++) {
    const name = `${prefix}${partName(index)}`;
    const part = completedPart(bucket.name, index, name, resources.get(name), { taskCount, inputGeneration });
    if (!part) return undefined;
    parts.push(part);
  }
  return parts;
}

/** The part as the manifest lists it, if its resource says it is complete for this job. */
function completedPart(
  bucketName: string,
  index: number,
  name: string,
  resource: File['metadata'] | undefined,
  job: { taskCount: number; inputGeneration: string },
): ManifestPart | undefined {
  const custom = (resource?.metadata ?? {}) as Record<string, string | number | boolean | null | undefined>;
  const records = custom[PART_METADATA.records];
  if (
    !resource ||
    records === undefined ||
    records === null ||
    String(custom[PART_METADATA.taskCount]) !== String(job.taskCount) ||
    String(custom[PART_METADATA.inputGeneration]) !== job.inputGeneration
  ) {
    return undefined;
  }
  const rejectsObject = custom[PART_METADATA.rejectsObject];
  return {
    index,
    name,
    uri: formatGcsUri(bucketName, name),
    size: Number(resource.size ?? 0),
    generation: String(resource.generation ?? ''),
    records: Number(records),
    rejects: Number(custom[PART_METADATA.rejects] ?? 0),
    rejectsObject: rejectsObject ? String(rejectsObject) : null,
    modelVersion: String(custom[PART_METADATA.modelVersion] ?? ''),
  };
}

/**
 * Creates a JSON object only if it does not exist (`ifGenerationMatch: 0`), so that of all the
 * tasks that find every part complete exactly one writes it. Returns false on 412: another
 * task wrote it first, which is success.
 */
export async function writeJsonOnce(bucket: Bucket, name: string, value: unknown): Promise<boolean> {
  try {
    await bucket.file(name).save(`${JSON.stringify(value, null, 2)}\n`, {
      contentType: 'application/json',
      resumable: false,
      preconditionOpts: { ifGenerationMatch: 0 },
    });
    return true;
  } catch (error) {
    if (storageErrorCode(error) === 412) return false;
    throw error;
  }
}

/** Writes (or overwrites) a JSON object. */
export async function saveJson(bucket: Bucket, name: string, value: unknown): Promise<void> {
  await bucket.file(name).save(`${JSON.stringify(value, null, 2)}\n`, {
    contentType: 'application/json',
    resumable: false,
  });
}

/** Reads a JSON object, or undefined when it does not exist. */
export async function readJson(bucket: Bucket, name: string): Promise<unknown> {
  try {
    const [contents] = await bucket.file(name).download();
    return JSON.parse(contents.toString('utf8'));
  } catch (error) {
    if (storageErrorCode(error) === 404) return undefined;
    throw error;
  }
}
