import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { multiRunnableArgv } from '#local/batch/task-command.js';
import type { RunnableMessage } from '#local/batch/types.js';

/** Runs an argv as the executor would and returns stdout and the exit status. */
function run(argv: string[], env: Record<string, string> = {}): { stdout: string; status: number | null } {
  const [program, ...args] = argv as [string, ...string[]];
  const result = spawnSync(program, args, {
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
  });
  return { stdout: result.stdout, status: result.status };
}

const script = (text: string, extra: Partial<RunnableMessage> = {}): RunnableMessage => ({
  script: { text },
  ...extra,
});

describe('Batch task → executor task, run', () => {
  it('runs several runnables in order, each with its own environment, quoting survives', () => {
    // Arrange
    const argv = multiRunnableArgv(
      [
        script(`echo "one $WHO"`, { environment: { variables: { WHO: "it's me" } } }),
        script('echo "two $WHO"'),
      ],
      {},
      '/',
    );

    // Act
    const result = run(argv, { WHO: 'task' });

    // Assert
    expect(result).toEqual({ stdout: "one it's me\ntwo task\n", status: 0 });
  });

  it('skips later runnables after a failure except always_run ones, and exits with the first failure', () => {
    // Arrange
    const argv = multiRunnableArgv(
      [
        script('echo ignored-failure; exit 9', { ignore_exit_status: true }),
        script('echo fails; exit 4'),
        script('echo skipped'),
        script('echo cleanup; exit 5', { always_run: true }),
      ],
      {},
      '/',
    );

    // Act
    const result = run(argv);

    // Assert
    expect(result).toEqual({ stdout: 'ignored-failure\nfails\ncleanup\n', status: 4 });
  });
});
