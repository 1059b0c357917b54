import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { CallbackHub } from '#local/workflows/callbacks.js';
import {
  type ConnectorRegistry,
  createLocalConnectors,
  executeWorkflow,
  LOCAL_CONNECTOR_NAMES,
  parseWorkflow,
  systemClock,
  validateWorkflow,
  WorkflowException,
  type WorkflowProgram,
  type WorkflowRuntime,
  WorkflowRuntimeError,
  WorkflowSyntaxError,
} from '#local/workflows/index.js';
import { toJsonValue } from '#local/workflows/values.js';
import { loadConfig } from '#shared/config/load.js';
import { CliError, ROOT_DIR, readPlatformEnv } from '../lib/context.js';

export interface WorkflowRunOptions {
  /** The execution argument, as JSON. */
  data?: string;
}

/**
 * `batchwire workflow run FILE [--data JSON]`: validates FILE, runs it on the local interpreter
 * and prints its result as JSON. Connector calls go to the running local platform when
 * `.batchwire/env` says one is up; `http.*` calls the URLs; `sys.log` lines go to stderr.
 * A failed execution prints Workflows' error (payload and context) and exits non-zero.
 */
export async function runWorkflowFile(file: string, options: WorkflowRunOptions = {}): Promise<void> {
  let argument: unknown = null;
  if (options.data !== undefined) {
    try {
      argument = JSON.parse(options.data);
    } catch (err) {
      throw new CliError(`--data is not JSON: ${(err as Error).message}`, 2);
    }
  }
  const program = loadProgram(file);
  const { project, region } = projectAndRegion();
  const platform = readPlatformEnv();
  if (platform) Object.assign(process.env, platform);
  const connectors = platform ? createLocalConnectors({ project, region }) : platformNotRunning();

  const callbacks = new CallbackHub();
  const abort = new AbortController();
  const onSignal = () => abort.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const runtime = (workflowId: string): WorkflowRuntime => ({
    connectors,
    env: {
      GOOGLE_CLOUD_PROJECT_ID: project,
      GOOGLE_CLOUD_PROJECT_NUMBER: '000000000000',
      GOOGLE_CLOUD_LOCATION: region,
      GOOGLE_CLOUD_WORKFLOW_ID: workflowId,
      GOOGLE_CLOUD_WORKFLOW_REVISION_ID: '000001-loc',
      GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID: randomUUID(),
    },
    clock: systemClock,
    signal: abort.signal,
    callbacks,
    log: (entry: { severity: string; data: unknown }) =>
      process.stderr.write(
        `${JSON.stringify({ severity: entry.severity, workflow: workflowId, data: entry.data })}\n`,
      ),
    // `experimental.executions.map(id, …)`: the workflow `id` next to FILE, else the project's.
    runWorkflow: (id: string, arg: unknown, signal?: AbortSignal): Promise<unknown> => {
      const child = loadProgram(findWorkflow(id, dirname(resolve(file))));
      return executeWorkflow(child, arg, { ...runtime(id), ...(signal ? { signal } : {}) });
    },
  });
  try {
    const result = await executeWorkflow(program, argument, runtime(workflowIdOf(file)));
    process.stdout.write(`${JSON.stringify(toJsonValue(result), null, 2)}\n`);
  } catch (err) {
    if (err instanceof WorkflowRuntimeError) {
      process.stderr.write(`${JSON.stringify({ payload: err.payload, context: err.context }, null, 2)}\n`);
      throw new CliError(`the execution failed: ${err.context.split('\n')[0]}`);
    }
    throw err;
  } finally {
    await callbacks.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Parses and validates one workflow file; any problem is a CliError listing `file:line: message`. */
function loadProgram(file: string): WorkflowProgram {
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let program: WorkflowProgram;
  try {
    program = parseWorkflow(source, file);
  } catch (err) {
    if (err instanceof WorkflowSyntaxError) throw new CliError(err.message);
    throw err;
  }
  const problems = validateWorkflow(program);
  if (problems.length > 0) {
    throw new CliError(problems.map((p) => `${p.file}:${p.line}: ${p.message}`).join('\n'));
  }
  return program;
}

/** `my-flow.workflows.yaml` → `my-flow`, as the local platform names deployed workflows. */
function workflowIdOf(file: string): string {
  return basename(file).replace(/(\.workflows)?\.(ya?ml|json)$/, '');
}

function findWorkflow(id: string, dir: string): string {
  const candidates = [dir, join(ROOT_DIR, 'workflows')].flatMap((d) =>
    ['.workflows.yaml', '.workflows.yml', '.yaml', '.yml'].map((ext) => join(d, `${id}${ext}`)),
  );
  const found = candidates.find((path) => existsSync(path));
  if (!found)
    throw new WorkflowException({
      message: `workflow "${id}" not found (looked for ${id}.workflows.yaml next to the file and in workflows/)`,
      tags: ['ResourceNotFoundError'],
    });
  return found;
}

/** The config's project and region when there is a config here, else neutral local values. */
function projectAndRegion(): { project: string; region: string } {
  try {
    const config = loadConfig();
    return { project: config.project, region: config.region };
  } catch {
    return {
      project: process.env.GOOGLE_CLOUD_PROJECT ?? 'local-project',
      region: process.env.GOOGLE_CLOUD_REGION ?? 'us-central1',
    };
  }
}

/** Without a running platform, the local connectors answer that it is not running. */
function platformNotRunning(): ConnectorRegistry {
  return Object.fromEntries(
    LOCAL_CONNECTOR_NAMES.map((name) => [
      name,
      async () => {
        throw new WorkflowException({
          message: `${name} needs the local platform: start it with \`npm start\` in this folder (no .batchwire/env here)`,
          tags: ['ConnectionFailedError'],
        });
      },
    ]),
  );
}
