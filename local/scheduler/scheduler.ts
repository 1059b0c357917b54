import { Cron } from 'croner';
import { DEFAULT_CONFIG_FILE } from '#shared/config/load.js';
import type { Config } from '#shared/config/schema.js';
import { buildPlan } from '#shared/plan/build-plan.js';
import type { ActivityListener, PlatformActivity } from '../activity.js';
import { type BackoffPolicy, backoffDelay } from '../backoff.js';
import { type Clock, systemClock } from '../clock.js';

/** One Cloud Scheduler job: a configured flow, for one client when the flow runs per client. */
export interface SchedulerJob {
  /** Scheduler job id, sent as `X-CloudScheduler-JobName`: `bw-{product}-{flow}[-{client}]`. */
  id: string;
  flow: string;
  product: string;
  client: string | null;
  /** Five-field cron expression; null for a flow without a schedule (fired by hand only). */
  schedule: string | null;
  timeZone: string;
  /** The JSON body POSTed to onSchedule. */
  body: string;
}

/** The clock the scheduler runs on, with its timers; tests hand in a fake one. */
export interface SchedulerClock extends Clock {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const systemSchedulerClock: SchedulerClock = {
  now: systemClock.now,
  setTimeout: (callback, ms) => {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** What onSchedule answered. */
export interface FireResult {
  status: number;
  body: unknown;
  /** Seconds from a `Retry-After` answer, when onSchedule asked to be retried later. */
  retryAfterSeconds?: number;
}

/**
 * Delays between attempts of one tick, as Scheduler's retry config (min backoff 1 s, doubling,
 * at most 6 retries) would space them: 1, 2, 4, 8, 16, 32 s, 63 s in all, longer than
 * onSchedule's claim lease (30 s), so a tick whose first attempt crashed after claiming is
 * still started by a later attempt.
 */
const RETRY_BACKOFF: BackoffPolicy = { initialDelayMs: 1_000, multiplier: 2, maxDelayMs: 32_000 };
const MAX_RETRIES = 6;

export type HttpPost = (
  url: string,
  init: { method: 'POST'; headers: Record<string, string>; body: string },
) => Promise<{ status: number; headers?: { get(name: string): string | null }; text(): Promise<string> }>;

export interface SchedulerOptions {
  config: Config;
  /** onSchedule's URL. */
  targetUrl: string;
  /** Run the cron schedules (default true); fireNow works either way. */
  enabled?: boolean;
  onEvent?: ActivityListener;
  clock?: SchedulerClock;
  /** Default: global fetch. */
  post?: HttpPost;
}

export interface LocalScheduler {
  jobs: SchedulerJob[];
  /** Fires a flow now, as `gcloud scheduler jobs run` does (ScheduleTime = now); resolves with onSchedule's answer. */
  fireNow(flow: string, product: string, client?: string): Promise<FireResult>;
  /** The next time each scheduled job fires (ms since epoch), by job id. */
  nextFireTimes(): Record<string, number>;
  stop(): void;
}

/**
 * The Scheduler jobs for a config, as the deployment plan lists them: one per product-scoped
 * flow, one per client of a client-scoped flow.
 */
export function schedulerJobs(config: Config): SchedulerJob[] {
  return buildPlan(config, { configFile: DEFAULT_CONFIG_FILE }).schedulerJobs.map((job) => ({
    id: job.id,
    flow: job.flow,
    product: job.product,
    client: job.client,
    schedule: job.schedule,
    timeZone: job.timeZone,
    body: job.body,
  }));
}

/** The request Cloud Scheduler sends for a tick of `job` scheduled at `scheduleTime`. */
export function schedulerRequest(
  job: SchedulerJob,
  scheduleTime: Date,
): { headers: Record<string, string>; body: string } {
  return {
    headers: {
      'content-type': 'application/json',
      'user-agent': 'Google-Cloud-Scheduler',
      'x-cloudscheduler': 'true',
      'x-cloudscheduler-jobname': job.id,
      'x-cloudscheduler-scheduletime': scheduleTime.toISOString(),
    },
    body: job.body,
  };
}

/** The next tick of a cron schedule strictly after `after`, in the schedule's time zone. */
export function nextTick(schedule: string, timeZone: string, after: Date): Date | null {
  return new Cron(schedule, { timezone: timeZone, paused: true }).nextRun(after);
}

/**
 * A local Cloud Scheduler: fires every configured flow on its cron schedule, in its time zone,
 * at onSchedule with Scheduler's headers (`X-CloudScheduler-JobName`,
 * `X-CloudScheduler-ScheduleTime`, …), so that dedupe and logging work as in Google Cloud. A tick
 * answered with 409, 429 or 5xx is retried (1 s, 2 s, 4 s), as Scheduler's retry config would.
 */
export function startScheduler(options: SchedulerOptions): LocalScheduler {
  const clock = options.clock ?? systemSchedulerClock;
  const post: HttpPost = options.post ?? ((url, init) => fetch(url, init));
  const emit = (activity: PlatformActivity) => {
    try {
      options.onEvent?.(activity);
    } catch {
      // A display that fails must not stop the schedule.
    }
  };
  const jobs = schedulerJobs(options.config);
  const timers = new Map<string, unknown>();
  const next = new Map<string, number>();
  let stopped = false;

  async function send(job: SchedulerJob, scheduleTime: Date): Promise<FireResult> {
    const request = schedulerRequest(job, scheduleTime);
    const response = await post(options.targetUrl, {
      method: 'POST',
      headers: request.headers,
      body: request.body,
    });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON (functions-framework's own error pages): keep the text.
    }
    const retryAfter = Number(response.headers?.get('retry-after'));
    return { status: response.status, body, ...(retryAfter > 0 ? { retryAfterSeconds: retryAfter } : {}) };
  }

  async function tick(job: SchedulerJob, scheduleTime: Date): Promise<void> {
    for (let attempt = 0; attempt <= MAX_RETRIES && !stopped; attempt++) {
      let retryAfterMs: number | undefined;
      try {
        const result = await send(job, scheduleTime);
        emit({
          kind: 'schedule.fired',
          message: `${job.id} ${scheduleTime.toISOString()} → ${result.status}`,
          job: job.id,
          status: result.status,
        });
        if (!(result.status === 409 || result.status === 429 || result.status >= 500)) return;
        if (result.retryAfterSeconds) retryAfterMs = result.retryAfterSeconds * 1000;
      } catch (err) {
        emit({ kind: 'schedule.error', message: `${job.id}: ${(err as Error).message}`, job: job.id });
      }
      if (attempt === MAX_RETRIES) break;
      const delay = backoffDelay(RETRY_BACKOFF, attempt);
      await new Promise<void>((resolve) => clock.setTimeout(resolve, Math.max(delay, retryAfterMs ?? 0)));
    }
    if (!stopped) {
      emit({
        kind: 'schedule.error',
        message: `${job.id} ${scheduleTime.toISOString()}: gave up after retries`,
        job: job.id,
      });
    }
  }

  function arm(job: SchedulerJob, after: Date): void {
    if (stopped || !job.schedule) return;
    const at = nextTick(job.schedule, job.timeZone, after);
    if (!at) return;
    next.set(job.id, at.getTime());
    const handle = clock.setTimeout(
      () => {
        arm(job, at);
        void tick(job, at);
      },
      Math.max(0, at.getTime() - clock.now()),
    );
    timers.set(job.id, handle);
  }

  if (options.enabled ?? true) {
    const now = new Date(clock.now());
    for (const job of jobs) arm(job, now);
  }

  return {
    jobs,
    fireNow: async (flow, product, client) => {
      const job =
        jobs.find((j) => j.flow === flow && j.product === product && j.client === (client ?? null)) ??
        // Not a configured job: send it anyway, so that onSchedule's answer says what is wrong.
        ({
          id: ['bw', product, flow, ...(client ? [client] : [])].join('-'),
          flow,
          product,
          client: client ?? null,
          schedule: null,
          timeZone: 'Etc/UTC',
          body: JSON.stringify(client ? { flow, product, client } : { flow, product }),
        } satisfies SchedulerJob);
      // Second precision, as Scheduler's ScheduleTime for a forced run.
      const scheduleTime = new Date(Math.floor(clock.now() / 1000) * 1000);
      const result = await send(job, scheduleTime);
      emit({
        kind: 'schedule.fired',
        message: `${job.id} (run now) → ${result.status}`,
        job: job.id,
        status: result.status,
      });
      return result;
    },
    nextFireTimes: () => Object.fromEntries(next),
    stop: () => {
      stopped = true;
      for (const handle of timers.values()) clock.clearTimeout(handle);
      timers.clear();
    },
  };
}
