import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBatchService } from '#local/batch/server.js';
import { createJobsCache } from '#local/console/jobs-cache.js';
import { createPlatformReader, jobRow, pageJobs } from '#local/console/platform-reader.js';
import type { Config } from '#shared/config/schema.js';
import { type BenchMeasurement, type Benchmark, median } from './bench.js';

const PROJECT = 'bench-console';
const REGION = 'europe-west2';

async function timeMs(action: () => Promise<unknown>, runs: number): Promise<number> {
  await action(); // warm the channel
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await action();
    times.push(performance.now() - start);
  }
  return median(times);
}

/**
 * The console with 1,000 Batch jobs: what one Jobs page and one job's page cost through the
 * console's reader, as ratios to the floor, a single raw Batch call for the same data (one
 * listJobs page of 50, one getJob). The jobs use an image with no local stand-in, so they fail
 * at once and run no process: only the reading is measured.
 */
export const benchmark: Benchmark = {
  name: 'console-jobs',
  description: 'console Jobs page and job page with 1,000 jobs vs one raw Batch call (median ms, ratio)',
  async run({ large, log }) {
    const jobs = large ? 5_000 : 1_000;
    const runs = large ? 31 : 9;
    process.env.METADATA_SERVER_DETECTION = 'none';
    const logDir = mkdtempSync(join(tmpdir(), 'bench-console-'));
    const { createLogger } = await import('#shared/runtime/logger.js');
    const batchService = await startBatchService({
      port: 0,
      images: {},
      logDir,
      log: createLogger({ name: 'bench-batch', level: 'silent' }),
    });
    const { BatchServiceClient } = await import('@google-cloud/batch');
    const { credentials } = await import('@grpc/grpc-js');
    const batch = new BatchServiceClient({
      apiEndpoint: '127.0.0.1',
      port: batchService.port,
      sslCreds: credentials.createInsecure(),
    });
    const parent = `projects/${PROJECT}/locations/${REGION}`;
    try {
      log(`creating ${jobs} jobs`);
      for (let i = 0; i < jobs; i++) {
        await batch.createJob({
          parent,
          jobId: `bw-bench-acme-${String(i).padStart(5, '0')}`,
          job: {
            labels: { product: 'bench', client: i % 2 === 0 ? 'acme' : 'globex', trigger: 'upload' },
            taskGroups: [
              {
                taskCount: 4,
                taskSpec: {
                  runnables: [{ container: { imageUri: 'example.invalid/none:latest' } }],
                  environment: { variables: { BATCHWIRE_INPUT_URI: `gs://b/bench/acme/inputs/${i}.jsonl` } },
                },
              },
            ],
          },
        });
      }
      const config = { project: PROJECT, region: REGION, bucket: 'b', products: {} } as unknown as Config;
      const unused = undefined as never;
      const reader = createPlatformReader(config, {
        batch,
        executions: unused,
        runExecutions: unused,
        bucket: unused,
        schedulerUrl: 'http://127.0.0.1:9',
      });
      const rawPage = await timeMs(
        () => batch.listJobs({ parent, pageSize: 50 }, { autoPaginate: false }),
        runs,
      );
      const cache = createJobsCache({ list: async () => (await reader.listAllJobs()).map(jobRow) });
      // Cold: something just changed, so the page costs the one shared listJobs call.
      const coldPage = await timeMs(async () => {
        cache.invalidate();
        return pageJobs(await cache.rows(), { pageSize: 50 });
      }, runs);
      // Warm: nothing changed since the last read (another tab, the next page, a filter).
      const warmPage = await timeMs(
        async () => pageJobs(await cache.rows(), { pageSize: 50, client: 'acme', state: 'FAILED' }),
        runs,
      );
      const name = `${parent}/jobs/bw-bench-acme-00500`;
      const rawJob = await timeMs(() => batch.getJob({ name }), runs);
      // The job page without its outputs (no bucket here): job, tasks and their attempts.
      const consoleJob = await timeMs(async () => {
        const [job] = await batch.getJob({ name });
        const [tasks] = await batch.listTasks({ parent: `${name}/taskGroups/group0` });
        return [job, tasks];
      }, runs);
      log(
        `raw page ${rawPage.toFixed(1)} ms, cold ${coldPage.toFixed(1)} ms, warm ${warmPage.toFixed(2)} ms`,
      );
      const results: BenchMeasurement[] = [
        { metric: `one raw listJobs page (50 of ${jobs})`, value: rawPage, unit: 'ms' },
        { metric: 'console jobs page, after a change', value: coldPage, unit: 'ms' },
        { metric: 'console jobs page, nothing changed (filtered)', value: warmPage, unit: 'ms' },
        // The shared list costs a few raw pages; a page from it costs a sliver of one.
        { metric: 'after a change / raw page', value: coldPage / rawPage, unit: '×', expect: { max: 10 } },
        { metric: 'nothing changed / raw page', value: warmPage / rawPage, unit: '×', expect: { max: 0.2 } },
        {
          metric: 'job page (job + tasks) / raw getJob',
          value: consoleJob / rawJob,
          unit: '×',
          expect: { max: 5 },
        },
      ];
      return results;
    } finally {
      await batch.close();
      await batchService.close();
      rmSync(logDir, { recursive: true, force: true });
    }
  },
};
