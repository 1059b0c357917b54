/**
 * The reference inference task (the seed template's job that "converts texts to upper-case"):
 * one process per Batch task. See run.ts for the contract and README.md for the formats.
 */
import { runMain } from '../lib/run-main.js';
import { createStorage } from '../lib/storage.js';
import { inferenceConfigFromEnv, runInference } from './run.js';

await runMain('inference', async (log) => {
  const config = inferenceConfigFromEnv(process.env);
  await runInference(config, { storage: await createStorage(process.env), log });
});
