/**
 * Multipart uploads: the boundary of a `multipart/related` body (quoted or not), its JSON metadata
 * part, and the media part streamed out as it arrives.
 */
import { invalidArgument } from './resources.js';

/** The first part of a `multipart/related` upload and the second part's headers. */
export interface MultipartHead {
  metadata: Record<string, unknown>;
  mediaContentType?: string;
}

const MAX_HEAD_BYTES = 1024 * 1024;

/**
 * The boundary of a `multipart/related; boundary=…` content type, or throws 400. Besides the
 * RFC 2045 token and double-quoted forms, the single-quoted form gcloud sends
 * (`boundary='===============123=='`, from Python's email package) is accepted.
 */
export function multipartBoundary(contentType: string | undefined): string {
  const match = /boundary=(?:"([^"]+)"|'([^']+)'|([^;\s]+))/i.exec(contentType ?? '');
  const boundary = match?.[1] ?? match?.[2] ?? match?.[3];
  if (!contentType?.toLowerCase().startsWith('multipart/') || !boundary) {
    throw invalidArgument('Multipart upload needs a multipart/related Content-Type with a boundary.');
  }
  return boundary;
}

function parseHeaders(block: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of block.split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (at > 0) headers[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim();
  }
  return headers;
}

/**
 * Streams a two-part `multipart/related` upload (JSON metadata, then the media) without holding
 * the media in memory: the head is buffered (bounded), the media is handed to `onMedia` as it
 * arrives, keeping back only as many bytes as the closing delimiter could span.
 *
 * Line ends are CRLF as RFC 2046 writes them, or LF only as gcloud sends them: the line end
 * after the first boundary decides which one the whole body uses (the line end before each
 * later boundary belongs to that delimiter, so the media keeps its own trailing newline).
 */
export async function readMultipart(
  body: AsyncIterable<Uint8Array>,
  boundary: string,
  onMedia: (chunk: Buffer) => Promise<void>,
): Promise<MultipartHead> {
  const iterator = body[Symbol.asyncIterator]();
  let pending = Buffer.alloc(0);
  let ended = false;
  const pull = async (): Promise<boolean> => {
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      return false;
    }
    pending = Buffer.concat([pending, next.value]);
    return true;
  };
  /** Waits until `needle` occurs in `pending` at or after `from`; returns its index. */
  const find = async (needle: Buffer, from: number): Promise<number> => {
    for (;;) {
      const at = pending.indexOf(needle, from);
      if (at >= 0) return at;
      if (pending.length > MAX_HEAD_BYTES)
        throw invalidArgument('Multipart upload metadata part is too large.');
      if (ended || !(await pull())) throw invalidArgument('Malformed multipart upload body.');
    }
  };

  // The first boundary line, and the line end it uses.
  const dashBoundary = Buffer.from(`--${boundary}`);
  const opening = await find(dashBoundary, 0);
  // The end of that line (after any transport padding RFC 2046 allows) tells CRLF from LF.
  const lineEnd = await find(Buffer.from('\n'), opening + dashBoundary.length);
  const eol = pending[lineEnd - 1] === 0x0d ? '\r\n' : '\n';
  // The line end before the first boundary makes every delimiter look the same.
  pending = Buffer.concat([Buffer.from(eol), pending.subarray(opening)]);
  const delimiter = Buffer.from(`${eol}--${boundary}`);
  const headersEnd = Buffer.from(eol + eol);

  // Part 1: the JSON metadata.
  const first = 0;
  const firstHeadersEnd = await find(headersEnd, first + delimiter.length);
  const firstEnd = await find(delimiter, firstHeadersEnd + headersEnd.length);
  const metadataText = pending.subarray(firstHeadersEnd + headersEnd.length, firstEnd).toString('utf8');
  let metadata: unknown;
  try {
    metadata = metadataText.trim() === '' ? {} : JSON.parse(metadataText);
  } catch {
    throw invalidArgument('Multipart upload metadata is not valid JSON.');
  }
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw invalidArgument('Multipart upload metadata must be a JSON object.');
  }

  // Part 2: its headers, then the media up to the closing delimiter.
  const secondHeadersEnd = await find(headersEnd, firstEnd + delimiter.length);
  const headers = parseHeaders(
    pending.subarray(firstEnd + delimiter.length, secondHeadersEnd).toString('latin1'),
  );
  if (
    headers['content-transfer-encoding'] &&
    headers['content-transfer-encoding'].toLowerCase() !== 'binary'
  ) {
    throw invalidArgument('Only binary multipart media is supported.');
  }
  pending = pending.subarray(secondHeadersEnd + headersEnd.length);
  for (;;) {
    const at = pending.indexOf(delimiter);
    if (at >= 0) {
      await onMedia(pending.subarray(0, at));
      break;
    }
    const safe = pending.length - (delimiter.length - 1);
    if (safe > 0) {
      await onMedia(pending.subarray(0, safe));
      pending = pending.subarray(safe);
    }
    if (!(await pull())) throw invalidArgument('Malformed multipart upload body: missing closing boundary.');
  }
  // Drain whatever follows the closing delimiter (epilogue) so the connection stays usable.
  while (!ended) {
    const next = await iterator.next();
    if (next.done) ended = true;
  }
  const mediaContentType = headers['content-type'];
  return { metadata: metadata as Record<string, unknown>, ...(mediaContentType ? { mediaContentType } : {}) };
}
