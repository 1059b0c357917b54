import { describe, expect, it } from 'vitest';
import {
  type HttpPost,
  nextTick,
  type SchedulerClock,
  schedulerJobs,
  startScheduler,
} from '#local/scheduler/scheduler.js';
import { repoConfig } from '../helpers/config.js';

const config = repoConfig();

/** A clock whose time moves only when the test advances it; due timers run in order. */
class FakeClock implements SchedulerClock {
  private timers: Array<{ at: number; callback: () => void; id: number }> = [];
  private ids = 0;
  constructor(private time: number) {}
  now = () => this.time;
  setTimeout = (callback: () => void, ms: number) => {
    const id = ++this.ids;
    this.timers.push({ at: this.time + ms, callback, id });
    return id;
  };
  clearTimeout = (handle: unknown) => {
    this.timers = this.timers.filter((t) => t.id !== handle);
  };
  async advanceTo(time: number): Promise<void> {
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const due = this.timers[0];
      if (!due || due.at > time) break;
      this.timers.shift();
      this.time = due.at;
      due.callback();
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.time = time;
  }
}

function recorder(status = 202) {
  const calls: Array<{ url: string; headers: Record<string, string>; body: unknown }> = [];
  const post: HttpPost = async (url, init) => {
    calls.push({ url, headers: init.headers, body: JSON.parse(init.body) });
    return { status, text: async () => JSON.stringify({ execution: 'e' }) };
  };
  return { calls, post };
}

describe('schedulerJobs', () => {
  it('makes one job per client for a client-scoped flow and one per product for a product-scoped flow', () => {
    expect(schedulerJobs(config).map((job) => [job.id, JSON.parse(job.body)])).toEqual([
      ['bw-mlops-template-train-acme', { flow: 'train', product: 'mlops-template', client: 'acme' }],
      ['bw-mlops-template-train-globex', { flow: 'train', product: 'mlops-template', client: 'globex' }],
      ['bw-mlops-template-metadata', { flow: 'metadata', product: 'mlops-template' }],
    ]);
  });
});

describe('nextTick', () => {
  it('reads the cron expression in the flow time zone (London is UTC+1 in summer)', () => {
    expect(nextTick('0 4 * * *', 'Europe/London', new Date('2025-07-01T00:00:00Z'))?.toISOString()).toBe(
      '2025-07-01T03:00:00.000Z',
    );
    expect(nextTick('0 4 * * *', 'Europe/London', new Date('2025-01-10T00:00:00Z'))?.toISOString()).toBe(
      '2025-01-10T04:00:00.000Z',
    );
  });
});

describe('startScheduler', () => {
  it('fires each flow at its tick with Cloud Scheduler headers and the flow body', async () => {
    // Arrange
    const clock = new FakeClock(Date.parse('2025-07-01T02:59:00Z'));
    const { calls, post } = recorder();
    const scheduler = startScheduler({ config, targetUrl: 'http://127.0.0.1:1/', clock, post });

    // Act: 04:00 London (03:00Z) fires train for both clients; metadata waits for 05:30 London.
    await clock.advanceTo(Date.parse('2025-07-01T03:00:30Z'));
    scheduler.stop();

    // Assert
    expect(calls.map((c) => c.headers['x-cloudscheduler-jobname'])).toEqual([
      'bw-mlops-template-train-acme',
      'bw-mlops-template-train-globex',
    ]);
    expect(calls[0]).toEqual({
      url: 'http://127.0.0.1:1/',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Google-Cloud-Scheduler',
        'x-cloudscheduler': 'true',
        'x-cloudscheduler-jobname': 'bw-mlops-template-train-acme',
        'x-cloudscheduler-scheduletime': '2025-07-01T03:00:00.000Z',
      },
      body: { flow: 'train', product: 'mlops-template', client: 'acme' },
    });
  });

  it('fires again on the next day with a new ScheduleTime, and not at all once stopped', async () => {
    const clock = new FakeClock(Date.parse('2025-07-01T04:00:00Z'));
    const { calls, post } = recorder();
    const scheduler = startScheduler({ config, targetUrl: 'http://x/', clock, post });

    await clock.advanceTo(Date.parse('2025-07-02T04:00:00Z'));
    const metadataTicks = calls.filter(
      (c) => c.headers['x-cloudscheduler-jobname'] === 'bw-mlops-template-metadata',
    );
    scheduler.stop();
    await clock.advanceTo(Date.parse('2025-07-05T04:00:00Z'));

    expect(metadataTicks.map((c) => c.headers['x-cloudscheduler-scheduletime'])).toEqual([
      '2025-07-01T04:30:00.000Z',
    ]);
    expect(calls.map((c) => c.headers['x-cloudscheduler-scheduletime'])).toEqual([
      '2025-07-01T04:30:00.000Z',
      '2025-07-02T03:00:00.000Z',
      '2025-07-02T03:00:00.000Z',
    ]);
  });

  it('retries a tick answered with 503 using the same ScheduleTime', async () => {
    const clock = new FakeClock(Date.parse('2025-07-01T04:29:59Z'));
    const { calls, post } = recorder(503);
    const scheduler = startScheduler({ config, targetUrl: 'http://x/', clock, post });

    await clock.advanceTo(Date.parse('2025-07-01T04:30:10Z'));
    scheduler.stop();

    expect(calls.length).toBe(4);
    expect(new Set(calls.map((c) => c.headers['x-cloudscheduler-scheduletime']))).toEqual(
      new Set(['2025-07-01T04:30:00.000Z']),
    );
  });

  it('keeps retrying a tick past the claim lease, honouring Retry-After, until onSchedule starts it', async () => {
    // Arrange: onSchedule answers 409 (another attempt holds the claim) with Retry-After: 10
    // for 40 s, longer than its 30 s lease; then the tick starts.
    const tickAt = Date.parse('2025-07-01T04:30:00Z');
    const clock = new FakeClock(tickAt - 1000);
    const calls: number[] = [];
    const post: HttpPost = async () => {
      calls.push(clock.now() - tickAt);
      const busy = clock.now() - tickAt < 40_000;
      return {
        status: busy ? 409 : 202,
        headers: { get: (name: string) => (busy && name === 'retry-after' ? '10' : null) },
        text: async () => '{}',
      };
    };
    const scheduler = startScheduler({ config, targetUrl: 'http://x/', clock, post });

    // Act
    await clock.advanceTo(tickAt + 120_000);
    scheduler.stop();

    // Assert: attempts 10 s apart (Retry-After over the shorter backoff), the last one started it.
    expect(calls).toEqual([0, 10_000, 20_000, 30_000, 40_000]);
  });

  it('fireNow sends one request now, whether or not schedules run, and returns the answer', async () => {
    const clock = new FakeClock(Date.parse('2025-07-01T12:34:56.789Z'));
    const { calls, post } = recorder(202);
    const scheduler = startScheduler({ config, targetUrl: 'http://x/', clock, post, enabled: false });

    const result = await scheduler.fireNow('train', 'mlops-template', 'globex');

    expect(result).toEqual({ status: 202, body: { execution: 'e' } });
    expect(calls).toHaveLength(1);
    expect(calls[0]?.headers['x-cloudscheduler-scheduletime']).toBe('2025-07-01T12:34:56.000Z');
    expect(calls[0]?.body).toEqual({ flow: 'train', product: 'mlops-template', client: 'globex' });
    expect(scheduler.nextFireTimes()).toEqual({});
  });
});
