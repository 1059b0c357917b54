import { vi } from 'vitest';

/**
 * Polls `read` (with vitest's `vi.waitFor`) until it returns a value (not `undefined`) and
 * returns it; fails naming `what` after `timeoutMs`, so a test that waits for something that
 * never comes fails with a reason.
 */
export function waitFor<T>(
  read: () => T | undefined | Promise<T | undefined>,
  what: string,
  timeoutMs = 15_000,
  intervalMs = 50,
): Promise<T> {
  return vi.waitFor(
    async () => {
      const value = await read();
      if (value === undefined) throw new Error(`timed out waiting for ${what}`);
      return value;
    },
    { timeout: timeoutMs, interval: intervalMs },
  );
}

/** Polls `predicate` every 25 ms until it holds; fails after `timeoutMs`. */
export async function until(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  await waitFor(async () => ((await predicate()) ? true : undefined), 'a condition', timeoutMs, 25);
}
