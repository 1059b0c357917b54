import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/dist.js';
import { anyPorts, CLI, PLATFORM_PORT_NAMES, portArgs, REPO_ROOT } from '../helpers/platform.js';

/** The built CLI (`node dist/scripts/cli.js`, what `npx batchwire` runs), as a user runs it. */
interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const COMMANDS = ['dev', 'demo', 'upload', 'run', 'jobs', 'logs', 'tail', 'validate', 'plan'];
/** A stack frame line: what a user must never see for a mistake of theirs. */
const STACK_FRAME = /^\s+at .+/m;

let tempDir: string;

/** The environment of a user's shell: no config override, no platform addresses. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, METADATA_SERVER_DETECTION: 'none', ...extra };
  if (!('BATCHWIRE_CONFIG' in extra)) delete env.BATCHWIRE_CONFIG;
  return env;
}

function cli(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult & { pid: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env: options.env ?? userEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so a test can tell whether anything it started outlived it.
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`batchwire ${args.join(' ')} did not exit in time:\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 15_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, pid: child.pid ?? 0 });
    });
  });
}

/** The non-empty lines of a stream. */
function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '');
}

beforeAll(async () => {
  await ensureBuilt();
  tempDir = mkdtempSync(join(tmpdir(), 'batchwire-cli-'));
}, 120_000);

afterAll(() => {
  rmSync(tempDir, { recursive: true, force: true });
});

describe('batchwire --help', () => {
  it('lists every command', async () => {
    // Act
    const result = await cli(['--help']);

    // Assert
    expect(result.code).toBe(0);
    for (const command of COMMANDS) expect(result.stdout).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));
  });

  it.each(COMMANDS)('answers `%s --help` with its usage', async (command) => {
    // Act
    const result = await cli([command, '--help']);

    // Assert
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^Usage: batchwire ${command}\\b`));
    expect(result.stderr).toBe('');
  });
});

describe('a command line the CLI cannot run', () => {
  it('reports an unknown command in one clear line and fails', async () => {
    // Act
    const result = await cli(['deploy']);

    // Assert
    expect(result.code).not.toBe(0);
    expect(lines(result.stderr)[0]).toBe("error: unknown command 'deploy'");
    expect(result.stderr).not.toMatch(STACK_FRAME);
  });

  it('reports a missing required option in one clear line and fails', async () => {
    // Act
    const result = await cli(['upload', 'reviews.jsonl', '--client', 'acme'], { cwd: tempDir });

    // Assert
    expect(result.code).not.toBe(0);
    expect(lines(result.stderr)[0]).toBe("error: required option '--product <id>' not specified");
    expect(result.stderr).not.toMatch(STACK_FRAME);
  });

  it.each(['0', '-2', '1.5', 'many'])(
    'rejects --max-tasks %s in one clear line before starting anything',
    async (value) => {
      // Act
      const result = await cli(['dev', '--max-tasks', value], { cwd: tempDir });

      // Assert
      expect(result.code).not.toBe(0);
      expect(lines(result.stderr)[0]).toBe(
        `error: option '--max-tasks <n>' argument '${value}' is invalid. not a positive integer`,
      );
      expect(existsSync(join(tempDir, '.batchwire'))).toBe(false);
    },
  );
});

describe('commands that need the platform, where none runs', () => {
  it.each([
    ['jobs'],
    ['upload', 'reviews.jsonl', '--product', 'mlops-template', '--client', 'acme'],
    ['tail', '--product', 'mlops-template', '--client', 'acme'],
    ['run', 'train', '--product', 'mlops-template', '--client', 'acme'],
    ['logs', 'bw-mlops-template-acme-0123'],
  ])('`%s …` says Batchwire is not running and how to start it', async (...args) => {
    // Arrange: a working directory without .batchwire/env
    const cwd = mkdtempSync(join(tempDir, 'no-platform-'));
    writeFileSync(join(cwd, 'reviews.jsonl'), '{"text":"hi"}\n');

    // Act
    const result = await cli(args, { cwd });

    // Assert
    expect(result.code).toBe(1);
    expect(lines(result.stderr)).toHaveLength(1);
    expect(result.stderr).toMatch(/Batchwire is not running/);
    expect(result.stderr).toMatch(/npm start/);
    expect(result.stderr).not.toMatch(STACK_FRAME);
  });
});

describe('batchwire validate', () => {
  it('passes on the repository', async () => {
    // Act
    const result = await cli(['validate']);

    // Assert
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^ok: batchwire\.yaml and \d+ workflows/);
  });

  it('fails with file:line: for a workflow whose `next` names a missing step', async () => {
    // Arrange: the repository's workflows (so the config's flows resolve) plus a broken one
    const dir = join(tempDir, 'workflows-next');
    cpSync(join(REPO_ROOT, 'workflows'), dir, { recursive: true });
    writeFileSync(
      join(dir, 'broken.workflows.yaml'),
      [
        'main:',
        '  steps:',
        '    - first:',
        '        assign:',
        '          - x: 1',
        '        next: nowhere',
        '    - last:',
        '        return: done',
        '',
      ].join('\n'),
    );

    // Act
    const result = await cli(['validate', '--workflows', dir]);

    // Assert
    expect(result.code).toBe(1);
    const problems = lines(result.stderr).filter((line) => !line.startsWith('batchwire: '));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/broken\.workflows\.yaml:6: .*nowhere/);
    expect(result.stderr).not.toMatch(STACK_FRAME);
  });

  it('fails with file:line: for a config flow whose workflow does not exist', async () => {
    // Arrange
    const text = readFileSync(join(REPO_ROOT, 'batchwire.yaml'), 'utf8');
    expect(text).toContain('target: { workflow: metadata }');
    const config = join(tempDir, 'flow-to-nowhere.yaml');
    writeFileSync(config, text.replace('target: { workflow: metadata }', 'target: { workflow: reindex }'));
    const line = text.split('\n').findIndex((l) => l.includes('target: { workflow: metadata }')) + 1;

    // Act
    const result = await cli(['validate'], { env: userEnv({ BATCHWIRE_CONFIG: config }) });

    // Assert
    expect(result.code).toBe(1);
    const problems = lines(result.stderr).filter((l) => !l.startsWith('batchwire: '));
    expect(problems).toEqual([
      expect.stringMatching(
        new RegExp(
          `flow-to-nowhere\\.yaml:${line}: products\\.mlops-template\\.flows\\.metadata\\.target\\.workflow: no .*reindex\\.workflows\\.yaml$`,
        ),
      ),
    ]);
  });

  it('fails with file:line: for a config key the schema rejects', async () => {
    // Arrange
    const text = readFileSync(join(REPO_ROOT, 'batchwire.yaml'), 'utf8');
    const config = join(tempDir, 'bad-key.yaml');
    writeFileSync(config, text.replace(/maxTasks: 8\b/, 'maxTasks: 0'));
    const line = text.split('\n').findIndex((l) => /maxTasks: 8\b/.test(l)) + 1;

    // Act
    const result = await cli(['validate'], { env: userEnv({ BATCHWIRE_CONFIG: config }) });

    // Assert
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      new RegExp(`^\\S*bad-key\\.yaml:${line}: products\\.mlops-template\\.inference\\.maxTasks: `, 'm'),
    );
  });
});

describe('batchwire plan', () => {
  it('prints the plan of an environment’s config as JSON, and its gcloud script', async () => {
    const json = await cli(['plan', '--config', 'deploy/prod.yaml', '--json']);
    expect(json.code).toBe(0);
    const plan = JSON.parse(json.stdout) as { configFile: string; functions: Array<{ runtime: string }> };
    expect(plan.configFile).toBe('deploy/prod.yaml');
    expect(plan.functions.map((fn) => fn.runtime)).toEqual(['nodejs22', 'nodejs22', 'nodejs22']);

    const script = await cli(['plan', '--config', 'deploy/prod.yaml', '--format', 'gcloud']);
    expect(script.code).toBe(0);
    expect(script.stdout).toMatch(/^#!\/usr\/bin\/env bash\n/);
    expect(script.stdout).toContain('--set-env-vars=BATCHWIRE_CONFIG=deploy/prod.yaml');
  });

  it('refuses to render the local config for deployment, in one line', async () => {
    const result = await cli(['plan', '--format', 'gcloud']);
    expect(result.code).toBe(1);
    expect(lines(result.stderr)).toEqual([
      expect.stringMatching(
        /^batchwire: batchwire\.yaml has a local: section, which belongs to the local cloud only/,
      ),
    ]);
    expect(result.stderr).not.toMatch(STACK_FRAME);
  });
});

describe('batchwire dev on a port that is taken', () => {
  let occupier: Server;
  let takenPort: number;

  beforeAll(async () => {
    occupier = createServer();
    await new Promise<void>((resolve) => occupier.listen(0, '127.0.0.1', resolve));
    takenPort = (occupier.address() as { port: number }).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => occupier.close(resolve));
  });

  it('exits with one line naming the port and its flag, leaving no env file and no processes', async () => {
    // Arrange: every other service on any free port; Pub/Sub is the run's emulator (globalSetup)
    expect(process.env.PUBSUB_EMULATOR_HOST).toBeTruthy();
    const cwd = mkdtempSync(join(tempDir, 'dev-'));
    const others = anyPorts(PLATFORM_PORT_NAMES.filter((name) => name !== 'storage'));
    const args = ['dev', '--storage-port', String(takenPort), ...portArgs(others)];

    // Act
    const result = await cli(args, {
      cwd,
      env: userEnv({ BATCHWIRE_CONFIG: join(REPO_ROOT, 'batchwire.yaml') }),
      timeoutMs: 30_000,
    });

    // Assert
    expect(result.code).not.toBe(0);
    expect(lines(result.stderr)).toEqual([expect.stringContaining(`port ${takenPort}`)]);
    expect(result.stderr).toContain('--storage-port');
    expect(result.stderr).not.toMatch(STACK_FRAME);
    expect(existsSync(join(cwd, '.batchwire', 'env'))).toBe(false);
    // Nothing it started outlived it: every server it may have opened went with its process.
    expect(processGroupAlive(result.pid)).toBe(false);
  });
});

/** Whether any process of the group that `pid` led is still alive (the CLI ran detached). */
function processGroupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
