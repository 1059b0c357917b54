import type { Bucket } from '@google-cloud/storage';
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
 */
export async function completedParts(
  bucket: Bucket,
  prefix: string,
  taskCount: number,
  inputGeneration: string,
): Promise<ManifestPart[] | undefined> {
  const [files] = await bucket.getFiles({ prefix: `${prefix}part-`, autoPaginate: true });
  const byName = new Map(files.map((file) => [file.name, file]));
  const parts: ManifestPart[] = [];
  for (let index = 0; index < taskCount; index++) {
    const name = `${prefix}${partName(index)}`;
    const file = byName.get(name);
    const custom = (file?.metadata.metadata ?? {}) as Record<
      string,
      string | number | boolean | null | undefined
    >;
    const records = custom[PART_METADATA.records];
    if (
      !file ||
      records === undefined ||
      records === null ||
      String(custom[PART_METADATA.taskCount]) !== String(taskCount) ||
      String(custom[PART_METADATA.inputGeneration]) !== inputGeneration
    ) {
      return undefined;
    }
    const rejectsObject = custom[PART_METADATA.rejectsObject];
    parts.push({
      index,
      name,
      uri: formatGcsUri(bucket.name, name),
      size: Number(file.metadata.size ?? 0),
      generation: String(file.metadata.generation ?? ''),
      records: Number(records),
      rejects: Number(custom[PART_METADATA.rejects] ?? 0),
      rejectsObject: rejectsObject ? String(rejectsObject) : null,
      modelVersion: String(custom[PART_METADATA.modelVersion] ?? ''),
    });
  }
  return parts;
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
