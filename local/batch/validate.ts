/**
 * What the local Batch checks in a request before it acts, as Batch checks it: resource names
 * (parent, job, task group, task), CreateJob's id, request id and job. A failed check throws
 * INVALID_ARGUMENT naming the field at fault.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { grpcError } from '../grpc/protos.js';
import type { JobMessage, TaskGroupMessage } from './types.js';

const PARENT = /^projects\/([^/]+)\/locations\/([^/]+)$/;
const JOB_NAME = /^(projects\/[^/]+\/locations\/[^/]+)\/jobs\/([^/]+)$/;
const TASK_GROUP_NAME = /^(projects\/[^/]+\/locations\/[^/]+\/jobs\/[^/]+)\/taskGroups\/([^/]+)$/;
const TASK_NAME = /^(projects\/[^/]+\/locations\/[^/]+\/jobs\/[^/]+)\/taskGroups\/([^/]+)\/tasks\/(\d+)$/;
const JOB_ID = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
const TOPIC = /^projects\/[^/]+\/topics\/[^/]+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function invalid(message: string): grpc.ServiceError {
  return grpcError(grpc.status.INVALID_ARGUMENT, message);
}

/** An int64/int32 field as a whole number (0 for anything that is not one). */
export function int(value: string | number | undefined): number {
  const parsed = Number(value ?? 0);
  return Number.isFinite(parsed) ? Math.floor(parsed) : 0;
}

/** The project and location of a `projects/{project}/locations/{location}` parent. */
export function parseParent(parent: string): { project: string; location: string } {
  const match = PARENT.exec(parent ?? '');
  if (!match) throw invalid(`parent must be projects/{project}/locations/{location}, got "${parent}"`);
  return { project: match[1] as string, location: match[2] as string };
}

export function checkJobName(name: string): void {
  if (!JOB_NAME.test(name ?? '')) throw invalid(`name must be projects/*/locations/*/jobs/*, got "${name}"`);
}

/** The job a task name belongs to. */
export function jobOfTask(name: string): string {
  const match = TASK_NAME.exec(name ?? '');
  if (!match) throw invalid(`name must be projects/*/locations/*/jobs/*/taskGroups/*/tasks/*, got "${name}"`);
  return match[1] as string;
}

/** The job and group id of a task group name. */
export function parseTaskGroupName(parent: string): { job: string; group: string } {
  const match = TASK_GROUP_NAME.exec(parent ?? '');
  if (!match) throw invalid(`parent must be projects/*/locations/*/jobs/*/taskGroups/*, got "${parent}"`);
  return { job: match[1] as string, group: match[2] as string };
}

/** Checks a CreateJob request; resolves the job id (Batch makes one up when none is given). */
export function checkCreateJob(request: {
  parent: string;
  job_id: string;
  job: JobMessage | null;
  request_id: string;
}): { jobId: string; job: JobMessage } {
  parseParent(request.parent);
  const jobId = request.job_id || `job-${randomUUID()}`;
  if (!JOB_ID.test(jobId)) {
    throw invalid(
      `job_id "${jobId}" is invalid: at most 63 characters, lowercase letters, digits and '-', starting with a letter and not ending with '-'`,
    );
  }
  if (request.request_id && (!UUID.test(request.request_id) || /^[0-]+$/.test(request.request_id))) {
    throw invalid(`request_id must be a valid non-zero UUID, got "${request.request_id}"`);
  }
  if (!request.job) throw invalid('job is required');
  validateJob(request.job);
  return { jobId, job: request.job };
}

/** Checks what Batch checks of the job itself at CreateJob. */
function validateJob(job: JobMessage): void {
  const groups = job.task_groups ?? [];
  if (groups.length === 0) throw invalid('job.task_groups is required: a job needs one task group');
  if (groups.length > 1)
    throw invalid('Only one TaskGroup is supported now (job.task_groups has more than one)');
  const group = groups[0] as TaskGroupMessage;
  const spec = group.task_spec;
  if (!spec) throw invalid('job.task_groups[0].task_spec is required');
  const runnables = spec.runnables ?? [];
  if (runnables.length === 0)
    throw invalid('job.task_groups[0].task_spec.runnables must have at least one runnable');
  runnables.forEach((runnable, index) => {
    const field = `job.task_groups[0].task_spec.runnables[${index}]`;
    if (runnable.container) {
      if (!runnable.container.image_uri) throw invalid(`${field}.container.image_uri is required`);
    } else if (runnable.script) {
      if (!runnable.script.text && !runnable.script.path) throw invalid(`${field}.script needs text or path`);
    } else if (!runnable.barrier) {
      throw invalid(`${field} needs a container, script or barrier`);
    }
  });
  const retries = spec.max_retry_count ?? 0;
  if (retries < 0 || retries > 10)
    throw invalid('job.task_groups[0].task_spec.max_retry_count must be in [0, 10]');
  if (int(group.task_count) < 0) throw invalid('job.task_groups[0].task_count must not be negative');
  if (int(group.parallelism) < 0) throw invalid('job.task_groups[0].parallelism must not be negative');
  if (group.scheduling_policy === 'IN_ORDER' && int(group.parallelism) > 1) {
    throw invalid('job.task_groups[0].parallelism must be 1 when scheduling_policy is IN_ORDER');
  }
  for (const notification of job.notifications ?? []) {
    if (!notification.pubsub_topic || !TOPIC.test(notification.pubsub_topic)) {
      throw invalid(
        `notification pubsub_topic must be projects/{project}/topics/{topic}, got "${notification.pubsub_topic ?? ''}"`,
      );
    }
  }
}
