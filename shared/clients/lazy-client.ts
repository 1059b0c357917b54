/**
 * A Google client built on first use and kept for the instance: a function that never calls a
 * service never pays for loading its library (cold start). A failed load is not cached, so one
 * transient import or config error does not answer every later call of the instance with it.
 */
export interface LazyClient<T> {
  /** The client, loading it on the first call (and again after a failed load). */
  get(): Promise<T>;
  /** Closes the client if this loader built it (a client handed in belongs to its owner). */
  close(): Promise<void>;
}

/**
 * @param load builds the client (typically a dynamic `import()` and a constructor call)
 * @param given a ready client (tests, the local cloud): used as is and never closed here
 *
 * @example
 * const batch = lazyClient(async () => new (await import('@google-cloud/batch')).BatchServiceClient());
 * const [job] = await (await batch.get()).getJob({ name });
 */
export function lazyClient<T extends object>(load: () => Promise<T>, given?: T): LazyClient<T> {
  if (given) {
    const ready = Promise.resolve(given);
    return { get: () => ready, close: async () => undefined };
  }
  let client: Promise<T> | undefined;
  return {
    get() {
      client ??= load().catch((err: unknown) => {
        client = undefined;
        throw err;
      });
      return client;
    },
    async close() {
      const built = await client?.catch(() => undefined);
      client = undefined;
      // gRPC clients and PubSub close their channels; Storage (plain HTTP) has nothing to close.
      await (built as { close?: () => Promise<unknown> } | undefined)?.close?.();
    },
  };
}
