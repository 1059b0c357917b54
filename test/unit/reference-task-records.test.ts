import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bufferSource } from '#reference-tasks/lib/byte-source.js';
import { InputError } from '#reference-tasks/lib/errors.js';
import { readFirstLine, readShardLines } from '#reference-tasks/lib/line-shard.js';
import {
  createLineDecoder,
  type DecodedLine,
  formatOf,
  lineText,
  parseCsvHeader,
  parseCsvLine,
} from '#reference-tasks/lib/records.js';

const line = (offset: number, text: string) => ({
  offset,
  length: Buffer.byteLength(text),
  bytes: Buffer.from(text),
});

/** Quotes a CSV field the way a spreadsheet export does. */
const quote = (field: string) =>
  /[",]/.test(field) || field === '' ? `"${field.replaceAll('"', '""')}"` : field;

describe('formatOf', () => {
  it('chooses the format by extension, case-insensitively', () => {
    expect(formatOf('p/c/inputs/a.jsonl')).toBe('jsonl');
    expect(formatOf('p/c/inputs/a.NDJSON')).toBe('jsonl');
    expect(formatOf('p/c/inputs/a.CSV')).toBe('csv');
    expect(formatOf('p/c/inputs/a.txt')).toBeUndefined();
  });
});

describe('parseCsvLine', () => {
  it('splits on commas outside quotes and unescapes doubled quotes', () => {
    expect(parseCsvLine('a,"b, c","say ""hi""",,d')).toEqual(['a', 'b, c', 'say "hi"', '', 'd']);
    expect(parseCsvLine('')).toEqual(['']);
    expect(parseCsvLine('"",x')).toEqual(['', 'x']);
  });

  it('rejects an unterminated quote (a quoted newline arrives as such) and stray quotes', () => {
    expect(() => parseCsvLine('a,"b')).toThrow(/unterminated quoted field/);
    expect(() => parseCsvLine('a"b,c')).toThrow(/quote inside an unquoted field/);
    expect(() => parseCsvLine('"a"b,c')).toThrow(/after closing quote/);
  });

  it('round-trips any fields quoted as an export would quote them', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string().filter((s) => !/[\n\r]/.test(s)),
          { minLength: 1, maxLength: 8 },
        ),
        (fields) => {
          expect(parseCsvLine(fields.map(quote).join(','))).toEqual(fields);
        },
      ),
    );
  });
});

describe('parseCsvHeader', () => {
  it('refuses headers with empty or repeated column names', () => {
    expect(parseCsvHeader('id,text')).toEqual(['id', 'text']);
    expect(() => parseCsvHeader('id,,text')).toThrow(InputError);
    expect(() => parseCsvHeader('id,text,id')).toThrow(/twice/);
  });
});

describe('createLineDecoder', () => {
  it('decodes JSONL objects, skips blank lines and rejects invalid JSON and non-objects', () => {
    const decode = createLineDecoder('jsonl');
    expect(decode(line(0, '{"text":"a"}'))).toEqual({ kind: 'record', offset: 0, record: { text: 'a' } });
    expect(decode(line(5, '   '))).toEqual({ kind: 'skip', offset: 5 });
    expect(decode(line(9, '{"text":'))).toMatchObject({ kind: 'reject', offset: 9, line: '{"text":' });
    expect(decode(line(20, '[1,2]'))).toMatchObject({ kind: 'reject', reason: 'not a JSON object' });
  });

  it('strips CRLF endings and the UTF-8 BOM at the start of the input', () => {
    expect(lineText(line(0, '\uFEFF{"a":1}\r'))).toBe('{"a":1}');
    expect(lineText(line(7, '\uFEFFx'))).toBe('\uFEFFx');
  });

  it('maps CSV fields onto the header, never emits the header line, rejects a wrong field count', () => {
    const decode = createLineDecoder('csv', ['id', 'text']);
    expect(decode(line(0, 'id,text'))).toEqual({ kind: 'skip', offset: 0 });
    expect(decode(line(8, '1,"hello, world"'))).toEqual({
      kind: 'record',
      offset: 8,
      record: { id: '1', text: 'hello, world' },
    });
    expect(decode(line(30, '2,a,b'))).toMatchObject({
      kind: 'reject',
      reason: 'CSV line has 3 fields, the header has 2',
    });
  });

  it('rejects a line that was too long to hold', () => {
    const decode = createLineDecoder('jsonl');
    expect(decode({ offset: 3, length: 99, bytes: undefined })).toMatchObject({ kind: 'reject', offset: 3 });
  });
});

describe('CSV sharding', () => {
  it('gives, over N shards, every data row once and in order, with the header applied in every shard', async () => {
    const rowArbitrary = fc.tuple(
      fc.nat(),
      fc.string({ maxLength: 20 }).filter((s) => !/[\n\r]/.test(s)),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(rowArbitrary, { maxLength: 30 }),
        fc.integer({ min: 1, max: 8 }),
        async (rows, count) => {
          // Arrange
          const text = ['id,text', ...rows.map(([id, t]) => `${id},${quote(t)}`)].join('\n');
          const source = bufferSource(Buffer.from(text), [7]);
          const expected = rows.map(([id, t]) => ({ id: String(id), text: t }));
          // Act
          const headerLine = await readFirstLine(source);
          const decode = createLineDecoder('csv', parseCsvHeader(lineText(headerLine as never) as string));
          const decoded: DecodedLine[] = [];
          for (let index = 0; index < count; index++) {
            for await (const sourceLine of readShardLines(source, index, count, { tailWindowBytes: 4 })) {
              decoded.push(decode(sourceLine));
            }
          }
          // Assert
          const records = decoded.flatMap((d) => (d.kind === 'record' ? [d.record] : []));
          expect(records).toEqual(expected);
          expect(decoded.filter((d) => d.kind === 'reject')).toEqual([]);
        },
      ),
      { numRuns: 200 },
    );
  });
});
