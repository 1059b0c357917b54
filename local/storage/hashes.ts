/**
 * Object checksums: CRC32C and MD5 as GCS reports them, computed while bytes stream in, and
 * the `x-goog-hash` header clients send to have an upload checked.
 */
import { createHash, type Hash } from 'node:crypto';

/**
 * CRC32C (Castagnoli), the checksum GCS reports in `crc32c` and `x-goog-hash`. Node 20 has
 * no built-in, and the client validates every upload and download against it, so it has to
 * be exact and fast enough for multi-megabyte objects: slicing-by-8 over eight 256-entry tables.
 */
const POLYNOMIAL = 0x82f63b78;

const TABLES: Uint32Array[] = (() => {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  const t0 = tables[0] as Uint32Array;
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLYNOMIAL : c >>> 1;
    t0[n] = c >>> 0;
  }
  for (let t = 1; t < 8; t++) {
    const previous = tables[t - 1] as Uint32Array;
    const current = tables[t] as Uint32Array;
    for (let n = 0; n < 256; n++) {
      const p = previous[n] as number;
      current[n] = ((p >>> 8) ^ (t0[p & 0xff] as number)) >>> 0;
    }
  }
  return tables;
})();

const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES as [
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
];

/** Extends a CRC32C value (as returned by a previous call, 0 to start) over `data`. */
export function crc32cUpdate(crc: number, data: Uint8Array): number {
  let c = (crc ^ 0xffffffff) >>> 0;
  let i = 0;
  const n = data.length;
  while (n - i >= 8) {
    const lo = (c ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24))) >>> 0;
    const hi = (data[i + 4] | (data[i + 5] << 8) | (data[i + 6] << 16) | (data[i + 7] << 24)) >>> 0;
    c =
      T7[lo & 0xff] ^
      T6[(lo >>> 8) & 0xff] ^
      T5[(lo >>> 16) & 0xff] ^
      T4[lo >>> 24] ^
      T3[hi & 0xff] ^
      T2[(hi >>> 8) & 0xff] ^
      T1[(hi >>> 16) & 0xff] ^
      T0[hi >>> 24];
    i += 8;
  }
  while (i < n) c = T0[(c ^ data[i++]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** CRC32C of `data`, as GCS writes it: the big-endian 4 bytes, base64. */
export function crc32cBase64(data: Uint8Array): string {
  return crc32cToBase64(crc32cUpdate(0, data));
}

/** The GCS encoding of a CRC32C value: big-endian 4 bytes, base64. */
export function crc32cToBase64(crc: number): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc >>> 0, 0);
  return bytes.toString('base64');
}

/** The two hashes GCS keeps for an object, both base64. */
export interface ObjectHashes {
  crc32c: string;
  md5Hash: string;
}

/** Computes CRC32C and MD5 incrementally while an object's bytes stream through. */
export class ObjectHasher {
  private crc = 0;
  private readonly md5: Hash = createHash('md5');

  update(data: Uint8Array): void {
    this.crc = crc32cUpdate(this.crc, data);
    this.md5.update(data);
  }

  /** The hashes of everything seen so far; call once, at the end. */
  digest(): ObjectHashes {
    return { crc32c: crc32cToBase64(this.crc), md5Hash: this.md5.digest('base64') };
  }
}

/**
 * Parses an `x-goog-hash` header (`crc32c=…,md5=…`, possibly repeated) into the hashes it names.
 * Unknown hash types are ignored.
 */
export function parseGoogHash(header: string | string[] | undefined): Partial<ObjectHashes> {
  const result: Partial<ObjectHashes> = {};
  const values = Array.isArray(header) ? header : header ? [header] : [];
  for (const value of values) {
    for (const pair of value.split(',')) {
      const at = pair.indexOf('=');
      if (at < 0) continue;
      const type = pair.slice(0, at).trim().toLowerCase();
      const hash = pair.slice(at + 1).trim();
      if (type === 'crc32c') result.crc32c = hash;
      else if (type === 'md5') result.md5Hash = hash;
    }
  }
  return result;
}
