/**
 * The benchmark contract: a module `bench/<name>.bench.ts` exports `benchmark`; `bench/run.ts`
 * finds every such module in the build, runs it, and prints one table.
 */
export interface Benchmark {
  /** Short, kebab-case; `npm run bench -- <name>` runs only the benchmarks whose name contains it. */
  name: string;
  /** One line: what is measured and what a good result looks like. */
  description: string;
  run(context: BenchContext): Promise<BenchMeasurement[]>;
}

export interface BenchContext {
  /** `BENCH_LARGE=1`: also run the slow, large variants (e.g. a 1 GB input). */
  large: boolean;
  /** Progress lines, printed to stderr so the table on stdout stays clean. */
  log(message: string): void;
}

export interface BenchMeasurement {
  metric: string;
  value: number;
  /** e.g. 'MiB', 'records/s', '×' for a ratio. */
  unit: string;
  /** What the value should be: shown next to it, and a failed expectation makes the run exit 1. */
  expect?: { max?: number; min?: number };
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
