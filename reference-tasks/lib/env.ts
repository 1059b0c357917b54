import { TaskConfigError } from './errors.js';

/** Reads a variable that must be set and non-empty. */
export function requireEnv(env: NodeJS.ProcessEnv, name: string, hint = ''): string {
  const value = env[name]?.trim();
  if (!value) throw new TaskConfigError(`${name} is not set${hint ? `: ${hint}` : ''}`);
  return value;
}

/** Reads an optional variable; empty counts as unset. */
export function optionalEnv(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

/** Which shard of how many this task process is. */
export interface TaskPosition {
  index: number;
  count: number;
}

/**
 * The task's index and count: Cloud Batch's `BATCH_TASK_INDEX`/`BATCH_TASK_COUNT`, else Cloud
 * Run jobs' `CLOUD_RUN_TASK_INDEX`/`CLOUD_RUN_TASK_COUNT`, else a single task (0 of 1), so the
 * same image runs unchanged under either service or by hand.
 */
export function taskPosition(env: NodeJS.ProcessEnv): TaskPosition {
  const pairs: Array<[string, string]> = [
    ['BATCH_TASK_INDEX', 'BATCH_TASK_COUNT'],
    ['CLOUD_RUN_TASK_INDEX', 'CLOUD_RUN_TASK_COUNT'],
  ];
  for (const [indexName, countName] of pairs) {
    const rawIndex = optionalEnv(env, indexName);
    const rawCount = optionalEnv(env, countName);
    if (rawIndex === undefined && rawCount === undefined) continue;
    const index = parseCount(rawIndex ?? '0', indexName);
    const count = parseCount(rawCount ?? '1', countName);
    if (count < 1) throw new TaskConfigError(`${countName} must be at least 1, got ${count}`);
    if (index >= count) throw new TaskConfigError(`${indexName}=${index} is not below ${countName}=${count}`);
    return { index, count };
  }
  return { index: 0, count: 1 };
}

function parseCount(raw: string, name: string): number {
  if (!/^\d+$/.test(raw)) throw new TaskConfigError(`${name} must be a non-negative integer, got "${raw}"`);
  return Number(raw);
}

/** `part-00003.jsonl`: zero-padded so that a plain name sort is the shard (and input) order. */
export function partName(index: number, kind: 'part' | 'rejects' = 'part'): string {
  return `${kind}-${String(index).padStart(5, '0')}.jsonl`;
}
