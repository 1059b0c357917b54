/** The reference training task: one deterministic pass over a client's inputs. See run.ts. */
import { runMain } from '../lib/run-main.js';
import { createStorage } from '../lib/storage.js';
import { runTraining, trainConfigFromEnv } from './run.js';

await runMain('train', async (log) => {
  const config = trainConfigFromEnv(process.env);
  await runTraining(config, { storage: await createStorage(process.env), log });
});
