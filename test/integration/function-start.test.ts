import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ListeningMessage } from '#local/platform/function-preload.js';
import { ensureBuilt } from '../helpers/dist.js';
import { REPO_ROOT } from '../helpers/platform.js';

/**
 * The functions as a user starts them: the functions-framework CLI loading the package's main
 * (dist/functions/index.js), which validates the config at cold start. The preload binds the
 * server to 127.0.0.1 (the CLI alone listens on every interface), reports the port it got over
 * IPC (started with `--port=0`, as the platform starts it) and ends the process when its stdin
 * ends, so stdin is a pipe held open for the process's life.
 */
const FRAMEWORK_MAIN = join(REPO_ROOT, 'node_modules/@google-cloud/functions-framework/build/src/main.js');
const PRELOAD = join(REPO_ROOT, 'dist/local/platform/function-preload.js');

interface FunctionRun {
  child: ChildProcess;
  /** Resolves with the port its server listens on, as the preload reports it; rejects if it exits first. */
  listening: Promise<number>;
  output(): string;
  exited: Promise<number | null>;
}

const running: FunctionRun[] = [];
let tempDir: string;

function startFunction(target: string, config: string): FunctionRun {
  const child = spawn(
    process.execPath,
    ['--import', PRELOAD, FRAMEWORK_MAIN, `--target=${target}`, '--port=0', `--source=${REPO_ROOT}`],
    {
      cwd: tempDir,
      env: { ...process.env, BATCHWIRE_CONFIG: config, METADATA_SERVER_DETECTION: 'none' },
      stdio: ['pipe', 'pipe', 'pipe', 'ipc'],
    },
  );
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const listening = new Promise<number>((resolve, reject) => {
    child.once('message', (message: Partial<ListeningMessage>) => {
      if (typeof message.listening?.port === 'number') resolve(message.listening.port);
      else reject(new Error(`unexpected message from the function: ${JSON.stringify(message)}`));
    });
    void exited.then((code) => reject(new Error(`function exited (${code}) before it listened:\n${output}`)));
  });
  // The bad-config case never listens: its rejection is what that test looks at through `exited`.
  listening.catch(() => {});
  const run = { child, listening, output: () => output, exited };
  running.push(run);
  return run;
}

/** Resolves with the exit code, or 'running' if the process is still up after `ms`. */
function exitWithin(run: FunctionRun, ms: number): Promise<number | null | 'running'> {
  return Promise.race([run.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), ms))]);
}

beforeAll(async () => {
  await ensureBuilt();
  tempDir = mkdtempSync(join(tmpdir(), 'batchwire-function-start-'));
}, 120_000);

afterEach(async () => {
  for (const run of running.splice(0)) {
    // Ending stdin is how the preload is told to stop; SIGKILL only if that did not work.
    run.child.stdin?.end();
    if ((await exitWithin(run, 5_000)) === 'running') {
      run.child.kill('SIGKILL');
      await run.exited;
    }
  }
});

afterAll(() => {
  rmSync(tempDir, { recursive: true, force: true });
});

describe('a function started by the functions-framework CLI', () => {
  it('stops at cold start, naming the bad key, when the config is invalid', async () => {
    // Arrange
    const config = join(tempDir, 'bad.yaml');
    const text = readFileSync(join(REPO_ROOT, 'batchwire.yaml'), 'utf8');
    expect(text).toMatch(/maxTasks: 8\b/);
    writeFileSync(config, text.replace(/maxTasks: 8\b/, 'maxTasks: 0'));

    // Act
    const run = startFunction('onUpload', config);
    const code = await exitWithin(run, 10_000);

    // Assert
    expect(code).not.toBe('running');
    expect(code).not.toBe(0);
    expect(run.output()).toContain('products.mlops-template.inference.maxTasks');
  });

  it('serves onSchedule with the shipped config (a GET is refused with 405)', async () => {
    // Arrange
    const run = startFunction('onSchedule', join(REPO_ROOT, 'batchwire.yaml'));
    const port = await run.listening;

    // Act
    const response = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5000) });

    // Assert
    expect(response.status).toBe(405);
    expect(run.output()).toContain('Function: onSchedule');
  });

  it.each(['onUpload', 'onComplete'])(
    'serves %s with the shipped config (a malformed event is acked, a non-event refused)',
    async (target) => {
      // Arrange
      const run = startFunction(target, join(REPO_ROOT, 'batchwire.yaml'));
      const port = await run.listening;

      // Act: a structured-mode CloudEvent whose data is not what the trigger sends (the function
      // decides no retry can cure it, so it acks: 204, not 500), and a body that is no CloudEvent
      // at all (refused before the function: 400).
      const post = (contentType: string, body: unknown) =>
        fetch(`http://127.0.0.1:${port}/`, {
          method: 'POST',
          headers: { 'content-type': contentType },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(5000),
        });
      const malformed = await post('application/cloudevents+json', {
        specversion: '1.0',
        id: 'function-start-1',
        source: '//function-start/test',
        type:
          target === 'onUpload'
            ? 'google.cloud.storage.object.v1.finalized'
            : 'google.cloud.pubsub.topic.v1.messagePublished',
        time: new Date().toISOString(),
        data: {},
      });
      const none = await post('application/json', {});

      // Assert
      expect(malformed.status).toBe(204);
      expect(none.status).toBe(400);
      expect(run.output()).toContain(`Function: ${target}`);
    },
  );
});
