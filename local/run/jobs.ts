/**
 * The jobs of the local Cloud Run service (`google.cloud.run.v2.Jobs` minus RunJob): create,
 * read, update, list and delete, with Run's checks and output fields. A job's image must have
 * a local stand-in (config `local.images`) or a command, as a deploy fails on an image it
 * cannot pull.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { ActivityListener } from '../activity.js';
import { systemClock } from '../clock.js';
import { paginate } from '../grpc/paging.js';
import { grpcError } from '../grpc/protos.js';
import { timestamp } from '../grpc/timestamp.js';
import { condition, type ExecutionTemplate, type JobResource } from './resources.js';

export const LOCATION = /^projects\/[^/]+\/locations\/[^/]+$/;
export const JOB_NAME = /^projects\/[^/]+\/locations\/[^/]+\/jobs\/[^/]+$/;
const JOB_ID = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;

function etag(): string {
  return `"${randomBytes(8).toString('hex')}"`;
}

export class RunJobs {
  private readonly jobs = new Map<string, JobResource>();

  constructor(
    private readonly images: Record<string, string[]>,
    private readonly emit: ActivityListener,
  ) {}

  create(
    parent: string,
    jobId: string,
    job: { template: ExecutionTemplate } & Record<string, unknown>,
  ): JobResource {
    if (!LOCATION.test(parent)) {
      throw grpcError(grpc.status.INVALID_ARGUMENT, `parent must be projects/P/locations/L, got "${parent}"`);
    }
    if (!JOB_ID.test(jobId)) {
      throw grpcError(grpc.status.INVALID_ARGUMENT, `invalid job id "${jobId}"`);
    }
    const name = `${parent}/jobs/${jobId}`;
    if (this.jobs.has(name))
      throw grpcError(grpc.status.ALREADY_EXISTS, `Resource '${jobId}' already exists.`);
    const containers = job.template?.template?.containers ?? [];
    const first = containers[0];
    if (!first?.image) {
      throw grpcError(grpc.status.INVALID_ARGUMENT, 'job.template.template.containers[0].image is required');
    }
    if (!this.images[first.image] && !(first.command && first.command.length > 0)) {
      // A real deploy fails on an image it cannot pull; locally, on one nothing stands in for.
      throw grpcError(
        grpc.status.INVALID_ARGUMENT,
        `image "${first.image}" has no local command: add it under local.images in batchwire.yaml`,
      );
    }
    const now = timestamp(systemClock.now());
    const resource: JobResource = {
      ...job,
      name,
      uid: randomUUID(),
      generation: '1',
      observed_generation: '1',
      create_time: now,
      update_time: now,
      terminal_condition: condition('CONDITION_SUCCEEDED', 'Ready'),
      execution_count: 0,
      reconciling: false,
      etag: etag(),
    } as unknown as JobResource;
    this.jobs.set(name, resource);
    this.emit({ kind: 'run.job', message: `Cloud Run job ${jobId} created`, job: name });
    return resource;
  }

  get(name: string): JobResource {
    const job = this.jobs.get(name);
    if (!job) throw grpcError(grpc.status.NOT_FOUND, `Resource '${name}' was not found`);
    return job;
  }

  /**
   * Run's UpdateJob: the job named by `job.name` takes the given template, labels and
   * settings; output fields stay the service's and `generation` counts the change. With
   * `allow_missing` an unknown job is created, as Run does.
   */
  update(request: { job: JobResource | null; validate_only: boolean; allow_missing: boolean }): JobResource {
    const job = request.job;
    if (!job?.name || !JOB_NAME.test(job.name)) {
      throw grpcError(
        grpc.status.INVALID_ARGUMENT,
        `job.name must be projects/P/locations/L/jobs/J, got "${job?.name ?? ''}"`,
      );
    }
    const current = this.jobs.get(job.name);
    if (!current) {
      if (!request.allow_missing)
        throw grpcError(grpc.status.NOT_FOUND, `Resource '${job.name}' was not found`);
      const [parent, jobId] = job.name.split('/jobs/') as [string, string];
      return request.validate_only ? job : this.create(parent, jobId, job);
    }
    if (!job.template?.template?.containers?.[0]?.image) {
      throw grpcError(grpc.status.INVALID_ARGUMENT, 'job.template.template.containers[0].image is required');
    }
    const generation = String(Number(current.generation ?? 1) + 1);
    const changes = {
      labels: job.labels ?? current.labels,
      annotations: job.annotations ?? current.annotations,
      launch_stage: job.launch_stage ?? current.launch_stage,
      template: job.template,
      generation,
      observed_generation: generation,
      update_time: timestamp(systemClock.now()),
      etag: etag(),
    };
    // In place: a running execution updates this same record when it finishes.
    return request.validate_only
      ? ({ ...current, ...changes } as JobResource)
      : Object.assign(current, changes);
  }

  list(request: { parent: string; page_size: number; page_token: string }) {
    if (!LOCATION.test(request.parent ?? '')) {
      throw grpcError(
        grpc.status.INVALID_ARGUMENT,
        `parent must be projects/P/locations/L, got "${request.parent}"`,
      );
    }
    const all = [...this.jobs.values()].filter((job) => job.name.startsWith(`${request.parent}/jobs/`));
    const { page, next_page_token } = paginate(all, request, { scope: request.parent });
    return { jobs: page, next_page_token };
  }

  /** Removes the job; resolves with it as it was. */
  delete(name: string): JobResource {
    const job = this.get(name);
    this.jobs.delete(name);
    return job;
  }
}
