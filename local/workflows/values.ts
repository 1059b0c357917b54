import { errorMap } from './errors.js';

/** A function used as a value: `${http.default_retry_predicate}`, `${my_predicate}` (a subworkflow). */
export class FunctionRef {
  constructor(readonly name: string) {}
}

export type WorkflowMap = Record<string, unknown>;

export function isMap(value: unknown): value is WorkflowMap {
  return (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    !(value instanceof Uint8Array) &&
    !(value instanceof FunctionRef)
  );
}

export function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array;
}

/** The Workflows name of a value's type, as its error messages use them. */
export function typeName(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'double';
  if (typeof value === 'string') return 'string';
  if (Array.isArray(value)) return 'list';
  if (value instanceof Uint8Array) return 'bytes';
  if (value instanceof FunctionRef) return 'function';
  return 'map';
}

/** Workflows compares lists and maps by value. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === undefined) return b === null;
  if (b === undefined) return a === null;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  }
  if (isBytes(a) && isBytes(b)) return Buffer.from(a).equals(Buffer.from(b));
  if (isMap(a) && isMap(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => k in b && deepEqual(a[k], b[k]));
  }
  if (a instanceof FunctionRef && b instanceof FunctionRef) return a.name === b.name;
  return false;
}

/** A field of a map; a missing key raises `KeyError` as in Workflows. */
export function getField(container: unknown, key: unknown): unknown {
  if (isMap(container)) {
    if (typeof key !== 'string')
      throw errorMap('TypeError', `map keys must be strings, got ${typeName(key)}`);
    if (!Object.hasOwn(container, key)) throw errorMap('KeyError', `key not found: ${key}`);
    return container[key];
  }
  if (Array.isArray(container)) {
    if (typeof key !== 'number' || !Number.isInteger(key)) {
      throw errorMap('TypeError', `list index must be an integer, got ${typeName(key)}`);
    }
    if (key < 0 || key >= container.length) {
      throw errorMap('IndexError', `list index out of range: ${key} (length ${container.length})`);
    }
    return container[key];
  }
  throw errorMap(
    'TypeError',
    `cannot access ${JSON.stringify(key)} of a value of type ${typeName(container)}`,
  );
}

/** A JSON-compatible copy: bytes and functions cannot leave the workflow. */
export function toJsonValue(value: unknown): unknown {
  if (value === undefined) return null;
  if (value instanceof Uint8Array) throw errorMap('TypeError', 'bytes cannot be converted to JSON');
  if (value instanceof FunctionRef) throw errorMap('TypeError', 'a function cannot be converted to JSON');
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (isMap(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJsonValue(v)]));
  return value;
}
