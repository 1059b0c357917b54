import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { isNode, LineCounter, parseDocument } from 'yaml';
import { validateWorkflowFile } from '#local/workflows/validate.js';
import { configPath } from '#shared/config/load.js';
import { type Config, ConfigSchema } from '#shared/config/schema.js';
import { CliError, ROOT_DIR } from '../lib/context.js';

/**
 * `batchwire validate`: the config, every workflow in `workflows/` (or `workflowsDir`), and that
 * the config's flows point at workflows that exist. Prints one line per problem as
 * `file:line: message` on stderr and fails, or one `ok:` line. With `files`, only those
 * workflow files, wherever they are (any Workflows definition, not only the project's).
 */
export function validate(options: { workflowsDir?: string; files?: string[] } = {}): void {
  if (options.files && options.files.length > 0) {
    validateFiles(options.files);
    return;
  }
  const problems: string[] = [];
  const workflowsDir = options.workflowsDir ?? join(ROOT_DIR, 'workflows');
  let names: string[];
  try {
    names = readdirSync(workflowsDir);
  } catch (err) {
    throw new CliError(`cannot read the workflows folder ${workflowsDir}: ${(err as Error).message}`);
  }
  const files = names.filter((name) => name.endsWith('.workflows.yaml')).sort();
  const ids = new Set(files.map((name) => name.replace(/\.workflows\.yaml$/, '')));

  const path = configPath();
  const source = relative(process.cwd(), path) || path;
  if (!existsSync(path))
    throw new CliError(`no config at ${path} (set BATCHWIRE_CONFIG or add batchwire.yaml)`);
  const checked = checkConfig(readFileSync(path, 'utf8'), source);
  problems.push(...checked.problems);

  for (const file of files) {
    for (const diagnostic of validateWorkflowFile(join(workflowsDir, file))) {
      problems.push(`${relative(process.cwd(), diagnostic.file)}:${diagnostic.line}: ${diagnostic.message}`);
    }
  }

  if (checked.config) {
    const shownDir = relative(process.cwd(), workflowsDir) || '.';
    for (const [product, settings] of Object.entries(checked.config.products)) {
      for (const [flow, definition] of Object.entries(settings.flows)) {
        if ('workflow' in definition.target && !ids.has(definition.target.workflow)) {
          const key = ['products', product, 'flows', flow, 'target', 'workflow'];
          const missing = join(shownDir, `${definition.target.workflow}.workflows.yaml`);
          problems.push(`${source}:${checked.lineOf(key)}: ${key.join('.')}: no ${missing}`);
        }
      }
    }
  }

  if (problems.length > 0) {
    // Each problem on a line of its own that starts with `file:line:`, as editors and CI problem
    // matchers read them; the CLI's one-line error summarises.
    process.stderr.write(`${problems.join('\n')}\n`);
    throw new CliError(`${problems.length} problem${problems.length === 1 ? '' : 's'} found`);
  }
  process.stdout.write(`ok: ${source} and ${files.length} workflows (${[...ids].join(', ')})\n`);
}

function validateFiles(files: string[]): void {
  const problems = files.flatMap((file) =>
    validateWorkflowFile(file).map(
      (d) => `${relative(process.cwd(), d.file) || d.file}:${d.line}: ${d.message}`,
    ),
  );
  if (problems.length > 0) {
    process.stderr.write(`${problems.join('\n')}\n`);
    throw new CliError(`${problems.length} problem${problems.length === 1 ? '' : 's'} found`);
  }
  process.stdout.write(`ok: ${files.length} workflow file${files.length === 1 ? '' : 's'}\n`);
}

/**
 * The checks of `parseConfig` (the same schema), but each problem located at its line: the
 * functions need only the key path, a person fixing the file wants the line too.
 */
function checkConfig(
  text: string,
  source: string,
): { config?: Config; problems: string[]; lineOf: (path: PropertyKey[]) => number } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  const lineOf = (path: PropertyKey[]): number => {
    for (let depth = path.length; depth > 0; depth--) {
      const node = doc.getIn(path.slice(0, depth), true);
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
    }
    return 1;
  };
  if (doc.errors.length > 0) {
    const problems = doc.errors.map(
      (error) => `${source}:${error.linePos?.[0].line ?? 1}: not valid YAML: ${yamlMessage(error.message)}`,
    );
    return { problems, lineOf };
  }
  const result = ConfigSchema.safeParse(doc.toJS());
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      // An unknown key is reported on its parent; point at the key itself.
      const at = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0] ?? ''] : issue.path;
      const key = issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)';
      return `${source}:${lineOf(at)}: ${key}: ${issue.message}`;
    });
    return { problems, lineOf };
  }
  return { config: result.data, problems: [], lineOf };
}

/** The first line of a YAML parser message, without the position the `file:line:` prefix gives. */
function yamlMessage(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '');
}
