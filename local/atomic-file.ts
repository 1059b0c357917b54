import { randomBytes } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';

/** What a half-written file ends with: stores that scan a folder skip (and clean up) these. */
export const TEMPORARY_SUFFIX = '.tmp';

/**
 * Replaces `path` with `text` atomically (a temporary file beside it, then a rename), so a
 * reader, or a restart after a crash mid-write, sees the old content or the new, never half.
 */
export function writeFileAtomically(path: string, text: string): void {
  const temporary = `${path}.${randomBytes(6).toString('hex')}${TEMPORARY_SUFFIX}`;
  try {
    writeFileSync(temporary, text);
    renameSync(temporary, path);
  } catch (err) {
    rmSync(temporary, { force: true });
    throw err;
  }
}
