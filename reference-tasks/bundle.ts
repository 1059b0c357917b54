/**
 * Bundles the compiled reference tasks (dist/reference-tasks/<task>/main.js, from tsc) into
 * dist/tasks/<task>.js, the files the task images and `local.images` run:
 * `node dist/reference-tasks/bundle.js` after `tsc`.
 *
 * Why: a task is a short-lived process, so its start-up is a real share of its cost. Loading
 * `@google-cloud/storage` from node_modules means resolving, reading and compiling a few
 * hundred small CommonJS files, each wrapped and linked on its own; one bundled file costs
 * about half the CPU (measured by `npm run bench -- task-start`). The Storage client is still
 * imported lazily, so a task that fails its environment checks starts without it.
 *
 * The Storage client, shared by the three tasks, is one CommonJS file,
 * `chunks/storage-client.cjs`, loaded with V8's code cache made here (reference-tasks/lib/code-cache.ts):
 * compiling it was still the largest part of a small task's CPU.
 */
import { execFileSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type InputOptions, type Plugin } from 'rolldown';

const DIST = join(dirname(fileURLToPath(import.meta.url)), '..');
export const TASK_NAMES = ['inference', 'train', 'metadata'] as const;
/** The Storage client as one CommonJS file, beside the chunks that load it. */
export const STORAGE_CLIENT = 'storage-client.cjs';

const STORAGE_PACKAGE = '@google-cloud/storage';
const VIRTUAL = '\0batchwire-storage-client';
const HTML_ENTITIES = 'html-entities';

/**
 * Warnings (e.g. an unresolvable optional require inside a dependency) fail the build: such a
 * module would otherwise fail only at run time, inside a task.
 */
const failOnWarnings: InputOptions['onLog'] = (level, log, handler) => {
  if (level === 'warn') handler('error', log);
  else handler(level, log);
};

/** A module that is only this source, imported as `specifier`. */
function virtualModule(specifier: string, source: string): Plugin {
  return {
    name: 'batchwire-virtual-module',
    resolveId: (importee) => (importee === specifier ? VIRTUAL : undefined),
    load: (id) => (id === VIRTUAL ? source : undefined),
  };
}

/**
 * `html-entities`, imported by the Storage client, is `onDemand`
 * (reference-tasks/lib/html-entities-on-demand.cjs, which says why); that file itself loads the
 * real package. Its exports are checked here: one it
 * does not pass on fails the build.
 */
function htmlEntitiesOnDemand(onDemand: string, resolveFrom: string): Plugin {
  const requireFrom = createRequire(resolveFrom);
  const expected = Object.keys(requireFrom(HTML_ENTITIES) as object)
    .sort()
    .join();
  const passedOn = Object.keys(requireFrom(onDemand) as object)
    .sort()
    .join();
  if (expected !== passedOn) {
    throw new Error(`${HTML_ENTITIES} exports ${expected}, ${onDemand} passes on ${passedOn}`);
  }
  return {
    name: 'batchwire-html-entities-on-demand',
    resolveId: (importee, importer) =>
      importee === HTML_ENTITIES && importer !== onDemand ? onDemand : undefined,
  };
}

export async function bundleTasks(dist = DIST): Promise<void> {
  const outDir = join(dist, 'tasks');
  const chunksDir = join(outDir, 'chunks');
  // Chunk names carry content hashes: a stale chunk from an earlier build would only mislead.
  await rm(outDir, { recursive: true, force: true });

  // 1. The Storage client alone, as one CommonJS file (what a V8 code cache can be made for).
  // Its `Storage` class comes from the module that defines it: the package's index also loads
  // the transfer manager and its XML parser, which no task uses.
  const root = join(dist, '..');
  const storageIndex = createRequire(join(root, 'package.json')).resolve(STORAGE_PACKAGE);
  const storageClass = join(dirname(storageIndex), 'storage.js');
  await build({
    input: { [STORAGE_CLIENT]: VIRTUAL },
    platform: 'node',
    cwd: root,
    onLog: failOnWarnings,
    plugins: [
      virtualModule(VIRTUAL, `module.exports = require(${JSON.stringify(storageClass)});`),
      htmlEntitiesOnDemand(join(root, 'reference-tasks', 'lib', 'html-entities-on-demand.cjs'), storageIndex),
    ],
    output: {
      dir: chunksDir,
      format: 'cjs',
      entryFileNames: '[name]',
      codeSplitting: false,
      // A few dependencies hold non-ASCII text (HTML entity tables): escaped, the whole file is
      // one-byte text, which V8 decodes, hashes and parses faster than a two-byte string.
      charset: 'ascii',
      minify: { compress: true, mangle: false, codegen: true },
      sourcemap: true,
    },
  });

  // 2. The tasks, where `@google-cloud/storage` is that file, loaded with its code cache. Only
  // the names the tasks use are exported: a new one fails the build here, not a task.
  const codeCache = pathToFileURL(join(dist, 'reference-tasks', 'lib', 'code-cache.js')).href;
  const storageModule = [
    `import { fileURLToPath } from 'node:url';`,
    `import { requireWithCodeCache } from '${codeCache}';`,
    `const client = requireWithCodeCache(fileURLToPath(new URL('./${STORAGE_CLIENT}', import.meta.url)));`,
    'export const Storage = client.Storage;',
  ].join('\n');
  await build({
    input: Object.fromEntries(
      TASK_NAMES.map((task) => [task, join(dist, 'reference-tasks', task, 'main.js')]),
    ),
    platform: 'node',
    onLog: failOnWarnings,
    plugins: [virtualModule(STORAGE_PACKAGE, storageModule)],
    output: {
      dir: outDir,
      format: 'esm',
      entryFileNames: '[name].js',
      chunkFileNames: 'chunks/[name]-[hash].js',
      charset: 'ascii',
      // Smaller source is less for V8 to scan; names stay readable in stack traces.
      minify: { compress: true, mangle: false, codegen: true },
      sourcemap: true,
    },
  });

  // 3. The code cache, made by a fresh node with no flags, as a task process runs (V8 rejects a
  // cache made under other flags).
  const storageClient = join(chunksDir, STORAGE_CLIENT);
  execFileSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { writeCodeCache } from '${codeCache}'; writeCodeCache(${JSON.stringify(storageClient)});`,
    ],
    { stdio: 'inherit', env: { ...process.env, NODE_OPTIONS: '' } },
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await bundleTasks();
