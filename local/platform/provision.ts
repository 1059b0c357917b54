import { createRunJobsAdapter } from '#shared/clients/run.js';
import { DEFAULT_CONFIG_FILE } from '#shared/config/load.js';
import type { Config } from '#shared/config/schema.js';
import { buildPlan } from '#shared/plan/build-plan.js';

/**
 * Creates on the local cloud what the deployment plan creates in Google Cloud and has a local
 * stand-in: the bucket, the completion topic, each client's output topic and pull
 * subscription, and the Cloud Run jobs the flows run (the local scheduler takes its jobs from
 * the same plan; the local Workflows service serves `workflows/`). Safe to run twice: whatever
 * exists is kept. Google clients find the local services through the `*_EMULATOR_HOST`
 * variables of this process.
 */
export async function provision(config: Config, local: { storageUrl: string }): Promise<void> {
  const plan = buildPlan(config, { configFile: DEFAULT_CONFIG_FILE });
  const [{ Storage }, { PubSub }] = await Promise.all([
    import('@google-cloud/storage'),
    import('@google-cloud/pubsub'),
  ]);

  const storage = new Storage({ apiEndpoint: local.storageUrl, projectId: plan.project });
  const bucket = storage.bucket(plan.bucket.name);
  const [bucketExists] = await bucket.exists();
  if (!bucketExists) await storage.createBucket(plan.bucket.name);

  const pubsub = new PubSub({ projectId: plan.project });
  try {
    for (const { name } of plan.topics) {
      const [exists] = await pubsub.topic(name).exists();
      if (!exists) await pubsub.createTopic(name).catch(ignoreAlreadyExists);
    }
    for (const subscription of plan.subscriptions) {
      const [exists] = await pubsub.subscription(subscription.name).exists();
      if (!exists) {
        await pubsub
          .topic(subscription.topic)
          .createSubscription(subscription.name, { ackDeadlineSeconds: subscription.ackDeadlineSeconds })
          .catch(ignoreAlreadyExists);
      }
    }
  } finally {
    await pubsub.close();
  }

  const run = createRunJobsAdapter();
  const parent = `projects/${plan.project}/locations/${plan.region}`;
  try {
    for (const job of plan.runJobs) {
      await run.ensureJob(parent, job.id, {
        image: job.image,
        serviceAccount: job.serviceAccount,
        labels: { product: job.product, flow: job.flow },
      });
    }
  } finally {
    await run.close();
  }
}

function ignoreAlreadyExists(err: { code?: number }): void {
  // gRPC ALREADY_EXISTS: a concurrent start created it, which is what we wanted.
  if (err.code !== 6) throw err;
}
