/**
 * Polls `read` until it returns a value (not `undefined`) and returns it; throws naming `what`
 * after `timeoutMs`, so a test that waits for something that never comes fails with a reason.
 */
export async function waitFor<T>(
  read: () => T | undefined | Promise<T | undefined>,
  what: string,
  timeoutMs = 15_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Polls `predicate` every 25 ms until it holds; throws after `timeoutMs`. */
export async function until(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  await waitFor(async () => ((await predicate()) ? true : undefined), 'a condition', timeoutMs, 25);
}
