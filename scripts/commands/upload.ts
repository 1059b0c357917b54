import { basename } from 'node:path';
import { storageClientOptions } from '../../shared/clients/endpoints.js';
import { jobIdFor } from '../../shared/domain/job-id.js';
import { attachToPlatform, cliConfig } from '../lib/context.js';

export interface UploadResult {
  uri: string;
  name: string;
  generation: string;
  /** The Batch job this upload starts (derived the way onUpload derives it). */
  jobId: string;
}

/** Uploads a local file under `{product}/{client}/inputs/` of the platform's bucket. */
export async function uploadFile(
  file: string,
  options: { product: string; client: string; name?: string },
): Promise<UploadResult> {
  const { config } = cliConfig();
  const { Storage } = await import('@google-cloud/storage');
  const storage = new Storage({ ...storageClientOptions(), projectId: config.project });
  const name = `${options.product}/${options.client}/inputs/${options.name ?? basename(file)}`;
  const [object] = await storage.bucket(config.bucket).upload(file, { destination: name, resumable: false });
  const generation = String(object.metadata.generation);
  return {
    uri: `gs://${config.bucket}/${name}`,
    name,
    generation,
    jobId: jobIdFor({ bucket: config.bucket, name, generation }, options.product, options.client),
  };
}

/** `batchwire upload FILE`: uploads as a client would. */
export async function upload(file: string, options: { product: string; client: string; name?: string }) {
  attachToPlatform();
  const result = await uploadFile(file, options);
  process.stdout.write(`uploaded ${result.uri} (generation ${result.generation}); job ${result.jobId}\n`);
}
