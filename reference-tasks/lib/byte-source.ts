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
      return file.createReadStream({ start, end: end - 1, validation: false, decompress: false });
    },
  };
}

async function* emptyIterable(): AsyncIterable<Uint8Array> {}
