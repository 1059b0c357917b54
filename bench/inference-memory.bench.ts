import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Storage } from '@google-cloud/storage';
import { startStorageServer } from '#local/storage/server.js';
import type { BenchMeasurement, Benchmark } from './bench.js';

const MiB = 1024 * 1024;
const INFERENCE = join(dirname(fileURLToPath(import.meta.url)), '../reference-tasks/inference/main.js');

/** Writes a JSONL file of about `bytes` bytes: varied texts, as a client's upload would be. */
async function writeInput(path: string, bytes: number): Promise<number> {
  const out = createWriteStream(path);
  let written = 0;
  let records = 0;
  const words = ['alpha', 'Beta', 'gamma', 'délta', 'epsilon', 'zeta', 'ETA', 'théta', 'iota', 'kappa'];
  while (written < bytes) {
    let batch = '';
    for (let i = 0; i < 1000; i++, records++) {
      const text = Array.from(
        { length: 8 + (records % 13) },
        (_, k) => words[(records * 7 + k * 3) % words.length],
      ).join(' ');
      batch += `${JSON.stringify({ id: records, text, source: 'bench', score: records % 100 })}\n`;
    }
    written += Buffer.byteLength(batch);
    if (!out.write(batch)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return written;
}

interface ShardReport {
  records: number;
  seconds: number;
  maxRssBytes: number;
}

/** Runs the compiled inference task as one Batch task and reads its final log line. */
async function runInference(env: Record<string, string>): Promise<ShardReport> {
  const child = spawn(process.execPath, [INFERENCE], {
    env: { PATH: process.env.PATH ?? '', METADATA_SERVER_DETECTION: 'none', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`inference task exited ${code}: ${stderr}`);
  const finished = stdout
    .split('\n')
    .filter((line) => line.includes('"shard finished"'))
    .map((line) => JSON.parse(line) as ShardReport)[0];
  if (!finished) throw new Error(`inference task logged no "shard finished" line:\n${stdout}`);
  return finished;
}

/**
 * Peak RSS of the inference task streaming a small and a large input through the local GCS
 * server (directory mode, so the server's memory is not the task's): the task streams both
 * ways, so its peak should not grow with the input (ratio ≈ 1).
 */
export const benchmark: Benchmark = {
  name: 'inference-memory',
  description: 'inference task peak RSS, 16 MB vs 256 MB input (flat memory ⇒ ratio ≈ 1), and records/s',
  async run({ large, log }) {
    const dataDir = await mkdtemp(join(tmpdir(), 'batchwire-bench-'));
    const server = await startStorageServer({ dataDir: join(dataDir, 'gcs') });
    try {
      const storage = new Storage({ apiEndpoint: server.url, projectId: 'batchwire-local' });
      const [bucket] = await storage.createBucket('bench');
      const sizes = large ? [16, 256, 1024] : [16, 256];
      const reports = new Map<number, ShardReport & { bytes: number }>();
      for (const size of sizes) {
        const path = join(dataDir, `input-${size}.jsonl`);
        const bytes = await writeInput(path, size * MiB);
        const started = Date.now();
        await bucket.upload(path, { destination: `bench/acme/inputs/input-${size}.jsonl` });
        await rm(path);
        log(`${size} MB input uploaded in ${Date.now() - started} ms`);
        const report = await runInference({
          STORAGE_EMULATOR_HOST: server.url,
          BATCHWIRE_INPUT_URI: `gs://bench/bench/acme/inputs/input-${size}.jsonl`,
          BATCHWIRE_OUTPUT_URI: `gs://bench/bench/acme/outputs/${size}/`,
        });
        log(
          `${size} MB: ${report.records} records in ${report.seconds} s, peak RSS ${(report.maxRssBytes / MiB).toFixed(1)} MiB`,
        );
        reports.set(size, { ...report, bytes });
      }
      const measurements: BenchMeasurement[] = [];
      for (const [size, report] of reports) {
        measurements.push({
          metric: `peak RSS, ${size} MB input`,
          value: report.maxRssBytes / MiB,
          unit: 'MiB',
        });
      }
      const small = reports.get(16) as ShardReport;
      for (const size of sizes.slice(1)) {
        const report = reports.get(size) as ShardReport;
        measurements.push({
          metric: `peak RSS ratio ${size} MB / 16 MB`,
          value: report.maxRssBytes / small.maxRssBytes,
          unit: '×',
          // Flat memory: 16× the input may cost a little more heap churn, never 16× the memory.
          expect: { max: 1.5 },
        });
      }
      if (large) {
        // Past the first few hundred MB the heap has reached its working size: the telling ratio.
        const mid = reports.get(256) as ShardReport;
        const top = reports.get(1024) as ShardReport;
        measurements.push({
          metric: 'peak RSS ratio 1024 MB / 256 MB',
          value: top.maxRssBytes / mid.maxRssBytes,
          unit: '×',
          expect: { max: 1.2 },
        });
      }
      const biggest = sizes[sizes.length - 1] as number;
      const report = reports.get(biggest) as ShardReport & { bytes: number };
      measurements.push(
        {
          metric: `throughput, ${biggest} MB input`,
          value: Math.round(report.records / report.seconds),
          unit: 'records/s',
        },
        {
          metric: `throughput, ${biggest} MB input`,
          value: report.bytes / MiB / report.seconds,
          unit: 'MiB/s',
        },
      );
      return measurements;
    } finally {
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  },
};
