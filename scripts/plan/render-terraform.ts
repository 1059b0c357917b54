import { accountOf, conditionExpression } from '#shared/plan/build-plan.js';
import { type FunctionName, functionServiceName } from '#shared/plan/names.js';
import type { Plan, PlannedBinding, PrincipalKey, Scope } from '#shared/plan/types.js';

/** Terraform JSON (`*.tf.json`) for the hashicorp/google provider, by file name. */
export type TerraformFiles = Record<string, unknown>;

type Blocks = Record<string, Record<string, unknown>>;

/** A Terraform interpolation of an expression: `${expr}`. */
function ref(expression: string): string {
  return `\${${expression}}`;
}

/** A Terraform identifier from any name (letters, digits, underscores; starts with a letter). */
function tfName(...parts: string[]): string {
  return parts
    .join('_')
    .replace(/[^a-zA-Z0-9_]/g, '_')
    .replace(/_+/g, '_')
    .toLowerCase();
}

const FUNCTION_RESOURCE: Record<FunctionName, string> = {
  onUpload: 'on_upload',
  onSchedule: 'on_schedule',
  onComplete: 'on_complete',
};

/** Which file an entry of a given scope goes to: one for the platform, one per product, one per client. */
function fileOf(scope: Scope): string {
  if (scope.product && scope.client) return `client-${scope.product}-${scope.client}.tf.json`;
  if (scope.product) return `product-${scope.product}.tf.json`;
  return 'platform.tf.json';
}

/**
 * The plan as Terraform JSON for the `hashicorp/google` provider: `variables.tf.json` (project,
 * region, where the sources are), `platform.tf.json`, one `product-*.tf.json` per product and one
 * `client-*.tf.json` per client, so that onboarding a client adds one file. Terraform keeps its
 * own state; nothing here is a deployer. `sourceDir` is the repository root as seen from the
 * output folder (functions and workflows are read from it).
 */
export function renderTerraform(plan: Plan, options: { sourceDir: string; only?: Scope }): TerraformFiles {
  const files = new Map<string, Blocks>();
  const add = (
    scope: Scope,
    type: string,
    name: string,
    body: unknown,
    kind: 'resource' | 'data' | 'output' = 'resource',
  ) => {
    const file = fileOf(scope);
    const blocks = files.get(file) ?? {};
    files.set(file, blocks);
    if (kind === 'output') {
      blocks.output ??= {};
      (blocks.output as Record<string, unknown>)[name] = body;
      return;
    }
    blocks[kind] ??= {};
    const byType = (blocks[kind] as Record<string, Record<string, unknown>>)[type] ?? {};
    (blocks[kind] as Record<string, Record<string, unknown>>)[type] = byType;
    if (byType[name]) throw new Error(`terraform: two ${type}.${name}`);
    byType[name] = body;
  };
  const project = ref('var.project');
  const region = ref('var.region');
  const accountRef = (key: PrincipalKey) => `google_service_account.${tfName(key)}`;
  const email = (key: PrincipalKey): string => {
    const account = accountOf(plan, key);
    if (key === 'agent:storage') return ref('data.google_storage_project_service_account.gcs.email_address');
    return account.accountId ? `\${${accountRef(key)}.email}` : (account.email as string);
  };
  const member = (key: PrincipalKey) => `serviceAccount:${email(key)}`;
  const topicRef = (name: string) => `google_pubsub_topic.${tfName(name)}`;

  for (const service of plan.services) {
    add({}, 'google_project_service', tfName(service.split('.')[0] as string), {
      project,
      service,
      disable_on_destroy: false,
    });
  }
  for (const account of plan.accounts) {
    if (account.accountId && account.create) {
      add(account.scope, 'google_service_account', tfName(account.key), {
        project,
        account_id: account.accountId,
        display_name: account.displayName,
        description: account.purpose,
      });
    }
  }
  if (plan.bindings.some((binding) => binding.principal === 'agent:storage')) {
    add({}, 'google_storage_project_service_account', 'gcs', { project }, 'data');
  }
  if (plan.functions.length > 0) {
    add({}, 'google_storage_bucket', 'bucket', {
      project,
      name: plan.bucket.name,
      location: region,
      uniform_bucket_level_access: true,
    });
  }
  for (const topic of plan.topics) {
    add(topic.scope, 'google_pubsub_topic', tfName(topic.name), { project, name: topic.name });
  }
  for (const sub of plan.subscriptions) {
    add(sub.scope, 'google_pubsub_subscription', tfName(sub.name), {
      project,
      name: sub.name,
      topic: `\${${topicRef(sub.topic)}.id}`,
      ack_deadline_seconds: sub.ackDeadlineSeconds,
      message_retention_duration: `${sub.messageRetentionSeconds}s`,
    });
  }
  for (const repo of plan.repositories) {
    add({}, 'google_artifact_registry_repository', tfName(repo.location, repo.repository), {
      project,
      location: repo.location,
      repository_id: repo.repository,
      format: 'DOCKER',
    });
  }

  const bindingNames = new Map<string, number>();
  for (const binding of plan.bindings) {
    const [type, body] = bindingResource(plan, binding, member(binding.principal));
    const base = tfName(binding.principal, binding.role.replace(/^roles\//, ''), resourceLabel(binding));
    const seen = bindingNames.get(base) ?? 0;
    bindingNames.set(base, seen + 1);
    add(binding.scope, type, seen ? `${base}_${seen}` : base, body);
  }

  for (const job of plan.runJobs) {
    const account = plan.accounts.find((entry) => entry.email === job.serviceAccount);
    add(job.scope, 'google_cloud_run_v2_job', tfName(job.id), {
      project,
      name: job.id,
      location: region,
      labels: { product: job.product, flow: job.flow },
      template: {
        template: {
          service_account: account ? email(account.key) : job.serviceAccount,
          containers: [{ image: job.image }],
        },
      },
    });
  }

  for (const workflow of plan.workflows) {
    add({}, 'google_workflows_workflow', tfName(workflow.id), {
      project,
      name: workflow.id,
      region,
      service_account: email(workflow.serviceAccount),
      source_contents: `\${file("\${var.source_dir}/${workflow.sourceFile}")}`,
    });
  }

  if (plan.functions.length > 0) {
    // Cloud Functions builds from a zip in a bucket: the repository's sources, as .gcloudignore leaves them.
    add(
      {},
      'archive_file',
      'function_source',
      {
        type: 'zip',
        source_dir: ref('var.source_dir'),
        output_path: `${ref('path.module')}/.build/function-source.zip`,
        excludes: ['node_modules', 'dist', 'test', '.git', '.batchwire', 'coverage', 'batchwire.yaml'],
      },
      'data',
    );
    add({}, 'google_storage_bucket', 'function_source', {
      project,
      name: `\${var.project}-batchwire-sources`,
      location: region,
      uniform_bucket_level_access: true,
    });
    add({}, 'google_storage_bucket_object', 'function_source', {
      name: `function-source-${ref('data.archive_file.function_source.output_md5')}.zip`,
      bucket: ref('google_storage_bucket.function_source.name'),
      source: ref('data.archive_file.function_source.output_path'),
    });
  }
  for (const fn of plan.functions) {
    const body: Record<string, unknown> = {
      project,
      name: fn.name,
      location: region,
      build_config: {
        runtime: fn.runtime,
        entry_point: fn.entryPoint,
        source: {
          storage_source: {
            bucket: ref('google_storage_bucket.function_source.name'),
            object: ref('google_storage_bucket_object.function_source.name'),
          },
        },
      },
      service_config: {
        service_account_email: email(fn.serviceAccount),
        environment_variables: fn.env,
        timeout_seconds: fn.timeoutSeconds,
        available_memory: fn.memory,
      },
    };
    if (fn.trigger.kind !== 'http') {
      body.event_trigger = {
        trigger_region: region,
        event_type: fn.trigger.eventType,
        retry_policy: fn.retry ? 'RETRY_POLICY_RETRY' : 'RETRY_POLICY_DO_NOT_RETRY',
        ...(fn.triggerServiceAccount ? { service_account_email: email(fn.triggerServiceAccount) } : {}),
        ...(fn.trigger.kind === 'storage'
          ? { event_filters: [{ attribute: 'bucket', value: ref('google_storage_bucket.bucket.name') }] }
          : { pubsub_topic: `\${${topicRef(fn.trigger.topic)}.id}` }),
      };
    }
    add({}, 'google_cloudfunctions2_function', FUNCTION_RESOURCE[fn.name], body);
  }

  const onScheduleUri = ref('google_cloudfunctions2_function.on_schedule.service_config[0].uri');
  for (const job of plan.schedulerJobs) {
    if (!job.schedule) continue;
    add(job.scope, 'google_cloud_scheduler_job', tfName(job.id), {
      project,
      name: job.id,
      region,
      schedule: job.schedule,
      time_zone: job.timeZone,
      attempt_deadline: `${job.attemptDeadlineSeconds}s`,
      retry_config: {
        retry_count: job.retry.retryCount,
        min_backoff_duration: `${job.retry.minBackoffSeconds}s`,
        max_backoff_duration: `${job.retry.maxBackoffSeconds}s`,
        max_doublings: job.retry.maxDoublings,
      },
      http_target: {
        http_method: job.httpMethod,
        uri: onScheduleUri,
        headers: job.headers,
        body: Buffer.from(job.body).toString('base64'),
        oidc_token: { service_account_email: email(job.oidcServiceAccount), audience: onScheduleUri },
      },
    });
  }

  if (plan.imageBuilds.length > 0) {
    add(
      {},
      '',
      'image_builds',
      {
        description: 'Build the task images before the jobs run (Terraform does not build images).',
        value: plan.imageBuilds.map(
          (build) =>
            `gcloud builds submit --config=${build.config} --substitutions="_REGISTRY=${build.registry},_TAG=${build.tag}" --project=${plan.project} .`,
        ),
      },
      'output',
    );
  }

  const result: TerraformFiles = {};
  if (!options.only) {
    result['variables.tf.json'] = {
      terraform: {
        required_providers: {
          google: { source: 'hashicorp/google', version: '>= 6.0' },
          archive: { source: 'hashicorp/archive', version: '>= 2.4' },
        },
      },
      variable: {
        project: {
          type: 'string',
          default: plan.project,
          description: 'Google Cloud project (the config’s project)',
        },
        region: {
          type: 'string',
          default: plan.region,
          description: 'Region of the bucket, functions, workflows and jobs',
        },
        source_dir: {
          type: 'string',
          default: options.sourceDir,
          description: 'The Batchwire repository root, relative to this folder',
        },
      },
      provider: { google: { project, region } },
    };
  }
  for (const [file, blocks] of [...files.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    result[file] = blocks;
  }
  return result;
}

function resourceLabel(binding: PlannedBinding): string {
  const resource = binding.resource;
  switch (resource.type) {
    case 'project':
      return 'project';
    case 'bucket':
      return binding.condition ? `bucket_${binding.condition.objectPrefix}` : 'bucket';
    case 'topic':
      return resource.topic;
    case 'subscription':
      return resource.subscription;
    case 'serviceAccount':
      return resource.email.split('@')[0] as string;
    case 'runService':
      return resource.function;
    case 'runJob':
      return resource.job;
    case 'repository':
      return resource.repository;
  }
}

function bindingResource(
  plan: Plan,
  binding: PlannedBinding,
  member: string,
): [string, Record<string, unknown>] {
  const project = ref('var.project');
  const region = ref('var.region');
  const base = { role: binding.role, member };
  const resource = binding.resource;
  switch (resource.type) {
    case 'project':
      return ['google_project_iam_member', { project, ...base }];
    case 'bucket':
      return [
        'google_storage_bucket_iam_member',
        {
          bucket: ref('google_storage_bucket.bucket.name'),
          ...base,
          ...(binding.condition
            ? {
                condition: {
                  title: binding.condition.title,
                  expression: conditionExpression(resource.bucket, binding.condition),
                },
              }
            : {}),
        },
      ];
    case 'topic':
      return [
        'google_pubsub_topic_iam_member',
        { project, topic: `\${google_pubsub_topic.${tfName(resource.topic)}.name}`, ...base },
      ];
    case 'subscription':
      return [
        'google_pubsub_subscription_iam_member',
        {
          project,
          subscription: `\${google_pubsub_subscription.${tfName(resource.subscription)}.name}`,
          ...base,
        },
      ];
    case 'serviceAccount': {
      const target = plan.accounts.find((account) => account.email === resource.email);
      const id = target?.accountId
        ? `\${google_service_account.${tfName(target.key)}.name}`
        : `projects/-/serviceAccounts/${resource.email}`;
      return ['google_service_account_iam_member', { service_account_id: id, ...base }];
    }
    case 'runService':
      return [
        'google_cloud_run_v2_service_iam_member',
        {
          project,
          location: region,
          // The Cloud Run service behind a gen2 function is named after it, lowercased.
          name: functionServiceName(resource.function),
          ...base,
          depends_on: [`google_cloudfunctions2_function.${FUNCTION_RESOURCE[resource.function]}`],
        },
      ];
    case 'runJob':
      return [
        'google_cloud_run_v2_job_iam_member',
        {
          project,
          location: region,
          name: `\${google_cloud_run_v2_job.${tfName(resource.job)}.name}`,
          ...base,
        },
      ];
    case 'repository':
      return [
        'google_artifact_registry_repository_iam_member',
        {
          project,
          location: resource.location,
          repository: `\${google_artifact_registry_repository.${tfName(resource.location, resource.repository)}.name}`,
          ...base,
        },
      ];
  }
}
