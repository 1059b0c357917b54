import { defineConfig } from 'vitest/config';

// Every test process, and every process a test starts, stays on loopback: without this,
// google-gax probes the GCE metadata server when a client is created.
process.env.METADATA_SERVER_DETECTION = 'none';

export default defineConfig({
  test: {
    env: { METADATA_SERVER_DETECTION: 'none', LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent' },
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // Unit tests spawn nothing: starting a process there throws (real processes are integration tests).
          setupFiles: ['test/helpers/no-child-processes.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/helpers/pubsub-global-setup.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/helpers/pubsub-global-setup.ts'],
          testTimeout: 90_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        // Conformance: clients nobody here wrote (gcloud, curl, other languages' clients) and
        // Google's published examples, against the local cloud. Each case cites its source.
        extends: true,
        test: {
          name: 'conformance',
          include: ['test/conformance/**/*.test.ts'],
          globalSetup: ['test/helpers/pubsub-global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
