import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { multipartBoundary, readMultipart } from '#local/storage/multipart.js';
import { StorageApiError } from '#local/storage/resources.js';
import { parseContentRange } from '#local/storage/uploads.js';

describe('parseContentRange', () => {
  it.each([
    [undefined, { kind: 'data', start: 0 }],
    ['bytes */*', { kind: 'status' }],
    ['bytes */1024', { kind: 'status', total: 1024 }],
    ['bytes 0-262143/*', { kind: 'data', start: 0, end: 262143 }],
    ['bytes 262144-300000/300001', { kind: 'data', start: 262144, end: 300000, total: 300001 }],
    ['bytes 0-*/*', { kind: 'data', start: 0 }],
    ['bytes 0-*/12', { kind: 'data', start: 0, total: 12 }],
    ['bytes 0--1/0', { kind: 'data', start: 0, end: -1, total: 0 }],
  ])('parses %s', (header, expected) => {
    expect(parseContentRange(header)).toEqual(expected);
  });

  it.each(['bytes', 'bytes x-y/z', 'items 0-1/2', 'bytes 5-1/10'])('rejects %s with 400', (header) => {
    expect(() => parseContentRange(header)).toThrow(StorageApiError);
  });
});

/** A multipart/related body as teeny-request writes it, delivered in `size`-byte pieces. */
function multipartBody(boundary: string, metadata: string, media: Buffer, size: number): Readable {
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Type: application/json\r\n\r\n${metadata}\r\n`),
    Buffer.from(`--${boundary}\r\nContent-Type: text/csv\r\n\r\n`),
    media,
    Buffer.from(`\r\n--${boundary}--`),
  ]);
  const pieces: Buffer[] = [];
  for (let at = 0; at < body.length; at += size) pieces.push(body.subarray(at, at + size));
  return Readable.from(pieces);
}

describe('readMultipart', () => {
  it.each([1, 3, 7, 64, 100_000])('streams the media exactly, in %i-byte pieces', async (size) => {
    // Arrange: media that contains near-misses of the delimiter.
    const boundary = 'b0undary';
    const media = Buffer.from(`a,b\r\n--b0undar\r\n--b0undar-y\r\nx--b0undary\r\n-1,2\r\n`);
    const received: Buffer[] = [];

    // Act
    const head = await readMultipart(
      multipartBody(boundary, '{"name":"x.csv"}', media, size),
      boundary,
      async (c) => {
        received.push(Buffer.from(c));
      },
    );

    // Assert
    expect(head).toEqual({ metadata: { name: 'x.csv' }, mediaContentType: 'text/csv' });
    expect(Buffer.concat(received).toString()).toBe(media.toString());
  });

  it('rejects a body without the closing boundary', async () => {
    const body = Readable.from([
      Buffer.from('--zz\r\nContent-Type: application/json\r\n\r\n{}\r\n--zz\r\n\r\nabc'),
    ]);
    await expect(readMultipart(body, 'zz', async () => {})).rejects.toMatchObject({ status: 400 });
  });

  it('rejects metadata that is not JSON', async () => {
    const body = multipartBody('zz', '{nope', Buffer.from('x'), 10);
    await expect(readMultipart(body, 'zz', async () => {})).rejects.toMatchObject({ status: 400 });
  });

  it('reads the LF-only body gcloud sends, keeping the trailing newline of the media', async () => {
    // Arrange: the exact shape gcloud 528 sends for `gcloud storage cp a.txt gs://b/x/a.txt`
    // (Python's email package: LF line ends, MIME-Version headers, a boundary of = signs).
    const boundary = '===============5137923883045249891==';
    const text =
      `--${boundary}\nContent-Type: application/json\nMIME-Version: 1.0\n\n` +
      `{"bucket": "b", "contentType": "text/plain", "name": "x/a.txt"}\n` +
      `--${boundary}\nContent-Type: text/plain\nMIME-Version: 1.0\nContent-Transfer-Encoding: binary\n\n` +
      `hello\n\n--${boundary}--\n`;
    for (const size of [1, 5, text.length]) {
      const pieces: Buffer[] = [];
      for (let at = 0; at < text.length; at += size) pieces.push(Buffer.from(text.slice(at, at + size)));
      const received: Buffer[] = [];

      // Act
      const head = await readMultipart(Readable.from(pieces), boundary, async (c) => {
        received.push(Buffer.from(c));
      });

      // Assert
      expect(head).toEqual({
        metadata: { bucket: 'b', contentType: 'text/plain', name: 'x/a.txt' },
        mediaContentType: 'text/plain',
      });
      expect(Buffer.concat(received).toString()).toBe('hello\n');
    }
  });
});

describe('readMultipart, line ends', () => {
  it.each([
    ['CRLF with transport padding after the boundary', '\r\n', '  '],
    ['LF with a tab of padding', '\n', '\t'],
  ])('reads %s', async (_, eol, padding) => {
    const text = [
      `--zz${padding}`,
      'Content-Type: application/json',
      '',
      '{"name":"p.txt"}',
      '--zz',
      '',
      'body',
      '--zz--',
    ].join(eol);
    const received: Buffer[] = [];

    const head = await readMultipart(Readable.from([Buffer.from(text)]), 'zz', async (c) => {
      received.push(Buffer.from(c));
    });

    expect(head.metadata).toEqual({ name: 'p.txt' });
    expect(Buffer.concat(received).toString()).toBe('body');
  });
});

describe('multipartBoundary', () => {
  it.each([
    ['multipart/related; boundary=abc', 'abc'],
    ['multipart/related; boundary="a b=c"', 'a b=c'],
    [
      "multipart/related; boundary='===============5137923883045249891=='",
      '===============5137923883045249891==',
    ],
  ])('reads %s', (contentType, boundary) => {
    expect(multipartBoundary(contentType)).toBe(boundary);
  });

  it.each([undefined, 'application/json', 'multipart/related'])('refuses %s with 400', (contentType) => {
    expect(() => multipartBoundary(contentType)).toThrow(StorageApiError);
  });
});
