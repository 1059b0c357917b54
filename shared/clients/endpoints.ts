import type { ChannelCredentials } from '@grpc/grpc-js';

/**
 * Where each Google client connects. In Google Cloud nothing is set and the clients use their
 * default endpoints with Application Default Credentials. Locally, each service has an emulator
 * variable in the style Google uses for Pub/Sub (`PUBSUB_EMULATOR_HOST`): host:port, plaintext
 * gRPC, no credentials.
 */
export const EMULATOR_VARIABLES = {
  batch: 'BATCH_EMULATOR_HOST',
  workflows: 'WORKFLOWS_EMULATOR_HOST',
  run: 'RUN_EMULATOR_HOST',
  pubsub: 'PUBSUB_EMULATOR_HOST',
  storage: 'STORAGE_EMULATOR_HOST',
} as const;

export type GrpcService = 'batch' | 'workflows' | 'run';

/** Options for a gax gRPC client (`BatchServiceClient`, `ExecutionsClient`, `JobsClient`). */
// A type alias, not an interface: gax's ClientOptions has an index signature.
export type GrpcClientOptions = {
  apiEndpoint?: string;
  port?: number;
  /** Insecure channel credentials: gax then skips Application Default Credentials entirely. */
  sslCreds?: ChannelCredentials;
};

/**
 * Client options for a gax gRPC service: the emulator at `host:port` when its variable is
 * set, else `{}` (Google Cloud, with Application Default Credentials).
 */
export async function grpcClientOptions(
  service: GrpcService,
  env: NodeJS.ProcessEnv = process.env,
): Promise<GrpcClientOptions> {
  const host = env[EMULATOR_VARIABLES[service]];
  if (!host) return {};
  const { hostname, port } = splitHostPort(host, EMULATOR_VARIABLES[service]);
  // Loaded only when an emulator is used; gax loads the same module anyway.
  const { credentials } = await import('@grpc/grpc-js');
  return { apiEndpoint: hostname, port, sslCreds: credentials.createInsecure() };
}

/** Storage client options: `apiEndpoint` from `STORAGE_EMULATOR_HOST` (an http URL or host:port). */
export function storageClientOptions(env: NodeJS.ProcessEnv = process.env): {
  apiEndpoint?: string;
  projectId?: string;
} {
  const host = env.STORAGE_EMULATOR_HOST;
  if (!host) return {};
  return { apiEndpoint: host.includes('://') ? host : `http://${host}` };
}

/**
 * `host:port` of an emulator variable. A malformed value throws a plain Error on purpose: it is
 * read when an adapter first builds its client, and the adapter's translation makes it a
 * TransientError, so the event is retried and a corrected variable is picked up by a later call.
 */
export function splitHostPort(value: string, variable: string): { hostname: string; port: number } {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(value.replace(/^[a-z]+:\/\//, ''));
  if (!match) throw new Error(`${variable} must be host:port, got "${value}"`);
  return { hostname: match[1] as string, port: Number(match[2]) };
}
