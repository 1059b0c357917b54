import type { TestProject } from 'vitest/node';
import { type PubSubEmulator, startPubSubEmulator } from '#local/pubsub/emulator.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** `127.0.0.1:PORT` of the Pub/Sub emulator shared by the whole run. */
    pubsubHost: string;
  }
}

let emulator: PubSubEmulator | undefined;

/**
 * vitest globalSetup: one Pub/Sub emulator for the whole run (a JVM start costs seconds, so
 * never one per file). Workers inherit PUBSUB_EMULATOR_HOST from this process; tests that
 * prefer it can also read `inject('pubsubHost')`.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  emulator = await startPubSubEmulator();
  process.env.PUBSUB_EMULATOR_HOST = emulator.host;
  project.provide('pubsubHost', emulator.host);
  if (process.env.BATCHWIRE_TEST_TIMINGS) {
    console.info(`Pub/Sub emulator ready at ${emulator.host} in ${Date.now() - started} ms`);
  }
  return async () => {
    await emulator?.stop();
    emulator = undefined;
  };
}
