import type { Config } from '../../shared/config/schema.js';
import { outputTopic } from '../../shared/domain/output-topic.js';

/**
 * Creates on the local cloud what onboarding creates in Google Cloud: the bucket, the
 * completion topic and each client's output topic. Safe to run twice: whatever exists is kept.
 */
export async function provision(config: Config, local: { storageUrl: string }): Promise<void> {
  const [{ Storage }, { PubSub }] = await Promise.all([import('@google-cloud/storage'), import('@google-cloud/pubsub')]);

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
}

function ignoreAlreadyExists(err: { code?: number }): void {
  // gRPC ALREADY_EXISTS: a concurrent start created it, which is what we wanted.
  if (err.code !== 6) throw err;
}
