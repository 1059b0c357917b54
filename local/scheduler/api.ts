import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { LocalScheduler, SchedulerJob } from './scheduler.js';

export interface SchedulerApi {
  url: string;
  /** The port it listens on (the kernel's choice when asked for 0). */
  port: number;
  close(): Promise<void>;
}

/**
 * A slice of Cloud Scheduler's REST API over the local scheduler, so that other processes (the
 * CLI, the end-to-end tests) can list the jobs and force a run as `gcloud scheduler jobs run`
 * does:
 *
 * - `GET  /v1/projects/P/locations/L/jobs` → `{ jobs: [Job] }`
 * - `POST /v1/projects/P/locations/L/jobs/J:run` → the Job, plus (a local extension)
 *   `lastAttempt: { status, body }`, onSchedule's answer to the forced run.
 */
export async function startSchedulerApi(options: {
  scheduler: LocalScheduler;
  project: string;
  region: string;
  targetUrl: string;
  port?: number;
}): Promise<SchedulerApi> {
  const parent = `projects/${options.project}/locations/${options.region}`;
  const resource = (job: SchedulerJob) => {
    const next = options.scheduler.nextFireTimes()[job.id];
    return {
      name: `${parent}/jobs/${job.id}`,
      schedule: job.schedule ?? undefined,
      timeZone: job.timeZone,
      state: job.schedule ? 'ENABLED' : 'PAUSED',
      ...(next ? { scheduleTime: new Date(next).toISOString() } : {}),
      httpTarget: {
        uri: options.targetUrl,
        httpMethod: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: Buffer.from(job.body).toString('base64'),
      },
    };
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((err: Error) => send(response, 500, error(500, err.message)));
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? '/', 'http://local').pathname;
    if (request.method === 'GET' && path === `/v1/${parent}/jobs`) {
      send(response, 200, { jobs: options.scheduler.jobs.map(resource) });
      return;
    }
    const run = /^\/v1\/projects\/[^/]+\/locations\/[^/]+\/jobs\/([^/:]+):run$/.exec(path);
    if (request.method === 'POST' && run) {
      const job = options.scheduler.jobs.find((j) => j.id === decodeURIComponent(run[1] as string));
      if (!job) {
        send(response, 404, error(404, `Job not found: ${run[1]}`));
        return;
      }
      const lastAttempt = await options.scheduler.fireNow(job.flow, job.product, job.client ?? undefined);
      send(response, 200, { ...resource(job), lastAttempt });
      return;
    }
    send(response, 404, error(404, `no such resource: ${request.method} ${path}`));
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function error(code: number, message: string) {
  return { error: { code, message, status: code === 404 ? 'NOT_FOUND' : 'INTERNAL' } };
}

function send(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}
