import { CRC32C } from '@google-cloud/storage';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32cBase64, crc32cUpdate, ObjectHasher, parseGoogHash } from '#local/storage/hashes.js';

describe('crc32c', () => {
  it('matches the Castagnoli check value for "123456789"', () => {
    expect(crc32cUpdate(0, Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('encodes as GCS does: big-endian bytes in base64', () => {
    expect(crc32cBase64(Buffer.alloc(0))).toBe('AAAAAA==');
    expect(crc32cBase64(Buffer.from('123456789'))).toBe(
      Buffer.from([0xe3, 0x06, 0x92, 0x83]).toString('base64'),
    );
  });

  it('agrees with the CRC32C the storage client validates with, however the bytes are split', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 300 }), (bytes, cut) => {
        // Arrange
        const data = Buffer.from(bytes);
        const reference = new CRC32C();
        reference.update(data);
        const at = Math.min(cut, data.length);

        // Act
        const whole = crc32cBase64(data);
        const hasher = new ObjectHasher();
        hasher.update(data.subarray(0, at));
        hasher.update(data.subarray(at));

        // Assert
        expect(whole).toBe(reference.toString());
        expect(hasher.digest().crc32c).toBe(reference.toString());
      }),
    );
  });
});

describe('parseGoogHash', () => {
  it('reads crc32c and md5 from one or several x-goog-hash values', () => {
    expect(parseGoogHash('crc32c=AAAAAA==,md5=1B2M2Y8AsgTpgAmY7PhCfg==')).toEqual({
      crc32c: 'AAAAAA==',
      md5Hash: '1B2M2Y8AsgTpgAmY7PhCfg==',
    });
    expect(parseGoogHash(['crc32c=abc=', 'md5=def='])).toEqual({ crc32c: 'abc=', md5Hash: 'def=' });
    expect(parseGoogHash(undefined)).toEqual({});
  });
});
