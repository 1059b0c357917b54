import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Message, Subscription } from '@google-cloud/pubsub';
import { parseEnvFile } from '#local/platform/env-file.js';
import { DEFAULT_PORTS, type PortName, portFlag } from '#local/platform/ports.js';
import { loadConfig } from '#shared/config/load.js';
import { outputTopic } from '#shared/plan/names.js';
import type { BenchMeasurement, Benchmark } from './bench.js';
import { treeCpuSeconds, watchTree } from './process-tree.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(REPO, 'dist', 'scripts', 'cli.js');
const CONFIG = join(REPO, 'batchwire.yaml');
const PRODUCT = 'mlops-template';
const CLIENTS = ['acme', 'globex'];
/** What a local Batch task's command line contains (the config's `local.images` commands). */
const TASK_PATTERNS = ['dist/tasks/'];
/**
 * The kind of a platform process, from its command line: `batchwire dev` itself, Google's
 * Pub/Sub emulator, each function (by its functions-framework target), the Batch tasks.
 */
function processKind(args: string): string {
  if (TASK_PATTERNS.some((pattern) => args.includes(pattern))) return 'task';
  if (args.includes('pubsub-emulator')) return 'emulator';
  const target = /--target=(\S+)/.exec(args)?.[1];
  if (target) return target;
  if (args.includes('cli.js dev')) return 'dev';
  return 'other';
}
/** The kinds reported one by one, in this order (tasks by their reaped time). */
const REPORTED_KINDS = ['dev', 'emulator', 'onUpload', 'onComplete', 'onSchedule'];
/** The targets of issue 9 on a 2-core machine. */
const TARGET = { resultsPerSecond: 3, rssMiB: 1024 };

/** `BENCH_BURST_N` uploads (default 500); `BENCH_BURST_MAX_TASKS` passes `--max-tasks`. */
function settings() {
  const n = Number(process.env.BENCH_BURST_N ?? 500);
  if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_BURST_N must be a positive integer, got ${n}`);
  const maxTasks = process.env.BENCH_BURST_MAX_TASKS;
  return { n, maxTasks };
}

interface Platform {
  pid: number;
  env: Record<string, string>;
  /** The slot limit the platform announced. */
  slotLimit: number;
  stop(): Promise<void>;
}

/**
 * Starts the platform as a user does (`batchwire dev`, its own Pub/Sub emulator, any free ports, a
 * fresh working directory) and waits for `.batchwire/env`, written once everything answers.
 */
async function startPlatform(
  maxTasks: string | undefined,
  log: (message: string) => void,
): Promise<Platform> {
  const workDir = mkdtempSync(join(tmpdir(), 'batchwire-burst-'));
  // BENCH_BURST_PROFILE=<dir> writes a V8 CPU profile of `batchwire dev` there when it stops.
  // The profiler keeps its samples in the process until then: with it, dev's RSS grows about
  // 1 MiB per second of the run and its CPU per result nearly doubles, so read dev's memory and
  // CPU from a run without it.
  const profile = process.env.BENCH_BURST_PROFILE;
  const args = [
    ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []),
    // As `npm start` and the `batchwire` bin start it (see scripts/cli.ts).
    '--optimize-for-size',
    CLI,
    'dev',
    '--json',
    '--no-schedules',
  ];
  // Port 0 for every service: each binds a port of its own choosing; `.batchwire/env` says which.
  for (const name of Object.keys(DEFAULT_PORTS) as PortName[]) args.push(portFlag(name), '0');
  if (maxTasks) args.push('--max-tasks', maxTasks);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    BATCHWIRE_CONFIG: CONFIG,
    METADATA_SERVER_DETECTION: 'none',
  };
  delete env.PUBSUB_EMULATOR_HOST;
  let output = '';
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: workDir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });
  const stop = async () => {
    if (!hasExited) child.kill('SIGINT');
    // BENCH_BURST_OUTPUT=<file> keeps what the platform printed, to see where time went.
    if (process.env.BENCH_BURST_OUTPUT) writeFileSync(process.env.BENCH_BURST_OUTPUT, output);
    const killed = await Promise.race([
      exited.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 30_000).unref()),
    ]);
    if (!killed) child.kill('SIGKILL');
    rmSync(workDir, { recursive: true, force: true });
  };

  const envFile = join(workDir, '.batchwire', 'env');
  const deadline = Date.now() + 120_000;
  while (!existsSync(envFile)) {
    if (hasExited || Date.now() > deadline) {
      await stop();
      throw new Error(`batchwire dev did not start:\n${output.slice(-4_000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const announced = output
    .split('\n')
    .map((line) => {
      try {
        return JSON.parse(line) as { kind?: string; limit?: number };
      } catch {
        return {};
      }
    })
    .find((entry) => entry.kind === 'slots' && typeof entry.limit === 'number');
  log(`platform ready (pid ${child.pid}, ${announced?.limit ?? '?'} task slots)`);
  return {
    pid: child.pid as number,
    env: parseEnvFile(readFileSync(envFile, 'utf8')),
    slotLimit: announced?.limit ?? Number.NaN,
    stop,
  };
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/** Two records, as a small client upload. */
function input(index: number): string {
  return `${JSON.stringify({ id: `r-${index}-0`, text: 'great fit, would buy again' })}\n${JSON.stringify({ id: `r-${index}-1`, text: 'slow delivery' })}\n`;
}

/**
 * A burst of uploads through the whole local platform, as issue 9 measured it: N inputs across
 * two clients uploaded at once with the real Storage client, each result read from the client's
 * topic with the real Pub/Sub client. Reports throughput, upload→result latency (from the start
 * of the upload), the platform's peak task processes and memory (its whole process tree,
 * sampled), lost and duplicated results, and the burst's throughput against a single upload's,
 * measured first in the same run.
 */
export const benchmark: Benchmark = {
  name: 'burst',
  description: `N uploads (BENCH_BURST_N, default 500) across two clients through the whole local platform: ≥ ${TARGET.resultsPerSecond} results/s, 0 lost, 0 duplicates, tasks ≤ slot limit, RSS < 1 GiB`,
  async run({ log }) {
    const { n, maxTasks } = settings();
    // The clients below talk to the local platform only: never probe the GCE metadata server.
    process.env.METADATA_SERVER_DETECTION ??= 'none';
    const config = loadConfig({ ...process.env, BATCHWIRE_CONFIG: CONFIG });
    const platform = await startPlatform(maxTasks, log);
    const watcher = watchTree(platform.pid, TASK_PATTERNS, processKind);
    const subscriptions: Subscription[] = [];
    const [{ Storage }, { PubSub }] = await Promise.all([
      import('@google-cloud/storage'),
      import('@google-cloud/pubsub'),
    ]);
    const storage = new Storage({
      apiEndpoint: platform.env.STORAGE_EMULATOR_HOST,
      projectId: config.project,
    });
    const pubsub = new PubSub({
      projectId: config.project,
      apiEndpoint: platform.env.PUBSUB_EMULATOR_HOST,
      emulatorMode: true,
    });
    try {
      // Every result, by input URI: when it arrived and its CloudEvent id.
      const results = new Map<string, Array<{ at: number; id: string; type: string }>>();
      let arrivals = 0;
      const onMessage = (message: Message) => {
        message.ack();
        try {
          const data = JSON.parse(message.data.toString()) as { input?: { uri?: string } };
          const uri = data.input?.uri ?? '(no input)';
          const list = results.get(uri) ?? [];
          list.push({
            at: Date.now(),
            id: message.attributes['ce-id'] ?? '',
            type: message.attributes['ce-type'] ?? '',
          });
          results.set(uri, list);
          arrivals++;
        } catch {
          log(`a message that is not a result: ${message.data.toString().slice(0, 200)}`);
        }
      };
      const run = Date.now().toString(36);
      for (const client of CLIENTS) {
        const [subscription] = await pubsub
          .topic(outputTopic(PRODUCT, client))
          .createSubscription(`bench-burst-${client}-${run}`, { ackDeadlineSeconds: 60 });
        subscription.on('message', onMessage);
        subscription.on('error', (err) => log(`subscription error: ${err.message}`));
        subscriptions.push(subscription);
      }
      const bucket = storage.bucket(config.bucket);
      const uriOf = (name: string) => `gs://${config.bucket}/${name}`;
      const waitForResults = async (uris: string[], timeoutMs: number) => {
        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline && uris.some((uri) => !results.has(uri))) {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      };

      // 1. A single upload on the idle platform: the baseline throughput.
      const single = `${PRODUCT}/${CLIENTS[0]}/inputs/bench-${run}-single.jsonl`;
      const singleStart = Date.now();
      await bucket.file(single).save(input(-1), { resumable: false, contentType: 'application/x-ndjson' });
      await waitForResults([uriOf(single)], 120_000);
      const singleResult = results.get(uriOf(single))?.[0];
      if (!singleResult) throw new Error('the single upload produced no result within 120 s');
      const singleSeconds = (singleResult.at - singleStart) / 1000;
      log(`single upload: result after ${singleSeconds.toFixed(2)} s`);

      // 2. The burst: every upload at once, alternating clients.
      log(`uploading ${n} inputs at once…`);
      const uploads = Array.from({ length: n }, (_, index) => ({
        name: `${PRODUCT}/${CLIENTS[index % CLIENTS.length]}/inputs/bench-${run}-${String(index).padStart(5, '0')}.jsonl`,
        start: 0,
        error: undefined as string | undefined,
      }));
      const cpuBefore = await treeCpuSeconds(platform.pid, processKind);
      const burstStart = Date.now();
      await Promise.all(
        uploads.map(async (upload, index) => {
          upload.start = Date.now();
          try {
            await bucket
              .file(upload.name)
              .save(input(index), { resumable: false, contentType: 'application/x-ndjson' });
          } catch (err) {
            upload.error = (err as Error).message;
          }
        }),
      );
      const uploadErrors = uploads.filter((upload) => upload.error);
      log(
        `uploads done in ${((Date.now() - burstStart) / 1000).toFixed(1)} s, ${uploadErrors.length} failed${uploadErrors[0] ? ` (first: ${uploadErrors[0].error})` : ''}`,
      );
      const accepted = uploads.filter((upload) => !upload.error);
      const progress = setInterval(() => log(`${arrivals - 1}/${accepted.length} results`), 10_000);
      // A generous bound: the slowest acceptable rate is well above one result per 2 s.
      await waitForResults(
        accepted.map((upload) => uriOf(upload.name)),
        Math.max(120_000, accepted.length * 2_000),
      );
      clearInterval(progress);
      const cpuAfter = await treeCpuSeconds(platform.pid, processKind);
      const cpuSeconds = cpuAfter.total - cpuBefore.total;
      const taskCpuSeconds = cpuAfter.reapedByRoot - cpuBefore.reapedByRoot;
      // Duplicates arrive late if at all: give them a few seconds before counting.
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      const tree = await watcher.stop();

      const latencies: number[] = [];
      let lost = 0;
      let duplicated = 0;
      let failed = 0;
      let lastAt = burstStart;
      for (const upload of accepted) {
        const received = results.get(uriOf(upload.name)) ?? [];
        if (received.length === 0) {
          lost++;
          continue;
        }
        const first = received.reduce((a, b) => (a.at <= b.at ? a : b));
        latencies.push((first.at - upload.start) / 1000);
        lastAt = Math.max(lastAt, first.at);
        duplicated += received.length - 1;
        if (!first.type.endsWith('.succeeded')) failed++;
      }
      const burstSeconds = (lastAt - burstStart) / 1000;
      const resultsPerSecond = latencies.length / burstSeconds;
      const singlePerSecond = 1 / singleSeconds;
      log(
        `${latencies.length} results in ${burstSeconds.toFixed(1)} s; ${tree.samples} process samples; ${failed} not succeeded`,
      );
      log(`largest processes at peak RSS: ${tree.largestAtPeak.join('; ')}`);
      const cpuPerResult = cpuSeconds / Math.max(1, latencies.length);
      const taskCpuPerResult = taskCpuSeconds / Math.max(1, latencies.length);
      const measurements: BenchMeasurement[] = [
        { metric: `uploads (N)`, value: n, unit: 'uploads' },
        { metric: 'upload errors', value: uploadErrors.length, unit: 'uploads', expect: { max: 0 } },
        {
          metric: 'results per second (burst)',
          value: resultsPerSecond,
          unit: 'results/s',
          expect: { min: TARGET.resultsPerSecond },
        },
        { metric: 'results per second (single upload)', value: singlePerSecond, unit: 'results/s' },
        { metric: 'burst / single throughput', value: resultsPerSecond / singlePerSecond, unit: '×' },
        { metric: 'upload→result p50', value: percentile(latencies, 50), unit: 's' },
        { metric: 'upload→result p95', value: percentile(latencies, 95), unit: 's' },
        { metric: 'lost results', value: lost, unit: 'uploads', expect: { max: 0 } },
        { metric: 'duplicated results', value: duplicated, unit: 'messages', expect: { max: 0 } },
        { metric: 'results not succeeded', value: failed, unit: 'results', expect: { max: 0 } },
        // The machine may be shared (the wall clock then says little): the platform's own CPU
        // per result, and what this machine's cores would sustain at that cost if idle.
        { metric: 'platform CPU per result (process tree)', value: cpuPerResult, unit: 'CPU s' },
        { metric: '… of which the task processes', value: taskCpuPerResult, unit: 'CPU s' },
        ...REPORTED_KINDS.map((kind) => ({
          metric: `… of which ${kind}`,
          value:
            ((cpuAfter.byKind[kind] ?? 0) - (cpuBefore.byKind[kind] ?? 0)) / Math.max(1, latencies.length),
          unit: 'CPU s',
        })),
        {
          metric: `results per second if ${availableParallelism()} cores were idle (from CPU)`,
          value: availableParallelism() / cpuPerResult,
          unit: 'results/s',
        },
        { metric: 'task slot limit', value: platform.slotLimit, unit: 'slots' },
        {
          metric: 'peak task processes (sampled)',
          value: tree.peakMatching,
          unit: 'processes',
          expect: { max: platform.slotLimit },
        },
        {
          metric: 'peak platform RSS (process tree)',
          value: tree.peakRssBytes / 1024 / 1024,
          unit: 'MiB',
          expect: { max: TARGET.rssMiB },
        },
        // Each kind's own peak (not necessarily at the same moment as the tree's).
        ...[...REPORTED_KINDS, 'task'].map((kind) => ({
          metric: `peak RSS of ${kind === 'task' ? 'the task processes' : kind}`,
          value: (tree.peakRssBytesByKind[kind] ?? 0) / 1024 / 1024,
          unit: 'MiB',
        })),
      ];
      return measurements;
    } finally {
      await watcher.stop();
      await Promise.allSettled(subscriptions.map((subscription) => subscription.close()));
      await pubsub.close().catch(() => {});
      await platform.stop();
    }
  },
};
