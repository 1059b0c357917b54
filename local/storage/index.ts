/** The local Cloud Storage server: a GCS JSON API stand-in for the real `@google-cloud/storage` client. */

export type { StorageObjectResource } from './resources.js';
export { type LocalStorageServer, type StorageServerOptions, startStorageServer } from './server.js';
