/**
 * What a Workflows `call` may name besides subworkflows and the standard library: Google's
 * connectors and the other built-in call targets. From Google's connectors reference
 * (https://cloud.google.com/workflows/docs/reference/googleapis) and the samples in
 * GoogleCloudPlatform/workflows-samples (src/connectors/*). A workflow that calls any of them
 * validates; whether it can run locally depends on the stand-ins (see `createLocalConnectors`).
 */

/**
 * The APIs Google publishes connectors for, as `service.version`: a connector is
 * `googleapis.<service>.<version>.<resource path>.<method>`. Methods are not listed one by one
 * (the reference has thousands); a call is accepted when its API is here and the rest is a
 * resource path and a method.
 */
export const CONNECTOR_APIS: ReadonlySet<string> = new Set([
  'accesscontextmanager.v1',
  'aiplatform.v1',
  'artifactregistry.v1',
  'batch.v1',
  'bigquery.v2',
  'bigquerydatatransfer.v1',
  'bigtableadmin.v2',
  'billingbudgets.v1',
  'cloudbilling.v1',
  'cloudbuild.v1',
  'cloudbuild.v2',
  'clouddeploy.v1',
  'cloudfunctions.v1',
  'cloudfunctions.v2',
  'cloudidentity.v1',
  'cloudkms.v1',
  'cloudresourcemanager.v1',
  'cloudresourcemanager.v2',
  'cloudresourcemanager.v3',
  'cloudscheduler.v1',
  'cloudtasks.v2',
  'compute.beta',
  'compute.v1',
  'container.v1',
  'datafusion.v1',
  'dataflow.v1b3',
  'dataform.v1beta1',
  'datamigration.v1',
  'dataproc.v1',
  'datastore.v1',
  'documentai.v1',
  'firestore.v1',
  'forms.v1',
  'iam.v1',
  'integrations.v1',
  'language.v1',
  'logging.v2',
  'memcache.v1',
  'ml.v1',
  'pubsub.v1',
  'redis.v1',
  'run.v1',
  'run.v2',
  'secretmanager.v1',
  'serviceusage.v1',
  'sheets.v4',
  'spanner.v1',
  'speech.v1',
  'sqladmin.v1',
  'sqladmin.v1beta4',
  'storage.v1',
  'storagetransfer.v1',
  'transcoder.v1',
  'translate.v2',
  'translate.v3',
  'translate.v3beta1',
  'vision.v1',
  'workflowexecutions.v1',
  'workflows.v1',
]);

/** Call targets outside `googleapis.*` that are not standard library functions. */
export const OTHER_CALL_TARGETS: ReadonlySet<string> = new Set([
  // The Kubernetes API connector: https://cloud.google.com/workflows/docs/reference/googleapis/gke/Overview
  'gke.request',
  'gke.create_job',
  'gke.await_job',
  'gke.delete_job',
]);

/**
 * Connectors that may also be called inside an expression, with positional arguments in this
 * order (Google documents `accessString` this way; any connector also takes one map of args).
 */
export const EXPRESSION_CONNECTOR_PARAMS: Readonly<Record<string, readonly string[]>> = {
  'googleapis.secretmanager.v1.projects.secrets.versions.accessString': [
    'secret_id',
    'version',
    'project_id',
  ],
};

const SEGMENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** True for a name Google's Workflows accepts as a connector or built-in call target. */
export function isKnownCallTarget(name: string): boolean {
  if (OTHER_CALL_TARGETS.has(name)) return true;
  const parts = name.split('.');
  if (parts[0] !== 'googleapis' || parts.length < 5) return false;
  if (!CONNECTOR_APIS.has(`${parts[1]}.${parts[2]}`)) return false;
  return parts.slice(3).every((part) => SEGMENT.test(part));
}
