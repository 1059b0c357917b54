import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);

/** The `build/protos` folder of an installed package (a Google client, or google-gax for the common protos). */
export function protosDir(pkg: string): string {
  // Some packages (google-gax) hide package.json behind "exports": walk up from the main entry.
  let dir = dirname(require.resolve(pkg));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return join(dir, 'build', 'protos');
}

/**
 * Loads a service's proto files exactly as the Google client that talks to it ships them, so
 * that the local server speaks the same wire format. Fields keep their proto names
 * (snake_case), enums are strings, int64 are strings, defaults are filled in.
 *
 * @example
 * const batch = loadGrpcPackage('@google-cloud/batch', ['google/cloud/batch/v1/batch.proto']);
 * const service = lookup(batch, 'google.cloud.batch.v1.BatchService');
 */
export function loadGrpcPackage(pkg: string, files: string[]): grpc.GrpcObject {
  const definition = protoLoader.loadSync(files, {
    includeDirs: [protosDir(pkg), protosDir('google-gax')],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition);
}

/**
 * The same proto files as a protobufjs Root with field names in lowerCamelCase (proto3 JSON's
 * names) and every option kept, `google.api.http` included: what the REST transcoder routes
 * and converts with. Files resolve against the package's protos, then google-gax's.
 */
export function loadProtoRoot(pkg: string, files: string[]): protobuf.Root {
  const includeDirs = [protosDir(pkg), protosDir('google-gax')];
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => {
    for (const dir of includeDirs) {
      const candidate = join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return protobuf.util.path.resolve(origin, target);
  };
  root.loadSync(files, { keepCase: false, alternateCommentMode: false });
  root.resolveAll();
  return root;
}

/** Finds a service or message constructor by its full name, e.g. `google.cloud.batch.v1.BatchService`. */
export function lookup<T = grpc.ServiceClientConstructor>(root: grpc.GrpcObject, fullName: string): T {
  let node: unknown = root;
  for (const part of fullName.split('.')) {
    node = (node as Record<string, unknown> | undefined)?.[part];
  }
  if (!node) throw new Error(`${fullName} is not in the loaded protos`);
  return node as T;
}

/** A gRPC error with a status code, as the Google client turns it into a GoogleError. */
export function grpcError(code: grpc.status, message: string): grpc.ServiceError {
  const error = new Error(message) as grpc.ServiceError;
  error.code = code;
  error.details = message;
  error.metadata = new grpc.Metadata();
  return error;
}
