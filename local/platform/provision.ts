import { RunJobsAdapter } from '../../shared/clients/run.js';
import type { Config } from '../../shared/config/schema.js';
import { configuredFlowJobs } from '../../shared/domain/flow-start.js';
import { outputTopic } from '../../shared/domain/output-topic.js';

/**
 * Creates on the local cloud what onboarding creates in Google Cloud: the bucket, the
 * completion topic, each client's output topic and the Cloud Run jobs the flows run. Safe to
 * run twice: whatever exists is kept. Google clients find the local services through the
 * `*_EMULATOR_HOST` variables of this process.
 */
export async function provision(config: Config, local: { storageUrl: string }): Promise<void> {
  const [{ Storage }, { PubSub }] = await Promise.all([
    import('@google-cloud/storage'),
    import('@google-cloud/pubsub'),
  ]);

  const storage = new Storage({ apiEndpoint: local.storageUrl, projectId: config.project });
  const bucket = storage.bucket(config.bucket);
  const [bucketExists] = await bucket.exists();
  if (!bucketExists) await storage.createBucket(config.bucket);

  const pubsub = new PubSub({ projectId: config.project });
  try {
    const topics = [config.completionTopic];
    for (const [product, settings] of Object.entries(config.products)) {
      for (const client of settings.clients) topics.push(outputTopic(product, client));
    }
    for (const name of topics) {
      const [exists] = await pubsub.topic(name).exists();
      if (!exists) await pubsub.createTopic(name).catch(ignoreAlreadyExists);
    }
  } finally {
    await pubsub.close();
  }

  const run = new RunJobsAdapter();
  const parent = `projects/${config.project}/locations/${config.region}`;
  for (const job of configuredFlowJobs(config)) {
    await run.ensureJob(parent, job.jobId, {
      image: job.image,
      labels: { product: job.product, flow: job.flow },
    });
  }
}

function ignoreAlreadyExists(err: { code?: number }): void {
  // gRPC ALREADY_EXISTS: a concurrent start created it, which is what we wanted.
  if (err.code !== 6) throw err;
}
