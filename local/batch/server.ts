/**
 * The local Cloud Batch service on the wire: `google.cloud.batch.v1.BatchService`, its
 * operations and locations over plaintext gRPC and REST on one loopback port, with test hooks.
 * What the methods do is the service's (service.ts).
 */

import { bindLocalApi } from '../grpc/bind.js';
import { createLocations } from '../grpc/locations.js';
import { operationsHttpRules } from '../grpc/operations.js';
import { loadGrpcPackage, lookup } from '../grpc/protos.js';
import type { HttpRule } from '../grpc/rest-transcoder.js';
import { FaultInjector, unaryHandlers } from '../grpc/unary.js';
import { BatchService, type BatchServiceOptions } from './service.js';

export type { BatchServiceOptions } from './service.js';

/** The local Cloud Batch service: `google.cloud.batch.v1.BatchService` over plaintext gRPC. */
export interface LocalBatchService {
  /** `127.0.0.1:PORT`, the value for `BATCH_EMULATOR_HOST`. */
  host: string;
  port: number;
  /** Where task logs go: `${logDir}/${jobId}/task-${index}-attempt-${attempt}.log`. */
  logDir: string;
  /** Test hook: the next `times` calls of `method` ('CreateJob'|'GetJob'|...) fail with gRPC `code`. */
  injectFault(method: string, code: number, times?: number): void;
  /** Resolves with the job once it is SUCCEEDED or FAILED (and its notifications were published). */
  waitForJob(name: string, timeoutMs?: number): Promise<unknown>;
  /**
   * With `holdRestartNotifications`: publishes the notifications of the jobs that were failed
   * at start because the previous process stopped while they ran. Resolves once attempted.
   */
  releaseRestartNotifications(): Promise<void>;
  close(): Promise<void>;
}

const BATCH_PACKAGE = '@google-cloud/batch';
const BATCH_PROTOS = ['google/cloud/batch/v1/batch.proto', 'google/cloud/location/locations.proto'];

/**
 * REST bindings of the mixins Batch serves (service config `batch_v1.yaml`, as
 * `@google-cloud/batch` 2.5.0 passes them to google-gax in `batch_service_client.js`).
 */
const BATCH_HTTP_RULES: HttpRule[] = [
  { selector: 'google.cloud.location.Locations.GetLocation', get: '/v1/{name=projects/*/locations/*}' },
  { selector: 'google.cloud.location.Locations.ListLocations', get: '/v1/{name=projects/*}/locations' },
  ...operationsHttpRules('v1', ['CancelOperation', 'DeleteOperation', 'GetOperation', 'ListOperations']),
];

/**
 * Starts the local Cloud Batch service on 127.0.0.1: the real `BatchServiceClient` talks to it
 * with `grpcClientOptions('batch', { BATCH_EMULATOR_HOST: host })`. Jobs run as local processes
 * (see local/executor), move QUEUED (waiting for a task slot, see `slots`) → SCHEDULED →
 * RUNNING → SUCCEEDED/FAILED, and publish Batch's job notifications to the Pub/Sub emulator.
 *
 * @example
 * const batch = await startBatchService({ images: config.local.images, baseDir, env: { STORAGE_EMULATOR_HOST } });
 * process.env.BATCH_EMULATOR_HOST = batch.host;
 */
export async function startBatchService(options: BatchServiceOptions = {}): Promise<LocalBatchService> {
  const proto = loadGrpcPackage(BATCH_PACKAGE, BATCH_PROTOS);
  const service = new BatchService(options);
  service.load();

  const faults = new FaultInjector();
  const unary = unaryHandlers(faults);
  const locations = createLocations(() => [...(options.locations ?? []), ...service.jobLocations()]);
  const api = await bindLocalApi({
    pkg: BATCH_PACKAGE,
    files: BATCH_PROTOS,
    httpRules: BATCH_HTTP_RULES,
    port: options.port,
    services: [
      {
        name: 'google.cloud.batch.v1.BatchService',
        definition: lookup(proto, 'google.cloud.batch.v1.BatchService').service,
        handlers: {
          CreateJob: unary('CreateJob', service.createJob.bind(service)),
          GetJob: unary('GetJob', service.getJob.bind(service)),
          ListJobs: unary('ListJobs', service.listJobs.bind(service)),
          DeleteJob: unary('DeleteJob', service.deleteJob.bind(service)),
          CancelJob: unary('CancelJob', service.cancelJob.bind(service)),
          GetTask: unary('GetTask', service.getTask.bind(service)),
          ListTasks: unary('ListTasks', service.listTasks.bind(service)),
        },
      },
      {
        name: 'google.longrunning.Operations',
        definition: lookup(proto, 'google.longrunning.Operations').service,
        // Batch's operations are done when DeleteJob/CancelJob answer: cancelling one changes nothing.
        handlers: service.operations.handlers(unary),
      },
      {
        name: 'google.cloud.location.Locations',
        definition: lookup(proto, 'google.cloud.location.Locations').service,
        handlers: {
          ListLocations: unary('ListLocations', locations.listLocations.bind(locations)),
          GetLocation: unary('GetLocation', locations.getLocation.bind(locations)),
        },
      },
    ],
  });

  return {
    host: api.host,
    port: api.port,
    logDir: service.logDir,
    injectFault: (method, code, times) => faults.inject(method, code, times),
    waitForJob: (name, timeoutMs) => service.waitForJob(name, timeoutMs),
    releaseRestartNotifications: () => service.releaseRestartNotifications(),
    close: async () => {
      await service.close();
      await api.close();
    },
  };
}
