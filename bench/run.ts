/**
 * `npm run bench`: runs every `bench/*.bench.ts` module (compiled to dist/bench/*.bench.js)
 * and prints a table. Arguments filter by benchmark name; `BENCH_LARGE=1` adds large variants.
 * Exits 1 when a measurement misses its expectation, so CI can run it.
 */
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchMeasurement, Benchmark } from './bench.js';

const here = dirname(fileURLToPath(import.meta.url));
const filters = process.argv.slice(2);
const large = process.env.BENCH_LARGE === '1';

const modules = (await readdir(here)).filter((file) => file.endsWith('.bench.js')).sort();
const rows: Array<{ benchmark: string } & BenchMeasurement> = [];
let failed = false;
for (const file of modules) {
  const { benchmark } = (await import(pathToFileURL(join(here, file)).href)) as { benchmark?: Benchmark };
  if (!benchmark) throw new Error(`${file} exports no "benchmark"`);
  if (filters.length > 0 && !filters.some((filter) => benchmark.name.includes(filter))) continue;
  process.stderr.write(`▶ ${benchmark.name}: ${benchmark.description}\n`);
  try {
    const measurements = await benchmark.run({
      large,
      log: (message) => process.stderr.write(`  ${benchmark.name}: ${message}\n`),
    });
    for (const measurement of measurements) rows.push({ benchmark: benchmark.name, ...measurement });
  } catch (error) {
    failed = true;
    process.stderr.write(`  ${benchmark.name} failed: ${(error as Error).stack ?? error}\n`);
  }
}

const format = (value: number) =>
  Number.isInteger(value)
    ? value.toLocaleString('en-GB')
    : value.toLocaleString('en-GB', { maximumFractionDigits: 2 });
const table = rows.map((row) => {
  const { min, max } = row.expect ?? {};
  const ok = (min === undefined || row.value >= min) && (max === undefined || row.value <= max);
  if (!ok) failed = true;
  const bound = [min === undefined ? '' : `≥ ${format(min)}`, max === undefined ? '' : `≤ ${format(max)}`]
    .filter(Boolean)
    .join(' ');
  return [
    row.benchmark,
    row.metric,
    format(row.value),
    row.unit,
    bound ? `${bound} ${ok ? 'ok' : 'MISSED'}` : '',
  ];
});
const header = ['benchmark', 'metric', 'value', 'unit', 'expected'];
const widths = header.map((title, column) =>
  Math.max(title.length, ...table.map((row) => (row[column] as string).length)),
);
const line = (cells: string[]) =>
  cells
    .map((cell, column) =>
      column === 2 ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0),
    )
    .join('  ');
console.log(line(header));
console.log(line(widths.map((width) => '-'.repeat(width))));
for (const row of table) console.log(line(row));
if (rows.length === 0) console.log(`(no benchmark matched ${filters.join(', ') || 'anything'})`);
process.exitCode = failed ? 1 : 0;
