import { describe, expect, it } from 'vitest';
import { resolveContainer, UnmappedImageError } from '#local/executor/index.js';

describe('resolveContainer', () => {
  const images = {
    'europe-docker.pkg.dev/p/r/inference:latest': [
      'node',
      'dist/reference-tasks/inference/main.js',
      '--flag',
    ],
  };

  it('maps an image to its local command, resolving relative paths against baseDir and appending commands', () => {
    expect(
      resolveContainer(images, '/repo', {
        imageUri: 'europe-docker.pkg.dev/p/r/inference:latest',
        commands: ['a', 'b'],
      }),
    ).toEqual(['node', '/repo/dist/reference-tasks/inference/main.js', '--flag', 'a', 'b']);
  });

  it('lets an explicit entrypoint replace the configured command', () => {
    expect(
      resolveContainer(images, '/repo', {
        imageUri: 'europe-docker.pkg.dev/p/r/inference:latest',
        entrypoint: 'bash',
        commands: ['-c', 'echo hi'],
      }),
    ).toEqual(['bash', '-c', 'echo hi']);
  });

  it('throws for an image with no local command', () => {
    expect(() => resolveContainer(images, '/repo', { imageUri: 'gcr.io/unknown/image' })).toThrow(
      UnmappedImageError,
    );
  });
});
