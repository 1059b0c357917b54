import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/platform.js';

// What the bundled Storage client gets for `html-entities` (reference-tasks/bundle.ts).
const require = createRequire(import.meta.url);
const ON_DEMAND = require.resolve(`${REPO_ROOT}/reference-tasks/lib/html-entities-on-demand.cjs`);
const REAL = createRequire(ON_DEMAND).resolve('html-entities');
type HtmlEntities = typeof import('html-entities');

/** A fresh copy of both modules, as a new task process loads them. */
function fresh(): HtmlEntities {
  delete require.cache[ON_DEMAND];
  delete require.cache[REAL];
  return require(ON_DEMAND) as HtmlEntities;
}

describe('html-entities on demand', () => {
  it('decodes, encodes and decodes entities as html-entities does', () => {
    const onDemand = fresh();
    const real = require(REAL) as HtmlEntities;
    for (const text of [
      '',
      'No such object: b/o',
      'a &amp; b',
      '&lt;p&gt; caf&eacute; &#x27;x&#39;',
      '&',
      'x&y',
    ]) {
      expect(onDemand.decode(text)).toBe(real.decode(text));
      expect(onDemand.encode(text)).toBe(real.encode(text));
    }
    expect(onDemand.decodeEntity('&amp;')).toBe('&');
  });

  it('does not load html-entities to decode a text without an entity', () => {
    const onDemand = fresh();

    onDemand.decode('{"error":{"code":404,"message":"No such object: b/model.json"}}');
    const loadedBefore = REAL in require.cache;
    onDemand.decode('a &amp; b');

    expect(loadedBefore).toBe(false);
    expect(REAL in require.cache).toBe(true);
  });
});
