import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gcloudApiOverrides } from '#local/platform/env-file.js';
import { type LocalWorkflowsService, startWorkflowsService } from '#local/workflows/server.js';
import { createGcloud, type GcloudResult, json } from '../helpers/gcloud-command.js';

// `gcloud workflows` execution commands (Google Cloud SDK 528) against the local Workflows
// executions service, through the endpoint override `.batchwire/env` carries. Each case names
// its command reference page under https://cloud.google.com/sdk/gcloud/reference/workflows/.

const PROJECT = 'batchwire-local';
const LOCATION = 'us-central1';
const workflow = (id: string) => `projects/${PROJECT}/locations/${LOCATION}/workflows/${id}`;

const GREET = [
  'main:',
  '  params: [args]',
  '  steps:',
  '    - done:',
  `        return: \${"hello " + args.name}`,
];
const FAIL = [
  'main:',
  '  steps:',
  '    - boom:',
  '        raise:',
  '          message: no data',
  '          tags: [DataError]',
];

interface Execution {
  name: string;
  state: string;
  result?: string;
  argument?: string;
  error?: { payload: string; context: string };
}

let workflows: LocalWorkflowsService;
let gcloud: (args: string[]) => Promise<GcloudResult>;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gcloud-workflows-'));
  writeFileSync(join(dir, 'greet.workflows.yaml'), `${GREET.join('\n')}\n`);
  writeFileSync(join(dir, 'fail.workflows.yaml'), `${FAIL.join('\n')}\n`);
  workflows = await startWorkflowsService({
    workflowsDir: dir,
    project: PROJECT,
    region: LOCATION,
    connectors: {},
  });
  gcloud = createGcloud({
    project: PROJECT,
    env: gcloudApiOverrides({ batch: '127.0.0.1:9', workflows: workflows.host }),
  });
});

afterAll(async () => {
  await workflows?.close();
});

describe.concurrent('gcloud workflows executions', () => {
  it('run waits for the execution and prints it with its result (reference/workflows/run)', async () => {
    // Act
    const result = await gcloud([
      'workflows',
      'run',
      'greet',
      '--location',
      LOCATION,
      '--data',
      '{"name":"gcloud"}',
      '--format=json',
    ]);

    // Assert
    expect(result.code, result.stderr).toBe(0);
    const execution = json<Execution>(result);
    expect(execution.state).toBe('SUCCEEDED');
    expect(JSON.parse(execution.result as string)).toBe('hello gcloud');
    expect(execution.name.startsWith(`${workflow('greet')}/executions/`)).toBe(true);
  }, 300_000);

  it('execute starts one; describe and list show it with argument and result (reference/workflows/execute, executions/describe, executions/list)', async () => {
    // Act
    const started = await gcloud([
      'workflows',
      'execute',
      'greet',
      '--location',
      LOCATION,
      '--data',
      '{"name":"list"}',
      '--format=json',
    ]);
    expect(started.code, started.stderr).toBe(0);
    const { name } = json<Execution>(started);
    await workflows.waitForExecution(name);
    const id = name.split('/').pop() as string;
    const [described, listed] = await Promise.all([
      gcloud([
        'workflows',
        'executions',
        'describe',
        id,
        '--workflow',
        'greet',
        '--location',
        LOCATION,
        '--format=json',
      ]),
      gcloud(['workflows', 'executions', 'list', 'greet', '--location', LOCATION, '--format=json']),
    ]);

    // Assert
    const execution = json<Execution>(described);
    expect(execution).toMatchObject({ name, state: 'SUCCEEDED', argument: '{"name":"list"}' });
    expect(JSON.parse(execution.result as string)).toBe('hello list');
    expect(json<Execution[]>(listed).map((e) => e.name)).toContain(name);
  }, 300_000);

  it('a raised error shows as FAILED with the error payload (reference/workflows/run)', async () => {
    // Act
    const result = await gcloud(['workflows', 'run', 'fail', '--location', LOCATION, '--format=json']);

    // Assert
    const execution = json<Execution>(result);
    expect(execution.state).toBe('FAILED');
    expect(JSON.parse(execution.error?.payload as string)).toEqual({
      message: 'no data',
      tags: ['DataError'],
    });
  }, 300_000);

  it('describe of an execution that does not exist fails with NOT_FOUND (reference/workflows/executions/describe)', async () => {
    // Act
    const result = await gcloud([
      'workflows',
      'executions',
      'describe',
      'no-such-execution',
      '--workflow',
      'greet',
      '--location',
      LOCATION,
    ]);

    // Assert
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/executions\/no-such-execution' was not found/);
  }, 300_000);
});
