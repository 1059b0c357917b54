import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/dist.js';
import { REPO_ROOT } from '../helpers/platform.js';

/**
 * `batchwire workflow run FILE` and `batchwire validate FILE…` as a user runs them (the built
 * CLI), on workflows written after Google's samples (GoogleCloudPlatform/workflows-samples
 * src/subworkflow.workflows.yaml documents "Hello Kristof"). Run from an empty folder: no
 * config, no running platform.
 */
const CLI = join(REPO_ROOT, 'dist', 'scripts', 'cli.js');
let dir: string;

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: dir,
      env: { ...process.env, METADATA_SERVER_DETECTION: 'none', BATCHWIRE_CONFIG: join(dir, 'none.yaml') },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  await ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'workflows-cli-'));
  writeFileSync(
    join(dir, 'hello.workflows.yaml'),
    `main:\n  params: [args]\n  steps:\n    - first:\n        call: hello\n        args:\n          input: \${args.name}\n        result: out\n    - second:\n        return: \${out}\nhello:\n  params: [input]\n  steps:\n    - first:\n        return: \${"Hello " + input}\n`,
  );
  writeFileSync(
    join(dir, 'fails.yaml'),
    `- boom:\n    raise:\n      message: no data\n      tags: [DataError]\n`,
  );
  writeFileSync(
    join(dir, 'bigquery.yaml'),
    `- q:\n    call: googleapis.bigquery.v2.jobs.query\n    args:\n      projectId: p\n    result: r\n- done:\n    return: \${r}\n`,
  );
  writeFileSync(join(dir, 'broken.yaml'), `- a:\n    call: nowhere.to_be_found\n`);
}, 180_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('batchwire workflow run / validate', () => {
  it('prints the result as JSON and exits 0', async () => {
    const result = await cli(['workflow', 'run', 'hello.workflows.yaml', '--data', '{"name": "Kristof"}']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toBe('Hello Kristof');
  });

  it('a failed execution prints the error and exits non-zero', async () => {
    const result = await cli(['workflow', 'run', 'fails.yaml']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('"DataError"');
    expect(result.stderr).toContain('the execution failed');
  });

  it('a valid connector without a local stand-in fails naming it', async () => {
    const result = await cli(['workflow', 'run', 'bigquery.yaml']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('"googleapis.bigquery.v2.jobs.query" has no local stand-in');
  });

  it('--data that is not JSON is a usage error', async () => {
    const result = await cli(['workflow', 'run', 'hello.workflows.yaml', '--data', '{nope']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--data is not JSON');
  });

  it('validate FILE… checks any workflow file: ok, or file:line problems and exit 1', async () => {
    const ok = await cli(['validate', 'hello.workflows.yaml', 'bigquery.yaml']);
    expect(ok).toMatchObject({ code: 0, stdout: 'ok: 2 workflow files\n' });
    const bad = await cli(['validate', 'hello.workflows.yaml', 'broken.yaml']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('broken.yaml:1: unknown function "nowhere.to_be_found"');
  });
});
