import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '#shared/config/load.js';
import type { Config } from '#shared/config/schema.js';

/** The repository's own config, which the local platform and the e2e tests also run on. */
const REPO_CONFIG = join(import.meta.dirname, '..', '..', 'batchwire.yaml');

/** The top-level settings a test config gets unless the test names its own. */
const TEST_CONFIG_DEFAULTS = {
  project: 'test-project',
  region: 'europe-west2',
  bucket: 'test-bucket',
  completionTopic: 'completions',
};

/**
 * A validated config from a test's own `products:` section (YAML, indented as it stands under
 * `products:`) and top-level settings (`project`, `region`, `bucket`, `completionTopic`, or any
 * other top-level key such as `maxEventAgeSeconds`) over {@link TEST_CONFIG_DEFAULTS}. It goes
 * through `parseConfig`, so a test config is validated exactly as `batchwire.yaml` is.
 */
export function testConfig(products: string, settings: Record<string, string | number> = {}): Config {
  const header = Object.entries({ ...TEST_CONFIG_DEFAULTS, ...settings })
    .map(([key, value]) => `${key}: ${value}`)
    .join('\n');
  return parseConfig(`${header}\nproducts:\n${products.replace(/^\n/, '')}`);
}

/**
 * The repository's `batchwire.yaml`, optionally with `extraFlows` (YAML, indented as a flow
 * under the first product's `flows:`) added before its own flows and another completion topic.
 */
export function repoConfig(options: { extraFlows?: string; completionTopic?: string } = {}): Config {
  let text = readFileSync(REPO_CONFIG, 'utf8');
  if (options.completionTopic !== undefined) {
    text = text.replace(/^completionTopic: .*$/m, `completionTopic: ${options.completionTopic}`);
  }
  if (options.extraFlows !== undefined) {
    // A missing anchor would silently drop the flows a test relies on.
    if (!text.includes('flows:\n')) throw new Error(`${REPO_CONFIG} has no flows: to extend`);
    text = text.replace('flows:\n', `flows:\n${options.extraFlows}`);
  }
  return parseConfig(text);
}
