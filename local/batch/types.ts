/**
 * The Batch v1 messages as the local service holds them: plain objects in the shape
 * `@grpc/proto-loader` produces with `keepCase` (snake_case fields, enums as strings, int64 as
 * strings). Only the fields the service reads or writes are typed; the rest pass through.
 */

import type { BatchJobState } from '#shared/domain/batch-job.js';
import type { TaskState as BatchTaskState } from '#shared/domain/batch-states.js';
import type { Duration, Timestamp } from '../grpc/timestamp.js';

/** Job states as Batch reports them: the same type the core reads them as. */
export type JobState = BatchJobState;

/** Task states as Batch reports them: the same names the core parses. */
export type TaskState = 'STATE_UNSPECIFIED' | BatchTaskState;

export interface StatusEvent {
  type: string;
  description: string;
  event_time: Timestamp;
  task_execution: { exit_code: number } | null;
  task_state: TaskState;
}

export interface EnvironmentMessage {
  variables?: Record<string, string>;
  secret_variables?: Record<string, string>;
  encrypted_variables?: unknown;
}

export interface RunnableMessage {
  container?: { image_uri?: string; commands?: string[]; entrypoint?: string } | null;
  script?: { path?: string; text?: string; command?: string } | null;
  barrier?: { name?: string } | null;
  executable?: string;
  display_name?: string;
  ignore_exit_status?: boolean;
  background?: boolean;
  always_run?: boolean;
  environment?: EnvironmentMessage | null;
  [field: string]: unknown;
}

export interface TaskSpecMessage {
  runnables?: RunnableMessage[];
  max_retry_count?: number;
  environments?: Record<string, string>;
  environment?: EnvironmentMessage | null;
  [field: string]: unknown;
}

export interface TaskGroupMessage {
  name?: string;
  task_spec?: TaskSpecMessage | null;
  task_count?: string;
  parallelism?: string;
  scheduling_policy?: string;
  task_environments?: EnvironmentMessage[];
  require_hosts_file?: boolean;
  [field: string]: unknown;
}

export interface JobNotificationMessage {
  pubsub_topic?: string;
  message?: { type?: string; new_job_state?: string; new_task_state?: string } | null;
}

export interface JobStatusMessage {
  state: JobState;
  status_events: StatusEvent[];
  task_groups: Record<string, { counts: Record<string, string>; instances: unknown[] }>;
  run_duration: Duration | null;
}

export interface JobMessage {
  name: string;
  uid: string;
  task_groups: TaskGroupMessage[];
  labels?: Record<string, string>;
  status: JobStatusMessage;
  create_time: Timestamp;
  update_time: Timestamp;
  notifications?: JobNotificationMessage[];
  [field: string]: unknown;
}

export interface TaskMessage {
  name: string;
  status: { state: TaskState; status_events: StatusEvent[] };
}
