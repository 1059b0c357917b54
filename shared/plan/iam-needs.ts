import type { Config } from '../config/schema.js';
import { OUTPUTS_MANIFEST_FILE } from '../domain/results/outputs-manifest.js';
import { BOOKKEEPING_PREFIX } from './build-plan.js';
import { roleGrants } from './iam-roles.js';
import {
  artifactRepository,
  configuredFlows,
  flowImage,
  flowJobId,
  flowWorkflowId,
  outputSubscription,
  outputTopic,
  productServiceAccount,
} from './names.js';
import type { IamResource, Plan, PlannedBinding, PrincipalKey } from './types.js';
import { WORKFLOW_CALLS, type WorkflowConnector } from './workflow-calls.js';

/** What an access is checked against: an IAM resource, or something inside one. */
export type AccessResource =
  | IamResource
  | { type: 'object'; bucket: string; name: string }
  | { type: 'workflow'; workflow: string };

/** One permission on one resource; a list request carries its prefix. */
export interface Access {
  permission: string;
  resource: AccessResource;
  /** `storage.googleapis.com/objectListPrefix` of a list request. */
  listPrefix?: string;
}

/** Something a principal does, and the accesses it takes. */
export interface Need {
  principal: PrincipalKey;
  /** e.g. `onUpload: ObjectStore.createIfAbsent`, `workflow train: googleapis.batch.v1…create`. */
  operation: string;
  access: Access;
}

type Target = 'object' | 'bucketList' | 'topic' | 'project' | 'jobAccount' | 'workflow';

/**
 * What each adapter operation needs, keyed by port and method (the ports of
 * `shared/clients/ports.ts`, `BatchJobs` and `FlowExecutions`); a unit test fails when a port
 * method has no entry here. Permissions are those of the API method the adapter calls.
 */
export const ADAPTER_OPERATIONS = {
  ObjectStore: {
    // objects.insert with ifGenerationMatch=0 (create only, never an overwrite).
    createIfAbsent: [{ permission: 'storage.objects.create', on: 'object' }],
    // objects.get alt=media.
    readText: [{ permission: 'storage.objects.get', on: 'object' }],
    // objects.list with a prefix.
    list: [{ permission: 'storage.objects.list', on: 'bucketList' }],
  },
  Publisher: {
    publish: [{ permission: 'pubsub.topics.publish', on: 'topic' }],
  },
  BatchJobs: {
    // CreateJob on projects/P/locations/R; the job runs as the product's account, which the caller must act as.
    createJob: [
      { permission: 'batch.jobs.create', on: 'project' },
      { permission: 'iam.serviceAccounts.actAs', on: 'jobAccount' },
    ],
    getJob: [{ permission: 'batch.jobs.get', on: 'project' }],
  },
  FlowExecutions: {
    start: [{ permission: 'workflows.executions.create', on: 'workflow' }],
    findByLabel: [{ permission: 'workflows.executions.list', on: 'workflow' }],
  },
} as const satisfies Record<string, Record<string, ReadonlyArray<{ permission: string; on: Target }>>>;

export type AdapterName = keyof typeof ADAPTER_OPERATIONS;

interface TargetValues {
  bucket?: string;
  object?: string;
  prefix?: string;
  topic?: string;
  jobAccount?: string;
  workflow?: string;
}

function resolveTarget(
  on: Target,
  values: TargetValues,
  what: string,
): Pick<Access, 'resource' | 'listPrefix'> {
  // A plain Error on purpose: a caller in this file forgot a value, a bug (the CLI shows its stack).
  const missing = (): never => {
    throw new Error(`${what}: no ${on} given`);
  };
  switch (on) {
    case 'project':
      return { resource: { type: 'project' } };
    case 'object':
      return {
        resource: { type: 'object', bucket: values.bucket ?? missing(), name: values.object ?? missing() },
      };
    case 'bucketList':
      return {
        resource: { type: 'bucket', bucket: values.bucket ?? missing() },
        listPrefix: values.prefix ?? missing(),
      };
    case 'topic':
      return { resource: { type: 'topic', topic: values.topic ?? missing() } };
    case 'jobAccount':
      return { resource: { type: 'serviceAccount', email: values.jobAccount ?? missing() } };
    case 'workflow':
      return { resource: { type: 'workflow', workflow: values.workflow ?? missing() } };
  }
}

/** The needs of calling one adapter operation on concrete resources. */
export function adapterNeeds<A extends AdapterName>(
  principal: PrincipalKey,
  caller: string,
  adapter: A,
  operation: keyof (typeof ADAPTER_OPERATIONS)[A],
  values: TargetValues,
): Need[] {
  const specs = ADAPTER_OPERATIONS[adapter][operation] as ReadonlyArray<{ permission: string; on: Target }>;
  const name = `${caller}: ${adapter}.${String(operation)}`;
  return specs.map((spec) => ({
    principal,
    operation: name,
    access: { permission: spec.permission, ...resolveTarget(spec.on, values, name) },
  }));
}

/** What each workflow connector call needs of the workflows' account. */
function connectorNeeds(
  connector: WorkflowConnector,
  context: { completionTopic: string; jobAccount: string; runJob: string },
): Access[] {
  switch (connector) {
    case 'googleapis.batch.v1.projects.locations.jobs.create':
      return [
        { permission: 'batch.jobs.create', resource: { type: 'project' } },
        {
          permission: 'iam.serviceAccounts.actAs',
          resource: { type: 'serviceAccount', email: context.jobAccount },
        },
      ];
    case 'googleapis.batch.v1.projects.locations.jobs.get':
      return [{ permission: 'batch.jobs.get', resource: { type: 'project' } }];
    case 'googleapis.run.v2.projects.locations.jobs.run':
      // The flows pass container overrides; the connector then polls the run's long-running operation.
      return [
        { permission: 'run.jobs.run', resource: { type: 'runJob', job: context.runJob } },
        { permission: 'run.jobs.runWithOverrides', resource: { type: 'runJob', job: context.runJob } },
        { permission: 'run.operations.get', resource: { type: 'project' } },
      ];
    case 'googleapis.pubsub.v1.projects.topics.publish':
      return [
        { permission: 'pubsub.topics.publish', resource: { type: 'topic', topic: context.completionTopic } },
      ];
  }
}

/**
 * Everything every principal of a config's deployment does, as concrete accesses: the
 * functions' adapter operations, the workflows' connector calls, the Batch and Cloud Run jobs'
 * tasks, Scheduler, Eventarc, the Cloud Storage service agent and every client.
 */
export function principalNeeds(config: Config): Need[] {
  const { bucket, completionTopic } = config;
  const needs: Need[] = [];
  const add = (principal: PrincipalKey, operation: string, access: Access) =>
    needs.push({ principal, operation, access });
  const object = (name: string) => ({ type: 'object' as const, bucket, name });

  // onSchedule: starts each flow's workflow once per tick, claims under _batchwire/.
  const workflowIds = new Set(configuredFlows(config).map(({ settings }) => flowWorkflowId(settings.target)));
  for (const workflow of workflowIds) {
    needs.push(...adapterNeeds('functions', 'onSchedule', 'FlowExecutions', 'start', { workflow }));
    needs.push(...adapterNeeds('functions', 'onSchedule', 'FlowExecutions', 'findByLabel', { workflow }));
  }
  const scheduleClaim = `${BOOKKEEPING_PREFIX}claims/schedule/key.json`;
  needs.push(
    ...adapterNeeds('functions', 'onSchedule', 'ObjectStore', 'createIfAbsent', {
      bucket,
      object: scheduleClaim,
    }),
  );
  needs.push(
    ...adapterNeeds('functions', 'onSchedule', 'ObjectStore', 'readText', { bucket, object: scheduleClaim }),
  );

  for (const [product, settings] of Object.entries(config.products)) {
    const jobAccount = productServiceAccount(config, product, settings);
    const jobKey: PrincipalKey = `job:${product}`;
    needs.push(...adapterNeeds('functions', 'onUpload', 'BatchJobs', 'createJob', { jobAccount }));
    needs.push(...adapterNeeds('functions', 'onComplete', 'BatchJobs', 'getJob', {}));

    // The product's jobs (Batch inference and flow tasks, Cloud Run flow jobs) run as its account.
    add(jobKey, 'Batch job: report task state', {
      permission: 'batch.states.report',
      resource: { type: 'project' },
    });
    add(jobKey, 'Batch job: logs to Cloud Logging', {
      permission: 'logging.logEntries.create',
      resource: { type: 'project' },
    });
    add(jobKey, 'Batch job: notification to the completion topic', {
      permission: 'pubsub.topics.publish',
      resource: { type: 'topic', topic: completionTopic },
    });
    const images = [settings.inference.image];
    for (const [flow, flowSettings] of Object.entries(settings.flows)) {
      const workflow = flowWorkflowId(flowSettings.target);
      const calls = WORKFLOW_CALLS[workflow] ?? [];
      const runJob = flowJobId(product, flow, flowSettings.target);
      if (calls.length > 0) images.push(flowImage(settings.inference.image, flow, flowSettings.params));
      for (const connector of calls) {
        for (const access of connectorNeeds(connector, { completionTopic, jobAccount, runJob })) {
          add('workflows', `workflow ${workflow} (${product}/${flow}): ${connector}`, access);
        }
      }
    }
    for (const image of new Set(images)) {
      const repo = artifactRepository(image);
      if (!repo || repo.project !== config.project) continue;
      add(jobKey, `Batch job: pull ${image}`, {
        permission: 'artifactregistry.repositories.downloadArtifacts',
        resource: { type: 'repository', location: repo.location, repository: repo.repository },
      });
    }

    for (const client of settings.clients) {
      const prefix = `${product}/${client}/`;
      const topic = outputTopic(product, client);
      const rejection = `${BOOKKEEPING_PREFIX}rejections/${prefix}key.json`;
      const resultClaim = `${BOOKKEEPING_PREFIX}claims/results/id.json`;
      needs.push(
        ...adapterNeeds('functions', 'onUpload', 'ObjectStore', 'createIfAbsent', {
          bucket,
          object: rejection,
        }),
        ...adapterNeeds('functions', 'onUpload', 'ObjectStore', 'readText', { bucket, object: rejection }),
        ...adapterNeeds('functions', 'onUpload', 'Publisher', 'publish', { topic }),
        ...adapterNeeds('functions', 'onComplete', 'ObjectStore', 'list', {
          bucket,
          prefix: `${prefix}outputs/job/`,
        }),
        ...adapterNeeds('functions', 'onComplete', 'ObjectStore', 'createIfAbsent', {
          bucket,
          object: resultClaim,
        }),
        ...adapterNeeds('functions', 'onComplete', 'ObjectStore', 'readText', {
          bucket,
          object: resultClaim,
        }),
        // The list of a job's outputs, written once next to them, where the client reads it.
        ...adapterNeeds('functions', 'onComplete', 'ObjectStore', 'createIfAbsent', {
          bucket,
          object: `${prefix}outputs/job/${OUTPUTS_MANIFEST_FILE}`,
        }),
        ...adapterNeeds('functions', 'onComplete', 'ObjectStore', 'readText', {
          bucket,
          object: `${prefix}outputs/job/${OUTPUTS_MANIFEST_FILE}`,
        }),
        ...adapterNeeds('functions', 'onComplete', 'Publisher', 'publish', { topic }),
      );

      add(jobKey, 'task: read an input', {
        permission: 'storage.objects.get',
        resource: object(`${prefix}inputs/in.jsonl`),
      });
      add(jobKey, 'task: write outputs', {
        permission: 'storage.objects.create',
        resource: object(`${prefix}outputs/job/part-0.jsonl`),
      });
      // A retried task rewrites its manifest and a flow rewrites its "latest" pointer: an overwrite needs delete.
      add(jobKey, 'task: overwrite an output', {
        permission: 'storage.objects.delete',
        resource: object(`${prefix}flows/train/latest.json`),
      });
      add(jobKey, 'task: list a client’s data', {
        permission: 'storage.objects.list',
        resource: { type: 'bucket', bucket },
        listPrefix: prefix,
      });

      const key: PrincipalKey = `client:${product}/${client}`;
      add(key, 'client: upload an input', {
        permission: 'storage.objects.create',
        resource: object(`${prefix}inputs/in.jsonl`),
      });
      add(key, 'client: download a result', {
        permission: 'storage.objects.get',
        resource: object(`${prefix}outputs/job/part-0.jsonl`),
      });
      add(key, 'client: list its objects', {
        permission: 'storage.objects.list',
        resource: { type: 'bucket', bucket },
        listPrefix: prefix,
      });
      add(key, 'client: pull its results', {
        permission: 'pubsub.subscriptions.consume',
        resource: { type: 'subscription', subscription: outputSubscription(product, client) },
      });
    }
  }
  add('scheduler', 'Cloud Scheduler: OIDC call to onSchedule', {
    permission: 'run.routes.invoke',
    resource: { type: 'runService', function: 'onSchedule' },
  });
  add('eventarc', 'Eventarc: receive events', {
    permission: 'eventarc.events.receiveEvent',
    resource: { type: 'project' },
  });
  add('eventarc', 'Eventarc: deliver to onUpload', {
    permission: 'run.routes.invoke',
    resource: { type: 'runService', function: 'onUpload' },
  });
  add('eventarc', 'Eventarc: deliver to onComplete', {
    permission: 'run.routes.invoke',
    resource: { type: 'runService', function: 'onComplete' },
  });
  // A Cloud Storage trigger rides on a Pub/Sub topic that Eventarc creates in the project;
  // the Cloud Storage service agent publishes the bucket's notifications to it.
  add('agent:storage', 'Cloud Storage: notifications for the onUpload trigger', {
    permission: 'pubsub.topics.publish',
    resource: { type: 'topic', topic: 'eventarc-managed-transport-topic' },
  });
  return needs;
}

/** Whether a binding's resource contains the accessed one (a project contains everything in it). */
function covers(resource: IamResource, target: AccessResource): boolean {
  if (resource.type === 'project') return true;
  if (resource.type === 'bucket') {
    return (target.type === 'bucket' || target.type === 'object') && target.bucket === resource.bucket;
  }
  return JSON.stringify(resource) === JSON.stringify(target);
}

/** Whether a binding grants an access: same principal, the role holds the permission, the resource and condition match. */
export function grants(binding: PlannedBinding, need: Need): boolean {
  if (binding.principal !== need.principal) return false;
  if (!roleGrants(binding.role, need.access.permission)) return false;
  if (!covers(binding.resource, need.access.resource)) return false;
  const condition = binding.condition;
  if (!condition) return true;
  const target = need.access.resource;
  if (target.type === 'object') return target.name.startsWith(condition.objectPrefix);
  if (target.type === 'bucket' && need.access.listPrefix !== undefined) {
    return condition.listPrefix && need.access.listPrefix.startsWith(condition.objectPrefix);
  }
  return false;
}

export interface IamCheck {
  /** Needs that no binding grants. */
  unmet: Need[];
  /** Bindings that grant nothing their principal needs. */
  unneeded: PlannedBinding[];
}

/** Checks a plan's bindings against the needs: proven when both lists are empty. */
export function checkIam(bindings: PlannedBinding[], needs: Need[]): IamCheck {
  return {
    unmet: needs.filter((need) => !bindings.some((binding) => grants(binding, need))),
    unneeded: bindings.filter((binding) => !needs.some((need) => grants(binding, need))),
  };
}

/** The plan's IAM check for its config. */
export function checkPlanIam(plan: Plan, config: Config): IamCheck {
  return checkIam(plan.bindings, principalNeeds(config));
}
