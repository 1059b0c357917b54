/**
 * The permissions of every predefined role the plan grants, as Google's IAM reference lists
 * them ("IAM roles and permissions index", https://cloud.google.com/iam/docs/roles-permissions,
 * one page per service: …/roles-permissions/storage, /pubsub, /batch, /logging,
 * /artifactregistry, /iam, /workflows, /run, /eventarc). Only the permissions of each role
 * that Batchwire's operations can use are listed; a role holds more (e.g. `resourcemanager.projects.get`),
 * none of which widens what the plan proves. The IAM test checks grants against this table,
 * so a role that is not listed here cannot be granted.
 */
export const ROLE_PERMISSIONS: Record<string, readonly string[]> = {
  // https://cloud.google.com/iam/docs/roles-permissions/storage
  'roles/storage.objectCreator': [
    'storage.objects.create',
    'storage.folders.create',
    'storage.managedFolders.create',
    'storage.multipartUploads.create',
    'storage.multipartUploads.abort',
    'storage.multipartUploads.listParts',
  ],
  'roles/storage.objectViewer': [
    'storage.objects.get',
    'storage.objects.list',
    'storage.folders.get',
    'storage.folders.list',
    'storage.managedFolders.get',
    'storage.managedFolders.list',
  ],
  'roles/storage.objectUser': [
    'storage.objects.create',
    'storage.objects.delete',
    'storage.objects.get',
    'storage.objects.list',
    'storage.objects.restore',
    'storage.objects.update',
    'storage.multipartUploads.create',
    'storage.multipartUploads.abort',
    'storage.multipartUploads.list',
    'storage.multipartUploads.listParts',
  ],
  // https://cloud.google.com/iam/docs/roles-permissions/pubsub
  'roles/pubsub.publisher': ['pubsub.topics.publish'],
  'roles/pubsub.subscriber': [
    'pubsub.snapshots.seek',
    'pubsub.subscriptions.consume',
    'pubsub.topics.attachSubscription',
  ],
  // https://cloud.google.com/iam/docs/roles-permissions/batch
  'roles/batch.jobsEditor': [
    'batch.jobs.create',
    'batch.jobs.delete',
    'batch.jobs.get',
    'batch.jobs.list',
    'batch.locations.get',
    'batch.locations.list',
    'batch.tasks.get',
    'batch.tasks.list',
  ],
  'roles/batch.agentReporter': ['batch.states.report'],
  // https://cloud.google.com/iam/docs/roles-permissions/logging
  'roles/logging.logWriter': ['logging.logEntries.create', 'logging.logEntries.route'],
  // https://cloud.google.com/iam/docs/roles-permissions/artifactregistry
  'roles/artifactregistry.reader': [
    'artifactregistry.dockerimages.get',
    'artifactregistry.dockerimages.list',
    'artifactregistry.repositories.downloadArtifacts',
    'artifactregistry.repositories.get',
    'artifactregistry.repositories.list',
  ],
  // https://cloud.google.com/iam/docs/roles-permissions/iam
  'roles/iam.serviceAccountUser': [
    'iam.serviceAccounts.actAs',
    'iam.serviceAccounts.get',
    'iam.serviceAccounts.list',
  ],
  // https://cloud.google.com/iam/docs/roles-permissions/workflows
  'roles/workflows.invoker': [
    'workflows.callbacks.send',
    'workflows.executions.cancel',
    'workflows.executions.create',
    'workflows.executions.get',
    'workflows.executions.list',
  ],
  // https://cloud.google.com/iam/docs/roles-permissions/run (and https://cloud.google.com/run/docs/reference/iam/permissions:
  // jobs.run with overrides needs run.jobs.runWithOverrides). Which Run permission the Workflows
  // connector's wait on the run's operation takes is not documented there; run.operations.get
  // (Cloud Run Viewer) is this table's reading, to confirm against a real project.
  'roles/run.invoker': ['run.jobs.run', 'run.routes.invoke'],
  'roles/run.jobsExecutorWithOverrides': [
    'run.executions.cancel',
    'run.jobs.run',
    'run.jobs.runWithOverrides',
  ],
  'roles/run.viewer': ['run.executions.get', 'run.jobs.get', 'run.operations.get', 'run.operations.list'],
  // https://cloud.google.com/iam/docs/roles-permissions/eventarc
  'roles/eventarc.eventReceiver': ['eventarc.events.receiveAuditLogWritten', 'eventarc.events.receiveEvent'],
};

/** Whether `role` (a predefined role in the table) holds `permission`. */
export function roleGrants(role: string, permission: string): boolean {
  return ROLE_PERMISSIONS[role]?.includes(permission) ?? false;
}
