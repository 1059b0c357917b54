import type { Storage, StorageOptions } from '@google-cloud/storage';
import { PreconditionFailedError } from '../runtime/errors.js';
import { HttpStatus } from '../runtime/http-status.js';
import { storageClientOptions } from './endpoints.js';
import { fromHttpError } from './grpc-errors.js';
import { lazyClient } from './lazy-client.js';
import type { ObjectStore } from './ports.js';

/** Per-request deadline for Storage calls, in ms. */
export const DEFAULT_STORAGE_TIMEOUT_MS = 30_000;

interface ObjectStoreBase {
  /** The bucket every name is relative to (the platform's bucket). */
  bucket: string;
}

/**
 * Either a ready `Storage` client or options to build one, never both. With neither, the
 * client is built from `storageClientOptions()` (`STORAGE_EMULATOR_HOST` when set).
 */
export type ObjectStoreOptions = ObjectStoreBase &
  ({ client: Storage; clientOptions?: never } | { client?: never; clientOptions?: StorageOptions });

/**
 * The {@link ObjectStore} port over `@google-cloud/storage`, for one bucket. The library is
 * loaded with a dynamic import on first use and the client built once per instance. Errors
 * are translated by {@link fromHttpError} (5xx, 429 and network errors → TransientError).
 *
 * @example
 * const store = createObjectStore({ bucket: config.bucket });
 * const created = await store.createIfAbsent('_batchwire/claims/x.json', '{}', 'application/json');
 */
export function createObjectStore(options: ObjectStoreOptions): ObjectStore {
  const storage = lazyClient(async () => {
    const { Storage } = await import('@google-cloud/storage');
    return new Storage({
      timeout: DEFAULT_STORAGE_TIMEOUT_MS,
      // Bounded: the event's redelivery is the long-term retry.
      retryOptions: { maxRetries: 2, totalTimeout: 60 },
      ...(options.clientOptions ?? storageClientOptions()),
    });
  }, options.client);
  const getBucket = async () => (await storage.get()).bucket(options.bucket);

  return {
    async createIfAbsent(name, body, contentType = 'application/json') {
      try {
        const bucket = await getBucket();
        await bucket.file(name).save(body, {
          contentType,
          resumable: false,
          // Create only: a second writer gets 412 instead of overwriting the first record.
          preconditionOpts: { ifGenerationMatch: 0 },
        });
        return true;
      } catch (err) {
        const mapped = fromHttpError(err, `create gs://${options.bucket}/${name}`, {
          permission: 'storage.objects.create',
        });
        if (mapped instanceof PreconditionFailedError) return false;
        throw mapped;
      }
    },

    async readText(name) {
      try {
        const bucket = await getBucket();
        const [contents] = await bucket.file(name).download();
        return contents.toString('utf8');
      } catch (err) {
        if ((err as { code?: unknown }).code === HttpStatus.NOT_FOUND) return undefined;
        throw fromHttpError(err, `read gs://${options.bucket}/${name}`, {
          permission: 'storage.objects.get',
        });
      }
    },

    async list(prefix) {
      try {
        const bucket = await getBucket();
        const [files] = await bucket.getFiles({ prefix, autoPaginate: true });
        return files.map((file) => ({ name: file.name, size: Number(file.metadata.size ?? 0) }));
      } catch (err) {
        throw fromHttpError(err, `list gs://${options.bucket}/${prefix}`, {
          permission: 'storage.objects.list',
        });
      }
    },
  };
}
