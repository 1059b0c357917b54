import { isAbsolute, resolve } from 'node:path';
import { resolveContainer } from '../executor/index.js';
import type { EnvironmentMessage, RunnableMessage, TaskGroupMessage } from './types.js';

/** Turns a runnable into the local argv that stands in for it. */
export function runnableArgv(
  runnable: RunnableMessage,
  images: Record<string, string[]>,
  baseDir: string,
): string[] {
  if (runnable.container) {
    const { image_uri = '', entrypoint, commands } = runnable.container;
    return resolveContainer(images, baseDir, {
      imageUri: image_uri,
      ...(entrypoint ? { entrypoint } : {}),
      ...(commands ? { commands } : {}),
    });
  }
  if (runnable.script) {
    const { text, path } = runnable.script;
    if (text) return ['bash', '-c', text];
    if (path) return ['bash', isAbsolute(path) ? path : resolve(baseDir, path)];
  }
  // A barrier only synchronises tasks across VMs; alone on one machine it has nothing to wait for.
  return ['true'];
}

function variables(environment: EnvironmentMessage | null | undefined): Record<string, string> {
  return { ...(environment?.variables ?? {}) };
}

/**
 * The environment of task `index` as Batch layers it, lowest first: the platform's own
 * variables (what a VM of this platform would have), the task spec's deprecated
 * `environments` map and its `environment`, the group's `task_environments[index]`, then
 * Batch's predefined variables. A runnable's own `environment` overrides all of these (Batch:
 * "overrides variables set for the whole Task or TaskGroup"); see {@link runnableEnvironment}.
 *
 * Batch's predefined variables are BATCH_TASK_INDEX, BATCH_TASK_COUNT, BATCH_TASK_RETRY_ATTEMPT
 * and (with require_hosts_file) BATCH_HOSTS_FILE. Batch sets no BATCH_JOB_ID, so neither do we.
 */
export function taskEnvironment(
  group: TaskGroupMessage,
  options: {
    index: number;
    taskCount: number;
    attempt: number;
    platformEnv: Record<string, string>;
    hostsFile?: string;
  },
): Record<string, string> {
  const spec = group.task_spec ?? {};
  return {
    ...options.platformEnv,
    ...(spec.environments ?? {}),
    ...variables(spec.environment),
    ...variables(group.task_environments?.[options.index]),
    BATCH_TASK_INDEX: String(options.index),
    BATCH_TASK_COUNT: String(options.taskCount),
    BATCH_TASK_RETRY_ATTEMPT: String(options.attempt),
    ...(options.hostsFile ? { BATCH_HOSTS_FILE: options.hostsFile } : {}),
  };
}

/** The variables a runnable sets over the task's environment. */
export function runnableEnvironment(runnable: RunnableMessage): Record<string, string> {
  return variables(runnable.environment);
}

/** Quotes a word for bash, so any string survives as one argument. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * One argv for a task of several runnables: a small bash driver that runs them in order with
 * Batch's rules. After a runnable fails, later ones are skipped unless `always_run`; a failure
 * of an `ignore_exit_status` runnable does not fail the task; `background` runnables run
 * alongside and end with the task. The task's exit code is the first failure's, as Batch
 * "only exposes the first error".
 */
export function multiRunnableArgv(
  runnables: RunnableMessage[],
  images: Record<string, string[]>,
  baseDir: string,
): string[] {
  const lines = ['rc=0'];
  for (const runnable of runnables) {
    const env = Object.entries(runnableEnvironment(runnable)).map(([k, v]) => shellQuote(`${k}=${v}`));
    const command = ['env', ...env, ...runnableArgv(runnable, images, baseDir).map(shellQuote)].join(' ');
    if (runnable.background) {
      lines.push(`${command} &`);
      continue;
    }
    const guard = runnable.always_run ? 'true' : '[ "$rc" -eq 0 ]';
    const onFailure = runnable.ignore_exit_status ? ':' : 'if [ "$rc" -eq 0 ]; then rc=$code; fi';
    lines.push(`if ${guard}; then ${command}; code=$?; if [ "$code" -ne 0 ]; then ${onFailure}; fi; fi`);
  }
  lines.push('exit "$rc"');
  return ['bash', '-c', lines.join('\n')];
}
