import { conditionExpression } from '#shared/plan/build-plan.js';
import type { IamResource, Plan, PlannedBinding, PrincipalKey, Scope } from '#shared/plan/types.js';

function where(resource: IamResource): string {
  switch (resource.type) {
    case 'project':
      return 'the project';
    case 'bucket':
      return `gs://${resource.bucket}`;
    case 'topic':
      return `topic ${resource.topic}`;
    case 'subscription':
      return `subscription ${resource.subscription}`;
    case 'serviceAccount':
      return `account ${resource.email}`;
    case 'runService':
      return `function ${resource.function}`;
    case 'runJob':
      return `Cloud Run job ${resource.job}`;
    case 'repository':
      return `repository ${resource.location}/${resource.repository}`;
  }
}

function grantLine(plan: Plan, binding: PlannedBinding): string {
  const condition = binding.condition
    ? ` if ${conditionExpression(plan.bucket.name, binding.condition)}`
    : '';
  return `${binding.role} on ${where(binding.resource)}${condition}`;
}

const same = (a: Scope, b: Scope) => a.product === b.product && a.client === b.client;

/**
 * The plan as a readable summary: the platform, then each product and each of its clients, with
 * what exists for it and what each of its accounts may do.
 */
export function renderSummary(plan: Plan): string {
  const out: string[] = [];
  const accountsOf = (scope: Scope) => plan.accounts.filter((account) => same(account.scope, scope));
  const grantsOf = (key: PrincipalKey, scope: Scope) =>
    plan.bindings.filter((binding) => binding.principal === key && same(binding.scope, scope));
  const describeAccounts = (scope: Scope, indent: string) => {
    for (const account of accountsOf(scope)) {
      out.push(`${indent}account ${account.email ?? account.displayName}: ${account.purpose}`);
      for (const binding of grantsOf(account.key, scope))
        out.push(`${indent}  - ${grantLine(plan, binding)}`);
    }
    // Grants to accounts of a wider scope that this scope brings (e.g. the functions publish to a client's topic).
    for (const binding of plan.bindings.filter(
      (b) => same(b.scope, scope) && !accountsOf(scope).some((account) => account.key === b.principal),
    )) {
      out.push(`${indent}grant ${binding.principal}: ${grantLine(plan, binding)}`);
    }
  };

  out.push(
    `Batchwire plan for project ${plan.project}, region ${plan.region} (functions read ${plan.configFile})`,
  );
  if (plan.functions.length > 0) {
    out.push('', 'Platform');
    out.push(`  APIs: ${plan.services.join(', ')}`);
    out.push(`  bucket gs://${plan.bucket.name} (${plan.bucket.location}, uniform access)`);
    for (const topic of plan.topics.filter((t) => same(t.scope, {})))
      out.push(`  topic ${topic.name}: ${topic.purpose}`);
    for (const fn of plan.functions) {
      const trigger =
        fn.trigger.kind === 'storage'
          ? `on ${fn.trigger.eventType} in gs://${fn.trigger.bucket}`
          : fn.trigger.kind === 'topic'
            ? `on messages of ${fn.trigger.topic}`
            : 'on authenticated HTTP';
      out.push(`  function ${fn.name} (${fn.runtime}, gen2) ${trigger}${fn.retry ? ', retried' : ''}`);
    }
    for (const workflow of plan.workflows) out.push(`  workflow ${workflow.id} from ${workflow.sourceFile}`);
    for (const repo of plan.repositories)
      out.push(`  repository ${repo.location}/${repo.repository} (docker)`);
    for (const build of plan.imageBuilds)
      out.push(`  images built by ${build.config}: ${build.images.join(', ')}`);
    describeAccounts({}, '  ');
  }

  const products = [
    ...new Set(plan.accounts.map((a) => a.scope.product).concat(plan.topics.map((t) => t.scope.product))),
  ]
    .filter((product): product is string => Boolean(product))
    .sort();
  for (const product of products) {
    const productScope = { product };
    const productLines = out.length;
    out.push('', `Product ${product}`);
    for (const job of plan.runJobs.filter((j) => same(j.scope, productScope))) {
      out.push(`  Cloud Run job ${job.id} (${job.image}) for flow ${job.flow}`);
    }
    for (const job of plan.schedulerJobs.filter((j) => same(j.scope, productScope)))
      out.push(`  ${schedulerLine(job)}`);
    describeAccounts(productScope, '  ');
    if (out.length === productLines + 1) out.pop();

    const clients = [
      ...new Set(
        [...plan.accounts, ...plan.topics, ...plan.bindings]
          .filter((entry) => entry.scope.product === product && entry.scope.client)
          .map((entry) => entry.scope.client as string),
      ),
    ].sort();
    for (const client of clients) {
      const scope = { product, client };
      out.push('', `  Client ${product}/${client}`);
      for (const topic of plan.topics.filter((t) => same(t.scope, scope)))
        out.push(`    topic ${topic.name}: ${topic.purpose}`);
      for (const sub of plan.subscriptions.filter((s) => same(s.scope, scope))) {
        out.push(`    pull subscription ${sub.name} on ${sub.topic}`);
      }
      for (const job of plan.schedulerJobs.filter((j) => same(j.scope, scope)))
        out.push(`    ${schedulerLine(job)}`);
      describeAccounts(scope, '    ');
    }
  }
  return `${out.join('\n')}\n`;
}

function schedulerLine(job: Plan['schedulerJobs'][number]): string {
  const when = job.schedule
    ? `"${job.schedule}" ${job.timeZone}`
    : 'no schedule (fired by hand, not deployed)';
  return `scheduler job ${job.id}: ${when} → POST ${job.body} to onSchedule, ${job.retry.retryCount} retries`;
}
