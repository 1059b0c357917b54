import { describe, expect, it } from 'vitest';
import { runnableArgv, taskEnvironment } from '#local/batch/task-command.js';
import type { RunnableMessage, TaskGroupMessage } from '#local/batch/types.js';

/** How a Batch task becomes the executor's argv and environment; running them is an integration test. */

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
});
