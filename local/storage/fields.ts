/**
 * Partial responses: parsing a `fields=` selector and keeping only the parts of a resource it names.
 */
import { invalidArgument } from './resources.js';

/** A parsed `fields=` selection: which keys to keep, each with what to keep below it (null: all). */
export type FieldMask = Map<string, FieldMask | null>;

/**
 * Parses a partial-response selector (Cloud Storage JSON API, "Performance tips" → "Partial
 * response"): comma-separated fields, `a/b` for a field inside another, `a(b,c)` for several
 * fields inside one, `*` for every field at a level. Arrays are transparent: `items/name` keeps
 * `name` of each item. Throws 400 on a malformed selector.
 *
 * @example parseFieldMask('items(name,size),nextPageToken')
 */
export function parseFieldMask(text: string): FieldMask {
  let at = 0;
  const fail = (): never => {
    throw invalidArgument(`Invalid field selection ${text}`);
  };

  const merge = (target: FieldMask, key: string, sub: FieldMask | null): void => {
    if (!target.has(key)) {
      target.set(key, sub);
      return;
    }
    const existing = target.get(key) as FieldMask | null;
    // Selecting a field whole wins over selecting parts of it.
    if (existing === null || sub === null) {
      target.set(key, null);
      return;
    }
    for (const [childKey, childSub] of sub) merge(existing, childKey, childSub);
  };

  const parseList = (closing: boolean): FieldMask => {
    const mask: FieldMask = new Map();
    for (;;) {
      const path: string[] = [];
      for (;;) {
        const match = /^\s*([A-Za-z0-9_$.*-]+)\s*/.exec(text.slice(at));
        if (!match) return fail();
        path.push(match[1] as string);
        at += match[0].length;
        if (text[at] !== '/') break;
        at += 1;
      }
      let leaf: FieldMask | null = null;
      if (text[at] === '(') {
        at += 1;
        leaf = parseList(true);
        if (text[at] !== ')') fail();
        at += 1;
        while (text[at] === ' ') at += 1;
      }
      // Build a/b/c(leaf) from the inside out, then merge it in.
      let sub = leaf;
      for (let index = path.length - 1; index > 0; index -= 1) {
        sub = new Map([[path[index] as string, sub]]);
      }
      merge(mask, path[0] as string, sub);
      if (text[at] === ',') {
        at += 1;
        continue;
      }
      if (closing ? text[at] === ')' : at === text.length) return mask;
      return fail();
    }
  };

  if (text.trim() === '') fail();
  return parseList(false);
}

/** The parts of a JSON value that `mask` selects; arrays keep their length and filter each item. */
export function applyFieldMask(value: unknown, mask: FieldMask | null): unknown {
  if (mask === null || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => applyFieldMask(item, mask));
  const result: Record<string, unknown> = {};
  const all = mask.get('*');
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    if (mask.has(key)) result[key] = applyFieldMask(child, mask.get(key) as FieldMask | null);
    else if (all !== undefined) result[key] = applyFieldMask(child, all);
  }
  return result;
}
