import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalRunService, startRunService } from '#local/run/server.js';
import { createRunJobsAdapter } from '#shared/clients/run.js';
import { TransientError } from '#shared/runtime/errors.js';

/** The RunJobsAdapter (provisioning's Cloud Run jobs) with the real JobsClient against the local Run service. */

const PARENT = 'projects/batchwire-local/locations/europe-west2';
const IMAGE = 'europe-docker.pkg.dev/batchwire-local/batchwire/metadata:latest';

let service: LocalRunService;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'run-adapter-it-'));
  mkdirSync(join(dir, 'logs'));
  service = await startRunService({
    images: { [IMAGE]: ['node', '-e', ''] },
    baseDir: dir,
    logDir: join(dir, 'logs'),
  });
});

afterAll(async () => {
  await service?.close();
});

describe('createRunJobsAdapter', () => {
  it('reports a client it cannot create as retryable, and creates it on a later call once it can', async () => {
    // Arrange: the endpoint setting is broken at first.
    const env: NodeJS.ProcessEnv = { RUN_EMULATOR_HOST: 'no-port-here' };
    const adapter = createRunJobsAdapter({ env });

    try {
      // Act
      const failed = adapter.ensureJob(PARENT, 'adapter-job', { image: IMAGE });
      await expect(failed).rejects.toBeInstanceOf(TransientError);
      env.RUN_EMULATOR_HOST = service.host;
      const created = await adapter.ensureJob(PARENT, 'adapter-job', { image: IMAGE });
      const again = await adapter.ensureJob(PARENT, 'adapter-job', { image: IMAGE });

      // Assert: created once; the second call finds it (provisioning is idempotent).
      expect(created).toBe(true);
      expect(again).toBe(false);
    } finally {
      await adapter.close();
    }
  });
});
