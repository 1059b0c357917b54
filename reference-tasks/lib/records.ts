import { InputError } from './errors.js';
import type { SourceLine } from './line-shard.js';

/** The input formats the reference tasks read, chosen by the object's extension. */
export type InputFormat = 'jsonl' | 'csv';

export type JsonRecord = Record<string, unknown>;

/** A line turned into a record, or the reason it could not be. Blank lines are neither. */
export type DecodedLine =
  | { kind: 'record'; offset: number; record: JsonRecord }
  | { kind: 'reject'; offset: number; reason: string; line: string }
  | { kind: 'skip'; offset: number };

/** The format for an object name (`.jsonl`/`.ndjson` or `.csv`, case-insensitive), or undefined. */
export function formatOf(objectName: string): InputFormat | undefined {
  const lower = objectName.toLowerCase();
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'jsonl';
  if (lower.endsWith('.csv')) return 'csv';
  return undefined;
}

const BOM = '\uFEFF';

/** A line's text: UTF-8, without a trailing `\r` (CRLF files), and without the BOM at offset 0. */
export function lineText(line: SourceLine): string | undefined {
  if (!line.bytes) return undefined;
  let text = line.bytes.toString('utf8');
  if (text.endsWith('\r')) text = text.slice(0, -1);
  if (line.offset === 0 && text.startsWith(BOM)) text = text.slice(1);
  return text;
}

/**
 * Splits one CSV line into fields (RFC 4180 on a single line: comma separators, fields
 * optionally in double quotes, `""` for a quote inside quotes). A quoted field that spans
 * lines is not supported: the tasks shard by line, so such a record arrives cut in two and
 * each half is rejected as an unterminated quote.
 */
export function parseCsvLine(line: string): string[] {
  const fields: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  let fieldStart = true;
  while (i < line.length) {
    const char = line[i] as string;
    if (quoted) {
      if (char === '"') {
        if (line[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        if (i < line.length && line[i] !== ',') {
          throw new SyntaxError(`unexpected character after closing quote at column ${i + 1}`);
        }
        continue;
      }
      field += char;
      i++;
      continue;
    }
    if (char === ',') {
      fields.push(field);
      field = '';
      fieldStart = true;
      i++;
      continue;
    }
    if (char === '"') {
      if (!fieldStart) throw new SyntaxError(`quote inside an unquoted field at column ${i + 1}`);
      quoted = true;
      fieldStart = false;
      i++;
      continue;
    }
    field += char;
    fieldStart = false;
    i++;
  }
  if (quoted) throw new SyntaxError('unterminated quoted field (quoted newlines are not supported)');
  fields.push(field);
  return fields;
}

/** Parses a CSV header line into column names; empty or repeated names make the input unusable. */
export function parseCsvHeader(text: string): string[] {
  let columns: string[];
  try {
    columns = parseCsvLine(text);
  } catch (error) {
    throw new InputError(`CSV header cannot be parsed: ${(error as Error).message}`);
  }
  const seen = new Set<string>();
  for (const [position, name] of columns.entries()) {
    if (name.trim() === '') throw new InputError(`CSV header column ${position + 1} has no name`);
    if (seen.has(name)) throw new InputError(`CSV header names column "${name}" twice`);
    seen.add(name);
  }
  return columns;
}

/**
 * Turns lines into records for a format. For CSV, `header` is the file's first line (every
 * shard reads it) and the line at offset 0 is that header, never a record.
 */
export function createLineDecoder(format: InputFormat, header?: string[]): (line: SourceLine) => DecodedLine {
  if (format === 'csv' && !header) throw new InputError('a CSV input needs a header line');
  return (line) => {
    const { offset } = line;
    const text = lineText(line);
    if (text === undefined) {
      return { kind: 'reject', offset, reason: `line of ${line.length} bytes is too long`, line: '' };
    }
    if (format === 'csv' && offset === 0) return { kind: 'skip', offset };
    if (text.trim() === '') return { kind: 'skip', offset };
    return format === 'jsonl'
      ? decodeJsonLine(offset, text)
      : decodeCsvLine(offset, text, header as string[]);
  };
}

function decodeJsonLine(offset: number, text: string): DecodedLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { kind: 'reject', offset, reason: `invalid JSON: ${(error as Error).message}`, line: text };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { kind: 'reject', offset, reason: 'not a JSON object', line: text };
  }
  return { kind: 'record', offset, record: value as JsonRecord };
}

function decodeCsvLine(offset: number, text: string, header: string[]): DecodedLine {
  let fields: string[];
  try {
    fields = parseCsvLine(text);
  } catch (error) {
    return { kind: 'reject', offset, reason: `invalid CSV: ${(error as Error).message}`, line: text };
  }
  if (fields.length !== header.length) {
    return {
      kind: 'reject',
      offset,
      reason: `CSV line has ${fields.length} fields, the header has ${header.length}`,
      line: text,
    };
  }
  const record: JsonRecord = {};
  for (const [position, name] of header.entries()) record[name] = fields[position];
  return { kind: 'record', offset, record };
}
