import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './platform.js';

/** The bundled reference tasks, as the task images run them (build them with `ensureBuilt()`). */
export const TASKS = {
  inference: join(REPO_ROOT, 'dist', 'tasks', 'inference.js'),
  train: join(REPO_ROOT, 'dist', 'tasks', 'train.js'),
  metadata: join(REPO_ROOT, 'dist', 'tasks', 'metadata.js'),
} as const;

export interface TaskRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a compiled task in a fresh Node process with only `env` (plus PATH, and no metadata
 * server probing), as a Batch or Cloud Run task would start, and collects what it printed.
 */
export function runTask(script: string, env: Record<string, string>): Promise<TaskRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', METADATA_SERVER_DETECTION: 'none', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
