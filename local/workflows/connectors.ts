import { EMULATOR_VARIABLES, grpcClientOptions, storageClientOptions } from '#shared/clients/endpoints.js';
import { Backoff } from '../backoff.js';
import { WorkflowException } from './errors.js';
import { systemClock } from './execute.js';
import type { Connector, ConnectorRegistry } from './types.js';
import { isMap } from './values.js';

/**
 * The connectors `createLocalConnectors` provides. `validateWorkflow` accepts exactly these by
 * default, so a workflow that validates can run on the local cloud.
 */
export const LOCAL_CONNECTOR_NAMES = [
  'googleapis.batch.v1.projects.locations.jobs.create',
  'googleapis.batch.v1.projects.locations.jobs.get',
  'googleapis.batch.v1.projects.locations.jobs.delete',
  'googleapis.batch.v1.projects.locations.jobs.list',
  'googleapis.run.v2.projects.locations.jobs.run',
  'googleapis.run.v2.projects.locations.jobs.get',
  'googleapis.pubsub.v1.projects.topics.publish',
  'googleapis.storage.v1.objects.get',
  'googleapis.storage.v1.objects.list',
  'googleapis.storage.v1.objects.insert',
  'googleapis.storage.v1.objects.delete',
] as const;

export interface LocalConnectorOptions {
  project: string;
  region: string;
  /** Where the emulator variables are read (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /**
   * Long-running operation polling (seconds), unless a call sets `connector_params.polling_policy`.
   * Workflows polls from 1 s up to 60 s; the local default is quicker so that local runs finish fast.
   */
  polling?: { initialDelay: number; multiplier: number; maxDelay: number };
}

/** gRPC status → the HTTP status the REST API (and so a connector's HttpError) carries. */
const HTTP_STATUS: Record<number, [number, string]> = {
  1: [499, 'CANCELLED'],
  2: [500, 'UNKNOWN'],
  3: [400, 'INVALID_ARGUMENT'],
  4: [504, 'DEADLINE_EXCEEDED'],
  5: [404, 'NOT_FOUND'],
  6: [409, 'ALREADY_EXISTS'],
  7: [403, 'PERMISSION_DENIED'],
  8: [429, 'RESOURCE_EXHAUSTED'],
  9: [400, 'FAILED_PRECONDITION'],
  10: [409, 'ABORTED'],
  11: [400, 'OUT_OF_RANGE'],
  12: [501, 'UNIMPLEMENTED'],
  13: [500, 'INTERNAL'],
  14: [503, 'UNAVAILABLE'],
  15: [500, 'DATA_LOSS'],
  16: [401, 'UNAUTHENTICATED'],
};

/** The error a connector raises for a failed request, shaped as Workflows' `HttpError`. */
export function httpError(code: number, message: string, status = 'UNKNOWN'): WorkflowException {
  return new WorkflowException({
    code,
    message: `HTTP server responded with error code ${code}`,
    tags: ['HttpError'],
    headers: {},
    body: { error: { code, message, status } },
  });
}

/** A Google client error (gRPC status, or an HTTP status from the Storage JSON API) as an HttpError. */
export function connectorError(err: unknown): WorkflowException {
  if (err instanceof WorkflowException) return err;
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' ? message : String(err);
  if (typeof code === 'number' && code >= 100) return httpError(code, text);
  if (typeof code === 'number' && HTTP_STATUS[code]) {
    const [http, status] = HTTP_STATUS[code] as [number, string];
    return httpError(http, text.replace(/^\d+ [A-Z_]+: /, ''), status);
  }
  if (/ECONNREFUSED|ENOTFOUND|ECONNRESET/.test(text)) {
    return new WorkflowException({ message: text, tags: ['ConnectionError'] });
  }
  return new WorkflowException({ message: text, tags: ['SystemError'] });
}

const DURATION_KEY = /(Duration|[tT]imeout|Interval)$/;
const TIME_KEY = /Time$/;

/** REST JSON (durations as "3600s") → the object a gax client serialises. */
export function toProtoRequest(value: unknown, key = ''): unknown {
  if (typeof value === 'string' && DURATION_KEY.test(key) && /^-?\d+(\.\d+)?s$/.test(value)) {
    const seconds = Number(value.slice(0, -1));
    return { seconds: Math.trunc(seconds), nanos: Math.round((seconds % 1) * 1e9) };
  }
  if (Array.isArray(value)) return value.map((item) => toProtoRequest(item, key));
  if (isMap(value))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toProtoRequest(v, k)]));
  return value;
}

/**
 * A gax response (proto-loader objects: defaults filled in, timestamps and durations as
 * `{seconds, nanos}`) → the REST JSON a connector returns: defaults omitted, RFC 3339 times,
 * "3600s" durations.
 */
export function toRestJson(value: unknown, key = ''): unknown {
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
    return value.length === 0 ? undefined : Buffer.from(value).toString('base64');
  }
  // Results of long-running operations are protobufjs messages (numeric enums, Long int64s):
  // their toJSON gives the proto3 JSON form first.
  if (isMap(value) && typeof value.toJSON === 'function') return toRestJson(value.toJSON(), key);
  if (isMap(value) && typeof value.low === 'number' && typeof value.high === 'number') {
    return toRestJson(String(value), key);
  }
  if (isMap(value) && isDurationLike(value) && (TIME_KEY.test(key) || DURATION_KEY.test(key))) {
    const seconds = Number(value.seconds ?? 0);
    const nanos = Number(value.nanos ?? 0);
    if (TIME_KEY.test(key))
      return seconds === 0 && nanos === 0 ? undefined : new Date(seconds * 1000 + nanos / 1e6).toISOString();
    return `${seconds + nanos / 1e9}s`;
  }
  if (Array.isArray(value)) {
    const items = value.map((item) => toRestJson(item, key)).filter((item) => item !== undefined);
    return items.length === 0 ? undefined : items;
  }
  if (isMap(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const converted = toRestJson(v, k);
      if (converted !== undefined) out[k] = converted;
    }
    return Object.keys(out).length === 0 ? undefined : out;
  }
  if (value === null || value === '' || value === false || value === 0) return undefined;
  if (typeof value === 'string' && value.endsWith('_UNSPECIFIED')) return undefined;
  return value;
}

function isDurationLike(value: Record<string, unknown>): boolean {
  const keys = Object.keys(value);
  return keys.length > 0 && keys.every((k) => k === 'seconds' || k === 'nanos');
}

function rest(value: unknown): Record<string, unknown> {
  return (toRestJson(value) as Record<string, unknown> | undefined) ?? {};
}

function requireString(args: Record<string, unknown>, name: string, connector: string): string {
  const value = args[name];
  if (typeof value !== 'string' || value === '') {
    throw new WorkflowException({
      message: `${connector}: argument "${name}" must be a non-empty string`,
      tags: ['ValueError'],
    });
  }
  return value;
}

interface Polling {
  skip: boolean;
  timeoutMs: number;
  initialDelay: number;
  multiplier: number;
  maxDelay: number;
}

/** `connector_params` of a call: `timeout` (s, default 1800), `skip_polling`, `polling_policy`. */
function pollingOf(args: Record<string, unknown>, defaults: LocalConnectorOptions['polling']): Polling {
  const params = isMap(args.connector_params) ? args.connector_params : {};
  const policy = isMap(params.polling_policy) ? params.polling_policy : {};
  const num = (v: unknown, fallback: number) => (typeof v === 'number' && v >= 0 ? v : fallback);
  const base = defaults ?? { initialDelay: 0.25, multiplier: 1.25, maxDelay: 5 };
  return {
    skip: params.skip_polling === true,
    timeoutMs: num(params.timeout, 1800) * 1000,
    initialDelay: num(policy.initial_delay, base.initialDelay),
    multiplier: num(policy.multiplier, base.multiplier),
    maxDelay: num(policy.max_delay, base.maxDelay),
  };
}

/** Polls `read` until `done` holds, with the connector's backoff and timeout (TimeoutError). */
async function poll<T>(
  polling: Polling,
  signal: AbortSignal | undefined,
  read: () => Promise<T>,
  done: (value: T) => boolean,
  what: string,
): Promise<T> {
  const deadline = systemClock.now() + polling.timeoutMs;
  const backoff = new Backoff({
    initialDelayMs: polling.initialDelay * 1000,
    multiplier: polling.multiplier,
    maxDelayMs: polling.maxDelay * 1000,
  });
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    const delayMs = backoff.next();
    if (systemClock.now() + delayMs > deadline) {
      throw new WorkflowException({
        message: `${what} did not finish within ${polling.timeoutMs / 1000}s`,
        tags: ['TimeoutError'],
      });
    }
    await systemClock.sleep(delayMs, signal);
  }
}

function withoutConnectorParams(args: Record<string, unknown>): Record<string, unknown> {
  const { connector_params: _ignored, ...rest } = args;
  return rest;
}

/**
 * The connectors the project's workflows call, over the REAL Google clients, loaded on first use
 * and pointed at the local cloud by the emulator variables (BATCH_EMULATOR_HOST,
 * RUN_EMULATOR_HOST, PUBSUB_EMULATOR_HOST, STORAGE_EMULATOR_HOST). Arguments and results mirror
 * the REST API, as Workflows connectors do; long-running calls wait as Workflows does: Batch
 * `jobs.create` until the job SUCCEEDED (a FAILED job raises OperationError), Run `jobs.run` until
 * the execution finished (a failed execution raises OperationError). `connector_params`
 * `skip_polling`, `timeout` and `polling_policy` are honoured.
 */
export function createLocalConnectors(options: LocalConnectorOptions): ConnectorRegistry {
  const env = options.env ?? process.env;
  const lazy = <T>(create: () => Promise<T>): (() => Promise<T>) => {
    let client: Promise<T> | undefined;
    return () => {
      client ??= create();
      return client;
    };
  };
  const batch = lazy(async () => {
    const { BatchServiceClient } = await import('@google-cloud/batch');
    return new BatchServiceClient(await grpcClientOptions('batch', env));
  });
  const run = lazy(async () => {
    const { JobsClient } = await import('@google-cloud/run');
    return new JobsClient(await grpcClientOptions('run', env));
  });
  const pubsub = lazy(async () => {
    const { PubSub } = await import('@google-cloud/pubsub');
    // The client reads PUBSUB_EMULATOR_HOST from process.env only; `env` must win, as it does
    // for the other services, or a registry built for one local cloud publishes to another (or
    // to Google Cloud, failing on credentials).
    const host = env[EMULATOR_VARIABLES.pubsub];
    return new PubSub({
      projectId: options.project,
      ...(host ? { apiEndpoint: host, emulatorMode: true } : {}),
    });
  });
  const storage = lazy(async () => {
    const { Storage } = await import('@google-cloud/storage');
    return new Storage({ projectId: options.project, ...storageClientOptions(env) });
  });

  /** Runs a request; client errors become the HttpError a connector raises. */
  const guarded =
    (body: Connector): Connector =>
    async (args, context) => {
      try {
        return await body(args, context);
      } catch (err) {
        if (context.signal?.aborted) throw err;
        throw connectorError(err);
      }
    };

  const connectors: Record<(typeof LOCAL_CONNECTOR_NAMES)[number], Connector> = {
    'googleapis.batch.v1.projects.locations.jobs.create': async (args, { signal }) => {
      const name = 'googleapis.batch.v1.projects.locations.jobs.create';
      const polling = pollingOf(args, options.polling);
      const parent = requireString(args, 'parent', name);
      const client = await batch();
      let created: unknown;
      try {
        [created] = await client.createJob({
          parent,
          ...(typeof args.jobId === 'string' ? { jobId: args.jobId } : {}),
          ...(typeof args.requestId === 'string' ? { requestId: args.requestId } : {}),
          job: toProtoRequest(isMap(args.body) ? args.body : {}) as never,
        });
      } catch (err) {
        throw connectorError(err);
      }
      const job = created as { name?: string; status?: { state?: string } };
      if (polling.skip) return rest(job);
      const final = await poll(
        polling,
        signal,
        async () => {
          try {
            const [current] = await client.getJob({ name: job.name as string });
            return current as { status?: { state?: string } };
          } catch (err) {
            throw connectorError(err);
          }
        },
        (current) => ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(current.status?.state ?? ''),
        `Batch job ${job.name}`,
      );
      const result = rest(final);
      if (final.status?.state !== 'SUCCEEDED') {
        throw new WorkflowException({
          message: `Batch job ${job.name} ended ${final.status?.state}`,
          tags: ['OperationError'],
          operation: result,
        });
      }
      return result;
    },
    'googleapis.batch.v1.projects.locations.jobs.get': guarded(async (args) => {
      const client = await batch();
      const [job] = await client.getJob({ name: requireString(args, 'name', 'batch jobs.get') });
      return rest(job);
    }),
    'googleapis.batch.v1.projects.locations.jobs.delete': guarded(async (args) => {
      const client = await batch();
      const [operation] = await client.deleteJob({
        name: requireString(args, 'name', 'batch jobs.delete'),
        ...(typeof args.requestId === 'string' ? { requestId: args.requestId } : {}),
        ...(typeof args.reason === 'string' ? { reason: args.reason } : {}),
      });
      return rest(operation.latestResponse);
    }),
    'googleapis.batch.v1.projects.locations.jobs.list': guarded(async (args) => {
      const client = await batch();
      const [jobs, , response] = await client.listJobs(
        {
          parent: requireString(args, 'parent', 'batch jobs.list'),
          ...(typeof args.filter === 'string' ? { filter: args.filter } : {}),
          ...(typeof args.pageSize === 'number' ? { pageSize: args.pageSize } : {}),
          ...(typeof args.pageToken === 'string' ? { pageToken: args.pageToken } : {}),
        },
        { autoPaginate: false },
      );
      return { ...rest(response), ...(jobs.length > 0 ? { jobs: jobs.map(rest) } : {}) };
    }),
    'googleapis.run.v2.projects.locations.jobs.run': async (args, { signal }) => {
      const polling = pollingOf(args, options.polling);
      const jobName = requireString(args, 'name', 'run jobs.run');
      const body = isMap(args.body) ? args.body : {};
      const client = await run();
      let operation: { name?: string | null; latestResponse: unknown; promise(): Promise<unknown[]> };
      try {
        [operation] = await client.runJob({
          name: jobName,
          ...(isMap(body.overrides) ? { overrides: toProtoRequest(body.overrides) as never } : {}),
          ...(typeof body.etag === 'string' ? { etag: body.etag } : {}),
          ...(body.validateOnly === true ? { validateOnly: true } : {}),
        });
      } catch (err) {
        throw connectorError(err);
      }
      if (polling.skip) return rest(operation.latestResponse);
      const waited = operation.promise().then(
        ([execution]: unknown[]) => ({ ok: true as const, execution }),
        (error: unknown) => ({ ok: false as const, error }),
      );
      const timeout = systemClock.sleep(polling.timeoutMs, signal).then(() => 'timeout' as const);
      const outcome = await Promise.race([waited, timeout]);
      if (outcome === 'timeout') {
        throw new WorkflowException({
          message: `Cloud Run job ${jobName} did not finish within ${polling.timeoutMs / 1000}s`,
          tags: ['TimeoutError'],
        });
      }
      if (!outcome.ok) {
        const { code, message } = (outcome.error ?? {}) as { code?: number; message?: string };
        throw new WorkflowException({
          message: `Cloud Run job ${jobName} failed: ${message ?? String(outcome.error)}`,
          tags: ['OperationError'],
          operation: {
            name: operation.name,
            done: true,
            error: { code: code ?? 2, message: message ?? String(outcome.error) },
          },
        });
      }
      return rest(outcome.execution);
    },
    'googleapis.run.v2.projects.locations.jobs.get': guarded(async (args) => {
      const client = await run();
      const [job] = await client.getJob({ name: requireString(args, 'name', 'run jobs.get') });
      return rest(job);
    }),
    'googleapis.pubsub.v1.projects.topics.publish': guarded(async (args) => {
      const topic = requireString(args, 'topic', 'pubsub topics.publish');
      const body = isMap(args.body) ? args.body : {};
      const messages = Array.isArray(body.messages) ? body.messages : [];
      if (messages.length === 0) throw httpError(400, 'body.messages must not be empty', 'INVALID_ARGUMENT');
      const client = (await pubsub()).topic(topic);
      const messageIds: string[] = [];
      for (const message of messages) {
        if (!isMap(message)) throw httpError(400, 'each message must be a map', 'INVALID_ARGUMENT');
        const data = typeof message.data === 'string' ? Buffer.from(message.data, 'base64') : Buffer.alloc(0);
        const attributes = isMap(message.attributes)
          ? Object.fromEntries(Object.entries(message.attributes).map(([k, v]) => [k, String(v)]))
          : {};
        messageIds.push(
          await client.publishMessage({
            data,
            attributes,
            ...(typeof message.orderingKey === 'string' ? { orderingKey: message.orderingKey } : {}),
          }),
        );
      }
      return { messageIds };
    }),
    'googleapis.storage.v1.objects.get': guarded(async (args) => {
      const bucket = requireString(args, 'bucket', 'storage objects.get');
      const object = requireString(args, 'object', 'storage objects.get');
      const file = (await storage()).bucket(bucket).file(object);
      if (args.alt === 'media') {
        const [[content], [metadata]] = await Promise.all([file.download(), file.getMetadata()]);
        const text = content.toString('utf8');
        // Workflows parses a JSON response body; anything else stays text.
        if (String(metadata.contentType ?? '').includes('json')) {
          try {
            return JSON.parse(text);
          } catch {
            return text;
          }
        }
        return text;
      }
      const [metadata] = await file.getMetadata();
      return metadata;
    }),
    'googleapis.storage.v1.objects.list': guarded(async (args) => {
      const bucket = requireString(args, 'bucket', 'storage objects.list');
      const [, , response] = await (await storage()).bucket(bucket).getFiles({
        autoPaginate: false,
        ...(typeof args.prefix === 'string' ? { prefix: args.prefix } : {}),
        ...(typeof args.delimiter === 'string' ? { delimiter: args.delimiter } : {}),
        ...(typeof args.maxResults === 'number' ? { maxResults: args.maxResults } : {}),
        ...(typeof args.pageToken === 'string' ? { pageToken: args.pageToken } : {}),
      });
      return response ?? { kind: 'storage#objects' };
    }),
    'googleapis.storage.v1.objects.insert': guarded(async (args) => {
      const bucket = requireString(args, 'bucket', 'storage objects.insert');
      const name = requireString(args, 'name', 'storage objects.insert');
      const body = args.body;
      const isText = typeof body === 'string';
      const file = (await storage()).bucket(bucket).file(name);
      await file.save(isText ? body : JSON.stringify(body ?? null), {
        resumable: false,
        contentType: isText ? 'text/plain' : 'application/json',
      });
      const [metadata] = await file.getMetadata();
      return metadata;
    }),
    'googleapis.storage.v1.objects.delete': guarded(async (args) => {
      const bucket = requireString(args, 'bucket', 'storage objects.delete');
      const object = requireString(args, 'object', 'storage objects.delete');
      await (await storage()).bucket(bucket).file(object).delete();
      return null;
    }),
  };
  return withConnectorParamsStripped(connectors);
}

/** The simple (non-LRO) connectors ignore `connector_params` rather than sending it to the API. */
function withConnectorParamsStripped(registry: Record<string, Connector>): Record<string, Connector> {
  return Object.fromEntries(
    Object.entries(registry).map(([name, connector]) => [
      name,
      (args: Record<string, unknown>, context: { signal?: AbortSignal }) =>
        connector(
          name.endsWith('jobs.create') || name.endsWith('jobs.run') ? args : withoutConnectorParams(args),
          context,
        ),
    ]),
  );
}
