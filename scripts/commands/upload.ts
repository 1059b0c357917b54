import { basename } from 'node:path';
import { storageClientOptions } from '#shared/clients/endpoints.js';
import { inputObjectName } from '#shared/domain/object-path.js';
import { decideUpload } from '#shared/domain/upload.js';
import { attachToPlatform, cliConfig } from '../lib/context.js';

export interface UploadResult {
  uri: string;
  name: string;
  generation: string;
  /** What onUpload decides for this object, computed here the same way. */
  decision: ReturnType<typeof decideUpload>;
  /** The Batch job this upload starts, when onUpload accepts it. */
  jobId?: string;
}

/** Uploads a local file under `{product}/{client}/inputs/` of the platform's bucket. */
export async function uploadFile(
  file: string,
  options: { product: string; client: string; name?: string },
): Promise<UploadResult> {
  const { config } = cliConfig();
  const { Storage } = await import('@google-cloud/storage');
  const storage = new Storage({ ...storageClientOptions(), projectId: config.project });
  const name = inputObjectName(options.product, options.client, options.name ?? basename(file));
  const [object] = await storage.bucket(config.bucket).upload(file, { destination: name, resumable: false });
  const generation = String(object.metadata.generation);
  const decision = decideUpload(
    { bucket: config.bucket, name, generation, size: Number(object.metadata.size) },
    config,
  );
  return {
    uri: `gs://${config.bucket}/${name}`,
    name,
    generation,
    decision,
    ...(decision.kind === 'submit' ? { jobId: decision.jobId } : {}),
  };
}

/** `batchwire upload FILE`: uploads as a client would. */
export async function upload(file: string, options: { product: string; client: string; name?: string }) {
  attachToPlatform();
  const { uri, generation, decision } = await uploadFile(file, options);
  const next =
    decision.kind === 'submit'
      ? `onUpload starts Batch job ${decision.jobId}`
      : decision.kind === 'reject'
        ? `onUpload rejects it: ${decision.message}`
        : `onUpload ignores it (${decision.reason})`;
  process.stdout.write(`uploaded ${uri} (generation ${generation}); ${next}\n`);
}
