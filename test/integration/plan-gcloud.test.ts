import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderGcloud } from '#scripts/plan/render-gcloud.js';
import { parseConfig } from '#shared/config/load.js';
import { buildPlan } from '#shared/plan/build-plan.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SEPARATOR = ' >/dev/null 2>&1 || ';
/** What gcloud prints when a command got past its flags and needs an account: the only failure allowed. */
const NO_CREDENTIALS = /You do not currently have an active account selected/;

/**
 * The form of a gcloud invocation: its command (`gcloud pubsub topics create`), the flags it
 * passes and whether a condition has an `||`. Two invocations of one form differ only in the
 * names they carry (a topic, an account), which gcloud parses alike.
 */
function formOf(command: string): string {
  const words = command.split(' ').slice(0, 4).join(' ');
  const flags = [...new Set(command.match(/ --[a-z-]+/g) ?? [])].sort().join('');
  return `${words}${flags}${command.includes(' || ') ? ' (or)' : ''}`;
}

/**
 * The gcloud invocations of a generated script, one of each form: every command of every line
 * (both halves of `describe … || create …`, the inside of `VAR="$(…)"`, redirections dropped),
 * keeping the first invocation of each {@link formOf}. gcloud costs 1.5-10 s of CPU per call on
 * the shared two cores here; running each form once keeps the check near a minute.
 */
function gcloudInvocationsOfEveryLine(lines: string[]): string[] {
  return lines.flatMap((line) => {
    const assigned = /^[A-Z_]+="\$\((gcloud .*)\)"$/.exec(line);
    return (assigned ? (assigned[1] as string) : line)
      .split(SEPARATOR)
      .map((part) => part.replace(/ >\/dev\/null$/, ''));
  });
}

function gcloudInvocations(script: string): string[] {
  const invocations = new Map<string, string>();
  for (const line of script.split('\n')) {
    const assigned = /^[A-Z_]+="\$\((gcloud .*)\)"$/.exec(line);
    const command = assigned ? assigned[1] : line.startsWith('gcloud ') ? line : undefined;
    if (!command) continue;
    for (const part of command.split(SEPARATOR)) {
      const invocation = part.replace(/ >\/dev\/null$/, '');
      if (!invocations.has(formOf(invocation))) invocations.set(formOf(invocation), invocation);
    }
  }
  return [...invocations.values()];
}

function run(command: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', command], { cwd: ROOT, env, timeout: 60_000 }, (error, _stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stderr });
    });
  });
}

async function pool<T, R>(items: T[], size: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: size }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  });
  await Promise.all(workers);
  return results;
}

describe('the gcloud script, checked with the real gcloud and no credentials', () => {
  const sdkConfig = mkdtempSync(join(tmpdir(), 'bw-gcloud-'));
  afterAll(() => rmSync(sdkConfig, { recursive: true, force: true }));

  it('uploads the environment’s config with the function sources, and never the local one', async () => {
    // `gcloud meta list-files-for-upload` lists what `--source=.` uploads, honouring .gcloudignore.
    const listed = await new Promise<string[]>((resolve, reject) => {
      execFile(
        'gcloud',
        ['meta', 'list-files-for-upload', '.'],
        {
          cwd: ROOT,
          env: { PATH: process.env.PATH, HOME: sdkConfig, CLOUDSDK_CONFIG: sdkConfig },
          timeout: 60_000,
        },
        (error, stdout) => (error ? reject(error) : resolve(stdout.split('\n').filter(Boolean))),
      );
    });
    expect(listed).toEqual(
      expect.arrayContaining(['deploy/prod.yaml', 'package-lock.json', 'functions/index.ts']),
    );
    expect(listed).not.toContain('batchwire.yaml');
    expect(listed.filter((file) => file.startsWith('test/') || file.startsWith('node_modules/'))).toEqual([]);
  }, 90_000);

  it('has every command fail only for lack of credentials: no unknown flag, missing argument or bad value', async () => {
    const config = parseConfig(readFileSync(join(ROOT, 'deploy/prod.yaml'), 'utf8'), 'deploy/prod.yaml');
    const script = renderGcloud(buildPlan(config, { configFile: 'deploy/prod.yaml' }), {
      configFile: 'deploy/prod.yaml',
    });
    const invocations = gcloudInvocations(script);
    // Every line of the script has the form of a checked invocation.
    const forms = new Set(invocations.map(formOf));
    const lines = script.split('\n').filter((line) => !line.startsWith('#') && line.includes('gcloud '));
    expect(lines.length).toBeGreaterThan(50);
    for (const line of gcloudInvocationsOfEveryLine(lines)) expect(forms).toContain(formOf(line));
    expect(invocations.length).toBeGreaterThan(25);

    // An empty SDK config: no account, no project, prompts off, nothing to update or report.
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: sdkConfig,
      CLOUDSDK_CONFIG: sdkConfig,
      CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
      CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: '1',
      CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: '1',
      CLOUDSDK_CORE_CHECK_GCE_METADATA: 'false',
      METADATA_SERVER_DETECTION: 'none',
      GCE_METADATA_HOST: '127.0.0.1:1',
      // The values the script computes from earlier commands.
      PROJECT: config.project,
      REGION: config.region,
      STORAGE_AGENT: 'service-123456789012@gs-project-accounts.iam.gserviceaccount.com',
      ON_SCHEDULE_URL: 'https://onschedule-abcdefghij-nw.a.run.app',
    };
    const results = await pool(invocations, 4, async (command) => ({
      command,
      ...(await run(command, env)),
    }));
    const wrong = results
      .filter((result) => result.code === 0 || !NO_CREDENTIALS.test(result.stderr))
      .map((result) => `${result.command}\n  → exit ${result.code}: ${result.stderr.trim().split('\n')[0]}`);
    expect(wrong).toEqual([]);
  }, 300_000);
});
