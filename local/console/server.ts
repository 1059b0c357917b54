import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import type { PubSub } from '@google-cloud/pubsub';
import { grpcClientOptions } from '#shared/clients/endpoints.js';
import type { Config } from '#shared/config/schema.js';
import { parseObjectName } from '#shared/domain/object-path.js';
import { outputTopic } from '#shared/plan/names.js';
import type { PlatformActivity } from '../activity.js';
import type {
  ExecutionDetail,
  FlowsAnswer,
  JobDetail,
  JobRow,
  MetricsAnswer,
  OverviewAnswer,
  PublicConfig,
  SchedulerJobRow,
  SlotSample,
  StorageListing,
  TopicEventsAnswer,
  UploadAnswer,
} from './api-types.js';
import { type HealthCallback, type ServiceProbe, startHealthMonitor } from './health.js';
import { createJobsCache } from './jobs-cache.js';
import { ConsoleInputError, createPlatformReader, jobRow, pageJobs } from './platform-reader.js';
import { createStepRecorder } from './step-recorder.js';
import { startTopicFeed } from './topic-feed.js';

export interface ConsoleServerOptions {
  config: Config;
  port: number;
  /** Where task logs live: `${logDir}/${jobId}/task-${index}-attempt-${attempt}.log`. */
  logDir: string;
  storageUrl: string;
  schedulerUrl: string;
  /** The services whose health the Overview shows. */
  services: ServiceProbe[];
  /** The platform's own view of health (supervision), merged with the console's probes. */
  health?: HealthCallback;
  /** Where the built UI is (default: `dist/console` next to this file's build). */
  assetsDir?: string;
}

export interface ConsoleServer {
  url: string;
  /** The port it listens on (the kernel's choice when asked for 0). */
  port: number;
  /** Tell open pages that something happened (the platform's activity feed): they refresh what they show. */
  notify(activity: PlatformActivity): void;
  close(): Promise<void>;
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/** Throughput and task slots over the last hour: one bucket per minute, one slot sample per 5 s. */
const MINUTES = 60;
const SLOT_SAMPLES = 180;

/** A client-supplied file name under `inputs/`: no path tricks, printable, bounded. */
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._ -]{0,199}$/;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The web console of the local platform: a small JSON API over the services' own APIs (read
 * with the real Google clients), Server-Sent Events that tell open pages what changed, and the
 * built UI. Binds 127.0.0.1 only; anything that changes state must come from the console's own
 * origin (the Origin header, which browsers always send on a cross-site POST), so another site
 * open in the same browser cannot drive it; every request must name this host (no DNS rebinding).
 */
export async function startConsoleServer(options: ConsoleServerOptions): Promise<ConsoleServer> {
  const { config } = options;
  const [{ BatchServiceClient }, { ExecutionsClient }, run, { Storage }, { PubSub }] = await Promise.all([
    import('@google-cloud/batch'),
    import('@google-cloud/workflows'),
    import('@google-cloud/run'),
    import('@google-cloud/storage'),
    import('@google-cloud/pubsub'),
  ]);
  const batch = new BatchServiceClient(await grpcClientOptions('batch'));
  const executions = new ExecutionsClient(await grpcClientOptions('workflows'));
  const runExecutions = new run.v2.ExecutionsClient(await grpcClientOptions('run'));
  const storage = new Storage({ apiEndpoint: options.storageUrl, projectId: config.project });
  const bucket = storage.bucket(config.bucket);
  const pubsub: PubSub = new PubSub({ projectId: config.project });
  const reader = createPlatformReader(config, {
    batch,
    executions,
    runExecutions,
    bucket,
    schedulerUrl: options.schedulerUrl,
  });
  const assetsDir = options.assetsDir ?? fileURLToPath(new URL('../../console/', import.meta.url));

  const stepRecorder = createStepRecorder({
    read: async (name) => {
      const [execution] = await executions.getExecution({ name });
      return {
        state: String(execution.state ?? ''),
        currentSteps: (execution.status?.currentSteps ?? []).map((s) => ({
          routine: s.routine ?? '',
          step: s.step ?? '',
        })),
      };
    },
  });

  const jobsCache = createJobsCache({ list: async () => (await reader.listAllJobs()).map(jobRow) });

  // Live: every open page holds one event stream.
  const streams = new Set<ServerResponse>();
  const broadcast = (event: string, data: unknown) => {
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const stream of streams) stream.write(frame);
  };

  const uploadsPerMinute = new Map<number, number>();
  const resultsPerMinute = new Map<number, number>();
  const slots: SlotSample[] = [];
  const bump = (series: Map<number, number>) => {
    const minute = Math.floor(Date.now() / 60_000);
    series.set(minute, (series.get(minute) ?? 0) + 1);
    for (const key of series.keys()) if (key <= minute - MINUTES) series.delete(key);
  };

  const topics: Array<{ topic: string; product: string; client: string }> = [];
  for (const [product, settings] of Object.entries(config.products)) {
    for (const client of settings.clients)
      topics.push({ topic: outputTopic(product, client), product, client });
  }
  const feed = await startTopicFeed({
    pubsub,
    topics,
    onEvent: (event) => {
      bump(resultsPerMinute);
      broadcast('topic', event);
    },
  });

  const health = startHealthMonitor({
    services: options.services,
    ...(options.health ? { health: options.health } : {}),
    onChange: (current) => broadcast('health', current),
  });

  // The first look: no page should show a service as up before it was checked.
  await health.ready;

  // Task slots in use, sampled every 5 s for the Overview chart.
  const sampleSlots = async () => {
    try {
      const count = await reader.runningTasks();
      slots.push({ time: new Date().toISOString(), running: count });
      if (slots.length > SLOT_SAMPLES) slots.shift();
    } catch {
      // Batch is down: the health panel says so; the chart shows a gap.
    }
  };
  const slotTimer = setInterval(() => void sampleSlots(), 5_000);
  slotTimer.unref();
  void sampleSlots();

  const heartbeat = setInterval(() => {
    for (const stream of streams) stream.write(': keep-alive\n\n');
  }, 15_000);
  heartbeat.unref();

  const allowedHosts = new Set<string>();
  const server = createServer((request, response) => {
    handle(request, response).catch((err: unknown) => sendError(response, err));
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    // DNS rebinding: a page on another name that resolves to 127.0.0.1 is still another site.
    if (!allowedHosts.has(request.headers.host ?? '')) {
      throw new HttpError(421, `this console answers as ${[...allowedHosts].join(' or ')} only`);
    }
    const url = new URL(request.url ?? '/', 'http://console.local');
    const path = url.pathname;
    const method = request.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') assertSameOrigin(request);

    if (!path.startsWith('/api/')) return serveAsset(path, response);

    if (method === 'GET' && path === '/api/stream') return openStream(request, response);
    if (method === 'GET' && path === '/api/overview') return json(response, await overview());
    if (method === 'GET' && path === '/api/config') return json(response, publicConfig());
    if (method === 'GET' && path === '/api/health') return json(response, health.current());
    if (method === 'GET' && path === '/api/metrics') return json(response, metrics());
    if (method === 'GET' && path === '/api/jobs') {
      const pageSize = Math.min(Number(url.searchParams.get('pageSize') ?? 50) || 50, 200);
      return json(
        response,
        pageJobs(await jobsCache.rows(), {
          pageSize,
          ...optional('product', url.searchParams.get('product')),
          ...optional('client', url.searchParams.get('client')),
          ...optional('state', url.searchParams.get('state')),
          ...optional('since', url.searchParams.get('since')),
          ...optional('pageToken', url.searchParams.get('pageToken')),
        }),
      );
    }
    const jobMatch = /^\/api\/jobs\/([^/]+)(?:\/(cancel|tasks\/(\d+)\/attempts\/(\d+)\/log))?$/.exec(path);
    if (jobMatch) {
      const jobId = decodeURIComponent(jobMatch[1] as string);
      if (method === 'GET' && !jobMatch[2]) {
        const detail = await reader.job(jobId);
        const events = feed.events().filter((event) => event.subject === `jobs/${jobId}`);
        return json(response, { ...detail, events } satisfies JobDetail);
      }
      if (method === 'GET' && jobMatch[3] !== undefined)
        return streamLog(request, response, jobId, Number(jobMatch[3]), Number(jobMatch[4]));
      if (method === 'POST' && jobMatch[2] === 'cancel') {
        await reader.cancelJob(jobId);
        jobsCache.invalidate();
        return json(response, { cancelled: jobId });
      }
      if (method === 'DELETE' && !jobMatch[2]) {
        await reader.deleteJob(jobId);
        jobsCache.invalidate();
        return json(response, { deleted: jobId });
      }
    }
    if (method === 'GET' && path === '/api/flows') return json(response, await flows());
    const runMatch = /^\/api\/flows\/([^/]+)\/run$/.exec(path);
    if (method === 'POST' && runMatch) {
      return json(response, await reader.runSchedulerJob(decodeURIComponent(runMatch[1] as string)));
    }
    const executionMatch = /^\/api\/executions\/([^/]+)\/([^/]+)$/.exec(path);
    if (method === 'GET' && executionMatch) {
      const detail = await reader.execution(
        decodeURIComponent(executionMatch[1] as string),
        decodeURIComponent(executionMatch[2] as string),
      );
      return json(response, {
        ...detail,
        steps: stepRecorder.steps(detail.execution.name),
      } satisfies ExecutionDetail);
    }
    if (method === 'GET' && path === '/api/topics/events') {
      const type = url.searchParams.get('type');
      const topic = url.searchParams.get('topic');
      const events = feed
        .events()
        .filter((event) => (!type || event.type === type) && (!topic || event.topic === topic))
        .slice(0, 200);
      return json(response, { topics: topics.map((t) => t.topic), events } satisfies TopicEventsAnswer);
    }
    if (method === 'GET' && path === '/api/storage') {
      const prefix = url.searchParams.get('prefix') ?? '';
      return json(response, { prefix, ...(await reader.browse(prefix)) } satisfies StorageListing);
    }
    if (method === 'GET' && path === '/api/storage/download') {
      return download(url.searchParams.get('name') ?? '', response);
    }
    if (method === 'GET' && path === '/api/rejections') {
      return json(
        response,
        await reader.rejections(
          url.searchParams.get('product') ?? undefined,
          url.searchParams.get('client') ?? undefined,
        ),
      );
    }
    if (method === 'POST' && path === '/api/upload') return upload(url, request, response);
    throw new HttpError(404, `no such console API: ${method} ${path}`);
  }

  function assertSameOrigin(request: IncomingMessage): void {
    const origin = request.headers.origin;
    const site = request.headers['sec-fetch-site'];
    const ok = typeof origin === 'string' && [...allowedHosts].some((host) => origin === `http://${host}`);
    if (!ok || (site !== undefined && site !== 'same-origin')) {
      throw new HttpError(
        403,
        `refused: actions must come from the console itself (Origin ${origin ?? 'missing'})`,
      );
    }
  }

  function publicConfig(): PublicConfig {
    return {
      project: config.project,
      region: config.region,
      bucket: config.bucket,
      products: Object.fromEntries(
        Object.entries(config.products).map(([product, settings]) => [
          product,
          {
            clients: settings.clients,
            acceptedExtensions: settings.inference.acceptedExtensions,
            flows: Object.keys(settings.flows ?? {}),
          },
        ]),
      ),
    };
  }

  function metrics(): MetricsAnswer {
    const now = Math.floor(Date.now() / 60_000);
    const minutes = Array.from({ length: 30 }, (_, i) => now - 29 + i);
    return {
      minutes: minutes.map((minute) => ({
        time: new Date(minute * 60_000).toISOString(),
        uploads: uploadsPerMinute.get(minute) ?? 0,
        results: resultsPerMinute.get(minute) ?? 0,
      })),
      slots,
    };
  }

  async function overview(): Promise<OverviewAnswer> {
    // One listJobs call for every count, one list per client for uploads and rejections.
    const all: JobRow[] = await jobsCache.rows();
    const products = await Promise.all(
      Object.entries(config.products).map(async ([product, settings]) => ({
        product,
        clients: await Promise.all(
          settings.clients.map(async (client) => {
            const mine = all.filter((job) => job.product === product && job.client === client);
            const byState: Record<string, number> = {};
            for (const job of mine) byState[job.state] = (byState[job.state] ?? 0) + 1;
            const [uploads, rejections] = await Promise.all([
              reader.objects(`${product}/${client}/inputs/`),
              reader.rejections(product, client, 3),
            ]);
            return {
              client,
              uploads: uploads.length,
              jobsByState: byState,
              latestJobs: mine.slice(0, 3),
              latestResults: feed
                .events()
                .filter((event) => event.product === product && event.client === client)
                .slice(0, 3),
              rejections,
            };
          }),
        ),
      })),
    );
    let schedules: SchedulerJobRow[] = [];
    let schedulerError = '';
    try {
      schedules = await reader.schedulerJobs();
    } catch (err) {
      schedulerError = `could not read Cloud Scheduler's jobs: ${(err as Error).message}`;
    }
    return { project: config.project, products, schedules, schedulerError };
  }

  async function flows(): Promise<FlowsAnswer> {
    const schedules = await reader.schedulerJobs();
    const workflows = new Set<string>();
    for (const settings of Object.values(config.products)) {
      for (const flow of Object.values(settings.flows ?? {})) {
        workflows.add('workflow' in flow.target ? flow.target.workflow : 'run-job');
      }
    }
    const errors: string[] = [];
    const runs = (
      await Promise.all(
        [...workflows].map((workflow) =>
          reader.executions(workflow, 50).catch((err: Error & { details?: string }) => {
            errors.push(`could not list the runs of workflow ${workflow}: ${err.details || err.message}`);
            return [];
          }),
        ),
      )
    ).flat();
    return {
      errors,
      schedules: schedules.map((job) => {
        const body = JSON.parse(
          Buffer.from(job.httpTarget?.body ?? '', 'base64').toString('utf8') || '{}',
        ) as {
          flow?: string;
          product?: string;
          client?: string;
        };
        return {
          id: job.name.split('/').pop() ?? '',
          ...job,
          request: body,
          runs: runs
            .filter(
              (execution) =>
                execution.argument?.flow === body.flow &&
                execution.argument?.product === body.product &&
                (execution.argument?.client ?? undefined) === (body.client ?? undefined),
            )
            .slice(0, 10),
        };
      }),
    };
  }

  function openStream(request: IncomingMessage, response: ServerResponse): void {
    response.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    });
    response.write(`event: health\ndata: ${JSON.stringify(health.current())}\n\n`);
    streams.add(response);
    request.once('close', () => streams.delete(response));
  }

  /** A task attempt's log, live: what is in the file now, then whatever it grows by. */
  function streamLog(
    request: IncomingMessage,
    response: ServerResponse,
    jobId: string,
    task: number,
    attempt: number,
  ): void {
    if (!/^[a-z][a-z0-9-]{0,62}$/.test(jobId)) throw new HttpError(400, `"${jobId}" is not a job id`);
    const file = join(options.logDir, jobId, `task-${task}-attempt-${attempt}.log`);
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    let offset = 0;
    let reading = false;
    const pump = () => {
      if (reading || !existsSync(file)) return;
      const size = statSync(file).size;
      if (size <= offset) return;
      reading = true;
      const chunk = readFileSync(file).subarray(offset, size).toString('utf8');
      offset = size;
      reading = false;
      response.write(`event: log\ndata: ${JSON.stringify(chunk)}\n\n`);
    };
    if (!existsSync(file)) response.write(`event: waiting\ndata: ${JSON.stringify('no output yet')}\n\n`);
    pump();
    const timer = setInterval(pump, 300);
    request.once('close', () => clearInterval(timer));
  }

  async function download(name: string, response: ServerResponse): Promise<void> {
    if (!name) throw new HttpError(400, 'name the object to download');
    const file = bucket.file(name);
    const [metadata] = await file.getMetadata();
    response.writeHead(200, {
      'content-type': String(metadata.contentType ?? 'application/octet-stream'),
      'content-disposition': `attachment; filename="${(name.split('/').pop() ?? 'object').replace(/"/g, '')}"`,
    });
    await pipeline(file.createReadStream(), response);
  }

  /** An upload as the client would make it: the same object name, so the same Eventarc path. */
  async function upload(url: URL, request: IncomingMessage, response: ServerResponse): Promise<void> {
    const product = url.searchParams.get('product') ?? '';
    const client = url.searchParams.get('client') ?? '';
    const name = url.searchParams.get('name') ?? '';
    const settings = config.products[product];
    if (!settings) throw new HttpError(400, `"${product}" is not a configured product`);
    if (!settings.clients.includes(client))
      throw new HttpError(400, `"${client}" is not a client of ${product}`);
    if (!FILE_NAME.test(name))
      throw new HttpError(400, `"${name}" is not a usable file name (letters, digits, . _ - and spaces)`);
    const objectName = `${product}/${client}/inputs/${name}`;
    await pipeline(
      request,
      bucket.file(objectName).createWriteStream({
        resumable: false,
        contentType: request.headers['content-type'] || 'application/octet-stream',
      }),
    );
    // Counted when the platform reports the upload, as for any other client's.
    json(response, { uploaded: `gs://${config.bucket}/${objectName}` } satisfies UploadAnswer, 201);
  }

  function serveAsset(path: string, response: ServerResponse): void {
    // Every page is the single-page app; assets are hashed files under /assets/.
    const relative = path.startsWith('/assets/') ? path.slice(1) : 'index.html';
    if (relative.includes('..')) throw new HttpError(400, 'bad path');
    const file = join(assetsDir, relative);
    if (!existsSync(file)) {
      if (relative === 'index.html') {
        response.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
        response.end('The console is not built: run `npm run build`, then restart `batchwire dev`.\n');
        return;
      }
      throw new HttpError(404, `no such asset: ${path}`);
    }
    response.writeHead(200, {
      'content-type': MIME[extname(file)] ?? 'application/octet-stream',
      'cache-control': relative === 'index.html' ? 'no-cache' : 'public, max-age=31536000, immutable',
      'x-content-type-options': 'nosniff',
      ...(relative === 'index.html'
        ? {
            'content-security-policy':
              "default-src 'self'; img-src 'self' data:; style-src 'self'; connect-src 'self'; frame-ancestors 'none'",
          }
        : {}),
    });
    createReadStream(file).pipe(response);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  allowedHosts.add(`127.0.0.1:${port}`);
  allowedHosts.add(`localhost:${port}`);

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    notify(activity) {
      // The platform reports every finalized object as 'upload'; outputs are not uploads.
      if (activity.kind === 'upload' && isInputUpload(activity.message, config.bucket))
        bump(uploadsPerMinute);
      if (/^(job|task)\b/.test(activity.kind)) jobsCache.invalidate();
      if (
        activity.kind === 'workflow.execution' &&
        activity.state === 'ACTIVE' &&
        typeof activity.execution === 'string'
      )
        stepRecorder.watch(activity.execution);
      broadcast('activity', {
        kind: activity.kind,
        message: activity.message,
        time: new Date().toISOString(),
      });
    },
    async close() {
      clearInterval(slotTimer);
      clearInterval(heartbeat);
      health.stop();
      stepRecorder.stop();
      for (const stream of streams) stream.end();
      streams.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await feed.close();
      await Promise.allSettled([batch.close(), executions.close(), runExecutions.close(), pubsub.close()]);
    },
  };
}

/** Whether an upload activity (`gs://bucket/name (…)`) is a client's input. */
function isInputUpload(message: string, bucket: string): boolean {
  const prefix = `gs://${bucket}/`;
  if (!message.startsWith(prefix)) return false;
  // Names may hold spaces: cut at the " (generation" the platform appends.
  const name = message.slice(prefix.length).replace(/ \(generation .*$/, '');
  return parseObjectName(name).kind === 'input';
}

function optional<K extends string>(key: K, value: string | null): Partial<Record<K, string>> {
  return value ? ({ [key]: value } as Record<K, string>) : {};
}

function json(response: ServerResponse, body: unknown, status = 200): void {
  response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  response.end(JSON.stringify(body));
}

/** gRPC codes the console meets, in words a user understands. */
const GRPC_STATUS: Record<number, number> = { 3: 400, 5: 404, 6: 409, 9: 409, 14: 503 };

function sendError(response: ServerResponse, err: unknown): void {
  const error = err as Error & { code?: number; details?: string };
  let status = 500;
  let message = error.message ?? String(err);
  if (err instanceof HttpError) status = err.status;
  else if (err instanceof ConsoleInputError) status = 400;
  else if (typeof error.code === 'number' && GRPC_STATUS[error.code]) {
    status = GRPC_STATUS[error.code] as number;
    message = error.details || message.replace(/^\d+ [A-Z_]+: /, '');
  } else if (typeof error.code === 'number' && error.code === 404) {
    status = 404;
  }
  if (response.headersSent) {
    response.end();
    return;
  }
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify({ error: { status, message } }));
}
