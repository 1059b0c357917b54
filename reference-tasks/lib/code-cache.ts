import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { constants, Script } from 'node:vm';
import { crc32 } from 'node:zlib';

/**
 * Loads a bundled CommonJS file with V8's code cache for it, `<file>.code-cache`, made at build
 * time by {@link writeCodeCache}. A task process is short: compiling the Storage client (a
 * megabyte of JavaScript, most of it run once at load) was about a third of a small task's CPU,
 * and the cache skips most of it (`npm run bench -- task-start`).
 *
 * Works on every supported Node (20.19+; Node's own compile cache, `NODE_COMPILE_CACHE`, needs
 * 22.1 and does not cover code loaded this way). It is an optimisation only: a missing cache, one
 * made for other source, or one V8 rejects (another
 * Node version or V8 flags) only means the file is compiled as usual. Like Node's own cache, it
 * is keyed by the source's CRC32 (its first 4 bytes), since V8 checks only the source's length.
 */
export function requireWithCodeCache(file: string): unknown {
  const bytes = readFileSync(file);
  return run(compile(file, bytes.toString('utf8'), cacheFor(file, bytes)), file);
}

/**
 * Runs the file once (its module body is most of what a task compiles) and writes
 * `<file>.code-cache`: the source's CRC32, then V8's code for every function compiled so far.
 */
export function writeCodeCache(file: string): void {
  const bytes = readFileSync(file);
  const script = compile(file, bytes.toString('utf8'), undefined);
  run(script, file);
  const key = Buffer.alloc(4);
  key.writeUInt32BE(crc32(bytes));
  writeFileSync(`${file}.code-cache`, Buffer.concat([key, script.createCachedData()]));
}

function cacheFor(file: string, bytes: Buffer): Buffer | undefined {
  let cache: Buffer;
  try {
    cache = readFileSync(`${file}.code-cache`);
  } catch {
    return undefined;
  }
  // A cache for other source of the same length would pass V8's check and run the wrong code.
  return cache.length > 4 && cache.readUInt32BE(0) === crc32(bytes) ? cache.subarray(4) : undefined;
}

/** Compiles the file as Node wraps a CommonJS module. */
function compile(file: string, source: string, cachedData: Buffer | undefined): Script {
  return new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    cachedData,
    // A dynamic import() inside resolves as it would in a module Node loaded itself.
    importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
}

function run(script: Script, file: string): unknown {
  const module = { exports: {} as unknown };
  const factory = script.runInThisContext() as (...args: unknown[]) => void;
  factory.call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
  return module.exports;
}
