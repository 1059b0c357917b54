import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { type BenchMeasurement, type Benchmark, median } from './bench.js';

const run = promisify(execFile);
const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ENTRY = pathToFileURL(join(REPO, 'dist', 'functions', 'index.js')).href;
const CLIENTS = ['batch', 'storage', 'pubsub', 'workflows', 'run'];

/**
 * What each fresh process imports, timed from just before the first import to just after the
 * last: node's own boot is the same for all three, so leaving it out sharpens the ratios.
 */
const SCENARIOS = {
  // The floor: functions-framework itself, which every function instance loads.
  baseline: `await import('@google-cloud/functions-framework');`,
  // The package's main: config loaded and validated, all three functions registered.
  functions: `await import(${JSON.stringify(ENTRY)});`,
  // What the entry point would cost if the adapters imported their clients at top level.
  eager: `${CLIENTS.map((client) => `await import('@google-cloud/${client}');`).join('\n')}
await import(${JSON.stringify(ENTRY)});`,
} as const;
type Scenario = keyof typeof SCENARIOS;

/** Runs one scenario in a fresh node process; returns the import time in ms. */
async function importMs(scenario: Scenario): Promise<number> {
  const script = `const start = performance.now();
${SCENARIOS[scenario]}
console.log('BWIMPORTMS ' + (performance.now() - start));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd: REPO,
    env: {
      PATH: process.env.PATH ?? '',
      BATCHWIRE_CONFIG: join(REPO, 'batchwire.yaml'),
      METADATA_SERVER_DETECTION: 'none',
      LOG_LEVEL: 'silent',
    },
    timeout: 30_000,
  });
  const line = stdout.split('\n').find((entry) => entry.startsWith('BWIMPORTMS '));
  if (!line) throw new Error(`${scenario}: the child printed no timing:\n${stdout}`);
  return Number(line.slice('BWIMPORTMS '.length));
}

/**
 * Cold-start cost of the lazy-client rule: the median import time, over fresh processes, of
 * functions-framework alone, of the entry point with all three functions registered, and of the
 * entry point plus all five Google clients imported eagerly. Reported as ratios, which hold
 * across machines where milliseconds do not: functions/baseline near 1 (registration is cheap),
 * eager/functions well above 1 (what lazy loading saves).
 */
export const benchmark: Benchmark = {
  name: 'cold-start',
  description:
    'import time of dist/functions/index.js vs functions-framework alone and vs eager Google clients (median of fresh processes)',
  async run({ large, log }) {
    const runs = large ? 31 : 9;
    const scenarios = Object.keys(SCENARIOS) as Scenario[];
    // One untimed round warms the OS file cache, so the first timed process is not the outlier.
    for (const scenario of scenarios) await importMs(scenario);
    const times: Record<Scenario, number[]> = { baseline: [], functions: [], eager: [] };
    // Round-robin, one process at a time: drift in machine load spreads over all scenarios
    // instead of skewing one, and no process competes with another for a core.
    for (let round = 0; round < runs; round++) {
      for (const scenario of scenarios) times[scenario].push(await importMs(scenario));
    }
    const ms = {
      baseline: median(times.baseline),
      functions: median(times.functions),
      eager: median(times.eager),
    };
    log(
      `median import ms over ${runs} processes: baseline ${ms.baseline.toFixed(0)}, functions ${ms.functions.toFixed(0)}, eager ${ms.eager.toFixed(0)}`,
    );
    const measurements: BenchMeasurement[] = [
      { metric: 'baseline import (functions-framework), median', value: ms.baseline, unit: 'ms' },
      { metric: 'functions import (3 registered), median', value: ms.functions, unit: 'ms' },
      { metric: 'eager import (functions + 5 clients), median', value: ms.eager, unit: 'ms' },
      { metric: 'functions / baseline', value: ms.functions / ms.baseline, unit: '×' },
      // The saving the rule buys: eager loading must cost clearly more than the lazy entry point.
      { metric: 'eager / functions', value: ms.eager / ms.functions, unit: '×', expect: { min: 1.5 } },
      { metric: 'saved by lazy clients, median', value: ms.eager - ms.functions, unit: 'ms' },
    ];
    return measurements;
  },
};
