import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Writes `KEY=VALUE` lines a shell can source; atomically, so a reader never sees half a file. */
export function writeEnvFile(path: string, env: Record<string, string>): void {
  mkdirSync(dirname(path), { recursive: true });
  const text = Object.entries(env)
    .map(([key, value]) => `${key}=${value}`)
    .join('\n');
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${text}\n`);
  renameSync(temporary, path);
}

export function removeEnvFile(path: string): void {
  rmSync(path, { force: true });
}

/** Parses an env file written by {@link writeEnvFile}. */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match) env[match[1] as string] = match[2] as string;
  }
  return env;
}
