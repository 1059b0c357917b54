import { isAbsolute, resolve } from 'node:path';
import { PermanentError } from '#shared/runtime/errors.js';

/** A container runnable as Batch and Cloud Run describe it. */
export interface ContainerRunnable {
  imageUri: string;
  entrypoint?: string;
  commands?: string[];
}

/** No local command stands in for a container image (config `local.images`): no retry cures it. */
export class UnmappedImageError extends PermanentError {
  constructor(readonly imageUri: string) {
    super(
      `No local command for image "${imageUri}": add it under local.images in batchwire.yaml, ` +
        `e.g. "${imageUri}": [node, dist/tasks/<name>.js]`,
    );
  }
}

/** A word of a configured command that names a file relative to the config, such as `dist/reference-tasks/x.js`. */
function isRelativePath(word: string): boolean {
  return !isAbsolute(word) && !word.startsWith('-') && (word.includes('/') || word.startsWith('.'));
}

/**
 * The local argv that stands in for a container runnable: the image's configured command (its
 * entrypoint) followed by the runnable's `commands` (its arguments), as Docker would combine
 * ENTRYPOINT and CMD. Words of the configured command that are relative paths are resolved
 * against `baseDir` (the config file's folder); a bare program name (`node`) is left to PATH.
 *
 * An explicit `entrypoint` replaces the configured command, as `docker run --entrypoint` does;
 * it then names a program on this machine. The image must still be mapped, so that an unknown
 * image fails loudly here rather than running something by accident.
 *
 * @throws UnmappedImageError when `images` has no entry for the image.
 */
export function resolveContainer(
  images: Record<string, string[]>,
  baseDir: string,
  container: ContainerRunnable,
): string[] {
  const command = images[container.imageUri];
  if (!command || command.length === 0) throw new UnmappedImageError(container.imageUri);
  const commands = container.commands ?? [];
  if (container.entrypoint) return [container.entrypoint, ...commands];
  return [...command.map((word) => (isRelativePath(word) ? resolve(baseDir, word) : word)), ...commands];
}
