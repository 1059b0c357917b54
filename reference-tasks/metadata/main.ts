/** The reference metadata task (a Cloud Run job): refreshes `{product}/_index/metadata.json`. See run.ts. */
import { runMain } from '../lib/run-main.js';
import { createStorage } from '../lib/storage.js';
import { metadataConfigFromEnv, runMetadata } from './run.js';

await runMain('metadata', async (log) => {
  const config = metadataConfigFromEnv(process.env);
  await runMetadata(config, { storage: await createStorage(process.env), log });
});
