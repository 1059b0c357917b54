import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliPlatform, REPO_ROOT, startCliPlatform } from '../helpers/platform.js';

/**
 * The web console in a real browser: Debian's Chromium driven by playwright-core, against
 * `batchwire dev` started as a user starts it. Every step goes through the console's pages
 * (upload by drag and drop, watching a job live, its task log and result event, Run now,
 * cancel), and each page is screenshotted (into docs/console when CONSOLE_SCREENSHOTS names it).
 */

const CONFIG_PATH = join(REPO_ROOT, 'test', 'fixtures', 'e2e', 'console.yaml');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = process.env.CONSOLE_SCREENSHOTS
  ? join(REPO_ROOT, process.env.CONSOLE_SCREENSHOTS)
  : mkdtempSync(join(tmpdir(), 'batchwire-console-shots-'));

let platform: CliPlatform;
let context: BrowserContext;
let page: Page;
let consoleUrl: string;
let userDataDir: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `The console's browser tests drive Debian's Chromium, not found at ${CHROMIUM}: install it with \`apt-get install chromium\` (or set CHROMIUM_PATH to a Chromium binary).`,
    );
  }
  platform = await startCliPlatform({
    config: CONFIG_PATH,
    extraArgs: ['--no-schedules'],
    timeoutMs: 90_000,
  });
  consoleUrl = platform.env.BATCHWIRE_CONSOLE_URL as string;
  userDataDir = mkdtempSync(join(tmpdir(), 'batchwire-chromium-'));
  mkdirSync(SHOTS, { recursive: true });
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    // What this machine needs: no sandbox as root, and no background calls to Google's hosts.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1366, height: 900 },
  });
  page = context.pages()[0] ?? (await context.newPage());
}, 150_000);

afterAll(async () => {
  await context?.close();
  await platform?.dispose();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  if (!process.env.CONSOLE_SCREENSHOTS) rmSync(SHOTS, { recursive: true, force: true });
});

/** GET with a Host header of our choosing (fetch always sends the URL's own). */
function statusWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { headers: { host } }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.once('error', reject);
    request.end();
  });
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Drops a file on the Storage page's drop zone, as a user drags one from their desktop. */
async function dropFile(product: string, client: string, name: string, text: string): Promise<void> {
  await page.goto(`${consoleUrl}/#/storage`);
  await page.getByLabel('Product', { exact: true }).selectOption(product);
  await page.getByLabel('Client', { exact: true }).selectOption(client);
  const dataTransfer = await page.evaluateHandle(
    ({ name: fileName, text: body }) => {
      // Runs in the page: the browser's DataTransfer and File.
      const transfer = new (
        globalThis as unknown as { DataTransfer: new () => { items: { add(file: unknown): void } } }
      ).DataTransfer();
      transfer.items.add(new File([body], fileName, { type: 'application/x-ndjson' }));
      return transfer;
    },
    { name, text },
  );
  await page.dispatchEvent('.dropzone', 'drop', { dataTransfer });
  await expect
    .poll(() => page.getByRole('status').filter({ hasText: 'uploaded gs://' }).count(), { timeout: 15_000 })
    .toBe(1);
}

describe('the web console', () => {
  it('serves the Overview with every service up and the clients of each product', async () => {
    await page.goto(consoleUrl);
    await expect
      .poll(() => page.getByRole('heading', { name: 'Services' }).count(), { timeout: 15_000 })
      .toBe(1);
    await expect.poll(() => page.locator('.health li.up').count(), { timeout: 15_000 }).toBe(9);
    await expect
      .poll(() => page.getByRole('heading', { name: 'mlops-template' }).count(), { timeout: 15_000 })
      .toBe(1);
    expect(await page.getByRole('rowheader', { name: 'acme' }).count()).toBe(1);
    // Its assets come from the platform itself: nothing was requested from another host.
    const hosts = await page.evaluate(() =>
      performance.getEntriesByType('resource').map((entry) => new URL(entry.name).host),
    );
    expect(hosts.every((host) => host === new URL(consoleUrl).host)).toBe(true);
  });

  it('uploads a file by drag and drop and shows its job reach SUCCEEDED, its task log and its result event', async () => {
    // Arrange / Act: a client's upload, through the console.
    const lines = Array.from({ length: 300 }, (_, i) =>
      JSON.stringify({ id: i, text: `review number ${i}` }),
    ).join('\n');
    await dropFile('mlops-template', 'acme', 'reviews.jsonl', `${lines}\n`);
    await shot('storage');

    // Assess: the job appears on the Jobs page without a reload, then turns SUCCEEDED live.
    await page.goto(`${consoleUrl}/#/jobs?product=mlops-template&client=acme`);
    const jobLink = page.locator('table.jobs a[href^="#/jobs/bw-mlops-template-acme-"]');
    await expect.poll(() => jobLink.count(), { timeout: 30_000 }).toBe(1);
    await shot('jobs');
    await jobLink.click();
    const jobId = decodeURIComponent(page.url().split('#/jobs/')[1] as string);
    await expect.poll(() => page.locator('h1 .state').textContent(), { timeout: 60_000 }).toBe('SUCCEEDED');
    // The timeline: one bar per task attempt.
    // About 10 KiB in 4 KiB shards: three tasks, three bars.
    expect(await page.locator('svg.timeline rect.bar-succeeded').count()).toBe(3);

    // The task log, streamed.
    await page.getByRole('button', { name: 'log of task 0 attempt 0' }).click();
    await expect
      .poll(() => page.locator('.log-text').textContent(), { timeout: 15_000 })
      .toContain('shard finished');

    // The result event that reached acme's topic.
    await expect
      .poll(() => page.locator('.event code.type').first().textContent(), { timeout: 60_000 })
      .toBe('dev.batchwire.inference.succeeded');
    const ceId = await page.locator('.event code.ce-id').first().textContent();
    expect(ceId).toMatch(/^[0-9a-f-]{36}$/);
    // The outputs, with a download link that serves the object.
    const manifest = page.locator('a[download]', { hasText: 'manifest.json' });
    expect(await manifest.count()).toBe(1);
    const download = await page.request.get(`${consoleUrl}${await manifest.getAttribute('href')}`);
    expect(JSON.parse(await download.text()).kind).toBe('batchwire.inference-manifest');
    await shot('job');

    // The same event on the Clients' topics page, filtered by type.
    await page.goto(`${consoleUrl}/#/topics?type=dev.batchwire.inference.succeeded`);
    await expect.poll(() => page.locator('article.event').count(), { timeout: 15_000 }).toBe(1);
    expect(await page.locator('article.event').first().textContent()).toContain(`jobs/${jobId}`);
    await shot('topics');
  });

  it('runs a flow now, as Cloud Scheduler does, and shows the run and the Batch job it started', async () => {
    await page.goto(`${consoleUrl}/#/flows`);
    await page.getByRole('button', { name: 'Run bw-mlops-template-train-acme now' }).click();
    await expect
      .poll(() => page.getByRole('status').filter({ hasText: 'onSchedule answered 202' }).count(), {
        timeout: 30_000,
      })
      .toBe(1);
    const run = page.locator('a[href^="#/flows/train/"]');
    await expect.poll(() => run.count(), { timeout: 15_000 }).toBe(1);
    await shot('flows');
    await run.click();
    await expect.poll(() => page.locator('h1 .state').textContent(), { timeout: 60_000 }).toBe('SUCCEEDED');
    await expect.poll(() => page.locator('a[href^="#/jobs/bw-train-"]').count(), { timeout: 15_000 }).toBe(1);
    await shot('flow-run');
  });

  it('cancels a running job from its page', async () => {
    await dropFile('slow-model', 'hooli', 'slow.jsonl', '{"text":"take your time"}\n');
    await page.goto(`${consoleUrl}/#/jobs?product=slow-model`);
    const jobLink = page.locator('table.jobs a[href^="#/jobs/bw-slow-model-hooli-"]');
    await expect.poll(() => jobLink.count(), { timeout: 30_000 }).toBe(1);
    await jobLink.click();
    await expect.poll(() => page.locator('h1 .state').textContent(), { timeout: 30_000 }).toBe('RUNNING');
    await page.getByRole('button', { name: 'Cancel job' }).click();
    await expect.poll(() => page.locator('h1 .state').textContent(), { timeout: 30_000 }).toBe('CANCELLED');
    expect(await page.getByRole('button', { name: 'Cancel job' }).isDisabled()).toBe(true);
  });

  it('shows a rejected upload with its reason on the Storage page', async () => {
    await dropFile('mlops-template', 'acme', 'notes.txt', 'not a model input\n');
    const rejected = page.locator('table', { hasText: 'notes.txt' });
    await expect.poll(() => rejected.textContent(), { timeout: 30_000 }).toContain('bad-extension');
    await shot('storage');
  });

  it('refuses a change that does not come from the console itself', async () => {
    // Another site in the same browser posting to the console: the Origin header gives it away.
    const crossSite = await fetch(
      `${consoleUrl}/api/upload?product=mlops-template&client=acme&name=planted.jsonl`,
      { method: 'POST', headers: { origin: 'http://evil.example' }, body: '{"text":"x"}\n' },
    );
    expect(crossSite.status).toBe(403);
    const noOrigin = await fetch(`${consoleUrl}/api/flows/bw-mlops-template-train-acme/run`, {
      method: 'POST',
    });
    expect(noOrigin.status).toBe(403);
    // A page on another name for this address (DNS rebinding) is refused even for reads.
    expect(await statusWithHost(`${consoleUrl}/api/overview`, 'evil.example')).toBe(421);
    // And nothing was planted.
    const listing = await fetch(`${consoleUrl}/api/storage?prefix=mlops-template/acme/inputs/`);
    const { objects } = (await listing.json()) as { objects: Array<{ name: string }> };
    expect(objects.map((o) => o.name)).not.toContain('mlops-template/acme/inputs/planted.jsonl');
  });

  it('shows a crashed function as such on the Overview, live', async () => {
    await page.goto(consoleUrl);
    await expect.poll(() => page.locator('.health li.up').count(), { timeout: 15_000 }).toBe(9);
    await shot('overview');
    // Crash onComplete: kill the process that listens on its port (a grandchild of this test).
    const port = new URL(platform.env.BATCHWIRE_ON_COMPLETE_URL as string).port;
    const listening = execFileSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' });
    const pid = Number(/pid=(\d+)/.exec(listening)?.[1]);
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 'SIGKILL');
    // Down now, or already restarted by the platform's supervisor, which the Overview says.
    const onComplete = page.locator('.health li', { hasText: 'onComplete' });
    await expect
      .poll(() => onComplete.textContent(), { timeout: 15_000 })
      .toMatch(/not answering|restarting|restarted 1×/);
  });

  it('shows an error from the platform where it happened, in plain words', async () => {
    await page.goto(`${consoleUrl}/#/jobs/bw-no-such-job`);
    await expect
      .poll(() => page.getByRole('alert').textContent(), { timeout: 15_000 })
      .toMatch(/Reading the job from Batch:.*not found/i);
  });
});
