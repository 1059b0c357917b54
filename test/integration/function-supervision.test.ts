import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { FunctionHealth, SupervisedFunction } from '#local/platform/function-process.js';
import { ensureBuilt } from '../helpers/dist.js';
import { REPO_ROOT } from '../helpers/platform.js';

/**
 * A function process of the local platform, supervised as Cloud Functions supervises an
 * instance: killed (SIGKILL, a signal exit with `code === null`), it is started again on the
 * same port (asked for port 0, the one its first start got), the console is told, and its
 * health says so. The built package (dist/) is what
 * runs, as `batchwire dev` runs it.
 */

const CONFIG = join(REPO_ROOT, 'test', 'fixtures', 'e2e', 'batchwire.yaml');
let superviseFunction: typeof import('#local/platform/function-process.js').superviseFunction;
const running: SupervisedFunction[] = [];

beforeAll(async () => {
  await ensureBuilt();
  // The built module: its preload sits next to it in dist/.
  ({ superviseFunction } = (await import(
    join(REPO_ROOT, 'dist', 'local', 'platform', 'function-process.js')
  )) as typeof import('#local/platform/function-process.js'));
}, 180_000);

afterEach(async () => {
  while (running.length > 0) await running.pop()?.stop();
});

async function answers(url: string): Promise<boolean> {
  return fetch(url, { method: 'GET', signal: AbortSignal.timeout(2_000) }).then(
    () => true,
    () => false,
  );
}

describe('supervised function', () => {
  it('is restarted after SIGKILL, with a console line and its health', { timeout: 90_000 }, async () => {
    // Arrange
    const events: string[] = [];
    const changes: FunctionHealth[] = [];
    const fn = await superviseFunction({
      name: 'onComplete',
      port: 0,
      sourceDir: REPO_ROOT,
      env: { BATCHWIRE_CONFIG: CONFIG, METADATA_SERVER_DETECTION: 'none' },
      onLine: () => {},
      onEvent: (message) => events.push(message),
      onHealth: (health) => changes.push(health),
      policy: { initialDelayMs: 50 },
    });
    running.push(fn);
    const before = fn.health();
    expect(before).toMatchObject({ name: 'onComplete', state: 'up', restarts: 0 });
    expect(fn.port).toBeGreaterThan(0);
    expect(fn.url).toBe(`http://127.0.0.1:${fn.port}`);

    // Act
    process.kill(before.pid as number, 'SIGKILL');

    // Assert: a new process on the same port, and every step told.
    await vi.waitFor(() => expect(fn.health()).toMatchObject({ state: 'up', restarts: 1 }), {
      timeout: 60_000,
      interval: 100,
    });
    const after = fn.health();
    expect(after.pid).not.toBe(before.pid);
    expect(after.lastExit).toMatchObject({ code: null, signal: 'SIGKILL' });
    expect(changes.map((c) => c.state)).toEqual(['up', 'restarting', 'up']);
    expect(events[0]).toMatch(/^onComplete was killed by SIGKILL; restarting/);
    expect(events[1]).toMatch(/^onComplete restarted \(pid \d+, restart 1\)$/);
    expect(await answers(fn.url)).toBe(true);
  });

  it('is not restarted once stopped, and says so', { timeout: 60_000 }, async () => {
    const events: string[] = [];
    const fn = await superviseFunction({
      name: 'onUpload',
      port: 0,
      sourceDir: REPO_ROOT,
      env: { BATCHWIRE_CONFIG: CONFIG, METADATA_SERVER_DETECTION: 'none' },
      onLine: () => {},
      onEvent: (message) => events.push(message),
    });

    await fn.stop();

    expect(fn.health()).toMatchObject({ state: 'stopped', restarts: 0 });
    expect(await answers(fn.url)).toBe(false);
    expect(events).toEqual([]);
  });
});
