/**
 * Writing objects: metadata patch/update, delete, and the three uploads of the upload API —
 * media (`uploadType=media`), multipart (`multipart/related`) and resumable (initiation, chunk
 * PUTs answered with 308, cancellation answered with 499).
 */
import { validateName } from '../catalog.js';
import { parseGoogHash } from '../hashes.js';
import { header, intParam, preconditions, readJson, send, sendResource } from '../http.js';
import { multipartBoundary, readMultipart } from '../multipart.js';
import {
  applyObjectFields,
  invalidArgument,
  type MutableObjectFields,
  objectResource,
  StorageApiError,
} from '../resources.js';
import { writeBlob } from '../store.js';
import { parseContentRange } from '../uploads.js';
import type { StorageCall, StorageContext } from './context.js';

type ObjectCall = StorageCall<{ bucket: string; object: string }>;
type UploadCall = StorageCall<{ bucket: string }>;

/** PATCH merges the body into the metadata (`null` clears a field); PUT replaces all of it. */
export async function updateObject(context: StorageContext, { req, res, query, params }: ObjectCall) {
  const body = await readJson(req);
  const record = await context.catalog.updateObject(params.bucket, params.object, body, {
    generation: intParam(query, 'generation'),
    preconditions: preconditions(query),
    replace: req.method === 'PUT',
  });
  sendResource(res, objectResource(record, context.baseUrl()));
}

export async function deleteObject(context: StorageContext, { res, query, params }: ObjectCall) {
  await context.catalog.deleteObject(params.bucket, params.object, {
    generation: intParam(query, 'generation'),
    preconditions: preconditions(query),
  });
  send(res, 204);
}

// ---- uploads ----

/** Objects.insert on the upload API: the body is the object (media, multipart) or starts a session. */
export async function insertObject(context: StorageContext, call: UploadCall): Promise<void> {
  // A missing bucket is a 404 before any byte of the body is read.
  context.catalog.bucket(call.params.bucket);
  switch (call.query.get('uploadType')) {
    case 'media':
      return simpleUpload(context, call);
    case 'multipart':
      return multipartUpload(context, call);
    case 'resumable':
      return startResumable(context, call);
    default:
      throw invalidArgument(
        'Upload requests must include an uploadType URL parameter (media, multipart or resumable).',
      );
  }
}

async function simpleUpload(context: StorageContext, { req, res, query, params }: UploadCall) {
  const name = query.get('name');
  if (!name) throw invalidArgument('Required parameter: name');
  validateName(name);
  const conditions = preconditions(query);
  const blob = await writeBlob(context.catalog.backend, async (writer) => {
    for await (const chunk of req) await writer.write(chunk as Buffer);
  });
  const fields: MutableObjectFields = {
    contentType: header(req, 'content-type') ?? 'application/octet-stream',
  };
  if (query.get('contentEncoding')) fields.contentEncoding = query.get('contentEncoding') as string;
  const record = await context.catalog.finalize(
    {
      bucket: params.bucket,
      name,
      fields,
      preconditions: conditions,
      expected: parseGoogHash(req.headers['x-goog-hash']),
    },
    blob,
  );
  sendResource(res, objectResource(record, context.baseUrl()));
}

async function multipartUpload(context: StorageContext, { req, res, query, params }: UploadCall) {
  const boundary = multipartBoundary(header(req, 'content-type'));
  const conditions = preconditions(query);
  let head: Awaited<ReturnType<typeof readMultipart>> | undefined;
  const blob = await writeBlob(context.catalog.backend, async (writer) => {
    head = await readMultipart(req, boundary, (chunk) => writer.write(chunk));
  });
  const { metadata, mediaContentType } = head as NonNullable<typeof head>;
  const name = query.get('name') ?? (typeof metadata.name === 'string' ? metadata.name : undefined);
  const fields: MutableObjectFields = {};
  try {
    if (!name) throw invalidArgument('Required parameter: name');
    applyObjectFields(fields, metadata);
  } catch (error) {
    // finalize() owns the blob from here on; before it, a bad request must not leak it.
    await context.catalog.backend.deleteBlob(blob.blobId);
    throw error;
  }
  fields.contentType ??= mediaContentType ?? 'application/octet-stream';
  const record = await context.catalog.finalize(
    {
      bucket: params.bucket,
      name,
      fields,
      preconditions: conditions,
      expected: { ...declaredHashes(metadata), ...parseGoogHash(req.headers['x-goog-hash']) },
    },
    blob,
  );
  sendResource(res, objectResource(record, context.baseUrl()));
}

async function startResumable(context: StorageContext, { req, res, query, params }: UploadCall) {
  const metadata = await readJson(req);
  const name = query.get('name') ?? (typeof metadata.name === 'string' ? metadata.name : undefined);
  if (!name) throw invalidArgument('Required parameter: name');
  validateName(name);
  const fields: MutableObjectFields = {};
  applyObjectFields(fields, metadata);
  fields.contentType =
    header(req, 'x-upload-content-type') ?? fields.contentType ?? 'application/octet-stream';
  // Preconditions are evaluated when the upload completes, as GCS does (the initiation
  // succeeds even if the object exists; the final chunk then gets the 412).
  const conditions = preconditions(query);
  const session = context.sessions.create({
    bucket: params.bucket,
    name,
    fields,
    preconditions: conditions,
    expected: declaredHashes(metadata),
  });
  const host = header(req, 'host') ?? new URL(context.baseUrl()).host;
  const location =
    `http://${host}/upload/storage/v1/b/${encodeURIComponent(params.bucket)}/o` +
    `?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${session.id}`;
  res.writeHead(200, { Location: location, 'X-GUploader-UploadID': session.id, 'Content-Length': '0' }).end();
}

/** A chunk PUT (or a status query) on a resumable session: 308 until the last byte, then the object. */
export async function resumeUpload(context: StorageContext, { req, res, query, params }: UploadCall) {
  const session = context.sessions.get(query.get('upload_id') as string);
  if (!session || session.request.bucket !== params.bucket) throw noSuchUpload();
  const range = parseContentRange(header(req, 'content-range'));
  const outcome = await context.sessions.receive(
    session,
    req,
    range,
    parseGoogHash(req.headers['x-goog-hash']),
  );
  if (outcome.done) {
    sendResource(res, objectResource(outcome.record, context.baseUrl()));
    return;
  }
  // 308 Resume Incomplete: Range says which bytes are persisted (none: no Range header).
  const headers: Record<string, string> = { 'Content-Length': '0' };
  if (outcome.persisted > 0) headers.Range = `bytes=0-${outcome.persisted - 1}`;
  res.writeHead(308, headers).end();
}

export async function cancelUpload(context: StorageContext, { res, query }: UploadCall) {
  if (!(await context.sessions.cancel(query.get('upload_id') as string))) throw noSuchUpload();
  // GCS answers a cancelled session with 499 (Client Closed Request).
  res.writeHead(499, { 'Content-Length': '0' }).end();
}

/** The hashes an upload's metadata declares, checked against the bytes when it finalizes. */
function declaredHashes(metadata: Record<string, unknown>): { crc32c?: string; md5Hash?: string } {
  return {
    ...(typeof metadata.crc32c === 'string' ? { crc32c: metadata.crc32c } : {}),
    ...(typeof metadata.md5Hash === 'string' ? { md5Hash: metadata.md5Hash } : {}),
  };
}

function noSuchUpload(): StorageApiError {
  return new StorageApiError(404, 'notFound', 'No such upload session.');
}
