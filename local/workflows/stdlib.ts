import { createHash, createHmac, randomUUID } from 'node:crypto';
import { errorMap } from './errors.js';
import { httpRequest } from './http.js';
import type { WorkflowRuntime } from './types.js';
import { FunctionRef, isBytes, isMap, toJsonValue, typeName } from './values.js';

/** What a standard library function may use. */
export interface StdlibContext {
  runtime: WorkflowRuntime;
  signal?: AbortSignal;
}

export interface StdlibFunction {
  /** Parameter names, in positional order (call steps pass them by name). */
  params: string[];
  /** How many leading parameters are required. */
  required: number;
  fn(args: unknown[], ctx: StdlibContext): unknown;
}

const fn = (params: string[], required: number, impl: StdlibFunction['fn']): StdlibFunction => ({
  params,
  required,
  fn: impl,
});

function str(value: unknown, what: string): string {
  if (typeof value !== 'string')
    throw errorMap('TypeError', `${what} must be a string, got ${typeName(value)}`);
  return value;
}

function num(value: unknown, what: string): number {
  if (typeof value !== 'number')
    throw errorMap('TypeError', `${what} must be a number, got ${typeName(value)}`);
  return value;
}

function bytes(value: unknown, what: string): Uint8Array {
  if (!isBytes(value)) throw errorMap('TypeError', `${what} must be bytes, got ${typeName(value)}`);
  return value;
}

function list(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw errorMap('TypeError', `${what} must be a list, got ${typeName(value)}`);
  return value;
}

function map(value: unknown, what: string): Record<string, unknown> {
  if (!isMap(value)) throw errorMap('TypeError', `${what} must be a map, got ${typeName(value)}`);
  return value;
}

function checkCharset(charset: unknown): void {
  if (charset === undefined || charset === null) return;
  const name = str(charset, 'charset').toUpperCase();
  if (name !== 'UTF-8' && name !== 'UTF8') throw errorMap('ValueError', `unsupported charset "${charset}"`);
}

function jsonText(data: unknown, indent: unknown): string {
  const value = toJsonValue(data);
  if (indent === undefined || indent === null || indent === false) return JSON.stringify(value);
  if (indent === true) return JSON.stringify(value, null, 2);
  if (typeof indent === 'number') return JSON.stringify(value, null, indent);
  if (isMap(indent)) {
    const step = indent.indent;
    return JSON.stringify(value, null, typeof step === 'string' || typeof step === 'number' ? step : 2);
  }
  throw errorMap('TypeError', `indent must be a boolean or a map, got ${typeName(indent)}`);
}

function regex(source: unknown): RegExp {
  try {
    return new RegExp(str(source, 'regexp'), 'g');
  } catch (err) {
    throw errorMap('ValueError', `invalid regular expression: ${(err as Error).message}`);
  }
}

/** HTTP status codes and tags that `http.default_retry_predicate` retries. */
function retryable(e: unknown, codes: number[], tags: string[]): boolean {
  if (!isMap(e)) return false;
  if (typeof e.code === 'number' && codes.includes(e.code)) return true;
  return Array.isArray(e.tags) && e.tags.some((tag) => tags.includes(tag as string));
}

/** An RFC 3339 timestamp of `seconds` since the epoch in `timezone`, with microseconds as Workflows prints them. */
function formatTime(seconds: number, timezone: string): string {
  const date = new Date(Math.floor(seconds * 1000));
  const micros = String(Math.round((seconds * 1e6) % 1e6)).padStart(6, '0');
  if (timezone === 'UTC' || timezone === 'Etc/UTC' || timezone === 'Z') {
    return `${date.toISOString().slice(0, 19)}.${micros}Z`;
  }
  let parts: Intl.DateTimeFormatPart[];
  try {
    parts = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    }).formatToParts(date);
  } catch {
    throw errorMap('ValueError', `unknown time zone "${timezone}"`);
  }
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '00';
  const local = `${get('year')}-${get('month')}-${get('day')}T${get('hour')}:${get('minute')}:${get('second')}`;
  const offsetMinutes = Math.round(
    (Date.parse(`${local}Z`) - Math.floor(date.getTime() / 1000) * 1000) / 60_000,
  );
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  const offset = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return `${local}.${micros}${offset}`;
}

const HTTP_BODY_PARAMS = ['url', 'headers', 'query', 'body', 'auth', 'timeout', 'private_service_name'];

/** Workflows' algorithm names → Node's. */
const CHECKSUM_ALGORITHMS: Record<string, string> = {
  MD5: 'md5',
  SHA1: 'sha1',
  SHA256: 'sha256',
  SHA384: 'sha384',
  SHA512: 'sha512',
};
const HMAC_ALGORITHMS: Record<string, string> = {
  SHA1: 'sha1',
  SHA256: 'sha256',
  SHA384: 'sha384',
  SHA512: 'sha512',
};

function hashAlgorithm(value: unknown, known: Record<string, string>): string {
  const name = str(value, 'algorithm').toUpperCase().replace('-', '');
  const algorithm = Object.hasOwn(known, name) ? known[name] : undefined;
  if (!algorithm) {
    throw errorMap(
      'ValueError',
      `unsupported algorithm "${value}" (one of ${Object.keys(known).join(', ')})`,
    );
  }
  return algorithm;
}

function digest(hash: { update(data: Uint8Array): unknown; digest(): Buffer }, data: Uint8Array): Uint8Array {
  hash.update(data);
  return new Uint8Array(hash.digest());
}

/**
 * The standard library functions this interpreter implements, by their Workflows names.
 * Anything not here is unsupported: validation reports it and an execution that reaches it fails.
 */
export const STDLIB: Record<string, StdlibFunction> = {
  'sys.get_env': fn(['name', 'default'], 1, ([name, fallback], { runtime }) => {
    const value = runtime.env[str(name, 'name')];
    return value ?? fallback ?? null;
  }),
  'sys.now': fn([], 0, (_args, { runtime }) => runtime.clock.now() / 1000),
  'sys.sleep': fn(['seconds'], 1, async ([seconds], { runtime, signal }) => {
    const s = num(seconds, 'seconds');
    if (s < 0) throw errorMap('ValueError', 'seconds must not be negative');
    await runtime.clock.sleep(s * 1000, signal);
    return null;
  }),
  'sys.sleep_until': fn(['time'], 1, async ([time], { runtime, signal }) => {
    const target = Date.parse(str(time, 'time'));
    if (Number.isNaN(target)) throw errorMap('ValueError', `invalid time "${time}"`);
    await runtime.clock.sleep(Math.max(0, target - runtime.clock.now()), signal);
    return null;
  }),
  'sys.log': fn(
    ['data', 'severity', 'text', 'json', 'timeout'],
    0,
    ([data, severity, text, json], { runtime }) => {
      const payload = text ?? json ?? data ?? null;
      runtime.log?.({ severity: typeof severity === 'string' ? severity : 'DEFAULT', data: payload });
      return null;
    },
  ),
  'base64.encode': fn(['data', 'padding'], 1, ([data, padding]) => {
    const out = Buffer.from(bytes(data, 'data')).toString('base64');
    return padding === false ? out.replace(/=+$/, '') : out;
  }),
  'base64.decode': fn(['data', 'padding'], 1, ([data]) => {
    const text = str(data, 'data');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw errorMap('ValueError', 'invalid base64 data');
    return new Uint8Array(Buffer.from(text, 'base64'));
  }),
  'text.encode': fn(['text', 'charset'], 1, ([text, charset]) => {
    checkCharset(charset);
    return new Uint8Array(Buffer.from(str(text, 'text'), 'utf8'));
  }),
  'text.decode': fn(['data', 'charset'], 1, ([data, charset]) => {
    checkCharset(charset);
    return Buffer.from(bytes(data, 'data')).toString('utf8');
  }),
  'text.replace_all': fn(['source', 'substr', 'repl'], 3, ([source, substr, repl]) =>
    str(source, 'source').split(str(substr, 'substr')).join(str(repl, 'repl')),
  ),
  'text.replace_all_regex': fn(['source', 'regexp', 'repl'], 3, ([source, pattern, repl]) =>
    str(source, 'source').replace(regex(pattern), str(repl, 'repl').replace(/\\(\d)/g, '$$$1')),
  ),
  'text.split': fn(['source', 'separator'], 2, ([source, separator]) =>
    str(source, 'source').split(str(separator, 'separator')),
  ),
  'text.to_upper': fn(['source'], 1, ([source]) => str(source, 'source').toUpperCase()),
  'text.to_lower': fn(['source'], 1, ([source]) => str(source, 'source').toLowerCase()),
  'text.substring': fn(['source', 'start', 'end'], 3, ([source, start, end]) => {
    const chars = Array.from(str(source, 'source'));
    return chars.slice(Math.max(0, num(start, 'start')), Math.max(0, num(end, 'end'))).join('');
  }),
  'text.find_all': fn(['source', 'substr'], 2, ([source, substr]) => {
    const text = str(source, 'source');
    const needle = str(substr, 'substr');
    const out: Array<{ index: number; match: string }> = [];
    if (needle === '') return out;
    for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + needle.length)) {
      out.push({ index: i, match: needle });
    }
    return out;
  }),
  'text.find_all_regex': fn(['source', 'regexp'], 2, ([source, pattern]) =>
    Array.from(str(source, 'source').matchAll(regex(pattern)), (m) => ({ index: m.index, match: m[0] })),
  ),
  'text.match_regex': fn(['source', 'regexp'], 2, ([source, pattern]) =>
    regex(pattern).test(str(source, 'source')),
  ),
  'text.url_encode': fn(['source'], 1, ([source]) => encodeURIComponent(str(source, 'source'))),
  'text.url_encode_plus': fn(['source'], 1, ([source]) =>
    encodeURIComponent(str(source, 'source')).replace(/%20/g, '+'),
  ),
  'text.url_decode': fn(['source'], 1, ([source]) => {
    try {
      return decodeURIComponent(str(source, 'source').replace(/\+/g, ' '));
    } catch {
      throw errorMap('ValueError', 'invalid URL encoding');
    }
  }),
  'json.encode': fn(
    ['data', 'indent'],
    1,
    ([data, indent]) => new Uint8Array(Buffer.from(jsonText(data, indent))),
  ),
  'json.encode_to_string': fn(['data', 'indent'], 1, ([data, indent]) => jsonText(data, indent)),
  'json.decode': fn(['data'], 1, ([data]) => {
    const text = isBytes(data) ? Buffer.from(data).toString('utf8') : str(data, 'data');
    try {
      return JSON.parse(text);
    } catch (err) {
      throw errorMap('ValueError', `invalid JSON: ${(err as Error).message}`);
    }
  }),
  'map.get': fn(['map', 'keys'], 2, ([container, keys]) => {
    if (container === null || container === undefined) return null;
    let cursor: unknown = map(container, 'map');
    for (const key of Array.isArray(keys) ? keys : [keys]) {
      if (!isMap(cursor)) return null;
      const k = str(key, 'key');
      if (!Object.hasOwn(cursor, k)) return null;
      cursor = cursor[k];
    }
    return cursor;
  }),
  'map.merge': fn(['first', 'second'], 2, ([first, second]) => ({
    ...map(first, 'first'),
    ...map(second, 'second'),
  })),
  'map.merge_nested': fn(['first', 'second'], 2, ([first, second]) => {
    const merge = (a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> => {
      const out = { ...a };
      for (const [k, v] of Object.entries(b)) out[k] = isMap(out[k]) && isMap(v) ? merge(out[k], v) : v;
      return out;
    };
    return merge(map(first, 'first'), map(second, 'second'));
  }),
  'map.delete': fn(['map', 'key'], 2, ([container, key]) => {
    const out = { ...map(container, 'map') };
    delete out[str(key, 'key')];
    return out;
  }),
  'list.concat': fn(['objs', 'val'], 2, ([objs, val]) => [...list(objs, 'objs'), val]),
  'list.prepend': fn(['objs', 'val'], 2, ([objs, val]) => [val, ...list(objs, 'objs')]),
  default: fn(['val', 'default_val'], 2, ([val, fallback]) =>
    val === null || val === undefined ? fallback : val,
  ),
  keys: fn(['map'], 1, ([container]) => Object.keys(map(container, 'map'))),
  len: fn(['value'], 1, ([value]) => {
    if (typeof value === 'string') return Array.from(value).length;
    if (Array.isArray(value)) return value.length;
    if (isBytes(value)) return value.length;
    if (isMap(value)) return Object.keys(value).length;
    throw errorMap('TypeError', `len() of a value of type ${typeName(value)}`);
  }),
  int: fn(['arg'], 1, ([arg]) => {
    if (typeof arg === 'number') return Math.trunc(arg);
    if (typeof arg === 'boolean') return arg ? 1 : 0;
    if (typeof arg === 'string' && /^\s*[+-]?\d+\s*$/.test(arg)) return Number.parseInt(arg, 10);
    if (typeof arg === 'string') throw errorMap('ValueError', `cannot convert "${arg}" to an integer`);
    throw errorMap('TypeError', `cannot convert a value of type ${typeName(arg)} to an integer`);
  }),
  double: fn(['arg'], 1, ([arg]) => {
    if (typeof arg === 'number') return arg;
    if (typeof arg === 'string' && arg.trim() !== '' && !Number.isNaN(Number(arg))) return Number(arg);
    if (typeof arg === 'string') throw errorMap('ValueError', `cannot convert "${arg}" to a double`);
    throw errorMap('TypeError', `cannot convert a value of type ${typeName(arg)} to a double`);
  }),
  string: fn(['arg'], 1, ([arg]) => {
    if (typeof arg === 'string') return arg;
    if (typeof arg === 'number' || typeof arg === 'boolean') return String(arg);
    throw errorMap('TypeError', `cannot convert a value of type ${typeName(arg)} to a string`);
  }),
  get_type: fn(['arg'], 1, ([arg]) => typeName(arg)),
  'math.abs': fn(['x'], 1, ([x]) => Math.abs(num(x, 'x'))),
  'math.floor': fn(['x'], 1, ([x]) => Math.floor(num(x, 'x'))),
  'math.max': fn(['x', 'y'], 2, ([x, y]) => Math.max(num(x, 'x'), num(y, 'y'))),
  'math.min': fn(['x', 'y'], 2, ([x, y]) => Math.min(num(x, 'x'), num(y, 'y'))),
  'http.default_retry_predicate': fn(['e'], 1, ([e]) =>
    retryable(e, [429, 502, 503, 504], ['ConnectionError', 'ConnectionFailedError', 'TimeoutError']),
  ),
  'http.default_retry_predicate_non_idempotent': fn(['e'], 1, ([e]) =>
    retryable(e, [429, 503], ['ConnectionFailedError']),
  ),
  'retry.always': fn(['e'], 1, () => true),
  'retry.never': fn(['e'], 1, () => false),
  'time.format': fn(['seconds', 'timezone'], 1, ([seconds, timezone]) =>
    formatTime(
      num(seconds, 'seconds'),
      timezone === undefined || timezone === null ? 'UTC' : str(timezone, 'timezone'),
    ),
  ),
  'time.parse': fn(['value'], 1, ([value]) => {
    const ms = Date.parse(str(value, 'value'));
    if (Number.isNaN(ms)) throw errorMap('ValueError', `invalid RFC 3339 time "${value}"`);
    const fraction = /\.(\d+)/.exec(value as string)?.[1];
    return Math.floor(ms / 1000) + (fraction ? Number(`0.${fraction}`) : 0);
  }),
  'uuid.generate': fn([], 0, () => randomUUID()),
  'hash.compute_checksum': fn(['data', 'algorithm'], 2, ([data, algorithm]) =>
    digest(createHash(hashAlgorithm(algorithm, CHECKSUM_ALGORITHMS)), bytes(data, 'data')),
  ),
  'hash.compute_hmac': fn(['key', 'data', 'algorithm'], 3, ([key, data, algorithm]) =>
    digest(createHmac(hashAlgorithm(algorithm, HMAC_ALGORITHMS), bytes(key, 'key')), bytes(data, 'data')),
  ),
  'http.get': httpFunction('GET', ['url', 'headers', 'query', 'auth', 'timeout', 'private_service_name']),
  'http.delete': httpFunction('DELETE', HTTP_BODY_PARAMS),
  'http.post': httpFunction('POST', HTTP_BODY_PARAMS),
  'http.put': httpFunction('PUT', HTTP_BODY_PARAMS),
  'http.patch': httpFunction('PATCH', HTTP_BODY_PARAMS),
  'http.request': fn(
    ['method', 'url', 'headers', 'query', 'body', 'auth', 'timeout', 'private_service_name'],
    2,
    ([method, url, headers, query, body, , timeout], { signal }) =>
      httpRequest({ method: str(method, 'method'), url, headers, query, body, timeout }, signal),
  ),
  'events.create_callback_endpoint': fn(['http_callback_method'], 0, ([method], { runtime }) => {
    if (!runtime.callbacks) throw noCallbacks();
    return runtime.callbacks.create(
      method === undefined || method === null ? 'POST' : str(method, 'http_callback_method'),
    );
  }),
  'events.await_callback': fn(['callback', 'timeout'], 1, ([callback, timeout], { runtime, signal }) => {
    if (!runtime.callbacks) throw noCallbacks();
    const url = map(callback, 'callback').url;
    const seconds =
      timeout === undefined || timeout === null ? DEFAULT_CALLBACK_TIMEOUT_S : num(timeout, 'timeout');
    return runtime.callbacks.await(str(url, 'callback.url'), seconds, signal);
  }),
  'experimental.executions.map': fn(
    ['workflow_id', 'arguments'],
    2,
    async ([workflowId, args], { runtime, signal }) => {
      const id = str(workflowId, 'workflow_id');
      const items = list(args, 'arguments');
      if (!runtime.runWorkflow) {
        throw errorMap(
          'UnsupportedError',
          `experimental.executions.map: starting workflow "${id}" has no local stand-in here (run it through the local platform or \`batchwire workflow run\`, which resolve workflows by id)`,
        );
      }
      const run = runtime.runWorkflow;
      return Promise.all(items.map((argument) => run(id, argument, signal)));
    },
  ),
};

/** Workflows waits 12 hours for a callback unless told otherwise. */
const DEFAULT_CALLBACK_TIMEOUT_S = 43_200;

function noCallbacks() {
  return errorMap('UnsupportedError', 'events.* callbacks have no local stand-in in this runtime');
}

function httpFunction(method: string, params: string[]): StdlibFunction {
  return fn(params, 1, (args, { signal }) => {
    const named = Object.fromEntries(params.map((name, i) => [name, args[i]]));
    return httpRequest({ method, ...named, url: named.url }, signal);
  });
}

const DEFAULT_BACKOFF = { initial_delay: 1, max_delay: 60, multiplier: 1.25 };

/** Builtin constants (retry policies), read as `${http.default_retry}`. */
export const STDLIB_VALUES: Record<string, () => unknown> = {
  'http.default_retry': () => ({
    predicate: new FunctionRef('http.default_retry_predicate'),
    max_retries: 5,
    backoff: { ...DEFAULT_BACKOFF },
  }),
  'http.default_retry_non_idempotent': () => ({
    predicate: new FunctionRef('http.default_retry_predicate_non_idempotent'),
    max_retries: 5,
    backoff: { ...DEFAULT_BACKOFF },
  }),
  'retry.default_backoff': () => ({ ...DEFAULT_BACKOFF }),
};
