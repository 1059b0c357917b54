/**
 * The Cloud Run v2 resources as the local service holds them: plain objects in the shape
 * `@grpc/proto-loader` produces with `keepCase` (snake_case fields, enums as strings), the
 * conditions Run reports, and the encoding of a Job or Execution into google.protobuf.Any for
 * the operations that answer with one.
 */
import { randomUUID } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { systemClock } from '../clock.js';
import type { AnyMessage } from '../grpc/operations.js';
import { lookup } from '../grpc/protos.js';
import { timestamp } from '../grpc/timestamp.js';

/** A job in the proto's shape (snake_case fields, as the client sends them). */
export type JobResource = Record<string, unknown> & { name: string; template: ExecutionTemplate };

/** An execution in the proto's shape. */
export type ExecutionResource = Record<string, unknown> & { name: string };

export interface EnvVar {
  name: string;
  value?: string;
}
export interface Container {
  name?: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
}
export interface TaskTemplate {
  containers?: Container[];
  max_retries?: number;
  retries?: string;
  timeout?: { seconds?: string | number } | null;
}
export interface ExecutionTemplate {
  task_count?: number;
  parallelism?: number;
  template?: TaskTemplate;
  labels?: Record<string, string>;
}
/** RunJob's overrides. */
export interface Overrides {
  container_overrides?: Array<{ name?: string; args?: string[]; env?: EnvVar[]; clear_args?: boolean }>;
  task_count?: number;
}

/** A Run condition of `type` in `state`, changed now. */
export function condition(state: string, type: string, message = '', extra: Record<string, unknown> = {}) {
  return {
    type,
    state,
    message,
    last_transition_time: timestamp(systemClock.now()),
    severity: 'INFO',
    ...extra,
  };
}

const TYPE_PREFIX = 'type.googleapis.com/google.cloud.run.v2.';

/** Encodes a Job or an Execution as google.protobuf.Any. */
export type AnyEncoder = (type: 'Job' | 'Execution', value: unknown) => AnyMessage;

/** The Any encoder of the loaded Run protos: the services' own serializers encode the messages. */
export function anyEncoder(pkg: grpc.GrpcObject): AnyEncoder {
  const encodeJob = lookup(pkg, 'google.cloud.run.v2.Jobs').service.GetJob?.responseSerialize as (
    value: unknown,
  ) => Buffer;
  const encodeExecution = lookup(pkg, 'google.cloud.run.v2.Executions').service.GetExecution
    ?.responseSerialize as (value: unknown) => Buffer;
  return (type, value) => ({
    type_url: `${TYPE_PREFIX}${type}`,
    value: type === 'Job' ? encodeJob(value) : encodeExecution(value),
  });
}

/** A new operation's name, in the location of `resourceName` (`projects/P/locations/L/...`). */
export function operationName(resourceName: string): string {
  const location = /^(projects\/[^/]+\/locations\/[^/]+)\//.exec(resourceName)?.[1];
  return `${location}/operations/${randomUUID()}`;
}
