/**
 * The Google API connectors each deployed workflow calls (`call: googleapis.…` in
 * `workflows/<id>.workflows.yaml`). The plan grants the workflows' account what these need;
 * a unit test reads the YAML files and fails when this table and the files disagree, so a new
 * connector call cannot ship without its grant.
 */
export const WORKFLOW_CONNECTORS = {
  'googleapis.batch.v1.projects.locations.jobs.create': 'create the flow’s Batch job',
  'googleapis.batch.v1.projects.locations.jobs.get': 'poll the flow’s Batch job',
  'googleapis.run.v2.projects.locations.jobs.run':
    'run the flow’s Cloud Run job with overrides and wait for it',
  'googleapis.pubsub.v1.projects.topics.publish': 'publish the FLOW_COMPLETED message',
} as const;
export type WorkflowConnector = keyof typeof WORKFLOW_CONNECTORS;

/** Per workflow id: the connectors it calls. */
export const WORKFLOW_CALLS: Record<string, readonly WorkflowConnector[]> = {
  train: [
    'googleapis.batch.v1.projects.locations.jobs.create',
    'googleapis.batch.v1.projects.locations.jobs.get',
    'googleapis.pubsub.v1.projects.topics.publish',
  ],
  metadata: ['googleapis.run.v2.projects.locations.jobs.run', 'googleapis.pubsub.v1.projects.topics.publish'],
  'run-job': [
    'googleapis.run.v2.projects.locations.jobs.run',
    'googleapis.pubsub.v1.projects.topics.publish',
  ],
};

/** Whether a workflow creates Batch jobs (then its account acts as the product's job account). */
export function runsBatchJobs(workflow: string): boolean {
  return (WORKFLOW_CALLS[workflow] ?? []).includes('googleapis.batch.v1.projects.locations.jobs.create');
}

/** Whether a workflow runs a Cloud Run job (then the flow's Run job is part of the plan). */
export function runsRunJobs(workflow: string): boolean {
  return (WORKFLOW_CALLS[workflow] ?? []).includes('googleapis.run.v2.projects.locations.jobs.run');
}
