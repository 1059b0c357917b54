/**
 * Bundles the compiled reference tasks (dist/jobs/<task>/main.js, from tsc) into
 * dist/tasks/<task>.js, the files the task images and `local.images` run:
 * `node dist/jobs/bundle.js` after `tsc`.
 *
 * Why: a task is a short-lived process, so its start-up is a real share of its cost. Loading
 * `@google-cloud/storage` from node_modules means resolving, reading and compiling a few
 * hundred small CommonJS files, each wrapped and linked on its own; one bundled file costs
 * about half the CPU (measured by `npm run bench -- task-start`). The Storage client is still
 * imported lazily (its own chunk, shared by the three tasks), so a task that fails its
 * environment checks starts without it.
 */
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const DIST = join(dirname(fileURLToPath(import.meta.url)), '..');
export const TASK_NAMES = ['inference', 'train', 'metadata'] as const;

export async function bundleTasks(dist = DIST): Promise<void> {
  const outDir = join(dist, 'tasks');
  // Chunk names carry content hashes: a stale chunk from an earlier build would only mislead.
  await rm(outDir, { recursive: true, force: true });
  await build({
    input: Object.fromEntries(TASK_NAMES.map((task) => [task, join(dist, 'jobs', task, 'main.js')])),
    platform: 'node',
    // Warnings (e.g. an unresolvable optional require inside a dependency) fail the build:
    // such a module would otherwise fail only at run time, inside a task.
    onLog(level, log, handler) {
      if (level === 'warn') handler('error', log);
      else handler(level, log);
    },
    output: {
      dir: outDir,
      format: 'esm',
      entryFileNames: '[name].js',
      chunkFileNames: 'chunks/[name]-[hash].js',
      // Smaller source is less for V8 to scan; names stay readable in stack traces.
      minify: { compress: true, mangle: false, codegen: true },
      sourcemap: true,
    },
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await bundleTasks();
