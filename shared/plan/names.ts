import { createHash } from 'node:crypto';
import type { Config, FlowConfig, FlowTarget, ProductConfig } from '../config/schema.js';

/**
 * The one home of every resource name Batchwire uses in a Google Cloud project. The functions,
 * the workflows' arguments, the local platform, the CLI and the deployment plan take names from
 * here, never rebuild them: a name built twice drifts, and then an onboarded client's topic is
 * not the one onComplete publishes to.
 */

/**
 * The topic a client's results are published to: one per (product, client), so each client
 * subscribes to its own results only and IAM can be granted per topic.
 *
 * @example
 * outputTopic('mlops-template', 'acme') // 'batch-mlops-template-acme-outputs'
 */
export function outputTopic(product: string, client: string): string {
  return `batch-${product}-${client}-outputs`;
}

/** The pull subscription a client reads its results from (the only one it may consume). */
export function outputSubscription(product: string, client: string): string {
  return `${outputTopic(product, client)}-pull`;
}

/** The three functions, by their deployed name (which is also their entry point). */
export const FUNCTION_NAMES = ['onUpload', 'onSchedule', 'onComplete'] as const;
export type FunctionName = (typeof FUNCTION_NAMES)[number];

/**
 * The Cloud Run service behind a gen2 function: Cloud Functions names it after the function,
 * lowercased (Run service names allow no capitals); `run.invoker` is granted on it.
 */
export function functionServiceName(name: FunctionName): string {
  return name.toLowerCase();
}

/** The generic workflow that runs a Cloud Run job target and reports its outcome. */
export const RUN_JOB_WORKFLOW = 'run-job';

/** The workflow a flow target runs: its own, or the generic run-job workflow for a Cloud Run job. */
export function flowWorkflowId(target: FlowTarget): string {
  return 'workflow' in target ? target.workflow : RUN_JOB_WORKFLOW;
}

/** Where a workflow's definition lives in the repository. */
export function workflowSourceFile(workflow: string): string {
  return `workflows/${workflow}.workflows.yaml`;
}

/** The Cloud Run job id a flow runs: its runJob target, else `{product}-{flow}` (both fit Run's job id rules). */
export function flowJobId(product: string, flow: string, target: FlowTarget): string {
  return 'runJob' in target ? target.runJob : `${product}-${flow}`.slice(0, 63).replace(/-+$/, '');
}

/**
 * The image of a flow's task: `params.image` when given, else an image next to the product's
 * inference image, named after the flow (`…/batchwire/inference:latest` → `…/batchwire/train:latest`).
 */
export function flowImage(
  inferenceImage: string,
  flow: string,
  params: Record<string, unknown> = {},
): string {
  if (typeof params.image === 'string' && params.image) return params.image;
  const slash = inferenceImage.lastIndexOf('/');
  return `${inferenceImage.slice(0, slash + 1)}${flow}:latest`;
}

/** The Cloud Scheduler job of a flow (per client for a client-scoped flow): `bw-{product}-{flow}[-{client}]`. */
export function schedulerJobId(product: string, flow: string, client: string | null): string {
  return ['bw', product, flow, ...(client ? [client] : [])].join('-');
}

/** The JSON body a Scheduler job POSTs to onSchedule. */
export function schedulerJobBody(product: string, flow: string, client: string | null): string {
  return JSON.stringify(client ? { flow, product, client } : { flow, product });
}

/** The platform's own service accounts (account ids, 6-30 characters). */
export const PLATFORM_ACCOUNT_IDS = {
  /** The three functions run as it. */
  functions: 'batchwire-functions',
  /** Every flow workflow runs as it. */
  workflows: 'batchwire-workflows',
  /** Cloud Scheduler signs its OIDC tokens for onSchedule as it. */
  scheduler: 'batchwire-scheduler',
  /** Eventarc delivers events to onUpload and onComplete as it. */
  eventarc: 'batchwire-eventarc',
} as const;
export type PlatformAccount = keyof typeof PLATFORM_ACCOUNT_IDS;

/** A service account's email in a project. */
export function serviceAccountEmail(accountId: string, project: string): string {
  return `${accountId}@${project}.iam.gserviceaccount.com`;
}

/**
 * A service account id from readable parts: joined with `-`, and when longer than IAM's 30
 * characters cut and suffixed with a hash of the whole, so that two long names never collide.
 */
export function accountId(parts: string[]): string {
  const joined = parts.join('-');
  if (joined.length <= 30) return joined;
  const hash = createHash('sha256').update(joined).digest('hex').slice(0, 8);
  return `${joined.slice(0, 21).replace(/-+$/, '')}-${hash}`;
}

/** The account a client uploads and subscribes as: one per (product, client). */
export function clientAccountId(product: string, client: string): string {
  return accountId(['bw', product, client]);
}

/**
 * The account a product's Batch jobs, Cloud Run jobs and flows' tasks run as: the configured
 * `products.<id>.serviceAccount`, else `bw-{product}-jobs` in the project.
 */
export function productServiceAccount(
  config: Pick<Config, 'project'>,
  product: string,
  settings: ProductConfig,
): string {
  return settings.serviceAccount ?? serviceAccountEmail(accountId(['bw', product, 'jobs']), config.project);
}

/** The Artifact Registry repository a Docker image URI names, when it is one (`LOC-docker.pkg.dev/P/REPO/…`). */
export function artifactRepository(
  image: string,
): { location: string; project: string; repository: string } | undefined {
  const match = /^([a-z0-9-]+)-docker\.pkg\.dev\/([a-z][a-z0-9-]{4,28}[a-z0-9])\/([a-z0-9][a-z0-9-]*)\//.exec(
    image,
  );
  if (!match) return undefined;
  const [, location, project, repository] = match as unknown as [string, string, string, string];
  return { location, project, repository };
}

/** The reference task images that `cloudbuild.yaml` builds from `reference-tasks/Dockerfile`. */
export const REFERENCE_TASKS = ['inference', 'train', 'metadata'] as const;

/** Every flow of every product, with the names derived from it. */
export function configuredFlows(config: Config): Array<{
  product: string;
  flow: string;
  settings: FlowConfig;
  productSettings: ProductConfig;
}> {
  return Object.entries(config.products).flatMap(([product, productSettings]) =>
    Object.entries(productSettings.flows).map(([flow, settings]) => ({
      product,
      flow,
      settings,
      productSettings,
    })),
  );
}
