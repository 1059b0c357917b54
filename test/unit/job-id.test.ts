import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JOB_ID_PATTERN, jobIdFor, objectVersionKey, requestIdFor, uuidV5 } from '#shared/domain/job-id.js';
import { anyText } from '../helpers/arbitraries.js';

const UUID_V5 = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const objectVersion = fc.record({
  bucket: fc.stringMatching(/^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/),
  name: anyText(300).filter((name) => name.length > 0),
  generation: fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }).map(String),
});
// Any strings at all, not only valid ids: the id must stay valid whatever reaches it.
const anyId = anyText(80);

describe('jobIdFor', () => {
  it('is always a valid Batch job id, for any object, product and client', () => {
    fc.assert(
      fc.property(objectVersion, anyId, anyId, (object, product, client) => {
        const id = jobIdFor(object, product, client);
        expect(id).toMatch(JOB_ID_PATTERN);
        expect(id.length).toBeLessThanOrEqual(63);
      }),
      { numRuns: 500 },
    );
  });

  it('is stable: the same object version always gives the same id', () => {
    fc.assert(
      fc.property(objectVersion, anyId, anyId, (object, product, client) => {
        expect(jobIdFor({ ...object }, product, client)).toBe(jobIdFor(object, product, client));
      }),
    );
  });

  it('differs for different generations of the same name', () => {
    fc.assert(
      fc.property(
        objectVersion,
        fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }).map(String),
        (object, otherGeneration) => {
          fc.pre(otherGeneration !== object.generation);
          const other = { ...object, generation: otherGeneration };
          expect(jobIdFor(other, 'p1', 'c1')).not.toBe(jobIdFor(object, 'p1', 'c1'));
          expect(requestIdFor(other)).not.toBe(requestIdFor(object));
        },
      ),
    );
  });

  it('differs for different names and buckets', () => {
    fc.assert(
      fc.property(objectVersion, objectVersion, (a, b) => {
        fc.pre(objectVersionKey(a) !== objectVersionKey(b));
        expect(jobIdFor(a, 'p1', 'c1')).not.toBe(jobIdFor(b, 'p1', 'c1'));
      }),
    );
  });

  it('reads as bw-{product}-{client}-{hash}', () => {
    // Act
    const id = jobIdFor(
      { bucket: 'b1', name: 'mlops-template/acme/inputs/a.jsonl', generation: '1' },
      'mlops-template',
      'acme',
    );

    // Assert
    expect(id).toMatch(/^bw-mlops-template-acme-[0-9a-f]{20}$/);
  });

  it('cuts the readable part of long ids, never the hash', () => {
    // Arrange
    const product = `p${'x'.repeat(29)}`;
    const client = `c${'y'.repeat(29)}`;

    // Act
    const id = jobIdFor({ bucket: 'b1', name: 'n', generation: '7' }, product, client);

    // Assert
    expect(id).toHaveLength(63);
    expect(id).toMatch(/^bw-px+-cy*-?[0-9a-f]{20}$/);
    expect(id).toMatch(JOB_ID_PATTERN);
  });
});

describe('requestIdFor', () => {
  it('is a stable UUIDv5', () => {
    fc.assert(
      fc.property(objectVersion, (object) => {
        const id = requestIdFor(object);
        expect(id).toMatch(UUID_V5);
        expect(requestIdFor({ ...object })).toBe(id);
      }),
    );
  });
});

describe('uuidV5', () => {
  it('matches the RFC test vector (DNS namespace, www.example.com)', () => {
    expect(uuidV5('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8')).toBe(
      '2ed6657d-e927-568b-95e1-2665a8aea6a2',
    );
  });

  it('refuses a namespace that is not a UUID', () => {
    expect(() => uuidV5('x', 'not-a-uuid')).toThrow(TypeError);
  });
});
