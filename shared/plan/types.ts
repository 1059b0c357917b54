import type { FunctionName, PlatformAccount } from './names.js';

/**
 * The deployment plan: everything Batchwire needs in a Google Cloud project, derived from one
 * validated config by {@link buildPlan}. Renderers (summary, JSON, gcloud, Terraform) and the
 * local platform read it; nothing here talks to Google.
 */
export interface Plan {
  project: string;
  region: string;
  /** The config file the deployed functions read (`BATCHWIRE_CONFIG`), relative to the source root. */
  configFile: string;
  services: string[];
  accounts: PlannedAccount[];
  bucket: PlannedBucket;
  topics: PlannedTopic[];
  subscriptions: PlannedSubscription[];
  bindings: PlannedBinding[];
  repositories: PlannedRepository[];
  imageBuilds: PlannedImageBuild[];
  functions: PlannedFunction[];
  workflows: PlannedWorkflow[];
  runJobs: PlannedRunJob[];
  schedulerJobs: PlannedSchedulerJob[];
}

/**
 * Who an entry belongs to: the platform (nothing set), a product, or one client of a product.
 * `batchwire plan --client P/C` keeps exactly the entries of scope `{product: P, client: C}`.
 */
export interface Scope {
  product?: string;
  client?: string;
}

/** A principal's key: a platform account, `job:{product}`, `client:{product}/{client}` or `agent:storage`. */
export type PrincipalKey = PlatformAccount | `job:${string}` | `client:${string}/${string}` | 'agent:storage';

export interface PlannedAccount {
  key: PrincipalKey;
  /**
   * The account's email; null for a Google-managed service agent whose email holds the
   * project number (the renderers look it up when they apply).
   */
  email: string | null;
  /** The account id in the plan's project; null for an account of another project, or a service agent. */
  accountId: string | null;
  /** Whether applying this plan creates the account (a client plan also lists the platform accounts it grants to, uncreated). */
  create: boolean;
  displayName: string;
  /** What this principal does, for the summary and the docs. */
  purpose: string;
  scope: Scope;
}

export interface PlannedBucket {
  name: string;
  location: string;
}

export interface PlannedTopic {
  name: string;
  purpose: string;
  scope: Scope;
}

export interface PlannedSubscription {
  name: string;
  topic: string;
  ackDeadlineSeconds: number;
  /** How long an unacknowledged result is kept: Pub/Sub's maximum, so a client that is down for days loses nothing. */
  messageRetentionSeconds: number;
  scope: Scope;
}

/** A resource an IAM binding is set on (and that an access is checked against). */
export type IamResource =
  | { type: 'project' }
  | { type: 'bucket'; bucket: string }
  | { type: 'topic'; topic: string }
  | { type: 'subscription'; subscription: string }
  | { type: 'serviceAccount'; email: string }
  | { type: 'runService'; function: FunctionName }
  | { type: 'runJob'; job: string }
  | { type: 'repository'; location: string; repository: string };

/**
 * An IAM condition on object names (Cloud Storage): the grant holds for objects whose name
 * starts with `objectPrefix`, and, when `listPrefix` is set, for listing with a prefix that
 * starts with it (`storage.googleapis.com/objectListPrefix`). Rendered to CEL by
 * {@link conditionExpression}.
 */
export interface ObjectCondition {
  title: string;
  objectPrefix: string;
  listPrefix: boolean;
}

export interface PlannedBinding {
  principal: PrincipalKey;
  role: string;
  resource: IamResource;
  condition?: ObjectCondition;
  scope: Scope;
}

export interface PlannedRepository {
  /** Artifact Registry location, e.g. `europe` or `europe-west2`. */
  location: string;
  repository: string;
  /** The images the config runs from it. */
  images: string[];
}

/** One `gcloud builds submit --config cloudbuild.yaml` of the reference task images into a repository. */
export interface PlannedImageBuild {
  config: 'cloudbuild.yaml';
  /** `LOCATION-docker.pkg.dev/PROJECT/REPOSITORY`. */
  registry: string;
  tag: string;
  images: string[];
}

export type FunctionTrigger =
  | { kind: 'storage'; eventType: 'google.cloud.storage.object.v1.finalized'; bucket: string }
  | { kind: 'topic'; eventType: 'google.cloud.pubsub.topic.v1.messagePublished'; topic: string }
  | { kind: 'http' };

export interface PlannedFunction {
  name: FunctionName;
  entryPoint: FunctionName;
  runtime: 'nodejs22';
  generation: 2;
  serviceAccount: PrincipalKey;
  trigger: FunctionTrigger;
  /** The account Eventarc delivers as (event triggers only). */
  triggerServiceAccount: PrincipalKey | null;
  /** Retry on failure: the functions fail transient errors precisely so that the event is redelivered. */
  retry: boolean;
  /** Only authenticated callers (the HTTP function: Scheduler's OIDC token). */
  allowUnauthenticated: false;
  env: Record<string, string>;
  timeoutSeconds: number;
  memory: string;
}

export interface PlannedWorkflow {
  id: string;
  sourceFile: string;
  serviceAccount: PrincipalKey;
}

export interface PlannedRunJob {
  id: string;
  image: string;
  /** The product's job account (email). */
  serviceAccount: string;
  product: string;
  flow: string;
  scope: Scope;
}

/** Cloud Scheduler's retry config; `retryCount` 0 (its default) would lose a tick on one 503. */
export interface SchedulerRetry {
  retryCount: number;
  minBackoffSeconds: number;
  maxBackoffSeconds: number;
  maxDoublings: number;
}

export interface PlannedSchedulerJob {
  id: string;
  product: string;
  flow: string;
  client: string | null;
  /** Five-field cron; null for a flow without a schedule (fired by hand, so no Cloud Scheduler job is deployed). */
  schedule: string | null;
  timeZone: string;
  target: 'onSchedule';
  httpMethod: 'POST';
  headers: Record<string, string>;
  body: string;
  oidcServiceAccount: PrincipalKey;
  retry: SchedulerRetry;
  attemptDeadlineSeconds: number;
  scope: Scope;
}
