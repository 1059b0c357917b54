import type { Config } from '../config/schema.js';
import { ConfigError } from '../runtime/errors.js';
import {
  artifactRepository,
  clientAccountId,
  configuredFlows,
  flowImage,
  flowJobId,
  flowWorkflowId,
  outputSubscription,
  outputTopic,
  PLATFORM_ACCOUNT_IDS,
  type PlatformAccount,
  productServiceAccount,
  REFERENCE_TASKS,
  RUN_JOB_WORKFLOW,
  schedulerJobBody,
  schedulerJobId,
  serviceAccountEmail,
  workflowSourceFile,
} from './names.js';
import type {
  IamResource,
  ObjectCondition,
  Plan,
  PlannedAccount,
  PlannedBinding,
  PlannedFunction,
  PlannedRepository,
  PlannedRunJob,
  PlannedSchedulerJob,
  PrincipalKey,
  Scope,
} from './types.js';
import { runsBatchJobs, runsRunJobs, WORKFLOW_CALLS } from './workflow-calls.js';

/** The APIs the plan's resources live in (Batch VMs are Compute Engine instances). */
export const PLAN_SERVICES = [
  'artifactregistry.googleapis.com',
  'batch.googleapis.com',
  'cloudbuild.googleapis.com',
  'cloudfunctions.googleapis.com',
  'cloudscheduler.googleapis.com',
  'compute.googleapis.com',
  'eventarc.googleapis.com',
  'iam.googleapis.com',
  'logging.googleapis.com',
  'pubsub.googleapis.com',
  'run.googleapis.com',
  'storage.googleapis.com',
  'workflowexecutions.googleapis.com',
  'workflows.googleapis.com',
];

/** Where the platform's own records live in the bucket (claims, rejection records). */
export const BOOKKEEPING_PREFIX = '_batchwire/';

/**
 * Scheduler retries a failed tick 5 times, 10 s then doubling up to 160 s: onSchedule answers
 * 409 (another attempt holds the tick's 30 s claim) or 503 (a Google service is unavailable)
 * expecting a retry, and the first retry comes after the claim lease.
 */
export const SCHEDULER_RETRY = {
  retryCount: 5,
  minBackoffSeconds: 10,
  maxBackoffSeconds: 300,
  maxDoublings: 4,
};

const PLATFORM_PURPOSES: Record<PlatformAccount, { displayName: string; purpose: string }> = {
  functions: {
    displayName: 'Batchwire functions',
    purpose: 'runs onUpload, onSchedule and onComplete: submits Batch jobs, starts flows, publishes results',
  },
  workflows: {
    displayName: 'Batchwire workflows',
    purpose:
      'runs the flow workflows: creates their Batch jobs, runs their Cloud Run jobs, reports completion',
  },
  scheduler: {
    displayName: 'Batchwire scheduler',
    purpose: 'signs Cloud Scheduler’s OIDC tokens for onSchedule',
  },
  eventarc: {
    displayName: 'Batchwire Eventarc triggers',
    purpose: 'delivers storage and completion events to onUpload and onComplete',
  },
};

export interface BuildPlanOptions {
  /** The config file the deployed functions read, relative to the source root (`BATCHWIRE_CONFIG`). */
  configFile: string;
  /** Tag of the reference task images the plan builds (default `latest`). */
  imageTag?: string;
}

/**
 * The complete footprint of a config in its Google Cloud project: services, accounts, bucket,
 * topics and subscriptions, every IAM binding (least privilege, clients confined to their own
 * prefix and topic), the three functions, the workflows, Cloud Run jobs, Scheduler jobs, the
 * Artifact Registry repositories and image builds. Pure: the same config gives the same plan.
 *
 * @example
 * const plan = buildPlan(loadConfig(), { configFile: 'deploy/prod.yaml' });
 */
export function buildPlan(config: Config, options: BuildPlanOptions): Plan {
  const { project, region, bucket } = config;
  const accounts: PlannedAccount[] = [];
  const bindings: PlannedBinding[] = [];
  const bind = (
    principal: PrincipalKey,
    role: string,
    resource: IamResource,
    scope: Scope,
    condition?: ObjectCondition,
  ) => {
    bindings.push({ principal, role, resource, scope, ...(condition ? { condition } : {}) });
  };

  for (const key of Object.keys(PLATFORM_ACCOUNT_IDS) as PlatformAccount[]) {
    const id = PLATFORM_ACCOUNT_IDS[key];
    accounts.push({
      key,
      email: serviceAccountEmail(id, project),
      accountId: id,
      create: true,
      ...PLATFORM_PURPOSES[key],
      scope: {},
    });
  }
  accounts.push({
    key: 'agent:storage',
    email: null,
    accountId: null,
    create: false,
    displayName: 'Cloud Storage service agent',
    purpose: 'publishes the bucket’s object events to the Pub/Sub topic behind onUpload’s Eventarc trigger',
    scope: {},
  });

  const completionTopic = config.completionTopic;
  const topics: Plan['topics'] = [
    {
      name: completionTopic,
      purpose: 'Batch job notifications and flow completions, for onComplete',
      scope: {},
    },
  ];
  const subscriptions: Plan['subscriptions'] = [];

  // Workflows deployed: every flow's, plus run-job (onSchedule starts it for any runJob target).
  const workflowIds = [
    ...new Set([
      ...configuredFlows(config).map(({ settings }) => flowWorkflowId(settings.target)),
      RUN_JOB_WORKFLOW,
    ]),
  ].sort();
  for (const id of workflowIds) {
    if (!WORKFLOW_CALLS[id]) {
      throw new ConfigError(
        `workflow ${id}: the plan does not know which Google APIs it calls, so it cannot grant them; declare it in shared/plan/workflow-calls.ts`,
      );
    }
  }

  // Platform grants.
  bind('functions', 'roles/batch.jobsEditor', { type: 'project' }, {});
  bind('functions', 'roles/workflows.invoker', { type: 'project' }, {});
  bind('functions', 'roles/storage.objectViewer', { type: 'bucket', bucket }, {});
  bind(
    'functions',
    'roles/storage.objectCreator',
    { type: 'bucket', bucket },
    {},
    {
      title: 'batchwire bookkeeping only',
      objectPrefix: BOOKKEEPING_PREFIX,
      listPrefix: false,
    },
  );
  bind('scheduler', 'roles/run.invoker', { type: 'runService', function: 'onSchedule' }, {});
  bind('eventarc', 'roles/eventarc.eventReceiver', { type: 'project' }, {});
  bind('eventarc', 'roles/run.invoker', { type: 'runService', function: 'onUpload' }, {});
  bind('eventarc', 'roles/run.invoker', { type: 'runService', function: 'onComplete' }, {});
  bind('agent:storage', 'roles/pubsub.publisher', { type: 'project' }, {});
  bind('workflows', 'roles/pubsub.publisher', { type: 'topic', topic: completionTopic }, {});
  if (workflowIds.some(runsBatchJobs)) bind('workflows', 'roles/batch.jobsEditor', { type: 'project' }, {});

  // Repositories of the images the config runs, when they are in this project's Artifact Registry.
  const repositories = new Map<string, PlannedRepository>();
  const noteImage = (image: string) => {
    const repo = artifactRepository(image);
    if (!repo || repo.project !== project) return undefined;
    const key = `${repo.location}/${repo.repository}`;
    const entry = repositories.get(key) ?? {
      location: repo.location,
      repository: repo.repository,
      images: [],
    };
    if (!entry.images.includes(image)) entry.images.push(image);
    repositories.set(key, entry);
    return entry;
  };

  const runJobs: PlannedRunJob[] = [];
  const schedulerJobs: PlannedSchedulerJob[] = [];
  let anyRunJob = false;

  for (const [product, settings] of Object.entries(config.products)) {
    const jobAccountEmail = productServiceAccount(config, product, settings);
    const jobKey: PrincipalKey = `job:${product}`;
    const own = jobAccountEmail.endsWith(`@${project}.iam.gserviceaccount.com`);
    accounts.push({
      key: jobKey,
      email: jobAccountEmail,
      accountId: own ? (jobAccountEmail.split('@')[0] as string) : null,
      create: own,
      displayName: `Batchwire ${product} jobs`,
      purpose: `runs ${product}'s Batch and Cloud Run jobs: reads its inputs, writes its outputs, reports job state`,
      scope: { product },
    });
    const productScope: Scope = { product };
    const productPrefix = `${product}/`;
    bind(jobKey, 'roles/batch.agentReporter', { type: 'project' }, productScope);
    bind(jobKey, 'roles/logging.logWriter', { type: 'project' }, productScope);
    bind(jobKey, 'roles/pubsub.publisher', { type: 'topic', topic: completionTopic }, productScope);
    bind(jobKey, 'roles/storage.objectUser', { type: 'bucket', bucket }, productScope, {
      title: `${product} objects only`,
      objectPrefix: productPrefix,
      listPrefix: true,
    });
    bind(
      'functions',
      'roles/iam.serviceAccountUser',
      { type: 'serviceAccount', email: jobAccountEmail },
      productScope,
    );

    const images = [settings.inference.image];
    const flows = Object.entries(settings.flows);
    if (flows.some(([, flow]) => runsBatchJobs(flowWorkflowId(flow.target)))) {
      bind(
        'workflows',
        'roles/iam.serviceAccountUser',
        { type: 'serviceAccount', email: jobAccountEmail },
        productScope,
      );
    }
    for (const [flow, flowSettings] of flows) {
      const workflow = flowWorkflowId(flowSettings.target);
      const image = flowImage(settings.inference.image, flow, flowSettings.params);
      if (runsBatchJobs(workflow)) images.push(image);
      if (runsRunJobs(workflow)) {
        const id = flowJobId(product, flow, flowSettings.target);
        if (!runJobs.some((job) => job.id === id)) {
          runJobs.push({ id, image, serviceAccount: jobAccountEmail, product, flow, scope: productScope });
          bind('workflows', 'roles/run.jobsExecutorWithOverrides', { type: 'runJob', job: id }, productScope);
          images.push(image);
          anyRunJob = true;
        }
      }
      const clients = flowSettings.scope === 'client' ? settings.clients : [null];
      for (const client of clients) {
        schedulerJobs.push({
          id: schedulerJobId(product, flow, client),
          product,
          flow,
          client,
          schedule: flowSettings.schedule ?? null,
          timeZone: flowSettings.timeZone,
          target: 'onSchedule',
          httpMethod: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: schedulerJobBody(product, flow, client),
          oidcServiceAccount: 'scheduler',
          retry: { ...SCHEDULER_RETRY },
          attemptDeadlineSeconds: 180,
          scope: client ? { product, client } : productScope,
        });
      }
    }
    const productRepositories = new Set<PlannedRepository>();
    for (const image of images) {
      const repo = noteImage(image);
      if (repo) productRepositories.add(repo);
    }
    for (const repo of productRepositories) {
      bind(
        jobKey,
        'roles/artifactregistry.reader',
        { type: 'repository', location: repo.location, repository: repo.repository },
        productScope,
      );
    }

    for (const client of settings.clients) {
      const scope: Scope = { product, client };
      const key: PrincipalKey = `client:${product}/${client}`;
      const id = clientAccountId(product, client);
      const email = serviceAccountEmail(id, project);
      accounts.push({
        key,
        email,
        accountId: id,
        create: true,
        displayName: `Batchwire client ${client} of ${product}`,
        purpose: `uploads ${product}/${client}/inputs/, reads ${product}/${client}/, pulls its results`,
        scope,
      });
      const topic = outputTopic(product, client);
      const subscription = outputSubscription(product, client);
      topics.push({ name: topic, purpose: `results of ${product}/${client}`, scope });
      subscriptions.push({
        name: subscription,
        topic,
        ackDeadlineSeconds: 60,
        messageRetentionSeconds: 7 * 24 * 3600,
        scope,
      });
      const clientPrefix = `${product}/${client}/`;
      bind(key, 'roles/storage.objectCreator', { type: 'bucket', bucket }, scope, {
        title: `uploads to ${clientPrefix}inputs/ only`,
        objectPrefix: `${clientPrefix}inputs/`,
        listPrefix: false,
      });
      bind(key, 'roles/storage.objectViewer', { type: 'bucket', bucket }, scope, {
        title: `reads and lists ${clientPrefix} only`,
        objectPrefix: clientPrefix,
        listPrefix: true,
      });
      bind(key, 'roles/pubsub.subscriber', { type: 'subscription', subscription }, scope);
      bind('functions', 'roles/pubsub.publisher', { type: 'topic', topic }, scope);
      // onComplete lists a finished job's outputs into a manifest beside them (the result event
      // carries its URI): create-only, and only under this client's outputs.
      bind('functions', 'roles/storage.objectCreator', { type: 'bucket', bucket }, scope, {
        title: `writes output manifests under ${clientPrefix}outputs/ only`,
        objectPrefix: `${clientPrefix}outputs/`,
        listPrefix: false,
      });
    }
  }
  if (anyRunJob) bind('workflows', 'roles/run.viewer', { type: 'project' }, {});

  const configEnv = { BATCHWIRE_CONFIG: options.configFile };
  const functions: PlannedFunction[] = [
    {
      name: 'onUpload',
      entryPoint: 'onUpload',
      runtime: 'nodejs22',
      generation: 2,
      serviceAccount: 'functions',
      trigger: { kind: 'storage', eventType: 'google.cloud.storage.object.v1.finalized', bucket },
      triggerServiceAccount: 'eventarc',
      retry: true,
      allowUnauthenticated: false,
      env: configEnv,
      timeoutSeconds: 300,
      memory: '512Mi',
    },
    {
      name: 'onSchedule',
      entryPoint: 'onSchedule',
      runtime: 'nodejs22',
      generation: 2,
      serviceAccount: 'functions',
      trigger: { kind: 'http' },
      triggerServiceAccount: null,
      retry: false,
      allowUnauthenticated: false,
      env: configEnv,
      timeoutSeconds: 120,
      memory: '512Mi',
    },
    {
      name: 'onComplete',
      entryPoint: 'onComplete',
      runtime: 'nodejs22',
      generation: 2,
      serviceAccount: 'functions',
      trigger: {
        kind: 'topic',
        eventType: 'google.cloud.pubsub.topic.v1.messagePublished',
        topic: completionTopic,
      },
      triggerServiceAccount: 'eventarc',
      retry: true,
      allowUnauthenticated: false,
      env: configEnv,
      timeoutSeconds: 300,
      memory: '512Mi',
    },
  ];

  const tag = options.imageTag ?? 'latest';
  const imageBuilds = [...repositories.values()].map((repo) => {
    const registry = `${repo.location}-docker.pkg.dev/${project}/${repo.repository}`;
    return {
      config: 'cloudbuild.yaml' as const,
      registry,
      tag,
      images: REFERENCE_TASKS.map((task) => `${registry}/${task}:${tag}`),
    };
  });

  return {
    project,
    region,
    configFile: options.configFile,
    services: [...PLAN_SERVICES],
    accounts,
    bucket: { name: bucket, location: region },
    topics,
    subscriptions,
    bindings,
    repositories: [...repositories.values()],
    imageBuilds,
    functions,
    workflows: workflowIds.map((id) => ({
      id,
      sourceFile: workflowSourceFile(id),
      serviceAccount: 'workflows',
    })),
    runJobs,
    schedulerJobs,
  };
}

/** The part of a plan that onboarding one client creates: every entry of scope `{product, client}`, nothing else. */
export function clientPlan(plan: Plan, product: string, client: string): Plan {
  const mine = (entry: { scope: Scope }) => entry.scope.product === product && entry.scope.client === client;
  return {
    ...plan,
    services: [],
    // The client's own account, and (uncreated) the accounts its entries name: the functions
    // that publish to its topic, the account its Scheduler jobs sign as.
    accounts: plan.accounts.flatMap((account) => {
      if (mine(account)) return [account];
      const named =
        plan.bindings.some((binding) => mine(binding) && binding.principal === account.key) ||
        plan.schedulerJobs.some((job) => mine(job) && job.oidcServiceAccount === account.key);
      return named ? [{ ...account, create: false }] : [];
    }),
    topics: plan.topics.filter(mine),
    subscriptions: plan.subscriptions.filter(mine),
    bindings: plan.bindings.filter(mine),
    repositories: [],
    imageBuilds: [],
    functions: [],
    workflows: [],
    runJobs: plan.runJobs.filter(mine),
    schedulerJobs: plan.schedulerJobs.filter(mine),
  };
}

/** The account entry of a principal. */
export function accountOf(plan: Plan, key: PrincipalKey): PlannedAccount {
  const account = plan.accounts.find((entry) => entry.key === key);
  if (!account) throw new ConfigError(`the plan has no account ${key}`);
  return account;
}

/** The CEL expression of an object condition, as IAM evaluates it on Cloud Storage requests. */
export function conditionExpression(bucket: string, condition: ObjectCondition): string {
  // Object requests name the object (`projects/_/buckets/B/objects/NAME`); a list request names
  // the bucket and carries its prefix in `storage.googleapis.com/objectListPrefix` (IAM
  // conditions attribute reference: https://cloud.google.com/iam/docs/conditions-attribute-reference#api-attributes).
  const objects = `resource.name.startsWith('projects/_/buckets/${bucket}/objects/${condition.objectPrefix}')`;
  if (!condition.listPrefix) return objects;
  return `${objects} || api.getAttribute('storage.googleapis.com/objectListPrefix', '').startsWith('${condition.objectPrefix}')`;
}
