/**
 * The web console's HTTP API (`/api/…`), as the server (server.ts and the readers beside it)
 * answers it and the UI (ui/src) reads it: one definition for both sides, so a field renamed on
 * one side is a type error on the other.
 *
 * Types only, and nothing here may need Node: the UI imports this file with `import type`
 * (erased at build, so nothing of the server reaches the browser bundle) and type-checks it
 * under its own DOM-only settings (ui/tsconfig.json).
 */
import type { Rejection } from '#shared/domain/rejection.js';

export type { Rejection };

// ── Rows: one thing each, as several answers embed it ─────────────────────────────────────

/** A job as the console lists it: one row, no task detail (one listJobs call per page). */
export interface JobRow {
  id: string;
  name: string;
  uid: string;
  state: string;
  product: string;
  client: string;
  flow: string;
  trigger: string;
  created: string;
  taskCount: number;
  taskCounts: Record<string, number>;
  runDurationSeconds: number | null;
  /** Why it failed, in Batch's words: the last status event of a FAILED job. */
  reason: string;
}

/** One bar of the timeline: one run of one task. */
export interface TaskAttempt {
  task: number;
  attempt: number;
  state: string;
  start: string;
  end: string | null;
  exitCode: number | null;
}

export interface TaskRow {
  index: number;
  state: string;
  attempts: number;
  exitCode: number | null;
  events: Array<{ time: string; state: string; description: string }>;
}

export interface ObjectRow {
  name: string;
  size: number;
  updated: string;
  contentType: string;
}

/** A Cloud Scheduler job, as its REST API lists it. */
export interface SchedulerJobRow {
  name: string;
  schedule?: string;
  timeZone?: string;
  state: string;
  scheduleTime?: string;
  httpTarget?: { uri: string; body?: string };
}

/** A Workflows execution (FULL view), its argument, result and error parsed. */
export interface ExecutionRow {
  name: string;
  id: string;
  workflow: string;
  state: string;
  start: string;
  end: string;
  durationSeconds: number | null;
  argument: Record<string, unknown> | null;
  result: unknown;
  error: {
    message: string;
    context: string;
    steps: Array<{ step: string; routine: string; line: string }>;
  } | null;
  currentSteps: Array<{ step: string; routine: string }>;
}

/** A Cloud Run job execution a flow started. */
export interface RunExecutionRow {
  name: string;
  created: string;
  succeeded: number;
  failed: number;
}

/** One step of a workflow execution as the console saw it: entered at `start`, left at `end`. */
export interface StepEntry {
  routine: string;
  step: string;
  start: string;
  end: string | null;
}

/** One message seen on a client's output topic: its attributes (the `ce-*` envelope) and data. */
export interface TopicEvent {
  topic: string;
  product: string;
  client: string;
  messageId: string;
  publishTime: string;
  /** `ce-type`, or '' when the message is not a CloudEvent. */
  type: string;
  /** `ce-id`. */
  id: string;
  /** `ce-subject`. */
  subject: string;
  attributes: Record<string, string>;
  /** The data as JSON when it parses, else the text. */
  data: unknown;
}

/** A service of the local platform, as the health panel shows it. */
export interface ServiceHealth {
  name: string;
  address: string;
  up: boolean;
  /** In plain words, why it is down; '' when up. */
  detail: string;
  checked: string;
  /** The last time it was seen down and why, kept after it recovers (a restarted function). */
  lastDown: { time: string; detail: string } | null;
}

/** Uploads and results counted in one minute. */
export interface MinutePoint {
  time: string;
  uploads: number;
  results: number;
}

/** Task slots in use at one moment. */
export interface SlotSample {
  time: string;
  running: number;
}

// ── Answers, one per endpoint ───────────────────────────────────────────────────────────────

/** `GET /api/config`: what of the config a page may show. */
export interface PublicConfig {
  project: string;
  region: string;
  bucket: string;
  products: Record<string, { clients: string[]; acceptedExtensions: string[]; flows: string[] }>;
}

/** `GET /api/health`, and the `health` event of the live stream. */
export type HealthAnswer = ServiceHealth[];

/** `GET /api/metrics`: the last 30 minutes, and the task slots sampled every 5 s. */
export interface MetricsAnswer {
  minutes: MinutePoint[];
  slots: SlotSample[];
}

export interface ClientSummary {
  client: string;
  uploads: number;
  jobsByState: Record<string, number>;
  latestJobs: JobRow[];
  latestResults: TopicEvent[];
  rejections: Rejection[];
}

/** `GET /api/overview` */
export interface OverviewAnswer {
  project: string;
  products: Array<{ product: string; clients: ClientSummary[] }>;
  schedules: SchedulerJobRow[];
  /** Why the schedules are missing, or ''. */
  schedulerError: string;
}

/** `GET /api/jobs`: one page of jobs, newest first. */
export interface JobsAnswer {
  jobs: JobRow[];
  nextPageToken: string;
  total: number;
}

/** `GET /api/jobs/{id}`: one job with its tasks, outputs and the events published about it. */
export interface JobDetail {
  job: JobRow;
  /** The job resource as Batch returns it. */
  spec: unknown;
  input: string;
  outputPrefix: string;
  tasks: TaskRow[];
  attempts: TaskAttempt[];
  outputs: ObjectRow[];
  manifest: unknown;
  terminal: boolean;
  events: TopicEvent[];
}

/** A schedule of the flows page, with the recent runs its request started. */
export interface FlowSchedule extends SchedulerJobRow {
  id: string;
  /** The request body the schedule sends onSchedule. */
  request: { flow?: string; product?: string; client?: string };
  runs: ExecutionRow[];
}

/** `GET /api/flows` */
export interface FlowsAnswer {
  schedules: FlowSchedule[];
  /** Runs that could not be listed, in plain words. */
  errors: string[];
}

/** `POST /api/flows/{id}/run`: the scheduler job, and onSchedule's answer to the forced run. */
export interface FlowRunAnswer extends Partial<SchedulerJobRow> {
  lastAttempt?: { status: number; body: unknown };
}

/** `GET /api/executions/{workflow}/{id}`: one run of a flow and what it started. */
export interface ExecutionDetail {
  execution: ExecutionRow;
  jobs: JobRow[];
  runExecutions: RunExecutionRow[];
  steps: StepEntry[];
}

/** `GET /api/topics/events`: the newest events first, at most 200. */
export interface TopicEventsAnswer {
  topics: string[];
  events: TopicEvent[];
}

/** `GET /api/storage?prefix=`: one level of the bucket, folders as prefixes. */
export interface StorageListing {
  prefix: string;
  prefixes: string[];
  objects: ObjectRow[];
}

/** `GET /api/rejections`: rejection records, newest first. */
export type RejectionsAnswer = Rejection[];

/** `POST /api/upload` */
export interface UploadAnswer {
  uploaded: string;
}
