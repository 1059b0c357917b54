/**
 * Which handler answers a request: the API prefix the path starts with, then the route table
 * (path pattern → method → handler). The table is read top to bottom and the first route whose
 * path matches decides: it names the handler for the method, or the answer is 405.
 *
 * Paths are matched as decoded segments, split before decoding, so `%2F` stays inside an object
 * name, and never normalised, so objects named `a/./b` are reachable (the gRPC stand-ins' path
 * templates match undecoded strings and read `:` as a custom verb, which object names may hold).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseFieldMask } from './fields.js';
import {
  deleteBucket,
  getBucket,
  getServiceAccount,
  getStorageLayout,
  insertBucket,
  listBuckets,
  patchBucket,
} from './handlers/buckets.js';
import type { Api, Handler, StorageCall } from './handlers/context.js';
import { composeObject, copyObject, rewriteObject } from './handlers/copy-compose.js';
import { getObject, listObjects } from './handlers/object-reads.js';
import {
  cancelUpload,
  deleteObject,
  insertObject,
  resumeUpload,
  updateObject,
} from './handlers/object-writes.js';
import { invalidArgument, StorageApiError } from './resources.js';

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** `:name` captures one segment, `:name*` the rest of the path (one segment or more, joined by `/`). */
type SegmentParam<Segment extends string> = Segment extends `:${infer Name}*`
  ? Name
  : Segment extends `:${infer Name}`
    ? Name
    : never;
type ParamNames<Path extends string> = Path extends `${infer Head}/${infer Rest}`
  ? SegmentParam<Head> | ParamNames<Rest>
  : SegmentParam<Path>;
/** The values a path pattern captures, e.g. `{ bucket: string }` for `b/:bucket`. */
type PathParams<Path extends string> = { [Name in ParamNames<Path>]: string };

type Params = Record<string, string>;

interface Route {
  /** The upload API has routes of its own; the JSON and download APIs share the others. */
  api: 'upload' | 'json';
  pattern: string[];
  /** A further condition a request must meet for this route to decide it. */
  when?: (request: { method: string; query: URLSearchParams }) => boolean;
  methods: Partial<Record<Method, Handler<Params>>>;
}

function route<Path extends string>(
  path: Path,
  methods: Partial<Record<Method, Handler<PathParams<Path>>>>,
  options: Pick<Route, 'when'> & { api?: Route['api'] } = {},
): Route {
  return {
    api: options.api ?? 'json',
    pattern: path.split('/'),
    methods: methods as Route['methods'],
    ...(options.when ? { when: options.when } : {}),
  };
}

/** The GCS JSON API as this server speaks it (paths as in cloud.google.com/storage/docs/json_api/v1). */
const ROUTES: Route[] = [
  route('projects/:project/serviceAccount', { GET: getServiceAccount }),
  route('b', { GET: listBuckets, POST: insertBucket }),
  route('b/:bucket', { GET: getBucket, PATCH: patchBucket, PUT: patchBucket, DELETE: deleteBucket }),
  route('b/:bucket/storageLayout', { GET: getStorageLayout }),
  route('b/:bucket/o', { GET: listObjects }),
  route('b/:bucket/o/:object/copyTo/b/:destinationBucket/o/:destination*', { POST: copyObject }),
  route('b/:bucket/o/:object/rewriteTo/b/:destinationBucket/o/:destination*', { POST: rewriteObject }),
  // Only a POST makes this path a compose; with any other method it names an object whose name
  // ends in /compose (the next route).
  route('b/:bucket/o/:object/compose', { POST: composeObject }, { when: ({ method }) => method === 'POST' }),
  // Unencoded slashes in an object name are tolerated, for hand-written URLs.
  route('b/:bucket/o/:object*', {
    GET: getObject,
    HEAD: getObject,
    PATCH: updateObject,
    PUT: updateObject,
    DELETE: deleteObject,
  }),
  // The upload API: a resumable session's chunks and its cancellation carry upload_id; without
  // one, a POST is a new upload (media, multipart, or a resumable session's start).
  route(
    'b/:bucket/o',
    { PUT: resumeUpload, POST: resumeUpload, DELETE: cancelUpload },
    { api: 'upload', when: ({ query }) => Boolean(query.get('upload_id')) },
  ),
  route('b/:bucket/o', { POST: insertObject }, { api: 'upload' }),
];

/** A request with its route found: what to call, and with what. */
export interface RoutedRequest {
  handler: Handler<Params>;
  call: StorageCall<Params>;
  /** The decoded path segments after the API prefix (`b/{bucket}/o/…`). */
  segments: string[];
}

/** Finds the route of a request; throws the 400/404/405/501 a request without one gets. */
export function routeRequest(req: IncomingMessage, res: ServerResponse): RoutedRequest {
  const url = req.url ?? '/';
  const at = url.indexOf('?');
  const rawPath = at < 0 ? url : url.slice(0, at);
  const query = new URLSearchParams(at < 0 ? '' : url.slice(at + 1));
  const method = req.method ?? 'GET';
  const { api, segments } = parsePath(rawPath);
  // A malformed selector is refused before any work, not after an upload has landed.
  const fields = query.get('fields');
  if (fields !== null) parseFieldMask(fields);

  const routeApi = api === 'upload' ? 'upload' : 'json';
  for (const candidate of ROUTES) {
    if (candidate.api !== routeApi) continue;
    const params = matchPattern(candidate.pattern, segments);
    if (!params || (candidate.when && !candidate.when({ method, query }))) continue;
    const handler = Object.hasOwn(candidate.methods, method)
      ? candidate.methods[method as Method]
      : undefined;
    if (!handler) throw new StorageApiError(405, 'methodNotAllowed', 'Method not allowed for this resource.');
    return { handler, call: { req, res, api, query, params }, segments };
  }
  // Under a bucket, an unknown path is an API this server lacks (ACLs, IAM, …), not a typo.
  if (routeApi === 'json' && segments[0] === 'b' && segments.length > 2) {
    throw new StorageApiError(501, 'notImplemented', `Not implemented: ${rawPath}`);
  }
  throw new StorageApiError(404, 'notFound', 'Not Found');
}

/** The captured values when `segments` match `pattern`, else undefined. */
function matchPattern(pattern: string[], segments: string[]): Params | undefined {
  const params: Params = {};
  for (const [index, part] of pattern.entries()) {
    if (part.startsWith(':') && part.endsWith('*')) {
      if (segments.length <= index) return undefined;
      params[part.slice(1, -1)] = segments.slice(index).join('/');
      return params;
    }
    const segment = segments[index];
    if (segment === undefined) return undefined;
    if (part.startsWith(':')) params[part.slice(1)] = segment;
    else if (part !== segment) return undefined;
  }
  return segments.length === pattern.length ? params : undefined;
}

/**
 * Splits `/storage/v1/b/...`, `/upload/storage/v1/b/...` (also `/resumable/upload/…`),
 * `/download/storage/v1/b/...` and the bare `/b/...` (the client drops `/storage/v1` when
 * STORAGE_EMULATOR_HOST is set) into decoded path segments.
 */
function parsePath(rawPath: string): { api: Api; segments: string[] } {
  const prefixes: Array<[string, Api]> = [
    ['/upload/storage/v1/', 'upload'],
    // gcloud (apitools) starts resumable uploads on this path; Google answers it like /upload.
    ['/resumable/upload/storage/v1/', 'upload'],
    ['/download/storage/v1/', 'download'],
    ['/storage/v1/', 'json'],
    ['/', 'json'],
  ];
  for (const [prefix, api] of prefixes) {
    if (!rawPath.startsWith(prefix)) continue;
    try {
      const segments = rawPath.slice(prefix.length).split('/').map(decodeURIComponent);
      if (segments.length <= 3 && segments[segments.length - 1] === '') segments.pop();
      return { api, segments };
    } catch {
      throw invalidArgument('Malformed percent-encoding in the request path.');
    }
  }
  throw new StorageApiError(404, 'notFound', 'Not Found');
}
