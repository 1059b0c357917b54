import type { BatchServiceClient, protos as batchProtos } from '@google-cloud/batch';
import type { v2 as runV2 } from '@google-cloud/run';
import type { Bucket } from '@google-cloud/storage';
import type { ExecutionsClient } from '@google-cloud/workflows';
import type { Config } from '#shared/config/schema.js';
import { JOB_ID_PATTERN } from '#shared/domain/job-id.js';
import { REJECTIONS_PREFIX } from '#shared/domain/object-path.js';
import type {
  ExecutionDetail,
  ExecutionRow,
  FlowRunAnswer,
  JobDetail,
  JobRow,
  JobsAnswer,
  ObjectRow,
  Rejection,
  RunExecutionRow,
  SchedulerJobRow,
  TaskAttempt,
  TaskRow,
} from './api-types.js';

type Job = batchProtos.google.cloud.batch.v1.IJob;
type Task = batchProtos.google.cloud.batch.v1.ITask;

/**
 * What the console reads, each through the service's own API with the real Google client (the
 * same calls `gcloud` or a client library makes): Batch jobs and tasks, Workflows executions,
 * Cloud Run executions, the bucket, and Cloud Scheduler's job list.
 */
export interface PlatformClients {
  batch: BatchServiceClient;
  executions: ExecutionsClient;
  runExecutions: runV2.ExecutionsClient;
  bucket: Bucket;
  /** Cloud Scheduler's REST API base URL (`/v1/projects/P/locations/L/jobs`). */
  schedulerUrl: string;
}

const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

function seconds(time: { seconds?: unknown; nanos?: unknown } | null | undefined): number | null {
  if (!time || time.seconds === undefined || time.seconds === null) return null;
  return Number(time.seconds) + Number(time.nanos ?? 0) / 1e9;
}

function iso(time: { seconds?: unknown; nanos?: unknown } | null | undefined): string {
  const s = seconds(time);
  return s === null ? '' : new Date(s * 1000).toISOString();
}

export function jobRow(job: Job): JobRow {
  const labels = job.labels ?? {};
  const group = Object.values(job.status?.taskGroups ?? {})[0];
  const counts: Record<string, number> = {};
  for (const [state, count] of Object.entries(group?.counts ?? {})) counts[state] = Number(count);
  const state = String(job.status?.state ?? 'STATE_UNSPECIFIED');
  const lastEvent = job.status?.statusEvents?.at(-1)?.description ?? '';
  return {
    id: job.name?.split('/').pop() ?? '',
    name: job.name ?? '',
    uid: job.uid ?? '',
    state,
    product: labels.product ?? '',
    client: labels.client ?? '',
    flow: labels.flow ?? '',
    trigger: labels.trigger ?? '',
    created: iso(job.createTime),
    taskCount: Number(job.taskGroups?.[0]?.taskCount ?? 0),
    taskCounts: counts,
    runDurationSeconds: seconds(job.status?.runDuration),
    reason: state === 'FAILED' ? lastEvent : '',
  };
}

/**
 * Task attempts from a task's status events, as Batch records them: each move to RUNNING
 * starts an attempt (a retry is RUNNING again after FAILED), and the next event ends it, with
 * the exit code the event carries.
 */
export function taskAttempts(index: number, task: Task): { row: TaskRow; attempts: TaskAttempt[] } {
  const events = (task.status?.statusEvents ?? []).map((event) => ({
    time: iso(event.eventTime),
    state: String(event.taskState ?? ''),
    description: event.description ?? '',
    exitCode: event.taskExecution?.exitCode ?? null,
  }));
  const attempts: TaskAttempt[] = [];
  for (const event of events) {
    const open = attempts.at(-1);
    if (open && open.end === null && event.state !== 'RUNNING') {
      open.end = event.time;
      open.state = event.state;
      open.exitCode = event.exitCode;
    }
    if (event.state === 'RUNNING') {
      if (open && open.end === null) open.end = event.time;
      attempts.push({
        task: index,
        attempt: attempts.length,
        state: 'RUNNING',
        start: event.time,
        end: null,
        exitCode: null,
      });
    }
  }
  const state = String(task.status?.state ?? '');
  return {
    row: {
      index,
      state,
      attempts: attempts.length,
      exitCode: attempts.at(-1)?.exitCode ?? null,
      events: events.map(({ time, state: s, description }) => ({ time, state: s, description })),
    },
    attempts,
  };
}

export interface JobFilter {
  product?: string;
  client?: string;
  state?: string;
  /** ISO time: only jobs created at or after it. */
  since?: string;
  pageSize: number;
  pageToken?: string;
}

/** A filter value must be a plain id or state: it goes into Batch's filter string. */
const FILTER_VALUE = /^[A-Za-z0-9_-]{1,63}$/;

/**
 * One page of jobs, newest first, filtered by product, client, state and creation time. Works
 * on the rows of one listJobs call that every open page shares (see jobs-cache.ts): Batch has
 * no count and the local one no time filter, and 50 rows of 1,000 cost less to cut here than
 * another call.
 */
export function pageJobs(rows: JobRow[], filter: JobFilter): JobsAnswer {
  for (const key of ['product', 'client', 'state'] as const) {
    const value = filter[key];
    if (value && !FILTER_VALUE.test(value)) throw new ConsoleInputError(`"${value}" is not a valid ${key}`);
  }
  const since = filter.since ? Date.parse(filter.since) : Number.NaN;
  if (filter.since && Number.isNaN(since))
    throw new ConsoleInputError(`"${filter.since}" is not a date and time`);
  const offset = filter.pageToken ? Number(filter.pageToken) : 0;
  if (!Number.isInteger(offset) || offset < 0) throw new ConsoleInputError('invalid page token');
  const matching = rows.filter(
    (job) =>
      (!filter.product || job.product === filter.product) &&
      (!filter.client || job.client === filter.client) &&
      (!filter.state || job.state === filter.state) &&
      (Number.isNaN(since) || Date.parse(job.created) >= since),
  );
  const page = matching.slice(offset, offset + filter.pageSize);
  const next = offset + filter.pageSize < matching.length ? String(offset + filter.pageSize) : '';
  return { jobs: page, nextPageToken: next, total: matching.length };
}

export class ConsoleInputError extends Error {
  override readonly name = 'ConsoleInputError';
}

export function createPlatformReader(config: Config, clients: PlatformClients) {
  const parent = `projects/${config.project}/locations/${config.region}`;

  const listAllJobs = async (filter = ''): Promise<Job[]> => {
    const [jobs] = await clients.batch.listJobs({ parent, filter, orderBy: 'create_time desc' });
    return jobs;
  };

  return {
    parent,

    listAllJobs,

    /**
     * Task slots in use: the tasks Batch reports RUNNING. Only running jobs hold slots, so this
     * asks for those alone (a filter Batch supports), and costs the same with ten jobs kept or
     * thousands; listing every job every few seconds grew with each one, page open or not.
     */
    async runningTasks(): Promise<number> {
      const running = (await listAllJobs('status.state="RUNNING"')).map(jobRow);
      return running.reduce((sum, job) => sum + (job.taskCounts.RUNNING ?? 0), 0);
    },

    async job(jobId: string): Promise<Omit<JobDetail, 'events'>> {
      if (!JOB_ID_PATTERN.test(jobId)) throw new ConsoleInputError(`"${jobId}" is not a job id`);
      const name = `${parent}/jobs/${jobId}`;
      const [job] = await clients.batch.getJob({ name });
      const [tasks] = await clients.batch.listTasks({ parent: `${name}/taskGroups/group0` });
      const rows: TaskRow[] = [];
      const attempts: TaskAttempt[] = [];
      for (const task of tasks) {
        const index = Number(task.name?.split('/').pop() ?? rows.length);
        const { row, attempts: taskAttemptList } = taskAttempts(index, task);
        rows.push(row);
        attempts.push(...taskAttemptList);
      }
      rows.sort((a, b) => a.index - b.index);
      const env = job.taskGroups?.[0]?.taskSpec?.environment?.variables ?? {};
      const outputUri = env.BATCHWIRE_OUTPUT_URI ?? '';
      const outputPrefix = outputUri.replace(`gs://${config.bucket}/`, '');
      const outputs = outputPrefix ? await this.objects(outputPrefix) : [];
      const manifestObject = outputs.find((object) => object.name.endsWith('/manifest.json'));
      let manifest: unknown = null;
      if (manifestObject) {
        const [bytes] = await clients.bucket.file(manifestObject.name).download();
        manifest = JSON.parse(bytes.toString('utf8'));
      }
      return {
        job: jobRow(job),
        spec: job,
        input: env.BATCHWIRE_INPUT_URI ?? '',
        outputPrefix: outputUri,
        tasks: rows,
        attempts,
        outputs,
        manifest,
        terminal: TERMINAL.has(String(job.status?.state)),
      };
    },

    async cancelJob(jobId: string): Promise<void> {
      if (!JOB_ID_PATTERN.test(jobId)) throw new ConsoleInputError(`"${jobId}" is not a job id`);
      const [operation] = await clients.batch.cancelJob({ name: `${parent}/jobs/${jobId}` });
      await operation.promise();
    },

    async deleteJob(jobId: string): Promise<void> {
      if (!JOB_ID_PATTERN.test(jobId)) throw new ConsoleInputError(`"${jobId}" is not a job id`);
      const [operation] = await clients.batch.deleteJob({ name: `${parent}/jobs/${jobId}` });
      await operation.promise();
    },

    /** Objects under a prefix, one level deep (folders as prefixes), as the Cloud console shows them. */
    async browse(prefix: string): Promise<{ prefixes: string[]; objects: ObjectRow[] }> {
      const [files, , response] = await clients.bucket.getFiles({
        prefix,
        delimiter: '/',
        autoPaginate: false,
        maxResults: 1000,
      });
      const prefixes = ((response as { prefixes?: string[] } | undefined)?.prefixes ?? []).sort();
      return { prefixes, objects: files.map(objectRow) };
    },

    async objects(prefix: string): Promise<ObjectRow[]> {
      const [files] = await clients.bucket.getFiles({ prefix });
      return files.map(objectRow);
    },

    /** The rejection records of a client, newest first (each a small JSON object). */
    async rejections(product?: string, client?: string, limit = 20): Promise<Rejection[]> {
      const prefix = `${REJECTIONS_PREFIX}${product ? `${product}/` : ''}${product && client ? `${client}/` : ''}`;
      const [files] = await clients.bucket.getFiles({ prefix });
      const newest = files
        .sort((a, b) => String(b.metadata.timeCreated).localeCompare(String(a.metadata.timeCreated)))
        .slice(0, limit);
      return Promise.all(
        newest.map(async (file) => JSON.parse((await file.download())[0].toString('utf8')) as Rejection),
      );
    },

    async schedulerJobs(): Promise<SchedulerJobRow[]> {
      const response = await fetch(`${clients.schedulerUrl}/v1/${parent}/jobs`);
      if (!response.ok) throw new Error(`Cloud Scheduler answered ${response.status}`);
      const body = (await response.json()) as { jobs?: SchedulerJobRow[] };
      return body.jobs ?? [];
    },

    /** Forces a run, as `gcloud scheduler jobs run` does: Scheduler sends the job's own request. */
    async runSchedulerJob(jobId: string): Promise<FlowRunAnswer> {
      if (!FILTER_VALUE.test(jobId)) throw new ConsoleInputError(`"${jobId}" is not a scheduler job id`);
      const response = await fetch(`${clients.schedulerUrl}/v1/${parent}/jobs/${jobId}:run`, {
        method: 'POST',
      });
      const body = (await response.json()) as FlowRunAnswer & { error?: { message?: string } };
      if (!response.ok)
        throw new ConsoleInputError(body.error?.message ?? `Cloud Scheduler answered ${response.status}`);
      return body;
    },

    /** Recent executions of a workflow, newest first, with their argument (FULL view). */
    async executions(workflow: string, pageSize = 20): Promise<ExecutionRow[]> {
      const [executions] = await clients.executions.listExecutions(
        { parent: `${parent}/workflows/${workflow}`, pageSize, view: 'FULL' },
        { autoPaginate: false },
      );
      return executions.map(executionRow);
    },

    async execution(workflow: string, executionId: string): Promise<Omit<ExecutionDetail, 'steps'>> {
      if (!FILTER_VALUE.test(workflow) || !FILTER_VALUE.test(executionId))
        throw new ConsoleInputError('not a workflow execution');
      const [execution] = await clients.executions.getExecution({
        name: `${parent}/workflows/${workflow}/executions/${executionId}`,
      });
      const row = executionRow(execution);
      // What it started: the Batch job named after its run id, or the Cloud Run job's executions.
      const runId = String(row.argument?.runId ?? '');
      const jobs = runId ? (await listAllJobs()).filter((job) => job.name?.includes(runId)).map(jobRow) : [];
      let runExecutions: RunExecutionRow[] = [];
      const runJob = String(row.argument?.job ?? '');
      if (workflow === 'run-job' && runJob) {
        const [list] = await clients.runExecutions.listExecutions({ parent: runJob });
        runExecutions = list
          .filter((e) => iso(e.createTime) >= row.start && (!row.end || iso(e.createTime) <= row.end))
          .map((e) => ({
            name: e.name ?? '',
            created: iso(e.createTime),
            succeeded: Number(e.succeededCount ?? 0),
            failed: Number(e.failedCount ?? 0),
          }));
      }
      return { execution: row, jobs, runExecutions };
    },
  };
}

export type PlatformReader = ReturnType<typeof createPlatformReader>;

function objectRow(file: { name: string; metadata: Record<string, unknown> }): ObjectRow {
  return {
    name: file.name,
    size: Number(file.metadata.size ?? 0),
    updated: String(file.metadata.updated ?? file.metadata.timeCreated ?? ''),
    contentType: String(file.metadata.contentType ?? ''),
  };
}

function executionRow(execution: {
  name?: string | null;
  state?: unknown;
  startTime?: { seconds?: unknown; nanos?: unknown } | null;
  endTime?: { seconds?: unknown; nanos?: unknown } | null;
  argument?: string | null;
  result?: string | null;
  error?: {
    payload?: string | null;
    context?: string | null;
    stackTrace?: {
      elements?: Array<{
        step?: string | null;
        routine?: string | null;
        position?: { line?: unknown } | null;
      }> | null;
    } | null;
  } | null;
  status?: { currentSteps?: Array<{ step?: string | null; routine?: string | null }> | null } | null;
}): ExecutionRow {
  const parse = (text: string | null | undefined): unknown => {
    if (!text) return null;
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  };
  const name = execution.name ?? '';
  const parts = name.split('/');
  const start = seconds(execution.startTime);
  const end = seconds(execution.endTime);
  const payload = parse(execution.error?.payload) as { message?: string } | string | null;
  return {
    name,
    id: parts.at(-1) ?? '',
    workflow: parts[5] ?? '',
    state: String(execution.state ?? ''),
    start: iso(execution.startTime),
    end: iso(execution.endTime),
    durationSeconds: start !== null && end !== null ? end - start : null,
    argument: parse(execution.argument) as Record<string, unknown> | null,
    result: parse(execution.result),
    error: execution.error
      ? {
          message:
            typeof payload === 'string' ? payload : (payload?.message ?? execution.error.context ?? 'failed'),
          context: execution.error.context ?? '',
          steps: (execution.error.stackTrace?.elements ?? []).map((element) => ({
            step: element.step ?? '',
            routine: element.routine ?? '',
            line: String(element.position?.line ?? ''),
          })),
        }
      : null,
    currentSteps: (execution.status?.currentSteps ?? []).map((s) => ({
      step: s.step ?? '',
      routine: s.routine ?? '',
    })),
  };
}
