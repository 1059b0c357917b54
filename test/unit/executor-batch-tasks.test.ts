import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { multiRunnableArgv, runnableArgv, taskEnvironment } from '../../local/batch/task-command.js';
import type { RunnableMessage, TaskGroupMessage } from '../../local/batch/types.js';

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

describe('Batch task → executor task', () => {
  it('layers the environment as Batch does: platform < task spec < task_environments[i] < predefined', () => {
    // Arrange
    const group: TaskGroupMessage = {
      task_spec: {
        environments: { A: 'deprecated-map', B: 'deprecated-map' },
        environment: { variables: { B: 'spec', C: 'spec', BATCH_TASK_INDEX: 'user' } },
      },
      task_environments: [{ variables: { C: 'task-0' } }, { variables: { C: 'task-1' } }],
    };

    // Act
    const env = taskEnvironment(group, {
      index: 1,
      taskCount: 2,
      attempt: 3,
      platformEnv: { A: 'platform', P: 'platform' },
    });

    // Assert
    expect(env).toEqual({
      A: 'deprecated-map',
      B: 'spec',
      C: 'task-1',
      P: 'platform',
      BATCH_TASK_INDEX: '1',
      BATCH_TASK_COUNT: '2',
      BATCH_TASK_RETRY_ATTEMPT: '3',
    });
  });

  it('maps a container runnable through local.images and a script through bash', () => {
    const images = { 'img:1': ['node', 'dist/main.js'] };
    expect(runnableArgv({ container: { image_uri: 'img:1', commands: ['--x'] } }, images, '/repo')).toEqual([
      'node',
      '/repo/dist/main.js',
      '--x',
    ]);
    expect(runnableArgv(script('echo hi'), images, '/repo')).toEqual(['bash', '-c', 'echo hi']);
    expect(runnableArgv({ script: { path: 'run.sh' } }, images, '/repo')).toEqual(['bash', '/repo/run.sh']);
  });

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
