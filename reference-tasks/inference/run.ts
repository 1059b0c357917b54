import type { Bucket, File, Storage } from '@google-cloud/storage';
import { gcsSource, type RangedByteSource } from '../lib/byte-source.js';
import { optionalEnv, partName, requireEnv, type TaskPosition, taskPosition } from '../lib/env.js';
import { InputError, TaskConfigError } from '../lib/errors.js';
import { formatGcsUri, type GcsUri, parseGcsPrefix, parseGcsUri } from '../lib/gcs-uri.js';
import { readFirstLine, readShardLines } from '../lib/line-shard.js';
import type { TaskLogger } from '../lib/log.js';
import { completedParts, type InferenceManifest, PART_METADATA, writeJsonOnce } from '../lib/manifest.js';
import { type Model, modelFromArtifact, parseModelArtifact, upperCaseModel } from '../lib/model.js';
import { createObjectWriter, type ObjectWriter } from '../lib/object-writer.js';
import { createLineDecoder, formatOf, type InputFormat, lineText, parseCsvHeader } from '../lib/records.js';
import { storageErrorCode } from '../lib/storage.js';

/** What the inference task is asked to do, read from its environment. */
export interface InferenceConfig {
  input: GcsUri;
  /** A prefix (name ends in `/`). */
  output: GcsUri;
  position: TaskPosition;
  /** The model artifact to use if it exists; undefined: none (the built-in upper-case model). */
  modelUri?: GcsUri;
  maxLineBytes: number;
}

/** The outcome of one task. */
export interface InferenceResult {
  part: string;
  records: number;
  rejects: number;
  bytesWritten: number;
  modelVersion: string;
  manifestWritten: boolean;
}

const NDJSON = 'application/x-ndjson';
const INPUTS_PATH = /^([a-z][a-z0-9-]{1,29})\/([a-z][a-z0-9-]{1,29})\/inputs\//;

/**
 * Reads the task contract: `BATCHWIRE_INPUT_URI` (gs://bucket/name[#generation]; also
 * `BATCHWIRE_INPUT_GENERATION`), `BATCHWIRE_OUTPUT_URI` (a gs:// prefix), the task's position
 * (`BATCH_TASK_INDEX`/`COUNT` or `CLOUD_RUN_TASK_INDEX`/`COUNT`), and where the model is:
 * `BATCHWIRE_MODEL_URI` (or `none`), else `{product}/{client}/models/latest/model.json` in the
 * input's bucket, with product and client from `BATCHWIRE_PRODUCT`/`BATCHWIRE_CLIENT` or the
 * input's `{product}/{client}/inputs/` path.
 */
export function inferenceConfigFromEnv(env: NodeJS.ProcessEnv): InferenceConfig {
  const input = parseGcsUri(
    requireEnv(env, 'BATCHWIRE_INPUT_URI', 'the gs:// URI of the JSONL or CSV file to process'),
    'BATCHWIRE_INPUT_URI',
  );
  if (input.name === '' || input.name.endsWith('/')) {
    throw new TaskConfigError(
      `BATCHWIRE_INPUT_URI must name an object, got a prefix "${env.BATCHWIRE_INPUT_URI}"`,
    );
  }
  const generation = optionalEnv(env, 'BATCHWIRE_INPUT_GENERATION');
  if (generation !== undefined) {
    if (!/^\d+$/.test(generation)) throw new TaskConfigError(`BATCHWIRE_INPUT_GENERATION must be digits`);
    input.generation = generation;
  }
  const output = parseGcsPrefix(
    requireEnv(env, 'BATCHWIRE_OUTPUT_URI', 'the gs:// prefix to write part-<index>.jsonl under'),
    'BATCHWIRE_OUTPUT_URI',
  );
  const maxLine = optionalEnv(env, 'BATCHWIRE_MAX_LINE_BYTES');
  if (maxLine !== undefined && !/^[1-9]\d*$/.test(maxLine)) {
    throw new TaskConfigError('BATCHWIRE_MAX_LINE_BYTES must be a positive integer');
  }
  const config: InferenceConfig = {
    input,
    output,
    position: taskPosition(env),
    maxLineBytes: maxLine === undefined ? 16 * 1024 * 1024 : Number(maxLine),
  };
  const modelUri = optionalEnv(env, 'BATCHWIRE_MODEL_URI');
  if (modelUri !== undefined) {
    if (modelUri !== 'none') config.modelUri = parseGcsUri(modelUri, 'BATCHWIRE_MODEL_URI');
    return config;
  }
  const fromPath = INPUTS_PATH.exec(input.name);
  const product = optionalEnv(env, 'BATCHWIRE_PRODUCT') ?? fromPath?.[1];
  const client = optionalEnv(env, 'BATCHWIRE_CLIENT') ?? fromPath?.[2];
  if (product && client)
    config.modelUri = { bucket: input.bucket, name: `${product}/${client}/models/latest/model.json` };
  return config;
}

/**
 * Runs one shard of the inference job: streams the lines this task owns from the input,
 * through the model, into `part-<index>.jsonl` (rejected lines into `rejects-<index>.jsonl`),
 * then writes `manifest.json` if every part is complete.
 *
 * Each output line is the record with the model applied, then `_offset` (the byte offset of
 * its line in the input: unique, ascending, the same however the input is sharded) and
 * `modelVersion`; these two overwrite input fields of the same name.
 */
export async function runInference(
  config: InferenceConfig,
  deps: { storage: Storage; log: TaskLogger },
): Promise<InferenceResult> {
  const { storage, log } = deps;
  const { index, count } = config.position;
  const started = performance.now();
  const inputUri = formatGcsUri(config.input.bucket, config.input.name);

  const format = formatOf(config.input.name);
  if (!format) throw new InputError(`${inputUri}: unsupported extension (expected .jsonl, .ndjson or .csv)`);
  const { file: inputFile, size, generation } = await openInput(storage, config.input);
  const source = gcsSource(inputFile, size);
  const model = await loadModel(storage, config.modelUri);
  const header = format === 'csv' ? await readCsvHeader(source, config.maxLineBytes) : undefined;
  log.info('shard started', {
    input: inputUri,
    generation,
    size,
    format,
    index,
    count,
    modelVersion: model.version,
  });

  const outBucket = storage.bucket(config.output.bucket);
  const part = `${config.output.name}${partName(index)}`;
  const rejectsName = `${config.output.name}${partName(index, 'rejects')}`;
  const counts = { records: 0, rejects: 0, bytesWritten: 0 };
  let rejects: ObjectWriter | undefined;

  const decode = createLineDecoder(format, header);
  async function* outputLines(): AsyncGenerator<string> {
    // Lines are batched into ~64 KiB writes: one write per record costs more than the model.
    let batch = '';
    for await (const line of readShardLines(source, index, count, { maxLineBytes: config.maxLineBytes })) {
      const decoded = decode(line);
      if (decoded.kind === 'skip') continue;
      if (decoded.kind === 'reject') {
        counts.rejects++;
        rejects ??= createObjectWriter(outBucket.file(rejectsName), { contentType: NDJSON });
        await rejects.write(
          `${JSON.stringify({ _offset: decoded.offset, reason: decoded.reason, line: decoded.line })}\n`,
        );
        continue;
      }
      const output = {
        ...model.predict(decoded.record),
        _offset: decoded.offset,
        modelVersion: model.version,
      };
      batch += `${JSON.stringify(output)}\n`;
      counts.records++;
      if (batch.length >= 64 * 1024) {
        counts.bytesWritten += Buffer.byteLength(batch);
        yield batch;
        batch = '';
      }
    }
    if (batch !== '') {
      counts.bytesWritten += Buffer.byteLength(batch);
      yield batch;
    }
  }

  const partWriter = createObjectWriter(outBucket.file(part), {
    contentType: NDJSON,
    metadata: {
      [PART_METADATA.taskCount]: String(count),
      [PART_METADATA.inputGeneration]: generation,
    },
  });
  for await (const chunk of outputLines()) await partWriter.write(chunk);
  // The rejects are complete before the part says where they are.
  const rejectsWriter = rejects as ObjectWriter | undefined;
  if (rejectsWriter) await rejectsWriter.finish();
  // Marks the part complete (see PART_METADATA): only now may the manifest count it.
  const partResource = await partWriter.finish({
    [PART_METADATA.records]: String(counts.records),
    [PART_METADATA.rejects]: String(counts.rejects),
    [PART_METADATA.rejectsObject]: rejectsWriter ? rejectsName : null,
    [PART_METADATA.modelVersion]: model.version,
  });

  const manifestWritten = await writeManifestIfComplete(outBucket, config, {
    inputUri,
    generation,
    size,
    format,
    model,
    ownPart: { index, resource: partResource },
  });
  const seconds = (performance.now() - started) / 1000;
  log.info('shard finished', {
    part: formatGcsUri(outBucket.name, part),
    ...counts,
    manifestWritten,
    seconds: Math.round(seconds * 1000) / 1000,
    recordsPerSecond: Math.round(counts.records / Math.max(seconds, 1e-3)),
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
  });
  return { part, ...counts, modelVersion: model.version, manifestWritten };
}

async function openInput(
  storage: Storage,
  input: GcsUri,
): Promise<{ file: File; size: number; generation: string }> {
  const uri = formatGcsUri(input.bucket, input.name);
  const bucket = storage.bucket(input.bucket);
  const probe =
    input.generation === undefined
      ? bucket.file(input.name)
      : bucket.file(input.name, { generation: input.generation });
  let metadata: File['metadata'];
  try {
    [metadata] = await probe.getMetadata();
  } catch (error) {
    const code = storageErrorCode(error);
    if (code === 404) throw new InputError(`input ${uri} does not exist`, { cause: error });
    throw new InputError(`input ${uri} cannot be read: ${(error as Error).message}`, { cause: error });
  }
  const generation = String(metadata.generation);
  // Every read pins the generation: if the object is replaced mid-job, the shards still agree.
  return { file: bucket.file(input.name, { generation }), size: Number(metadata.size ?? 0), generation };
}

async function loadModel(storage: Storage, modelUri: GcsUri | undefined): Promise<Model> {
  if (!modelUri) return upperCaseModel();
  const uri = formatGcsUri(modelUri.bucket, modelUri.name);
  let contents: Buffer;
  try {
    [contents] = await storage.bucket(modelUri.bucket).file(modelUri.name).download();
  } catch (error) {
    if (storageErrorCode(error) === 404) return upperCaseModel();
    // An unreadable model must not silently become the built-in one: fail, and let the task retry.
    throw new InputError(`model ${uri} cannot be read: ${(error as Error).message}`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(contents.toString('utf8'));
  } catch (error) {
    throw new InputError(`model ${uri} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  return modelFromArtifact(parseModelArtifact(json, uri), uri);
}

async function readCsvHeader(source: RangedByteSource, maxLineBytes: number): Promise<string[]> {
  const first = await readFirstLine(source, { maxLineBytes });
  if (!first) return [];
  const text = lineText(first);
  if (text === undefined) throw new InputError(`CSV header is longer than ${maxLineBytes} bytes`);
  return parseCsvHeader(text);
}

async function writeManifestIfComplete(
  bucket: Bucket,
  config: InferenceConfig,
  input: {
    inputUri: string;
    generation: string;
    size: number;
    format: InputFormat;
    model: Model;
    ownPart: { index: number; resource: File['metadata'] };
  },
): Promise<boolean> {
  const { count } = config.position;
  const parts = await completedParts(bucket, config.output.name, count, input.generation, input.ownPart);
  if (!parts) return false;
  const manifest: InferenceManifest = {
    kind: 'batchwire.inference-manifest',
    schemaVersion: 1,
    input: { uri: input.inputUri, generation: input.generation, size: input.size, format: input.format },
    output: { prefix: formatGcsUri(bucket.name, config.output.name) },
    taskCount: count,
    records: parts.reduce((sum, part) => sum + part.records, 0),
    rejects: parts.reduce((sum, part) => sum + part.rejects, 0),
    model: { version: input.model.version, uri: input.model.uri ?? null },
    parts,
  };
  return writeJsonOnce(bucket, `${config.output.name}manifest.json`, manifest);
}
