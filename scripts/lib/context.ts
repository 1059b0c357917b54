import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnvFile } from '#local/platform/env-file.js';
import { type PlatformOptions, type RunningPlatform, startPlatform } from '#local/platform/index.js';
import { configPath, loadConfig } from '#shared/config/load.js';
import type { Config } from '#shared/config/schema.js';

/** A failure the CLI reports as one line and a non-zero exit. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The repository root (the package root: `dist/scripts/lib` → `.`). */
export const ROOT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The state folder of the local platform in the working directory. */
export function stateDir(): string {
  return resolve(process.cwd(), '.batchwire');
}

export function cliConfig(): { config: Config; path: string } {
  const path = configPath();
  return { config: loadConfig(), path };
}

/**
 * The addresses of the running local platform, from `.batchwire/env`, applied to this process
 * so the Google clients it creates talk to the local cloud.
 */
export function attachToPlatform(): Record<string, string> {
  const env = readPlatformEnv();
  if (!env) {
    throw new CliError(
      'Batchwire is not running here (no .batchwire/env): start it with `npm start` in another terminal',
    );
  }
  Object.assign(process.env, env);
  return env;
}

export function readPlatformEnv(): Record<string, string> | undefined {
  const path = join(stateDir(), 'env');
  if (!existsSync(path)) return undefined;
  return parseEnvFile(readFileSync(path, 'utf8'));
}

/**
 * Starts the local platform for this working directory: the config the CLI uses, the package's
 * functions and workflows, and the state folder `.batchwire/`.
 */
export function startLocalPlatform(
  options: Omit<PlatformOptions, 'config' | 'configPath' | 'rootDir' | 'stateDir'>,
): Promise<RunningPlatform> {
  const { config, path } = cliConfig();
  return startPlatform({ ...options, config, configPath: path, rootDir: ROOT_DIR, stateDir: stateDir() });
}
