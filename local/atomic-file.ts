import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

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

/**
 * Reads every `*.json` record of a folder written with {@link writeFileAtomically}: leftovers of
 * interrupted writes are removed; a file that does not parse, or that `check` refuses (it
 * throws), is reported to `onUnreadable` and skipped, so one bad file never stops a start. It
 * stays on disk for a look.
 */
export function readJsonRecords<T>(
  dir: string,
  check: (value: unknown) => T,
  onUnreadable: (file: string, err: unknown) => void,
): T[] {
  const records: T[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (entry.endsWith(TEMPORARY_SUFFIX)) {
      rmSync(path, { force: true });
      continue;
    }
    if (!entry.endsWith('.json')) continue;
    try {
      records.push(check(JSON.parse(readFileSync(path, 'utf8'))));
    } catch (err) {
      onUnreadable(path, err);
    }
  }
  return records;
}
