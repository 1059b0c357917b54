import type { Bucket, File, Storage } from '@google-cloud/storage';
import { optionalEnv, requireEnv, type TaskPosition, taskPosition } from '../lib/env.js';
import { TaskConfigError } from '../lib/errors.js';
import { formatGcsUri } from '../lib/gcs-uri.js';
import type { TaskLogger } from '../lib/log.js';
import { readJson, saveJson } from '../lib/manifest.js';

const ID = /^[a-z][a-z0-9-]{1,29}$/;

/** What the metadata task is asked to do, read from its environment. */
export interface MetadataConfig {
  bucket: string;
  product: string;
  /** All the product's clients, in the order the index lists them. */
  clients: string[];
  /** Tells this run's parts from an earlier run's. */
  runId: string;
  position: TaskPosition;
}

/** What the index says about one client. */
export interface ClientMetadata {
  objects: number;
  bytes: number;
  /** By the first path segment under `{product}/{client}/`: inputs, outputs, models, … */
  areas: Record<string, { objects: number; bytes: number }>;
  lastUpdated: string | null;
  latestModel: { version: string; uri: string } | null;
}

/** `{product}/_index/metadata.json`. */
export interface MetadataIndex {
  kind: 'batchwire.metadata-index';
  schemaVersion: 1;
  product: string;
  runId: string;
  clients: Record<string, ClientMetadata>;
  totals: { clients: number; objects: number; bytes: number };
}

interface MetadataPart {
  runId: string;
  taskCount: number;
  index: number;
  clients: Record<string, ClientMetadata>;
}

/**
 * Reads the metadata task's environment: `BATCHWIRE_BUCKET`, `BATCHWIRE_PRODUCT`,
 * `BATCHWIRE_CLIENTS` (comma list), the task position (`CLOUD_RUN_TASK_INDEX`/`COUNT` or
 * `BATCH_TASK_INDEX`/`COUNT`) and a run id (`CLOUD_RUN_EXECUTION`, which Cloud Run sets, else
 * `BATCH_JOB_UID`, else `BATCHWIRE_RUN_ID`, else `manual`).
 */
export function metadataConfigFromEnv(env: NodeJS.ProcessEnv): MetadataConfig {
  const bucket = requireEnv(env, 'BATCHWIRE_BUCKET');
  const product = requireEnv(env, 'BATCHWIRE_PRODUCT');
  if (!ID.test(product)) throw new TaskConfigError(`BATCHWIRE_PRODUCT must match ${ID}, got "${product}"`);
  const clients = [
    ...new Set(
      requireEnv(env, 'BATCHWIRE_CLIENTS', 'a comma-separated list of client ids')
        .split(',')
        .map((client) => client.trim())
        .filter((client) => client !== ''),
    ),
  ];
  for (const client of clients) {
    if (!ID.test(client))
      throw new TaskConfigError(`BATCHWIRE_CLIENTS: "${client}" is not a client id (${ID})`);
  }
  const runId =
    optionalEnv(env, 'CLOUD_RUN_EXECUTION') ??
    optionalEnv(env, 'BATCH_JOB_UID') ??
    optionalEnv(env, 'BATCHWIRE_RUN_ID') ??
    'manual';
  return { bucket, product, clients, runId, position: taskPosition(env) };
}

/** The clients task `index` of `count` covers: every count-th, starting at index. */
export function clientsForTask(clients: string[], position: TaskPosition): string[] {
  return clients.filter((_, order) => order % position.count === position.index);
}

/**
 * Refreshes the product's metadata index: each task lists its share of the clients'
 * `{product}/{client}/` objects and writes `{product}/_index/parts/metadata-<index>.json`;
 * a task that then finds every part of this run written merges them into
 * `{product}/_index/metadata.json`. (Two tasks finishing together may both merge: they write
 * the same content.)
 */
export async function runMetadata(
  config: MetadataConfig,
  deps: { storage: Storage; log: TaskLogger },
): Promise<{ part: string; indexWritten: boolean }> {
  const { storage, log } = deps;
  const bucket = storage.bucket(config.bucket);
  const { index, count } = config.position;
  const mine = clientsForTask(config.clients, config.position);
  const part: MetadataPart = { runId: config.runId, taskCount: count, index, clients: {} };
  for (const client of mine) part.clients[client] = await describeClient(bucket, config.product, client);
  const partsPrefix = `${config.product}/_index/parts/`;
  const partObject = `${partsPrefix}metadata-${String(index).padStart(5, '0')}.json`;
  await saveJson(bucket, partObject, part);

  const parts: MetadataPart[] = [];
  for (let other = 0; other < count; other++) {
    const found =
      other === index
        ? part
        : ((await readJson(bucket, `${partsPrefix}metadata-${String(other).padStart(5, '0')}.json`)) as
            | MetadataPart
            | undefined);
    if (!found || found.runId !== config.runId || found.taskCount !== count) {
      log.info('metadata part written; waiting for other tasks to merge', {
        part: partObject,
        clients: mine,
      });
      return { part: partObject, indexWritten: false };
    }
    parts.push(found);
  }
  const merged = Object.assign({}, ...parts.map((p) => p.clients)) as Record<string, ClientMetadata>;
  const clients: Record<string, ClientMetadata> = {};
  for (const client of config.clients) if (merged[client]) clients[client] = merged[client];
  const values = Object.values(clients);
  const index_: MetadataIndex = {
    kind: 'batchwire.metadata-index',
    schemaVersion: 1,
    product: config.product,
    runId: config.runId,
    clients,
    totals: {
      clients: values.length,
      objects: values.reduce((sum, c) => sum + c.objects, 0),
      bytes: values.reduce((sum, c) => sum + c.bytes, 0),
    },
  };
  const indexObject = `${config.product}/_index/metadata.json`;
  await saveJson(bucket, indexObject, index_);
  log.info('metadata index written', {
    index: formatGcsUri(config.bucket, indexObject),
    totals: index_.totals,
  });
  return { part: partObject, indexWritten: true };
}

async function describeClient(bucket: Bucket, product: string, client: string): Promise<ClientMetadata> {
  const prefix = `${product}/${client}/`;
  const meta: ClientMetadata = { objects: 0, bytes: 0, areas: {}, lastUpdated: null, latestModel: null };
  // Streamed page by page: a client with millions of outputs must not be held in memory at once.
  for await (const item of bucket.getFilesStream({ prefix })) {
    const file = item as File;
    const size = Number(file.metadata.size ?? 0);
    const area = file.name.slice(prefix.length).split('/')[0] || '(root)';
    meta.objects++;
    meta.bytes += size;
    const areaTotals = meta.areas[area] ?? { objects: 0, bytes: 0 };
    areaTotals.objects++;
    areaTotals.bytes += size;
    meta.areas[area] = areaTotals;
    const updated = file.metadata.updated;
    if (typeof updated === 'string' && (meta.lastUpdated === null || updated > meta.lastUpdated))
      meta.lastUpdated = updated;
  }
  // Sorted so the index reads the same whatever order the listing came in.
  meta.areas = Object.fromEntries(Object.entries(meta.areas).sort(([a], [b]) => (a < b ? -1 : 1)));
  const latest = `${prefix}models/latest/model.json`;
  const model = (await readJson(bucket, latest).catch(() => undefined)) as { version?: unknown } | undefined;
  if (model && typeof model.version === 'string') {
    meta.latestModel = { version: model.version, uri: formatGcsUri(bucket.name, latest) };
  }
  return meta;
}
