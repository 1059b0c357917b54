import type { Storage } from '@google-cloud/storage';

/**
 * A Storage client for the task. In Google Cloud: Application Default Credentials and the
 * default endpoint. Locally, `STORAGE_EMULATOR_HOST` (an http URL or host:port) names the GCS
 * server, and it is also passed as `apiEndpoint` so that uploads and downloads use it.
 */
export async function createStorage(env: NodeJS.ProcessEnv = process.env): Promise<Storage> {
  // Loaded on first use, as the functions do, so a task that fails its env checks starts fast.
  const { Storage: StorageClient } = await import('@google-cloud/storage');
  const host = env.STORAGE_EMULATOR_HOST?.trim();
  const projectId = env.GOOGLE_CLOUD_PROJECT ?? env.GCLOUD_PROJECT;
  if (!host) return new StorageClient(projectId ? { projectId } : {});
  const apiEndpoint = (host.includes('://') ? host : `http://${host}`).replace(/\/+$/, '');
  const storage = new StorageClient({ apiEndpoint, projectId: projectId ?? 'batchwire-local' });
  // With the variable set, the client (7.x) uses its bare value as the JSON API base, dropping
  // the `/storage/v1` path that it keeps for `apiEndpoint`; pin the base so that metadata, list
  // and upload calls all reach the same API paths as in Google Cloud.
  storage.baseUrl = `${apiEndpoint}/storage/v1`;
  return storage;
}

/** The HTTP status of a Storage client error, if it carries one. */
export function storageErrorCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}
