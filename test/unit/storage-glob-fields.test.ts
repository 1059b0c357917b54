import { describe, expect, it } from 'vitest';
import { applyFieldMask, parseFieldMask } from '#local/storage/fields.js';
import { compileGlob } from '#local/storage/glob.js';
import { StorageApiError } from '#local/storage/resources.js';

// Cases follow the matchGlob table of Cloud Storage's "List objects" page (filter by object glob).
describe('compileGlob (Objects.list matchGlob)', () => {
  it.each([
    ['*.csv', 'a.csv', true],
    ['*.csv', 'dir/a.csv', false],
    ['x/*', 'x/', true],
    ['x/*', 'x/a/b', false],
    ['**', 'a/b/c', true],
    ['**.csv', 'a/b/c.csv', true],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['a/**/b', 'ab', false],
    ['**/*.csv', 'top.csv', true],
    ['**/*.csv', 'p/c/inputs/f.csv', true],
    ['a?c', 'abc', true],
    ['a?c', 'a/c', false],
    ['a?c', 'ac', false],
    ['f[0-9].txt', 'f7.txt', true],
    ['f[0-9].txt', 'fx.txt', false],
    ['f[!0-9].txt', 'f7.txt', false],
    ['f[!0-9].txt', 'fx.txt', true],
    ['f[^ab].txt', 'fb.txt', false],
    ['f[!ab].txt', 'f/.txt', false],
    ['f[]].txt', 'f].txt', true],
    ['f[a-].txt', 'f-.txt', true],
    ['{a,b/c}.txt', 'b/c.txt', true],
    ['{a,b/c}.txt', 'c.txt', false],
    ['in/{*.csv,*.json}', 'in/x.json', true],
    ['in/{x,{y,z}}', 'in/z', true],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
    ['(a)+.txt', '(a)+.txt', true],
    ['(a)+.txt', 'a.txt', false],
    ['a.b', 'axb', false],
  ])('%s against %s is %s', (glob, name, matches) => {
    expect(compileGlob(glob).test(name)).toBe(matches);
  });

  it.each(['a[b', 'a{b,c', 'a\\', 'f[z-a]', 'a[]'])('refuses the malformed glob %s with 400', (glob) => {
    expect(() => compileGlob(glob)).toThrow(StorageApiError);
  });
});

// Selector syntax from the JSON API's partial-response documentation ("Performance tips").
describe('parseFieldMask / applyFieldMask (fields=)', () => {
  const list = {
    kind: 'storage#objects',
    nextPageToken: 't',
    prefixes: ['p/'],
    items: [
      { name: 'a', size: '1', generation: '5', metadata: { k: 'v', j: 'w' } },
      { name: 'b', size: '2', generation: '6' },
    ],
  };

  it.each([
    [
      'prefixes,items/name,items/size,items/generation,nextPageToken',
      {
        nextPageToken: 't',
        prefixes: ['p/'],
        items: [
          { name: 'a', size: '1', generation: '5' },
          { name: 'b', size: '2', generation: '6' },
        ],
      },
    ],
    ['items(name,metadata/k)', { items: [{ name: 'a', metadata: { k: 'v' } }, { name: 'b' }] }],
    ['kind, nextPageToken', { kind: 'storage#objects', nextPageToken: 't' }],
    ['items/metadata,items/metadata/k', { items: [{ metadata: { k: 'v', j: 'w' } }, {}] }],
    ['items/*', { items: list.items }],
    ['unknown', {}],
  ])('selects %s', (selector, expected) => {
    expect(applyFieldMask(list, parseFieldMask(selector))).toEqual(expected);
  });

  it.each(['', 'items(name', 'items)', 'a,,b', 'a/', 'a b'])(
    'refuses the malformed selector %j with 400',
    (selector) => {
      expect(() => parseFieldMask(selector)).toThrow(StorageApiError);
    },
  );
});
