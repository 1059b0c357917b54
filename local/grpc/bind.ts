import type * as grpc from '@grpc/grpc-js';
import { createLocalApiServer } from './api-server.js';
import { loadProtoRoot } from './protos.js';
import type { HttpRule } from './rest-transcoder.js';

/**
 * Binding a local Google API: its services on one loopback port (gRPC and REST, see
 * `createLocalApiServer`), the host its `*_EMULATOR_HOST` variable names, and one close.
 */

export interface ServiceBinding {
  /** Full name, e.g. `google.cloud.batch.v1.BatchService`. */
  name: string;
  definition: grpc.ServiceDefinition;
  handlers: grpc.UntypedServiceImplementation;
}

export interface BoundApi {
  /** `127.0.0.1:PORT`. */
  host: string;
  port: number;
  /** Stops both protocols (calls in flight get a short grace). */
  close(): Promise<void>;
}

/**
 * Serves `services` on 127.0.0.1:`port` (0 picks a free one), with REST routes from the
 * protos `files` of `pkg` and the mixins' `httpRules`.
 */
export async function bindLocalApi(options: {
  pkg: string;
  files: string[];
  httpRules?: HttpRule[];
  services: ServiceBinding[];
  port?: number;
}): Promise<BoundApi> {
  const api = createLocalApiServer(loadProtoRoot(options.pkg, options.files), options.httpRules ?? []);
  for (const service of options.services) api.addService(service.name, service.definition, service.handlers);
  const port = await api.listen(options.port ?? 0);
  return { host: `127.0.0.1:${port}`, port, close: () => api.close() };
}
