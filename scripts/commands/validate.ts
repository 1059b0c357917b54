import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { validateWorkflowFile } from '../../local/workflows/validate.js';
import { configPath, loadConfig } from '../../shared/config/load.js';
import { CliError, ROOT_DIR } from '../lib/context.js';

/**
 * `batchwire validate`: the config, every workflow in `workflows/`, and that the config's flows
 * point at workflows that exist. Prints one line per problem as `file:line: message`.
 */
export function validate(options: { workflowsDir?: string } = {}): void {
  const problems: string[] = [];
  const config = loadConfig();
  const workflowsDir = options.workflowsDir ?? join(ROOT_DIR, 'workflows');
  const files = readdirSync(workflowsDir).filter((name) => name.endsWith('.workflows.yaml'));
  const ids = new Set(files.map((name) => name.replace(/\.workflows\.yaml$/, '')));

  for (const file of files) {
    const path = join(workflowsDir, file);
    for (const diagnostic of validateWorkflowFile(path)) {
      problems.push(`${relative(process.cwd(), diagnostic.file)}:${diagnostic.line}: ${diagnostic.message}`);
    }
  }
  const source = relative(process.cwd(), configPath());
  for (const [product, settings] of Object.entries(config.products)) {
    for (const [flow, definition] of Object.entries(settings.flows)) {
      if ('workflow' in definition.target && !ids.has(definition.target.workflow)) {
        problems.push(
          `${source}: products.${product}.flows.${flow}.target.workflow: no workflows/${definition.target.workflow}.workflows.yaml`,
        );
      }
    }
  }
  if (problems.length > 0) throw new CliError(problems.join('\n'));
  process.stdout.write(`ok: ${source} and ${files.length} workflows (${[...ids].join(', ')})\n`);
}
