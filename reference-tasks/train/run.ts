import { createHash } from 'node:crypto';
import type { Storage } from '@google-cloud/storage';
import { gcsSource } from '../lib/byte-source.js';
import { optionalEnv, requireEnv, type TaskPosition, taskPosition } from '../lib/env.js';
import { InputError, TaskConfigError } from '../lib/errors.js';
import { formatGcsUri, type GcsUri, parseGcsPrefix } from '../lib/gcs-uri.js';
import { readFirstLine, readShardLines } from '../lib/line-shard.js';
import type { TaskLogger } from '../lib/log.js';
import { readJson, saveJson, writeJsonOnce } from '../lib/manifest.js';
import { type ModelArtifact, stringsOf, tokenise } from '../lib/model.js';
import { createLineDecoder, formatOf, lineText, parseCsvHeader } from '../lib/records.js';

const ID = /^[a-z][a-z0-9-]{1,29}$/;
const VERSION = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** Past this many distinct tokens, the rarest are dropped (deterministically) to bound memory. */
const MAX_TRACKED_TOKENS = 500_000;

/** What the training task is asked to do, read from its environment. */
export interface TrainConfig {
  product: string;
  client: string;
  /** The bucket the model is written to. */
  bucket: string;
  /** The training data: every .jsonl/.ndjson/.csv object under this prefix. */
  dataset: GcsUri;
  /** Explicit version, or undefined to derive one from the model's content. */
  version?: string;
  vocabularySize: number;
  /** Where to write `training.json` (a summary of the run), if anywhere. */
  output?: GcsUri;
  position: TaskPosition;
}

/** The outcome of a training run. */
export interface TrainResult {
  version: string;
  modelUri: string;
  latestUri: string;
  records: number;
}

/**
 * Reads the training task's environment: `BATCHWIRE_PRODUCT`, `BATCHWIRE_CLIENT`,
 * `BATCHWIRE_BUCKET` (optional when `BATCHWIRE_INPUT_URI` names the dataset prefix; default
 * dataset `gs://{bucket}/{product}/{client}/inputs/`), `BATCHWIRE_MODEL_VERSION`,
 * `BATCHWIRE_VOCABULARY_SIZE` (default 1000) and `BATCHWIRE_OUTPUT_URI` (optional).
 */
export function trainConfigFromEnv(env: NodeJS.ProcessEnv): TrainConfig {
  const product = requireEnv(env, 'BATCHWIRE_PRODUCT');
  const client = requireEnv(env, 'BATCHWIRE_CLIENT');
  for (const [name, value] of [
    ['BATCHWIRE_PRODUCT', product],
    ['BATCHWIRE_CLIENT', client],
  ] as const) {
    if (!ID.test(value)) throw new TaskConfigError(`${name} must match ${ID}, got "${value}"`);
  }
  const datasetUri = optionalEnv(env, 'BATCHWIRE_INPUT_URI');
  const dataset = datasetUri ? parseGcsPrefix(datasetUri, 'BATCHWIRE_INPUT_URI') : undefined;
  const bucket =
    optionalEnv(env, 'BATCHWIRE_BUCKET') ??
    dataset?.bucket ??
    requireEnv(
      env,
      'BATCHWIRE_BUCKET',
      'the bucket holding {product}/{client}/ (or set BATCHWIRE_INPUT_URI)',
    );
  const version = optionalEnv(env, 'BATCHWIRE_MODEL_VERSION');
  if (version !== undefined && (!VERSION.test(version) || version === 'latest')) {
    throw new TaskConfigError(
      `BATCHWIRE_MODEL_VERSION must match ${VERSION} and not be "latest", got "${version}"`,
    );
  }
  const vocabulary = optionalEnv(env, 'BATCHWIRE_VOCABULARY_SIZE') ?? '1000';
  if (!/^[1-9]\d{0,5}$/.test(vocabulary))
    throw new TaskConfigError('BATCHWIRE_VOCABULARY_SIZE must be 1..999999');
  const output = optionalEnv(env, 'BATCHWIRE_OUTPUT_URI');
  return {
    product,
    client,
    bucket,
    dataset: dataset ?? { bucket, name: `${product}/${client}/inputs/` },
    ...(version === undefined ? {} : { version }),
    vocabularySize: Number(vocabulary),
    ...(output === undefined ? {} : { output: parseGcsPrefix(output, 'BATCHWIRE_OUTPUT_URI') }),
    position: taskPosition(env),
  };
}

/**
 * Trains the reference model: token statistics over every record of the dataset (objects in
 * name order, lines in order), the top `vocabularySize` tokens as the vocabulary. Same data,
 * same model, same version. Writes `{product}/{client}/models/<version>/model.json` once and
 * then `models/latest/model.json`, which the inference task picks up. Fails when the dataset
 * holds no records: an empty model would silently replace a useful one.
 */
export async function runTraining(
  config: TrainConfig,
  deps: { storage: Storage; log: TaskLogger },
): Promise<TrainResult | undefined> {
  const { storage, log } = deps;
  if (config.position.index !== 0) {
    // Training is one pass over all the data; extra tasks of a fanned-out job have nothing to do.
    log.info('only task 0 trains; nothing to do', { index: config.position.index });
    return undefined;
  }
  const datasetUri = formatGcsUri(config.dataset.bucket, config.dataset.name);
  const [files] = await storage
    .bucket(config.dataset.bucket)
    .getFiles({ prefix: config.dataset.name, autoPaginate: true });
  const objects = files
    .filter((file) => formatOf(file.name) !== undefined)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  const counts = new Map<string, number>();
  let pruneBelow = 1;
  const stats = { objects: objects.length, records: 0, rejects: 0, tokens: 0, distinctTokens: 0 };
  const trainedOn: ModelArtifact['trainedOn'] = { prefix: datasetUri, objects: [] };
  for (const file of objects) {
    const format = formatOf(file.name) as 'jsonl' | 'csv';
    const size = Number(file.metadata.size ?? 0);
    const generation = String(file.metadata.generation ?? '');
    trainedOn.objects.push({ name: file.name, generation, size });
    const source = gcsSource(storage.bucket(file.bucket.name).file(file.name, { generation }), size);
    let header: string[] | undefined;
    if (format === 'csv') {
      const first = await readFirstLine(source);
      const text = first ? lineText(first) : undefined;
      header = text === undefined ? [] : parseCsvHeader(text);
    }
    const decode = createLineDecoder(format, header);
    for await (const line of readShardLines(source, 0, 1)) {
      const decoded = decode(line);
      if (decoded.kind === 'reject') stats.rejects++;
      if (decoded.kind !== 'record') continue;
      stats.records++;
      for (const text of stringsOf(decoded.record)) {
        for (const token of tokenise(text)) {
          stats.tokens++;
          counts.set(token, (counts.get(token) ?? 0) + 1);
        }
      }
      if (counts.size > MAX_TRACKED_TOKENS) {
        for (const [token, count] of counts) if (count <= pruneBelow) counts.delete(token);
        pruneBelow++;
      }
    }
  }
  if (stats.records === 0) {
    throw new InputError(`no training records under ${datasetUri} (${objects.length} .jsonl/.csv objects)`);
  }
  stats.distinctTokens = counts.size;
  const vocabulary = [...counts]
    .sort(([a, countA], [b, countB]) => countB - countA || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, config.vocabularySize)
    .map(([token, count]) => ({ token, count }));
  const normalise = { trim: true, collapseWhitespace: true };
  const version =
    config.version ??
    `v-${createHash('sha256').update(JSON.stringify({ normalise, vocabulary, stats })).digest('hex').slice(0, 12)}`;
  const artifact: ModelArtifact = {
    kind: 'batchwire.reference-model',
    schemaVersion: 1,
    version,
    product: config.product,
    client: config.client,
    normalise,
    vocabulary,
    stats,
    trainedOn,
  };

  const bucket = storage.bucket(config.bucket);
  const modelsPrefix = `${config.product}/${config.client}/models/`;
  const versioned = `${modelsPrefix}${version}/model.json`;
  if (!(await writeJsonOnce(bucket, versioned, artifact))) {
    // A released version is immutable. The same data derives the same version and content, so
    // a rerun finds its own artifact; different content under an explicit version is an error.
    // (`trainedOn` may differ: the same data uploaded again has new generations.)
    const existing = (await readJson(bucket, versioned)) as Partial<ModelArtifact> | undefined;
    const learned = (model: Partial<ModelArtifact> | undefined) =>
      JSON.stringify([model?.normalise, model?.vocabulary, model?.stats]);
    if (learned(existing) !== learned(artifact)) {
      throw new InputError(
        `model version ${version} already exists at ${formatGcsUri(config.bucket, versioned)} with other content`,
      );
    }
  }
  const latest = `${modelsPrefix}latest/model.json`;
  await saveJson(bucket, latest, artifact);
  const result: TrainResult = {
    version,
    modelUri: formatGcsUri(config.bucket, versioned),
    latestUri: formatGcsUri(config.bucket, latest),
    records: stats.records,
  };
  if (config.output) {
    await saveJson(storage.bucket(config.output.bucket), `${config.output.name}training.json`, {
      ...result,
      stats,
    });
  }
  log.info('model trained', { ...result, stats });
  return result;
}
