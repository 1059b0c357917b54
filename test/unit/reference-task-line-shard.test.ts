import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bufferSource } from '#reference-tasks/lib/byte-source.js';
import { readFirstLine, readShardLines, shardByteRange } from '#reference-tasks/lib/line-shard.js';

/** The reference: the input's lines as a plain split would give them, with their byte offsets. */
function expectedLines(data: Buffer): Array<{ offset: number; text: string }> {
  const lines: Array<{ offset: number; text: string }> = [];
  let start = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] === 0x0a) {
      lines.push({ offset: start, text: data.subarray(start, i).toString('latin1') });
      start = i + 1;
    }
  }
  if (start < data.length) lines.push({ offset: start, text: data.subarray(start).toString('latin1') });
  return lines;
}

async function shardLines(data: Buffer, index: number, count: number, chunkSizes: number[], tail = 3) {
  const out: Array<{ offset: number; text: string }> = [];
  for await (const line of readShardLines(bufferSource(data, chunkSizes), index, count, {
    tailWindowBytes: tail,
  })) {
    out.push({ offset: line.offset, text: (line.bytes as Buffer).toString('latin1') });
  }
  return out;
}

// Inputs rich in the awkward cases: empty lines, runs of newlines, lines longer than a shard,
// a missing final newline, multi-byte characters (never split: a newline byte is never inside one).
const inputArbitrary = fc
  .array(
    fc.oneof(fc.string({ maxLength: 12 }), fc.constant(''), fc.string({ minLength: 30, maxLength: 90 })),
    {
      maxLength: 40,
    },
  )
  .chain((lines) =>
    fc.boolean().map((finalNewline) => {
      const text = lines.join('\n') + (finalNewline && lines.length > 0 ? '\n' : '');
      return Buffer.from(text.replaceAll('\r', ''), 'utf8');
    }),
  );

describe('shardByteRange', () => {
  it('tiles [0, size) without gaps or overlaps for every task count', () => {
    fc.assert(
      fc.property(fc.nat(10_000), fc.integer({ min: 1, max: 64 }), (size, count) => {
        let previousEnd = 0;
        for (let index = 0; index < count; index++) {
          const { start, end } = shardByteRange(size, index, count);
          expect(start).toBe(previousEnd);
          expect(end).toBeGreaterThanOrEqual(start);
          previousEnd = end;
        }
        expect(previousEnd).toBe(size);
      }),
    );
  });

  it('rejects an index outside [0, count)', () => {
    expect(() => shardByteRange(100, 3, 3)).toThrow(RangeError);
    expect(() => shardByteRange(100, 0, 0)).toThrow(RangeError);
  });
});

describe('readShardLines', () => {
  it('gives, over N shards for N in 1..8, exactly the input lines once each and in order', async () => {
    await fc.assert(
      fc.asyncProperty(
        inputArbitrary,
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.integer({ min: 1, max: 17 }), { minLength: 1, maxLength: 4 }),
        async (data, count, chunkSizes) => {
          // Arrange
          const expected = expectedLines(data);
          // Act
          const union = [];
          for (let index = 0; index < count; index++)
            union.push(...(await shardLines(data, index, count, chunkSizes)));
          // Assert
          expect(union).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('gives each shard only lines that start in its byte range, in ascending order', async () => {
    await fc.assert(
      fc.asyncProperty(inputArbitrary, fc.integer({ min: 1, max: 8 }), async (data, count) => {
        for (let index = 0; index < count; index++) {
          const { start, end } = shardByteRange(data.length, index, count);
          const lines = await shardLines(data, index, count, [5]);
          for (const line of lines) {
            expect(line.offset).toBeGreaterThanOrEqual(start);
            expect(line.offset).toBeLessThan(end);
          }
          expect(lines.map((line) => line.offset)).toEqual(
            [...lines.map((line) => line.offset)].sort((a, b) => a - b),
          );
        }
      }),
      { numRuns: 200 },
    );
  });

  it('reads about its own share of the bytes, not the whole input', async () => {
    // Arrange: 1000 lines of 10 bytes, 4 shards
    const data = Buffer.from('abcdefghi\n'.repeat(1000));
    const source = bufferSource(data, [4096]);
    // Act
    for await (const _ of readShardLines(source, 2, 4, { tailWindowBytes: 64 })) {
      // drain
    }
    // Assert: its range [5000, 7500) plus the peeked byte before it and at most one tail window
    const bytesRead = source.reads.reduce((sum, [from, to]) => sum + (to - from), 0);
    expect(source.reads[0]).toEqual([4999, 7500]);
    expect(bytesRead).toBeLessThanOrEqual(2500 + 1 + 64);
  });

  it('reports a line longer than maxLineBytes without holding its bytes, then carries on', async () => {
    const data = Buffer.from(`short\n${'x'.repeat(100)}\nafter\n`);
    const lines = [];
    for await (const line of readShardLines(bufferSource(data, [7]), 0, 1, { maxLineBytes: 50 }))
      lines.push(line);
    expect(lines.map((line) => [line.offset, line.length, line.bytes?.toString()])).toEqual([
      [0, 5, 'short'],
      [6, 100, undefined],
      [107, 5, 'after'],
    ]);
  });

  it('finds the first line (a CSV header) even when it is longer than the read window', async () => {
    const data = Buffer.from(`${'h'.repeat(300)}\nrow\n`);
    const first = await readFirstLine(bufferSource(data, [16]), { tailWindowBytes: 8 });
    expect(first?.bytes?.toString()).toBe('h'.repeat(300));
    expect(await readFirstLine(bufferSource(Buffer.alloc(0)))).toBeUndefined();
  });
});
