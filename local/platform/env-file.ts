import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomically } from '../atomic-file.js';

/** Writes `KEY=VALUE` lines a shell can source; atomically, so a reader never sees half a file. */
export function writeEnvFile(path: string, env: Record<string, string>): void {
  mkdirSync(dirname(path), { recursive: true });
  const text = Object.entries(env)
    .map(([key, value]) => `${key}=${value}`)
    .join('\n');
  writeFileAtomically(path, `${text}\n`);
}

export function removeEnvFile(path: string): void {
  rmSync(path, { force: true });
}

/** Parses an env file written by {@link writeEnvFile}. */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match) env[match[1] as string] = match[2] as string;
  }
  return env;
}

// ---- gcloud and the local Cloud Storage ----

/**
 * What `gcloud storage` needs to use the local Cloud Storage server without credentials, once
 * `.batchwire/env` is sourced (`set -a; . .batchwire/env; set +a`). Found by running gcloud 528
 * against the local server: the JSON API endpoint override (trailing slash included), no
 * credentials, a project; and, so that nothing calls beyond loopback, no GCE metadata probe, no
 * usage reporting, no component update check. Parallel composite uploads (files over 150 MB)
 * and the JSON API (gcloud's default, not gRPC) work against the local server as they are, so
 * neither is switched off. Every later gcloud command in that shell uses the local cloud.
 */
export function gcloudStorageEnv(storageUrl: string, project: string): Record<string, string> {
  return {
    CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE: `${storageUrl}/storage/v1/`,
    CLOUDSDK_AUTH_DISABLE_CREDENTIALS: 'true',
    CLOUDSDK_CORE_PROJECT: project,
    CLOUDSDK_CORE_CHECK_GCE_METADATA: 'false',
    CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: 'true',
    CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: 'true',
  };
}

// ── gcloud → the local Batch and Workflows executions APIs ─────────────────────────────────
// (Storage, auth and project variables for gcloud are set apart from this block.)

/**
 * gcloud's endpoint overrides for the REST side of the local Batch and Workflows executions
 * services (they answer REST on their gRPC port, see local/grpc/api-server.ts): properties
 * `api_endpoint_overrides/batch` and `api_endpoint_overrides/workflowexecutions`, given as
 * `CLOUDSDK_API_ENDPOINT_OVERRIDES_*`. gcloud takes `http://` overrides as they are; the
 * trailing '/' is required. Run is left out on purpose: `gcloud run jobs` speaks the Knative
 * v1 API at a region-prefixed host (`https://REGION-run.googleapis.com/apis/run.googleapis.com/v1/…`),
 * which no override to a loopback address can reach, and which the local service does not serve.
 *
 * @example
 * gcloudApiOverrides({ batch: '127.0.0.1:8089', workflows: '127.0.0.1:8090' })
 * // { CLOUDSDK_API_ENDPOINT_OVERRIDES_BATCH: 'http://127.0.0.1:8089/', … }
 */
export function gcloudApiOverrides(hosts: { batch: string; workflows: string }): Record<string, string> {
  return {
    CLOUDSDK_API_ENDPOINT_OVERRIDES_BATCH: `http://${hosts.batch}/`,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_WORKFLOWEXECUTIONS: `http://${hosts.workflows}/`,
  };
}
