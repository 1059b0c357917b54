import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './platform.js';

/** The source folders tsconfig.json compiles into dist/. */
const SOURCE_DIRS = ['functions', 'shared', 'reference-tasks', 'local', 'scripts', 'bench'];
/** What the tests that spawn built code run, as tsc writes it. */
const COMPILED = [
  'dist/functions/index.js',
  'dist/scripts/cli.js',
  'dist/local/platform/function-preload.js',
  'dist/reference-tasks/bundle.js',
];
/** The reference tasks, bundled from the compiled code by dist/reference-tasks/bundle.js. */
const BUNDLED = ['dist/tasks/inference.js', 'dist/tasks/train.js', 'dist/tasks/metadata.js'];
const ENTRY_POINTS = [...COMPILED, ...BUNDLED];
const LOCK_DIR = join(REPO_ROOT, 'dist', '.test-build-lock');

/**
 * Builds dist/ with `tsc -p tsconfig.json` and bundles the tasks (as `npm run build` does) when
 * an entry point is missing or a source file is newer than the oldest one. Test files run in
 * parallel workers, so the build is serialised by a lock folder (mkdir is atomic) and staleness
 * is checked again once the lock is held.
 */
export async function ensureBuilt(): Promise<void> {
  if (!isStale()) return;
  mkdirSync(join(REPO_ROOT, 'dist'), { recursive: true });
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(LOCK_DIR);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // A lock left by a killed run would otherwise block every later run.
      if (Date.now() - statSync(LOCK_DIR).mtimeMs > 120_000) rmdirSync(LOCK_DIR);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${LOCK_DIR}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    if (!isStale()) return;
    const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    try {
      execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: REPO_ROOT, stdio: 'pipe' });
    } catch (err) {
      // tsc still emits when files have type errors (those are the type-check's to report);
      // only a build that produced nothing is a failure here.
      if (COMPILED.some((file) => !existsSync(join(REPO_ROOT, file)))) throw err;
    }
    execFileSync(process.execPath, [join(REPO_ROOT, 'dist', 'reference-tasks', 'bundle.js')], {
      cwd: REPO_ROOT,
      stdio: 'pipe',
    });
  } finally {
    rmdirSync(LOCK_DIR);
  }
}

function isStale(): boolean {
  let oldestOutput = Number.POSITIVE_INFINITY;
  for (const file of ENTRY_POINTS) {
    const path = join(REPO_ROOT, file);
    if (!existsSync(path)) return true;
    oldestOutput = Math.min(oldestOutput, statSync(path).mtimeMs);
  }
  return SOURCE_DIRS.some((dir) => newestSource(join(REPO_ROOT, dir)) > oldestOutput);
}

function newestSource(dir: string): number {
  if (!existsSync(dir)) return 0;
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}
