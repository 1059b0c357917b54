import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BenchMeasurement, type Benchmark, median } from './bench.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * What each fresh process runs: bare node (the floor no task can go below), the inference task
 * as tsc compiles it (Storage loaded from node_modules), and as the images and `local.images`
 * run it (bundled by dist/reference-tasks/bundle.js).
 */
const SCENARIOS = {
  bare: ['-e', '0'],
  compiled: [join(REPO, 'dist', 'reference-tasks', 'inference', 'main.js')],
  bundled: [join(REPO, 'dist', 'tasks', 'inference.js')],
} as const;
type Scenario = keyof typeof SCENARIOS;

/**
 * CPU seconds (user + system) of this process's children that have exited and been reaped
 * (`/proc/self/stat` cutime + cstime): read around one child at a time, it is that child's CPU,
 * start-up included, which the child could not measure itself.
 */
async function reapedChildrenCpuSeconds(ticksPerSecond = 100): Promise<number> {
  const stat = await readFile('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / ticksPerSecond;
}

/**
 * A Storage endpoint that answers every request 404 (no such object): the task starts, loads the
 * client, asks for its input's metadata once, and exits 1. What is measured is start-up, not
 * the work, which the burst benchmark covers.
 */
async function startNotFoundStorage(): Promise<{ server: Server; host: string }> {
  const server = createServer((request, response) => {
    request.resume();
    response.writeHead(404, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ error: { code: 404, message: 'No such object' } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, host: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Runs one scenario in a fresh node process; returns its CPU seconds. */
async function startCpuSeconds(scenario: Scenario, storageHost: string): Promise<number> {
  const before = await reapedChildrenCpuSeconds();
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, SCENARIOS[scenario], {
      cwd: REPO,
      env: {
        PATH: process.env.PATH ?? '',
        METADATA_SERVER_DETECTION: 'none',
        GOOGLE_CLOUD_PROJECT: 'batchwire-bench',
        STORAGE_EMULATOR_HOST: storageHost,
        BATCHWIRE_INPUT_URI: 'gs://bench-bucket/mlops-template/acme/inputs/texts.jsonl',
        BATCHWIRE_OUTPUT_URI: 'gs://bench-bucket/mlops-template/acme/outputs/bench/',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 60_000,
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (exitCode) => resolve({ code: exitCode, stderr }));
  });
  const seconds = (await reapedChildrenCpuSeconds()) - before;
  // A task that failed before reaching Storage would look cheap: only the expected answer counts.
  const expected = scenario === 'bare' ? code === 0 : code === 1 && stderr.includes('does not exist');
  if (!expected) throw new Error(`${scenario}: unexpected exit ${code}:\n${stderr.slice(0, 2000)}`);
  return seconds;
}

/**
 * Start-up CPU of a reference task (issue 9: on 2 cores, task start-up capped a burst's
 * throughput): the median CPU, over fresh processes, of bare node, of the inference task as tsc
 * compiles it and as it ships bundled, each up to its first Storage answer. Reported as ratios
 * in the same run, which hold across machines where CPU-seconds do not.
 */
export const benchmark: Benchmark = {
  name: 'task-start',
  description:
    'CPU of an inference task up to its first Storage call: bundled (dist/tasks) vs compiled (dist/reference-tasks) vs bare node (median of fresh processes)',
  async run({ large, log }) {
    if (process.platform !== 'linux') throw new Error('task-start reads /proc/self/stat (Linux only)');
    const runs = large ? 21 : 7;
    const scenarios = Object.keys(SCENARIOS) as Scenario[];
    const { server, host } = await startNotFoundStorage();
    try {
      // One untimed round warms the OS file cache, so the first timed process is not the outlier.
      for (const scenario of scenarios) await startCpuSeconds(scenario, host);
      const seconds: Record<Scenario, number[]> = { bare: [], compiled: [], bundled: [] };
      // Round-robin, one process at a time: drift in machine load spreads over all scenarios.
      for (let round = 0; round < runs; round++) {
        for (const scenario of scenarios) seconds[scenario].push(await startCpuSeconds(scenario, host));
      }
      const cpu = {
        bare: median(seconds.bare),
        compiled: median(seconds.compiled),
        bundled: median(seconds.bundled),
      };
      log(
        `median CPU-s over ${runs} runs: bare ${cpu.bare.toFixed(2)}, compiled ${cpu.compiled.toFixed(2)}, bundled ${cpu.bundled.toFixed(2)}`,
      );
      const measurements: BenchMeasurement[] = [
        { metric: 'bundled task start CPU', value: Math.round(cpu.bundled * 1000), unit: 'ms' },
        { metric: 'compiled task start CPU', value: Math.round(cpu.compiled * 1000), unit: 'ms' },
        { metric: 'bare node start CPU', value: Math.round(cpu.bare * 1000), unit: 'ms' },
        // The bundle must keep most of its saving: under 0.75 of the compiled task's CPU.
        {
          metric: 'bundled / compiled start CPU',
          value: cpu.bundled / cpu.compiled,
          unit: '×',
          expect: { max: 0.75 },
        },
        // What the task adds to node's own start, the part bundling can change.
        {
          metric: 'bundled / compiled CPU above bare node',
          value: (cpu.bundled - cpu.bare) / (cpu.compiled - cpu.bare),
          unit: '×',
        },
      ];
      return measurements;
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  },
};
