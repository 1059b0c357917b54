import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface GcloudResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * A gcloud of its own for one test file: a fresh `CLOUDSDK_CONFIG` (no user configuration,
 * no credentials), a project, and `env` (the endpoint overrides of the local APIs). Everything
 * that would reach beyond loopback is off: credentials, the GCE metadata probe, usage
 * reporting, update checks and surveys.
 *
 * @example
 * const gcloud = createGcloud({ project: 'p', env: gcloudApiOverrides({ batch, workflows }) });
 * const { code, stdout } = await gcloud(['batch', 'jobs', 'list', '--location', 'us-central1']);
 */
export function createGcloud(options: { project: string; env: Record<string, string> }) {
  const config = mkdtempSync(join(tmpdir(), 'batchwire-gcloud-'));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: config,
    METADATA_SERVER_DETECTION: 'none',
    CLOUDSDK_CONFIG: config,
    CLOUDSDK_CORE_PROJECT: options.project,
    CLOUDSDK_AUTH_DISABLE_CREDENTIALS: 'true',
    CLOUDSDK_CORE_CHECK_GCE_METADATA: 'false',
    CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
    CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: 'true',
    CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: 'true',
    CLOUDSDK_SURVEY_DISABLE_PROMPTS: 'true',
    ...options.env,
  };
  return (args: string[]): Promise<GcloudResult> =>
    new Promise((resolve, reject) => {
      execFile(
        'gcloud',
        args,
        { env, timeout: 45_000, maxBuffer: 16 * 1024 * 1024 },
        (error, stdout, stderr) => {
          if (error && typeof error.code !== 'number') {
            reject(
              new Error(
                `gcloud ${args.join(' ')} did not run (is the Google Cloud SDK installed?): ${error.message}`,
              ),
            );
            return;
          }
          resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
        },
      );
    });
}

/** Parses `--format=json` output, saying which command printed what when it is not JSON. */
export function json<T = unknown>(result: GcloudResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${result.code}): ${result.stdout}\n${result.stderr}`);
  }
}
