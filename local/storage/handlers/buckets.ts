/**
 * Buckets: list, insert, get, patch/update, delete, getStorageLayout; and the project's service
 * account, which gcloud asks for beside bucket calls.
 */
import { intParam, optional, preconditions, readJson, send, sendResource } from '../http.js';
import { bucketResource } from '../resources.js';
import type { StorageCall, StorageContext } from './context.js';

type BucketCall = StorageCall<{ bucket: string }>;

export function getServiceAccount(_context: StorageContext, { res }: StorageCall<unknown>): void {
  sendResource(res, {
    kind: 'storage#serviceAccount',
    email_address: `service-0@gs-project-accounts.iam.gserviceaccount.com`,
  });
}

export function listBuckets(context: StorageContext, { res, query }: StorageCall<unknown>): void {
  const page = context.catalog.listBuckets({
    prefix: optional(query, 'prefix'),
    maxResults: intParam(query, 'maxResults'),
    pageToken: optional(query, 'pageToken'),
  });
  sendResource(res, {
    kind: 'storage#buckets',
    ...(page.items.length > 0
      ? { items: page.items.map((bucket) => bucketResource(bucket, context.baseUrl())) }
      : {}),
    ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
  });
}

export async function insertBucket(context: StorageContext, { req, res, query }: StorageCall<unknown>) {
  const body = await readJson(req);
  const record = await context.catalog.createBucket(query.get('project') ?? '', body);
  sendResource(res, bucketResource(record, context.baseUrl()));
}

export function getBucket(context: StorageContext, { res, params }: BucketCall): void {
  const record = context.catalog.bucket(params.bucket);
  sendResource(res, bucketResource(record, context.baseUrl()));
}

/** PATCH and PUT alike: both merge the body into the bucket's fields. */
export async function patchBucket(context: StorageContext, { req, res, query, params }: BucketCall) {
  const body = await readJson(req);
  const record = await context.catalog.patchBucket(params.bucket, body, preconditions(query));
  sendResource(res, bucketResource(record, context.baseUrl()));
}

export async function deleteBucket(context: StorageContext, { res, query, params }: BucketCall) {
  await context.catalog.deleteBucket(params.bucket, preconditions(query));
  send(res, 204);
}

/** Buckets.getStorageLayout: gcloud asks before mv and rm -r (flat namespace unless set at creation). */
export function getStorageLayout(context: StorageContext, { res, params }: BucketCall): void {
  const record = context.catalog.bucket(params.bucket);
  const hierarchical = record.extra.hierarchicalNamespace as { enabled?: unknown } | undefined;
  sendResource(res, {
    kind: 'storage#storageLayout',
    bucket: record.name,
    location: record.location,
    locationType: 'region',
    hierarchicalNamespace: { enabled: hierarchical?.enabled === true },
  });
}
