/**
 * Listing pages for Buckets.list and Objects.list: which entries a query selects, in GCS order
 * (names by their UTF-8 bytes, then generation), grouped under a delimiter, and cut into pages
 * whose opaque page token says where the next one starts.
 */
import { type BucketRecord, invalidArgument, type ObjectRecord } from './resources.js';

export interface ListObjectsQuery {
  prefix?: string;
  delimiter?: string;
  pageToken?: string;
  maxResults?: number;
  versions?: boolean;
  startOffset?: string;
  endOffset?: string;
  includeTrailingDelimiter?: boolean;
  /** Only names this compiled `matchGlob` matches (see glob.ts). */
  matchGlob?: RegExp;
}

export interface ListBucketsQuery {
  prefix?: string;
  maxResults?: number;
  pageToken?: string;
}

export interface ObjectPage {
  items: ObjectRecord[];
  prefixes: string[];
  nextPageToken?: string;
}

export interface BucketPage {
  items: BucketRecord[];
  nextPageToken?: string;
}

const MAX_PAGE = 1000;

/** GCS sorts names by their UTF-8 bytes; JS string order differs above the BMP. */
function compareNames(a: string, b: string): number {
  return a === b ? 0 : Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Where the next page starts: after this object version, or after every name under this prefix. */
interface PageToken {
  name: string;
  generation?: number;
  prefix?: boolean;
}

function encodeToken(token: PageToken): string {
  return Buffer.from(JSON.stringify(token)).toString('base64url');
}

function decodeToken(token: string | undefined): PageToken | undefined {
  if (!token) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as PageToken;
    if (typeof parsed.name === 'string') return parsed;
  } catch {
    // fall through
  }
  throw invalidArgument('Invalid page token.');
}

/** Buckets.list: names with the prefix, in order, at most `maxResults` (1,000) a page. */
export function bucketPage(buckets: Iterable<BucketRecord>, query: ListBucketsQuery): BucketPage {
  const after = decodeToken(query.pageToken)?.name;
  const max = Math.min(query.maxResults ?? MAX_PAGE, MAX_PAGE);
  const selected = [...buckets]
    .filter(({ name }) => name.startsWith(query.prefix ?? '') && (after === undefined || name > after))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const items = selected.slice(0, max);
  const last = items[items.length - 1];
  return selected.length > max && last !== undefined
    ? { items, nextPageToken: encodeToken({ name: last.name }) }
    : { items };
}

/**
 * Objects.list over a bucket's candidate versions (live ones, plus noncurrent ones when the
 * query asks for versions): prefix/delimiter, offsets, matchGlob, and pages of at most
 * `maxResults` entries, where a prefix counts as one entry.
 */
export function objectPage(candidates: ObjectRecord[], query: ListObjectsQuery): ObjectPage {
  const prefix = query.prefix ?? '';
  const delimiter = query.delimiter || undefined;
  const max = Math.max(1, Math.min(query.maxResults ?? MAX_PAGE, MAX_PAGE));
  const token = decodeToken(query.pageToken);

  const keyed = candidates
    .filter(
      (record) =>
        record.name.startsWith(prefix) &&
        (query.matchGlob === undefined || query.matchGlob.test(record.name)) &&
        (query.startOffset === undefined || compareNames(record.name, query.startOffset) >= 0) &&
        (query.endOffset === undefined || compareNames(record.name, query.endOffset) < 0),
    )
    .map((record) => ({ record, key: Buffer.from(record.name, 'utf8') }))
    .sort((a, b) => Buffer.compare(a.key, b.key) || a.record.generation - b.record.generation);

  const items: ObjectRecord[] = [];
  const prefixes: string[] = [];
  let lastPrefix: string | undefined = token?.prefix ? token.name : undefined;
  let last: PageToken | undefined;
  let count = 0;
  for (const { record } of keyed) {
    if (token && !token.prefix) {
      const order = compareNames(record.name, token.name);
      if (order < 0 || (order === 0 && record.generation <= (token.generation ?? Number.MAX_SAFE_INTEGER))) {
        continue;
      }
    }
    if (token?.prefix && compareNames(record.name, token.name) < 0) continue;
    if (lastPrefix !== undefined && record.name.startsWith(lastPrefix)) continue;
    let groupedUnder: string | undefined;
    if (delimiter) {
      const at = record.name.indexOf(delimiter, prefix.length);
      if (at >= 0) groupedUnder = record.name.slice(0, at + delimiter.length);
    }
    if (count === max) {
      return { items, prefixes, nextPageToken: encodeToken(last as PageToken) };
    }
    if (groupedUnder !== undefined) {
      prefixes.push(groupedUnder);
      lastPrefix = groupedUnder;
      last = { name: groupedUnder, prefix: true };
      // With includeTrailingDelimiter, an object named exactly like the prefix is listed too.
      if (query.includeTrailingDelimiter && record.name === groupedUnder) items.push(record);
    } else {
      items.push(record);
      last = { name: record.name, generation: record.generation };
    }
    count += 1;
  }
  return { items, prefixes };
}
