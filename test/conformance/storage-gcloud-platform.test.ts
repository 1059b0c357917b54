import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchServiceClient } from '@google-cloud/batch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClientOptions } from '#shared/clients/endpoints.js';
import { parseConfig } from '#shared/config/load.js';
import { type CliPlatform, REPO_ROOT, startCliPlatform } from '../helpers/platform.js';

/**
 * A client uploads the way Google's "Upload objects" page shows first — `gcloud storage cp` —
 * into its inputs prefix on the whole local platform, in a shell that sourced `.batchwire/env`
 * (as the README says: `set -a; . .batchwire/env; set +a`), and a Batch job starts for it.
 * Needs `npm run build` (the platform runs from dist/).
 */

const CONFIG_PATH = join(REPO_ROOT, 'test', 'fixtures', 'e2e', 'batchwire.yaml');
const config = parseConfig(readFileSync(CONFIG_PATH, 'utf8'), CONFIG_PATH);

let platform: CliPlatform;
let batch: BatchServiceClient;
let configDir: string;

beforeAll(async () => {
  platform = await startCliPlatform({ config: CONFIG_PATH });
  batch = new BatchServiceClient(
    await grpcClientOptions('batch', { BATCH_EMULATOR_HOST: platform.env.BATCH_EMULATOR_HOST }),
  );
  configDir = mkdtempSync(join(tmpdir(), 'batchwire-gcloud-config-'));
});

afterAll(async () => {
  await batch?.close();
  await platform?.dispose();
  if (configDir) rmSync(configDir, { recursive: true, force: true });
});

describe('gcloud storage cp with .batchwire/env sourced, on the whole local platform', () => {
  it('uploads into a client inputs prefix and starts a Batch job for it', { timeout: 240_000 }, async () => {
    // Arrange: a shell with nothing of gcloud's own but a fresh config directory.
    const file = join(platform.workDir, 'reviews.csv');
    writeFileSync(file, 'id,text\n1,fits well\n2,too small\n');
    const object = 'mlops-template/acme/inputs/reviews.csv';
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (!key.startsWith('CLOUDSDK_') && !key.startsWith('GOOGLE_')) env[key] = value;
    }
    env.CLOUDSDK_CONFIG = configDir;

    // Act
    const run = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(
        'bash',
        [
          '-c',
          `set -a; . .batchwire/env; set +a; gcloud storage cp reviews.csv gs://${config.bucket}/${object}`,
        ],
        { cwd: platform.workDir, env, timeout: 150_000 },
        (error, _stdout, stderr) =>
          resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stderr }),
      );
    });

    // Assert
    expect(run.code, run.stderr).toBe(0);
    await expect
      .poll(
        async () => {
          const [jobs] = await batch.listJobs({
            parent: `projects/${config.project}/locations/${config.region}`,
          });
          return jobs.filter((job) =>
            job.taskGroups?.[0]?.taskSpec?.environment?.variables?.BATCHWIRE_INPUT_URI?.endsWith(
              `/${object}`,
            ),
          ).length;
        },
        { timeout: 90_000, interval: 500 },
      )
      .toBe(1);
  });
});
