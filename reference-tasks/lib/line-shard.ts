import type { RangedByteSource } from './byte-source.js';

/** One line of the input: where it starts and its bytes without the `\n`. */
export interface SourceLine {
  /** Byte offset of the line's first byte in the whole input: unique and in input order. */
  offset: number;
  /** Length in bytes, without the newline. */
  length: number;
  /** The bytes, or undefined when the line is longer than `maxLineBytes` (it was skipped, not held). */
  bytes: Buffer | undefined;
}

export interface LineReadOptions {
  /** Lines longer than this are reported without their bytes, so one huge line cannot exhaust memory. */
  maxLineBytes?: number;
  /** First read past the shard's end, to finish the line that crosses it; doubles on each further read. */
  tailWindowBytes?: number;
}

const NEWLINE = 0x0a;
const MAX_TAIL_WINDOW = 8 * 1024 * 1024;

/**
 * The byte range whose line starts shard `index` of `count` owns: [⌊i·S/N⌋, ⌊(i+1)·S/N⌋).
 * The ranges tile [0, S), so every line start falls in exactly one shard.
 */
export function shardByteRange(size: number, index: number, count: number): { start: number; end: number } {
  if (!Number.isInteger(count) || count < 1)
    throw new RangeError(`count must be a positive integer, got ${count}`);
  if (!Number.isInteger(index) || index < 0 || index >= count) {
    throw new RangeError(`index must be in [0, ${count}), got ${index}`);
  }
  return { start: Math.floor((index * size) / count), end: Math.floor(((index + 1) * size) / count) };
}

/**
 * The lines of shard `index` of `count`: those that START in its byte range. Streams: it reads
 * its range from one byte before its start (that byte says whether a line starts exactly at the
 * start; if not, the partial first line belongs to the previous shard and is skipped), then
 * reads on in small windows past its end only to finish the line that crosses it. So N shards
 * together yield every line of the input exactly once, in order, each reading about S/N bytes.
 */
export async function* readShardLines(
  source: RangedByteSource,
  index: number,
  count: number,
  options: LineReadOptions = {},
): AsyncGenerator<SourceLine> {
  const { start, end } = shardByteRange(source.size, index, count);
  yield* readLinesStartingIn(source, start, end, options);
}

/** The first line of the source (a CSV header), or undefined for an empty source. */
export async function readFirstLine(
  source: RangedByteSource,
  options: LineReadOptions = {},
): Promise<SourceLine | undefined> {
  for await (const line of readLinesStartingIn(source, 0, Math.min(1, source.size), options)) return line;
  return undefined;
}

/** The lines that start in [start, end), each whole even where it runs past `end`. */
export async function* readLinesStartingIn(
  source: RangedByteSource,
  start: number,
  end: number,
  options: LineReadOptions = {},
): AsyncGenerator<SourceLine> {
  if (start >= end) return;
  const maxLineBytes = options.maxLineBytes ?? 64 * 1024 * 1024;
  const readFrom = start === 0 ? 0 : start - 1;
  // Past the start of the input, the peeked byte before `start` and anything up to the first
  // newline belong to a line that started in an earlier shard.
  let skipping = start > 0;
  let lineStart = start;
  let parts: Buffer[] = [];
  let pending = 0;
  let overflow = false;

  const append = (bytes: Buffer) => {
    if (bytes.length === 0) return;
    pending += bytes.length;
    if (overflow) return;
    if (pending > maxLineBytes) {
      overflow = true;
      parts = [];
      return;
    }
    parts.push(bytes);
  };
  const take = (): SourceLine => {
    const line: SourceLine = {
      offset: lineStart,
      length: pending,
      bytes: overflow ? undefined : parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, pending),
    };
    parts = [];
    pending = 0;
    overflow = false;
    return line;
  };

  let position = readFrom;
  for await (const chunk of chunksFrom(source, readFrom, end, options.tailWindowBytes ?? 64 * 1024)) {
    const buffer = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let cursor = 0;
    while (cursor < buffer.length) {
      const newline = buffer.indexOf(NEWLINE, cursor);
      if (skipping) {
        if (newline === -1) break;
        skipping = false;
      } else if (newline === -1) {
        append(buffer.subarray(cursor));
        break;
      } else {
        append(buffer.subarray(cursor, newline));
        yield take();
      }
      lineStart = position + newline + 1;
      cursor = newline + 1;
      if (lineStart >= end) return;
    }
    position += buffer.length;
  }
  // The input's last line may lack its newline.
  if (!skipping && lineStart < source.size) yield take();
}

/** The range [from, firstEnd), then growing windows up to the end of the source until the caller stops. */
async function* chunksFrom(
  source: RangedByteSource,
  from: number,
  firstEnd: number,
  tailWindow: number,
): AsyncGenerator<Uint8Array> {
  yield* source.read(from, firstEnd);
  let position = firstEnd;
  let window = Math.max(1, tailWindow);
  while (position < source.size) {
    const next = Math.min(source.size, position + window);
    yield* source.read(position, next);
    position = next;
    window = Math.min(window * 2, MAX_TAIL_WINDOW);
  }
}
