/**
 * Reading objects: list (prefix/delimiter, offsets, versions, matchGlob), metadata, and media
 * (ranged downloads with `x-goog-hash`, decompressive transcoding of gzip-stored objects).
 */
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { compileGlob } from '../glob.js';
import { boolParam, header, intParam, optional, preconditions, sendResource } from '../http.js';
import type { ListObjectsQuery } from '../listing.js';
import { type ObjectRecord, objectResource, StorageApiError } from '../resources.js';
import type { StorageCall, StorageContext } from './context.js';

type ObjectCall = StorageCall<{ bucket: string; object: string }>;

export function listObjects(
  context: StorageContext,
  { res, query, params }: StorageCall<{ bucket: string }>,
) {
  const listQuery: ListObjectsQuery = {
    prefix: optional(query, 'prefix'),
    delimiter: optional(query, 'delimiter'),
    pageToken: optional(query, 'pageToken'),
    maxResults: intParam(query, 'maxResults'),
    versions: boolParam(query, 'versions'),
    startOffset: optional(query, 'startOffset'),
    endOffset: optional(query, 'endOffset'),
    includeTrailingDelimiter: boolParam(query, 'includeTrailingDelimiter'),
  };
  const glob = optional(query, 'matchGlob');
  if (glob) listQuery.matchGlob = compileGlob(glob);
  const page = context.catalog.listObjects(params.bucket, listQuery);
  sendResource(res, {
    kind: 'storage#objects',
    ...(page.prefixes.length > 0 ? { prefixes: page.prefixes } : {}),
    ...(page.items.length > 0
      ? { items: page.items.map((record) => objectResource(record, context.baseUrl())) }
      : {}),
    ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
  });
}

/** GET or HEAD: the bytes through the download API or `alt=media`, else the metadata. */
export async function getObject(context: StorageContext, call: ObjectCall): Promise<void> {
  const { api, query, params } = call;
  const record = context.catalog.getObject(params.bucket, params.object, intParam(query, 'generation'));
  context.catalog.checkPreconditions(record, preconditions(query), true);
  if (api === 'download' || query.get('alt') === 'media') return download(context, call, record);
  sendResource(call.res, objectResource(record, context.baseUrl()));
}

async function download(
  context: StorageContext,
  { req, res }: ObjectCall,
  record: ObjectRecord,
): Promise<void> {
  const { fields } = record;
  const storedEncoding = fields.contentEncoding ?? 'identity';
  const headers: Record<string, string> = {
    'Content-Type': fields.contentType ?? 'application/octet-stream',
    'x-goog-hash': `crc32c=${record.crc32c},md5=${record.md5Hash}`,
    'x-goog-generation': String(record.generation),
    'x-goog-metageneration': String(record.metageneration),
    'x-goog-stored-content-encoding': storedEncoding,
    'x-goog-stored-content-length': String(record.size),
    'x-goog-storage-class': record.storageClass,
    ETag: `"${Buffer.from(record.md5Hash, 'base64').toString('hex')}"`,
    'Last-Modified': new Date(record.updated).toUTCString(),
    'Accept-Ranges': 'bytes',
    'Cache-Control': fields.cacheControl ?? 'no-cache, no-store, max-age=0, must-revalidate',
  };
  if (fields.contentDisposition) headers['Content-Disposition'] = fields.contentDisposition;
  if (fields.contentLanguage) headers['Content-Language'] = fields.contentLanguage;

  // Decompressive transcoding: gzip-stored objects are served gunzipped to clients that do
  // not accept gzip (whole object only, like GCS).
  const acceptsGzip = /\bgzip\b/i.test(header(req, 'accept-encoding') ?? '');
  if (storedEncoding === 'gzip' && !acceptsGzip) {
    res.writeHead(200, headers);
    if (req.method === 'HEAD') return void res.end();
    const stream = await context.catalog.read(record, 0, record.size - 1);
    await pipeline(stream, createGunzip(), res).catch(() => res.destroy());
    return;
  }
  if (fields.contentEncoding) headers['Content-Encoding'] = fields.contentEncoding;

  const range = parseRange(header(req, 'range'), record.size);
  const start = range?.start ?? 0;
  const end = range?.end ?? record.size - 1;
  headers['Content-Length'] = String(end - start + 1);
  if (range) headers['Content-Range'] = `bytes ${start}-${end}/${record.size}`;
  const stream = await context.catalog.read(record, start, end);
  res.writeHead(range ? 206 : 200, headers);
  if (req.method === 'HEAD') {
    stream.destroy();
    res.end();
    return;
  }
  // A client that hangs up mid-download is not a server error.
  await pipeline(stream, res).catch(() => res.destroy());
}

/** A parsed `Range: bytes=…` for an object of `size` bytes; undefined serves the whole object. */
function parseRange(value: string | undefined, size: number): { start: number; end: number } | undefined {
  if (!value || size === 0) return undefined;
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(value);
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) throw rangeNotSatisfiable(size);
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size || end < start) throw rangeNotSatisfiable(size);
  return { start, end };
}

function rangeNotSatisfiable(size: number): StorageApiError {
  return new StorageApiError(416, 'requestedRangeNotSatisfiable', 'Request range not satisfiable', {
    'Content-Range': `bytes */${size}`,
  });
}
