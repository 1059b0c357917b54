import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '#shared/config/load.js';
import { buildPlan } from '#shared/plan/build-plan.js';
import { ADAPTER_OPERATIONS, checkIam, grants, type Need, principalNeeds } from '#shared/plan/iam-needs.js';
import { ROLE_PERMISSIONS } from '#shared/plan/iam-roles.js';
import { WORKFLOW_CALLS } from '#shared/plan/workflow-calls.js';
import { repoConfig } from '../helpers/config.js';

const ROOT = join(import.meta.dirname, '..', '..');
const prodConfig = () =>
  parseConfig(readFileSync(join(ROOT, 'deploy/prod.yaml'), 'utf8'), 'deploy/prod.yaml');

/** A config with a runJob flow too, so that every kind of grant is exercised. */
const withRunJob = () =>
  repoConfig({
    extraFlows:
      '      refit:\n        target: { runJob: refit-job, args: [--fast] }\n        scope: client\n',
  });

const configs = { 'deploy/prod.yaml': prodConfig, 'batchwire.yaml + a runJob flow': withRunJob };

/** Method names of the interfaces declared in a source file. */
function interfaceMethods(file: string, only?: string[]): string[] {
  const source = ts.createSourceFile(file, readFileSync(join(ROOT, file), 'utf8'), ts.ScriptTarget.ES2022);
  const methods: string[] = [];
  source.forEachChild((node) => {
    if (!ts.isInterfaceDeclaration(node)) return;
    if (only && !only.includes(node.name.text)) return;
    for (const member of node.members) {
      if ((ts.isMethodSignature(member) || ts.isPropertySignature(member)) && member.name) {
        methods.push(`${node.name.text}.${member.name.getText(source)}`);
      }
    }
  });
  return methods;
}

describe('IAM: what each adapter operation needs', () => {
  it('declares every method of every port (shared/clients/ports.ts, BatchJobs, FlowExecutions)', () => {
    const ports = [
      ...interfaceMethods('shared/clients/ports.ts'),
      ...interfaceMethods('shared/domain/batch-job.ts', ['BatchJobs']),
      ...interfaceMethods('shared/domain/flow-start.ts', ['FlowExecutions']),
    ];
    expect(ports.length).toBeGreaterThanOrEqual(8);
    const declared = Object.entries(ADAPTER_OPERATIONS).flatMap(([adapter, ops]) =>
      Object.keys(ops).map((op) => `${adapter}.${op}`),
    );
    expect(ports.filter((method) => !declared.includes(method))).toEqual([]);
  });

  it('knows the connectors each workflow in workflows/ calls, exactly', () => {
    const files = readdirSync(join(ROOT, 'workflows')).filter((name) => name.endsWith('.workflows.yaml'));
    for (const file of files) {
      const id = file.replace(/\.workflows\.yaml$/, '');
      const calls = new Set<string>();
      const walk = (value: unknown): void => {
        if (Array.isArray(value)) value.forEach(walk);
        else if (value && typeof value === 'object') {
          for (const [key, inner] of Object.entries(value)) {
            if (key === 'call' && typeof inner === 'string' && inner.startsWith('googleapis.'))
              calls.add(inner);
            walk(inner);
          }
        }
      };
      walk(parseYaml(readFileSync(join(ROOT, 'workflows', file), 'utf8')));
      expect([...(WORKFLOW_CALLS[id] ?? [])].sort(), file).toEqual([...calls].sort());
    }
  });

  it('grants only roles whose permissions it knows', () => {
    for (const build of Object.values(configs)) {
      const plan = buildPlan(build(), { configFile: 'deploy/prod.yaml' });
      for (const binding of plan.bindings) expect(Object.keys(ROLE_PERMISSIONS)).toContain(binding.role);
    }
  });
});

describe.each(Object.entries(configs))('IAM proven offline for %s', (_name, build) => {
  const config = build();
  const plan = buildPlan(config, { configFile: 'deploy/prod.yaml' });
  const needs = principalNeeds(config);

  it('grants every operation of every principal, and grants nothing no operation needs', () => {
    const { unmet, unneeded } = checkIam(plan.bindings, needs);
    expect(unmet.map((need) => `${need.principal} ${need.operation} ${need.access.permission}`)).toEqual([]);
    expect(unneeded).toEqual([]);
  });

  it('fails when any single binding is deleted', () => {
    expect(plan.bindings.length).toBeGreaterThan(10);
    plan.bindings.forEach((removed, index) => {
      const rest = plan.bindings.filter((_, i) => i !== index);
      const { unmet } = checkIam(rest, needs);
      expect(unmet.length, `without ${removed.principal} ${removed.role}`).toBeGreaterThan(0);
    });
  });

  it('fails when a binding grants a role that no operation of its principal needs', () => {
    const extra = {
      principal: 'scheduler' as const,
      role: 'roles/pubsub.publisher',
      resource: { type: 'project' as const },
      scope: {},
    };
    expect(checkIam([...plan.bindings, extra], needs).unneeded).toEqual([extra]);
  });

  it('has every principal of a need among the plan’s accounts', () => {
    const keys = plan.accounts.map((account) => account.key);
    for (const need of needs) expect(keys).toContain(need.principal);
  });
});

describe('IAM conditions confine a client to its own prefix', () => {
  const config = prodConfig();
  const plan = buildPlan(config, { configFile: 'deploy/prod.yaml' });
  const bucket = config.bucket;
  const acme = 'client:mlops-template/acme' as const;
  const allowed = (need: Omit<Need, 'operation'>) =>
    plan.bindings.some((binding) => grants(binding, { ...need, operation: 'probe' }));
  const object = (name: string) => ({ type: 'object' as const, bucket, name });

  it('lets a client upload only under its inputs/', () => {
    const create = (name: string) =>
      allowed({ principal: acme, access: { permission: 'storage.objects.create', resource: object(name) } });
    expect(create('mlops-template/acme/inputs/a.jsonl')).toBe(true);
    expect(create('mlops-template/acme/outputs/forged.jsonl')).toBe(false);
    expect(create('mlops-template/globex/inputs/a.jsonl')).toBe(false);
    expect(create('_batchwire/claims/x.json')).toBe(false);
  });

  it('lets a client read only under its own prefix', () => {
    const read = (name: string) =>
      allowed({ principal: acme, access: { permission: 'storage.objects.get', resource: object(name) } });
    expect(read('mlops-template/acme/outputs/j/part-0.jsonl')).toBe(true);
    expect(read('mlops-template/globex/outputs/j/part-0.jsonl')).toBe(false);
    expect(read('_batchwire/rejections/mlops-template/acme/k.json')).toBe(false);
  });

  it('lets a client list only with its own prefix, never the whole bucket', () => {
    const list = (prefix: string) =>
      allowed({
        principal: acme,
        access: {
          permission: 'storage.objects.list',
          resource: { type: 'bucket', bucket },
          listPrefix: prefix,
        },
      });
    expect(list('mlops-template/acme/')).toBe(true);
    expect(list('mlops-template/acme/outputs/')).toBe(true);
    expect(list('mlops-template/')).toBe(false);
    expect(list('')).toBe(false);
  });

  it('lets a client pull only its own subscription, and publish nowhere', () => {
    const consume = (subscription: string) =>
      allowed({
        principal: acme,
        access: {
          permission: 'pubsub.subscriptions.consume',
          resource: { type: 'subscription', subscription },
        },
      });
    expect(consume('batch-mlops-template-acme-outputs-pull')).toBe(true);
    expect(consume('batch-mlops-template-globex-outputs-pull')).toBe(false);
    expect(
      allowed({
        principal: acme,
        access: {
          permission: 'pubsub.topics.publish',
          resource: { type: 'topic', topic: 'batch-mlops-template-acme-outputs' },
        },
      }),
    ).toBe(false);
  });

  it('renders each condition as CEL on the object name and the list prefix', async () => {
    const { conditionExpression } = await import('#shared/plan/build-plan.js');
    const viewer = plan.bindings.find((b) => b.principal === acme && b.role === 'roles/storage.objectViewer');
    expect(viewer?.condition && conditionExpression(bucket, viewer.condition)).toBe(
      "resource.name.startsWith('projects/_/buckets/batchwire-prod-batch/objects/mlops-template/acme/') || " +
        "api.getAttribute('storage.googleapis.com/objectListPrefix', '').startsWith('mlops-template/acme/')",
    );
  });
});
