import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { plan as planCommand } from '#scripts/commands/plan.js';
import { renderGcloud } from '#scripts/plan/render-gcloud.js';
import { renderSummary } from '#scripts/plan/render-summary.js';
import { renderTerraform } from '#scripts/plan/render-terraform.js';
import { parseConfig } from '#shared/config/load.js';
import { buildPlan, clientPlan } from '#shared/plan/build-plan.js';
import { accountId, outputSubscription, outputTopic } from '#shared/plan/names.js';
import type { Plan } from '#shared/plan/types.js';

const ROOT = join(import.meta.dirname, '..', '..');
const PROD = readFileSync(join(ROOT, 'deploy/prod.yaml'), 'utf8');
const prodPlan = (text = PROD) =>
  buildPlan(parseConfig(text, 'deploy/prod.yaml'), { configFile: 'deploy/prod.yaml' });
const withInitech = PROD.replace('clients: [acme, globex]', 'clients: [acme, globex, initech]');

type Resources = Record<string, Record<string, Record<string, unknown>>>;
function terraformResources(files: Record<string, unknown>): Resources {
  const all: Resources = {};
  for (const content of Object.values(files)) {
    const resources = (JSON.parse(JSON.stringify(content)) as { resource?: Resources }).resource ?? {};
    for (const [type, byName] of Object.entries(resources)) all[type] = { ...all[type], ...byName };
  }
  return all;
}

/** Every entry of a plan as JSON text, for set comparisons. */
function entries(plan: Plan): Set<string> {
  const lists = [
    plan.accounts,
    plan.topics,
    plan.subscriptions,
    plan.bindings,
    plan.runJobs,
    plan.schedulerJobs,
    plan.functions,
    plan.workflows,
  ] as unknown[][];
  return new Set(lists.flatMap((list, i) => list.map((entry) => `${i}:${JSON.stringify(entry)}`)));
}

describe('names', () => {
  it('gives each client its topic and its pull subscription', () => {
    expect(outputTopic('mlops-template', 'acme')).toBe('batch-mlops-template-acme-outputs');
    expect(outputSubscription('mlops-template', 'acme')).toBe('batch-mlops-template-acme-outputs-pull');
  });

  it('keeps account ids within IAM’s 30 characters, distinct for distinct long names', () => {
    const a = accountId(['bw', 'a-very-long-product-name-here', 'client-number-one']);
    const b = accountId(['bw', 'a-very-long-product-name-here', 'client-number-two']);
    expect(a.length).toBeLessThanOrEqual(30);
    expect(a).toMatch(/^[a-z]([-a-z0-9]*[a-z0-9])$/);
    expect(a).not.toBe(b);
  });
});

describe('buildPlan for deploy/prod.yaml', () => {
  const plan = prodPlan();

  it('deploys the three functions as gen2 nodejs22, retried on events, reading the environment’s config', () => {
    expect(plan.functions.map((fn) => [fn.name, fn.entryPoint, fn.runtime, fn.generation, fn.retry])).toEqual(
      [
        ['onUpload', 'onUpload', 'nodejs22', 2, true],
        ['onSchedule', 'onSchedule', 'nodejs22', 2, false],
        ['onComplete', 'onComplete', 'nodejs22', 2, true],
      ],
    );
    for (const fn of plan.functions) {
      expect(fn.env).toEqual({ BATCHWIRE_CONFIG: 'deploy/prod.yaml' });
      expect(fn.serviceAccount).toBe('functions');
    }
    expect(
      plan.functions.filter((fn) => fn.trigger.kind !== 'http').map((fn) => fn.triggerServiceAccount),
    ).toEqual(['eventarc', 'eventarc']);
  });

  it('deploys every flow’s workflow and run-job, each with the workflows’ account', () => {
    expect(plan.workflows).toEqual([
      { id: 'metadata', sourceFile: 'workflows/metadata.workflows.yaml', serviceAccount: 'workflows' },
      { id: 'run-job', sourceFile: 'workflows/run-job.workflows.yaml', serviceAccount: 'workflows' },
      { id: 'train', sourceFile: 'workflows/train.workflows.yaml', serviceAccount: 'workflows' },
    ]);
  });

  it('gives every flow a Scheduler job (per client for client-scoped ones) with OIDC, JSON and retries', () => {
    expect(
      plan.schedulerJobs.map((job) => [job.id, job.schedule, job.timeZone, JSON.parse(job.body)]),
    ).toEqual([
      [
        'bw-mlops-template-train-acme',
        '0 4 * * *',
        'Europe/London',
        { flow: 'train', product: 'mlops-template', client: 'acme' },
      ],
      [
        'bw-mlops-template-train-globex',
        '0 4 * * *',
        'Europe/London',
        { flow: 'train', product: 'mlops-template', client: 'globex' },
      ],
      [
        'bw-mlops-template-metadata',
        '30 5 * * *',
        'Europe/London',
        { flow: 'metadata', product: 'mlops-template' },
      ],
    ]);
    for (const job of plan.schedulerJobs) {
      expect(job.retry.retryCount).toBeGreaterThan(0);
      expect(job.headers).toEqual({ 'Content-Type': 'application/json' });
      expect(job.oidcServiceAccount).toBe('scheduler');
    }
  });

  it('creates each client’s topic and pull subscription, and the Cloud Run job of the metadata flow', () => {
    expect(plan.topics.map((topic) => topic.name)).toEqual([
      'batchwire-completions',
      'batch-mlops-template-acme-outputs',
      'batch-mlops-template-globex-outputs',
    ]);
    expect(plan.subscriptions.map((sub) => [sub.name, sub.topic])).toEqual([
      ['batch-mlops-template-acme-outputs-pull', 'batch-mlops-template-acme-outputs'],
      ['batch-mlops-template-globex-outputs-pull', 'batch-mlops-template-globex-outputs'],
    ]);
    expect(plan.runJobs.map((job) => [job.id, job.image, job.serviceAccount])).toEqual([
      [
        'mlops-template-metadata',
        'europe-west2-docker.pkg.dev/batchwire-prod/batchwire/metadata:latest',
        'bw-mlops-template-jobs@batchwire-prod.iam.gserviceaccount.com',
      ],
    ]);
  });

  it('grants no client a project-wide role', () => {
    const clientGrants = plan.bindings.filter((binding) => binding.principal.startsWith('client:'));
    expect(clientGrants.length).toBe(6);
    for (const binding of clientGrants) expect(binding.resource.type).not.toBe('project');
  });

  it('builds the reference task images into the config’s Artifact Registry repository', () => {
    expect(plan.imageBuilds).toEqual([
      {
        config: 'cloudbuild.yaml',
        registry: 'europe-west2-docker.pkg.dev/batchwire-prod/batchwire',
        tag: 'latest',
        images: ['inference', 'train', 'metadata'].map(
          (task) => `europe-west2-docker.pkg.dev/batchwire-prod/batchwire/${task}:latest`,
        ),
      },
    ]);
  });
});

describe('Terraform JSON', () => {
  const resources = terraformResources(renderTerraform(prodPlan(), { sourceDir: '../..' }));

  it('has the three functions, a topic per client, workflows with their account, Scheduler jobs with retry_config', () => {
    expect(Object.keys(resources.google_cloudfunctions2_function ?? {})).toEqual([
      'on_upload',
      'on_schedule',
      'on_complete',
    ]);
    const topics = Object.values(resources.google_pubsub_topic ?? {}).map((topic) => topic.name);
    expect(topics).toEqual(
      expect.arrayContaining(['batch-mlops-template-acme-outputs', 'batch-mlops-template-globex-outputs']),
    );
    for (const workflow of Object.values(resources.google_workflows_workflow ?? {})) {
      expect(workflow.service_account).toBe(['${', 'google_service_account.workflows.email}'].join(''));
    }
    const schedulerJobs = Object.values(resources.google_cloud_scheduler_job ?? {});
    expect(schedulerJobs).toHaveLength(3);
    for (const job of schedulerJobs)
      expect((job.retry_config as { retry_count: number }).retry_count).toBeGreaterThan(0);
    const fn = resources.google_cloudfunctions2_function?.on_upload as {
      build_config: { runtime: string };
      event_trigger: { retry_policy: string };
    };
    expect(fn.build_config.runtime).toBe('nodejs22');
    expect(fn.event_trigger.retry_policy).toBe('RETRY_POLICY_RETRY');
  });

  it('grants each client with IAM conditions on object names and list prefixes', () => {
    const clientMembers = Object.values(resources.google_storage_bucket_iam_member ?? {}).filter((member) =>
      String(member.member).includes('google_service_account.client_'),
    );
    expect(clientMembers).toHaveLength(4);
    for (const member of clientMembers) {
      expect((member.condition as { expression: string }).expression).toMatch(
        /^resource\.name\.startsWith\('projects\/_\/buckets\/batchwire-prod-batch\/objects\/mlops-template\/(acme|globex)\//,
      );
    }
  });

  it('declares the project and region as variables, defaulting to the config’s', () => {
    const variables = renderTerraform(prodPlan(), { sourceDir: '../..' })['variables.tf.json'] as {
      variable: Record<string, { default: string }>;
    };
    expect(variables.variable.project?.default).toBe('batchwire-prod');
    expect(variables.variable.region?.default).toBe('europe-west2');
  });
});

describe('onboarding a client', () => {
  const before = prodPlan();
  const after = prodPlan(withInitech);
  const onboarding = clientPlan(after, 'mlops-template', 'initech');

  it('adds exactly the client plan’s resources and grants to the full plan, and nothing else', () => {
    const added = [...entries(after)].filter((entry) => !entries(before).has(entry));
    const created = entries({
      ...onboarding,
      accounts: onboarding.accounts.filter((account) => account.create),
    });
    expect(added.sort()).toEqual([...created].sort());
    expect(onboarding.bindings.map((binding) => `${binding.principal} ${binding.role}`)).toEqual([
      'client:mlops-template/initech roles/storage.objectCreator',
      'client:mlops-template/initech roles/storage.objectViewer',
      'client:mlops-template/initech roles/pubsub.subscriber',
      'functions roles/pubsub.publisher',
      'functions roles/storage.objectCreator',
    ]);
    expect(onboarding.schedulerJobs.map((job) => job.id)).toEqual(['bw-mlops-template-train-initech']);
  });

  it('renders a gcloud script whose commands all appear in the full script and all name the client', () => {
    const full = renderGcloud(after, { configFile: 'deploy/prod.yaml' }).split('\n');
    const client = renderGcloud(onboarding, {
      configFile: 'deploy/prod.yaml',
      client: 'mlops-template/initech',
    });
    const commands = client.split('\n').filter((line) => line.startsWith('gcloud '));
    expect(commands.length).toBe(1 + 1 + 1 + 5 + 1);
    for (const line of commands) {
      expect(full).toContain(line);
      expect(line).toContain('initech');
    }
    expect(client).not.toContain('functions deploy');
    expect(client).not.toContain('services enable');
  });

  it('summarises only that client', () => {
    const summary = renderSummary(onboarding);
    expect(summary).toContain('Client mlops-template/initech');
    expect(summary).not.toContain('acme');
    expect(summary).not.toContain('Platform');
  });

  it('writes one Terraform file for the client, the same one the full plan writes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bw-plan-'));
    try {
      const config = join(dir, 'prod.yaml');
      writeFileSync(config, withInitech);
      const output: string[] = [];
      const write = (text: string) => output.push(text);
      planCommand({
        config,
        format: 'terraform',
        client: 'mlops-template/initech',
        out: join(dir, 'client'),
        rootDir: dir,
        write,
      });
      planCommand({ config, format: 'terraform', out: join(dir, 'full'), rootDir: dir, write });
      expect(readdirSync(join(dir, 'client'))).toEqual(['client-mlops-template-initech.tf.json']);
      expect(readFileSync(join(dir, 'client', 'client-mlops-template-initech.tf.json'), 'utf8')).toBe(
        readFileSync(join(dir, 'full', 'client-mlops-template-initech.tf.json'), 'utf8'),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('batchwire plan refuses what cannot be deployed', () => {
  const write = () => undefined;

  it('refuses a deployable format for a config with a local: section', () => {
    expect(() => planCommand({ config: join(ROOT, 'batchwire.yaml'), format: 'gcloud', write })).toThrow(
      /local: section, which belongs to the local cloud only/,
    );
  });

  it('refuses a deployable format when a product names no job account', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bw-plan-'));
    try {
      const config = join(dir, 'prod.yaml');
      writeFileSync(config, PROD.replace(/^ {4}serviceAccount: .*\n/m, ''));
      expect(() => planCommand({ config, format: 'terraform', out: dir, rootDir: dir, write })).toThrow(
        /products\.mlops-template\.serviceAccount is required to deploy/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a client that the config does not list', () => {
    expect(() =>
      planCommand({
        config: join(ROOT, 'deploy/prod.yaml'),
        format: 'summary',
        client: 'mlops-template/initech',
        write,
      }),
    ).toThrow(/initech is not among products\.mlops-template\.clients/);
    expect(() =>
      planCommand({ config: join(ROOT, 'deploy/prod.yaml'), format: 'summary', client: 'acme', write }),
    ).toThrow(/expected PRODUCT\/CLIENT/);
  });
});
