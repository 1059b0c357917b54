import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { File } from '@google-cloud/storage';

/**
 * Bytes that can be read by range: the seam between the line sharding (pure, unit-tested over
 * buffers) and Cloud Storage (ranged `createReadStream`).
 */
export interface RangedByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** The bytes in [start, end) as a stream of chunks (chunk boundaries are arbitrary). */
  read(start: number, end: number): AsyncIterable<Uint8Array>;
}

/**
 * An in-memory source; `chunkSizes` (cycled) lets tests cut the stream anywhere, as a
 * network does.
 */
export function bufferSource(
  data: Uint8Array,
  chunkSizes: number[] = [64 * 1024],
): RangedByteSource & {
  reads: Array<[number, number]>;
} {
  const reads: Array<[number, number]> = [];
  return {
    size: data.length,
    reads,
    async *read(start: number, end: number) {
      reads.push([start, end]);
      let position = Math.max(0, start);
      let turn = 0;
      const stop = Math.min(end, data.length);
      while (position < stop) {
        const size = Math.max(1, chunkSizes[turn++ % chunkSizes.length] ?? 1);
        const next = Math.min(stop, position + size);
        yield data.subarray(position, next);
        position = next;
      }
    },
  };
}

/**
 * One generation of a Cloud Storage object as a ranged source: every read is a ranged GET of
 * that generation, so all tasks see the same bytes even if the object is overwritten meanwhile.
 */
export function gcsSource(file: File, size: number): RangedByteSource {
  return {
    size,
    read(start: number, end: number): AsyncIterable<Uint8Array> {
      if (end <= start) return emptyIterable();
      // Hash validation only applies to whole-object reads; ranges are checked by length.
      return drainedOnReturn(
        file.createReadStream({ start, end: end - 1, validation: false, decompress: false }),
        end - start,
      );
    },
  };
}

/**
 * A reader that stops early (a shard's last line is complete before its range is) leaves the
 * rest of the range to be read rather than destroyed. Destroying a download mid-response puts
 * its keep-alive socket back in the Storage client's pool as it closes, and the client's next
 * request on that socket fails with "socket hang up" (@google-cloud/storage 7.x; reproduced
 * against a plain Node HTTP server, so it is not the server's doing). Past this many bytes left,
 * the reader stopped on an error mid-shard and the task is failing: the download is cut.
 */
const MAX_DRAINED_BYTES = 8 * 1024 * 1024;

async function* drainedOnReturn(stream: Readable, rangeBytes: number): AsyncIterable<Uint8Array> {
  let received = 0;
  let ended = false;
  try {
    for await (const chunk of stream.iterator({ destroyOnReturn: false })) {
      received += (chunk as Uint8Array).byteLength;
      yield chunk as Uint8Array;
    }
    ended = true;
  } finally {
    if (!ended && !stream.destroyed) {
      if (rangeBytes - received > MAX_DRAINED_BYTES) {
        stream.destroy();
      } else {
        stream.resume();
        await finished(stream);
      }
    }
  }
}

async function* emptyIterable(): AsyncIterable<Uint8Array> {}
