import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../runtime/errors.js';
import { type Config, ConfigSchema } from './schema.js';

export const DEFAULT_CONFIG_FILE = 'batchwire.yaml';

/** The config file this process uses: `BATCHWIRE_CONFIG`, else `batchwire.yaml` in the working directory. */
export function configPath(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  return resolve(cwd, env.BATCHWIRE_CONFIG || DEFAULT_CONFIG_FILE);
}

/**
 * Parses and validates a config document. Throws a {@link ConfigError} whose message names
 * every bad key by its path, e.g. `products.mlops-template.inference.maxTasks: …`.
 */
export function parseConfig(text: string, source = DEFAULT_CONFIG_FILE): Config {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${source}: not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  const result = ConfigSchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(`${source}: invalid config\n${formatIssues(result.error.issues)}`);
  }
  return result.data;
}

/** Reads, parses and validates the config file. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const path = configPath(env, cwd);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseConfig(text, path);
}

let cached: Config | undefined;

/** The config of this function instance, loaded and validated once (at cold start). */
export function getConfig(): Config {
  cached ??= loadConfig();
  return cached;
}

function formatIssues(issues: z.core.$ZodIssue[]): string {
  return issues
    .map((issue) => {
      const key = issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)';
      return `  ${key}: ${issue.message}`;
    })
    .join('\n');
}
