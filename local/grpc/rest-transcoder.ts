import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { fromProto3JSON, type JSONObject, type JSONValue, toProto3JSON } from 'proto3-json-serializer';
import type protobuf from 'protobufjs';
import { compilePathTemplate, matchPathTemplate, type PathTemplate, splitVerb } from './path-template.js';

/**
 * An HTTP rule as `google.api.http` and a service's YAML `http.rules` write it (the shape
 * google-gax's `httpRules` takes). Rules given this way bind methods whose proto carries no
 * annotation for this API: the mixins `google.longrunning.Operations` and
 * `google.cloud.location.Locations`, which each API serves under its own version prefix.
 */
export interface HttpRule {
  selector?: string;
  get?: string;
  put?: string;
  post?: string;
  delete?: string;
  patch?: string;
  body?: string;
  additional_bindings?: HttpRule[];
}

/** A service the transcoder answers: the handlers the gRPC server runs, under their full proto name. */
export interface TranscodedService {
  /** e.g. `google.cloud.batch.v1.BatchService`. */
  name: string;
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

export interface RestTranscoderOptions {
  /** The services' protos with options (see `loadProtoRoot`). */
  root: protobuf.Root;
  services: TranscodedService[];
  /** Rules for methods without a `google.api.http` annotation (mixins); they win over annotations. */
  httpRules?: HttpRule[];
}

interface Route {
  httpMethod: string;
  template: PathTemplate;
  body: string;
  requestType: protobuf.Type;
  responseType: protobuf.Type;
  grpcPath: string;
  handler: grpc.handleUnaryCall<unknown, unknown>;
  definition: grpc.MethodDefinition<unknown, unknown>;
}

const VERBS = ['get', 'put', 'post', 'delete', 'patch'] as const;

/**
 * Query parameters that are system parameters of every Google API, not request fields
 * (https://cloud.google.com/apis/docs/system-parameters), plus `$alt` as google-gax's REST
 * fallback sends it (`$alt=json;enum-encoding=int`).
 */
const SYSTEM_PARAMETERS = new Set([
  'alt',
  '$alt',
  'fields',
  '$fields',
  'prettyPrint',
  'key',
  'access_token',
  'quotaUser',
  'userIp',
  'callback',
  '$callback',
  '$.xgafv',
  'upload_protocol',
  'uploadType',
  'oauth_token',
]);

/** gRPC code → HTTP status and name, as google/rpc/code.proto maps them. */
const HTTP_STATUS: Record<number, [number, string]> = {
  [grpc.status.OK]: [200, 'OK'],
  [grpc.status.CANCELLED]: [499, 'CANCELLED'],
  [grpc.status.UNKNOWN]: [500, 'UNKNOWN'],
  [grpc.status.INVALID_ARGUMENT]: [400, 'INVALID_ARGUMENT'],
  [grpc.status.DEADLINE_EXCEEDED]: [504, 'DEADLINE_EXCEEDED'],
  [grpc.status.NOT_FOUND]: [404, 'NOT_FOUND'],
  [grpc.status.ALREADY_EXISTS]: [409, 'ALREADY_EXISTS'],
  [grpc.status.PERMISSION_DENIED]: [403, 'PERMISSION_DENIED'],
  [grpc.status.RESOURCE_EXHAUSTED]: [429, 'RESOURCE_EXHAUSTED'],
  [grpc.status.FAILED_PRECONDITION]: [400, 'FAILED_PRECONDITION'],
  [grpc.status.ABORTED]: [409, 'ABORTED'],
  [grpc.status.OUT_OF_RANGE]: [400, 'OUT_OF_RANGE'],
  [grpc.status.UNIMPLEMENTED]: [501, 'UNIMPLEMENTED'],
  [grpc.status.INTERNAL]: [500, 'INTERNAL'],
  [grpc.status.UNAVAILABLE]: [503, 'UNAVAILABLE'],
  [grpc.status.DATA_LOSS]: [500, 'DATA_LOSS'],
  [grpc.status.UNAUTHENTICATED]: [401, 'UNAUTHENTICATED'],
};

/** A failure the transcoder answers itself (bad URL, body or parameter), in gRPC terms. */
class TranscodeError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
    this.name = 'TranscodeError';
  }
}

const camel = (name: string) => name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** The HTTP bindings of one method: its rule (given or annotated) and the rule's additional bindings. */
function bindingsOf(method: protobuf.Method, rules: Map<string, HttpRule>): HttpRule[] {
  const given = rules.get(method.fullName.replace(/^\./, ''));
  let rule = given;
  if (!rule) {
    for (const option of method.parsedOptions ?? []) {
      const annotated = (option as Record<string, HttpRule>)['(google.api.http)'];
      if (annotated) rule = annotated;
    }
  }
  if (!rule) return [];
  return [rule, ...(rule.additional_bindings ?? [])];
}

function buildRoutes(options: RestTranscoderOptions): Route[] {
  const rules = new Map((options.httpRules ?? []).map((rule) => [rule.selector ?? '', rule]));
  const routes: Route[] = [];
  for (const service of options.services) {
    const proto = options.root.lookupService(service.name);
    for (const method of Object.values(proto.methods)) {
      const definition = service.definition[method.name] as
        | grpc.MethodDefinition<unknown, unknown>
        | undefined;
      if (!definition || definition.requestStream || definition.responseStream) continue;
      // A method the server leaves out answers UNIMPLEMENTED over REST too, as over gRPC.
      const handler = (service.implementation[method.name] ??
        ((_call, callback) =>
          callback(
            grpcErrorLike(
              grpc.status.UNIMPLEMENTED,
              `Method ${service.name}.${method.name} is not implemented`,
            ),
          ))) as grpc.handleUnaryCall<unknown, unknown>;
      for (const binding of bindingsOf(method, rules)) {
        for (const verb of VERBS) {
          const path = binding[verb];
          if (!path) continue;
          routes.push({
            httpMethod: verb.toUpperCase(),
            template: compilePathTemplate(path),
            body: binding.body ?? '',
            requestType: method.resolvedRequestType ?? options.root.lookupType(method.requestType),
            responseType: method.resolvedResponseType ?? options.root.lookupType(method.responseType),
            grpcPath: definition.path,
            handler,
            definition,
          });
        }
      }
    }
  }
  return routes;
}

function grpcErrorLike(code: grpc.status, message: string): grpc.ServiceError {
  return Object.assign(new Error(message), { code, details: message, metadata: new grpc.Metadata() });
}

/** Sets `value` at a dotted field path (`job.name`) of a proto3 JSON object. */
function setPath(target: JSONObject, fieldPath: string, value: JSONValue): void {
  const parts = fieldPath.split('.').map(camel);
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) node[part] = {};
    node = node[part] as JSONObject;
  }
  node[parts.at(-1) as string] = value;
}

/**
 * A query parameter as the JSON value of the field it names: numbers for 32-bit and floating
 * types, booleans for bool, strings for the rest (int64, enums, bytes, and the well-known types
 * whose JSON is a string: Timestamp, Duration, FieldMask). Unknown names are INVALID_ARGUMENT,
 * as Google answers "Cannot bind query parameter".
 */
function queryValue(
  type: protobuf.Type,
  key: string,
  raw: string,
): { field: protobuf.Field; value: JSONValue } {
  let current: protobuf.Type = type;
  const parts = key.split('.').map(camel);
  let field: protobuf.Field | undefined;
  parts.forEach((part, index) => {
    field = current.fields[part];
    if (!field) {
      throw new TranscodeError(
        grpc.status.INVALID_ARGUMENT,
        `Invalid JSON payload received. Unknown name "${key}": Cannot bind query parameter. Field '${part}' could not be found in request message.`,
      );
    }
    if (index < parts.length - 1) {
      const next = field.resolve().resolvedType;
      if (!next || !('fields' in next)) {
        throw new TranscodeError(
          grpc.status.INVALID_ARGUMENT,
          `query parameter "${key}" does not name a field`,
        );
      }
      current = next as protobuf.Type;
    }
  });
  const found = field as unknown as protobuf.Field;
  switch (found.type) {
    case 'int32':
    case 'uint32':
    case 'sint32':
    case 'fixed32':
    case 'sfixed32':
    case 'double':
    case 'float': {
      const number = Number(raw);
      if (raw.trim() === '' || Number.isNaN(number)) {
        throw new TranscodeError(
          grpc.status.INVALID_ARGUMENT,
          `query parameter "${key}": "${raw}" is not a number`,
        );
      }
      return { field: found, value: number };
    }
    case 'bool':
      if (raw !== 'true' && raw !== 'false') {
        throw new TranscodeError(
          grpc.status.INVALID_ARGUMENT,
          `query parameter "${key}": "${raw}" is not a bool`,
        );
      }
      return { field: found, value: raw === 'true' };
    default:
      return { field: found, value: raw };
  }
}

/**
 * Clears proto3 fields holding their default value (0, '', false, the first enum value, empty
 * bytes) outside `optional` ones, recursively: proto3's JSON mapping omits them, and gRPC
 * servers (proto-loader with `defaults: true`) write them out, so without this a REST caller
 * would see `"parallelism": "0"` where Google's answer has nothing.
 */
function dropDefaults(message: protobuf.Message, type: protobuf.Type): void {
  const record = message as unknown as Record<string, unknown>;
  for (const field of type.fieldsArray) {
    const value = record[field.name];
    if (value === undefined || value === null) continue;
    const resolved = field.resolve().resolvedType;
    if (field.map || field.repeated) {
      if (resolved && 'fields' in resolved) {
        const items = field.map ? Object.values(value as object) : (value as unknown[]);
        for (const item of items) dropDefaults(item as protobuf.Message, resolved as protobuf.Type);
      }
      continue;
    }
    if (resolved && 'fields' in resolved) {
      dropDefaults(value as protobuf.Message, resolved as protobuf.Type);
      continue;
    }
    if (field.partOf || field.options?.proto3_optional) continue; // presence is meaningful there
    const isDefault =
      value === 0 ||
      value === '' ||
      value === false ||
      (typeof value === 'object' && 'low' in (value as object) && Number(value) === 0) ||
      (value instanceof Uint8Array && value.length === 0);
    if (isDefault) delete record[field.name];
  }
}

/** The largest request body read (Google's APIs refuse far smaller ones; this only bounds memory). */
const MAX_BODY_BYTES = 32 * 1024 * 1024;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      // Past the limit the rest is read and dropped, so the answer still reaches the caller.
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) {
        reject(
          new TranscodeError(
            grpc.status.INVALID_ARGUMENT,
            `Request payload size exceeds the limit: ${MAX_BODY_BYTES} bytes.`,
          ),
        );
      } else {
        resolve(Buffer.concat(chunks).toString('utf8'));
      }
    });
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: JSONValue): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=UTF-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Google's JSON error shape: `{"error": {"code": 404, "message": "…", "status": "NOT_FOUND", "details": []}}`. */
function sendError(res: ServerResponse, code: number, message: string): void {
  const [status, name] = HTTP_STATUS[code] ?? [500, 'UNKNOWN'];
  sendJson(res, status, { error: { code: status, message, status: name, details: [] } });
}

/** Runs a gRPC unary handler in-process, as the gRPC server would for a call of `path`. */
function invoke(route: Route, request: unknown, peer: string): Promise<unknown> {
  const call = Object.assign(new EventEmitter(), {
    request,
    metadata: new grpc.Metadata(),
    cancelled: false,
    getPeer: () => peer,
    getPath: () => route.grpcPath,
    getDeadline: () => Number.POSITIVE_INFINITY,
    getHost: () => '127.0.0.1',
    sendMetadata: () => {},
  });
  return new Promise((resolve, reject) => {
    route.handler(call as unknown as grpc.ServerUnaryCall<unknown, unknown>, (error, value) =>
      error ? reject(error) : resolve(value),
    );
  });
}

/**
 * An HTTP/JSON front for gRPC services, driven by the `google.api.http` annotations of their
 * protos (https://cloud.google.com/endpoints/docs/grpc/transcoding, google/api/http.proto):
 * the path template routes the call and fills the request from path variables, the body
 * (`"*"` or one field) and query parameters (any other field, dotted paths allowed); the
 * message is converted with proto3's JSON mapping (camelCase, int64 and the Timestamp /
 * Duration / FieldMask types as strings, enums as names — numbers when the caller asks with
 * `$alt=json;enum-encoding=int`, as google-gax's REST fallback does). Requests go through the
 * very handlers and (de)serializers the gRPC server runs, encoded to protobuf and back, so
 * both protocols see one service. Failures answer in Google's JSON error shape with the HTTP
 * status google/rpc/code.proto gives each gRPC code.
 *
 * @example
 * http.createServer(createRestTranscoder({ root, services: [{ name, definition, implementation }] }));
 */
export function createRestTranscoder(
  options: RestTranscoderOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const routes = buildRoutes(options);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = (req.headers['x-http-method-override'] as string | undefined) ?? req.method ?? 'GET';
    const { path, verb } = splitVerb(url.pathname);
    let route: Route | undefined;
    let variables: Record<string, string> | undefined;
    let pathMatched = false;
    for (const candidate of routes) {
      const values = matchPathTemplate(candidate.template, path, verb);
      if (!values) continue;
      pathMatched = true;
      if (candidate.httpMethod !== method.toUpperCase()) continue;
      route = candidate;
      variables = values;
      break;
    }
    if (!route || !variables) {
      throw new TranscodeError(
        grpc.status.NOT_FOUND,
        pathMatched
          ? `Method ${method} is not allowed on ${url.pathname}`
          : `The requested URL ${url.pathname} was not found on this server.`,
      );
    }

    // 1. The body: the whole request (`*`), one field of it, or nothing.
    const text = await readBody(req);
    let json: JSONObject = {};
    if (route.body && text.trim() !== '') {
      let parsed: JSONValue;
      try {
        parsed = JSON.parse(text) as JSONValue;
      } catch (error) {
        throw new TranscodeError(
          grpc.status.INVALID_ARGUMENT,
          `Invalid JSON payload received. ${(error as Error).message}`,
        );
      }
      if (route.body === '*') {
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
          throw new TranscodeError(
            grpc.status.INVALID_ARGUMENT,
            'Invalid JSON payload received. Expected an object.',
          );
        }
        json = parsed;
      } else {
        setPath(json, route.body, parsed);
      }
    }
    // 2. Query parameters: any field the body does not carry (repeated fields repeat the key).
    const enumsAsNumbers = /enum-encoding=int/.test(url.searchParams.get('$alt') ?? '');
    for (const [key, raw] of url.searchParams) {
      if (SYSTEM_PARAMETERS.has(key)) continue;
      const { field, value } = queryValue(route.requestType, key, raw);
      if (field.repeated) {
        const list: JSONValue[] = [];
        for (const each of url.searchParams.getAll(key))
          list.push(queryValue(route.requestType, key, each).value);
        setPath(json, key, list);
      } else {
        setPath(json, key, value);
      }
    }
    // 3. Path variables, last: the URL names the resource, whatever the body says.
    for (const [field, value] of Object.entries(variables)) setPath(json, field, value);

    let request: unknown;
    try {
      const message = fromProto3JSON(route.requestType, json);
      if (!message) throw new Error('the request is not a JSON object');
      request = route.definition.requestDeserialize(Buffer.from(route.requestType.encode(message).finish()));
    } catch (error) {
      throw new TranscodeError(
        grpc.status.INVALID_ARGUMENT,
        `Invalid JSON payload received. ${(error as Error).message}`,
      );
    }

    const response = await invoke(route, request, `${req.socket.remoteAddress}:${req.socket.remotePort}`);
    const decoded = route.responseType.decode(route.definition.responseSerialize(response));
    dropDefaults(decoded, route.responseType);
    sendJson(res, 200, toProto3JSON(decoded, { numericEnums: enumsAsNumbers }));
  };

  return (req, res) => {
    handle(req, res).catch((error: unknown) => {
      const code = (error as { code?: unknown }).code;
      const known = typeof code === 'number' && HTTP_STATUS[code] !== undefined;
      const message = (error as grpc.ServiceError).details || (error as Error).message || String(error);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendError(res, known ? (code as number) : grpc.status.INTERNAL, message);
    });
  };
}
