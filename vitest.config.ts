import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Every test process, and every process a test starts, stays on loopback: without this,
// google-gax probes the GCE metadata server when a client is created.
process.env.METADATA_SERVER_DETECTION = 'none';

/**
 * Tests run the TypeScript sources, never dist/ (which may be stale or absent). The import
 * aliases (#shared/…, #local/…) are package.json's "imports"; each names the sources under the
 * `batchwire-source` condition (what tsc resolves) and dist/ otherwise (what Node runs). The same
 * source targets are handed to Vite as aliases, so they apply in every environment vitest
 * uses (test files, global setup), whatever its resolve conditions.
 */
type ImportTargets = Record<string, { 'batchwire-source': string; default: string }>;
const packageImports: ImportTargets = JSON.parse(
  readFileSync(new URL('package.json', import.meta.url), 'utf8'),
).imports;
const sourceAliases = Object.entries(packageImports).map(([alias, targets]) => ({
  find: alias.replace(/\/\*$/, ''),
  replacement: fileURLToPath(new URL(targets['batchwire-source'].replace(/\/\*$/, ''), import.meta.url)),
}));

export default defineConfig({
  resolve: { alias: sourceAliases },
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
