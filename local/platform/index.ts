import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pino } from 'pino';
import { DEFAULT_CONFIG_FILE } from '../../shared/config/load.js';
import type { Config } from '../../shared/config/schema.js';
import { buildPlan } from '../../shared/plan/build-plan.js';
import { PermanentError } from '../../shared/runtime/errors.js';
import { createLogger, type Logger } from '../../shared/runtime/logger.js';
import { startBatchService } from '../batch/server.js';
import { type PubSubTrigger, type StorageTrigger, startEventarcRouter } from '../eventarc/router.js';
import { startPubSubEmulator } from '../pubsub/emulator.js';
import { startRunService } from '../run/server.js';
import { startSchedulerApi } from '../scheduler/api.js';
import { startScheduler } from '../scheduler/scheduler.js';
import { startStorageServer } from '../storage/server.js';
import { startWorkflowsService } from '../workflows/server.js';
import type { Activity, DevConsole } from './console.js';
import { removeEnvFile, writeEnvFile } from './env-file.js';
import { startFunctionProcess } from './function-process.js';
import { acquireLock } from './lock.js';
import { DEFAULT_PORTS, type PortName, type Ports } from './ports.js';
import { provision } from './provision.js';

/** A port the platform needs is taken; the message names the port and the flag that moves it. */
export class PortInUseError extends PermanentError {
  constructor(
    readonly portName: PortName,
    readonly port: number,
    options?: ErrorOptions,
  ) {
    const flag = `--${portName.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}-port`;
    super(
      `port ${port} (${portName}) is already in use: stop what holds it, or move it with ${flag} <port>`,
      options,
    );
  }
}

export interface PlatformOptions {
  config: Config;
  configPath: string;
  /** The repository root: functions-framework's `--source`, and where `workflows/` lives. */
  rootDir: string;
  /** Where `.batchwire/env`, the lock and task logs live. */
  stateDir: string;
  ports?: Partial<Ports>;
  /** Keep buckets, messages and job records here across restarts; by default nothing is kept. */
  dataDir?: string;
  /** Fire flows on their cron schedules (default true). */
  schedules?: boolean;
  console: DevConsole;
  /**
   * Where the local services' own diagnostics go; the console shows their activity already, so
   * by default only warnings and errors, on stderr.
   */
  serviceLog?: Logger;
}

export interface RunningPlatform {
  /** What `.batchwire/env` holds: every address a client needs. */
  env: Record<string, string>;
  ports: Ports;
  logDir: string;
  /** Fires a flow now, as Cloud Scheduler would; resolves with onSchedule's answer. */
  fireFlow(flow: string, product: string, client?: string): Promise<{ status: number; body: unknown }>;
  /** Stops everything this platform started, in reverse order. */
  stop(): Promise<void>;
}

/**
 * Starts the whole local platform on loopback: the Pub/Sub emulator, the local Cloud Storage,
 * Batch, Workflows and Cloud Run services, the three functions (each its own
 * functions-framework process, as each is its own Cloud Function), the Eventarc router and the
 * scheduler; then provisions what onboarding creates in Google Cloud. `.batchwire/env` is
 * written only once everything answers, and removed on stop.
 */
export async function startPlatform(options: PlatformOptions): Promise<RunningPlatform> {
  const { config } = options;
  const ports: Ports = { ...DEFAULT_PORTS, ...options.ports };
  const report = (activity: Activity) => options.console.activity(activity);
  const envPath = join(options.stateDir, 'env');
  const releaseLock = acquireLock(join(options.stateDir, 'dev.lock'));
  const stack: Array<() => Promise<void> | void> = [releaseLock];
  const stop = async () => {
    removeEnvFile(envPath);
    while (stack.length > 0) {
      const step = stack.pop();
      try {
        await step?.();
      } catch (err) {
        report({ kind: 'platform', message: `while stopping: ${(err as Error).message}` });
      }
    }
  };

  try {
    // Every port is checked before anything starts: a taken port then costs no half-started
    // platform, and a functions-framework child that cannot bind never has to be told apart
    // from one that crashed. (Pub/Sub's port is unused when PUBSUB_EMULATOR_HOST names one.)
    for (const name of Object.keys(ports) as PortName[]) {
      if (name === 'pubsub' && process.env.PUBSUB_EMULATOR_HOST) continue;
      await assertPortFree(name, ports[name]);
    }
    const dataDir = options.dataDir ? resolve(options.dataDir) : undefined;
    const logDir = dataDir ? join(dataDir, 'logs') : mkdtempSync(join(tmpdir(), 'batchwire-logs-'));

    const pubsub = await startPubSubEmulator({
      port: ports.pubsub,
      project: config.project,
      ...(dataDir ? { dataDir: join(dataDir, 'pubsub') } : {}),
    });
    stack.push(() => pubsub.stop());
    process.env.PUBSUB_EMULATOR_HOST = pubsub.host;

    const storage = await startStorageServer({
      port: ports.storage,
      ...(dataDir ? { dataDir: join(dataDir, 'storage') } : {}),
    });
    stack.push(() => storage.close());
    storage.onFinalize((object) => {
      if (object.name.startsWith('_batchwire/')) return;
      report({
        kind: 'upload',
        message: `gs://${object.bucket}/${object.name} (generation ${object.generation}, ${object.size} bytes)`,
      });
    });

    const clientEnv: Record<string, string> = {
      METADATA_SERVER_DETECTION: 'none',
      GOOGLE_CLOUD_PROJECT: config.project,
      BATCHWIRE_CONFIG: options.configPath,
      STORAGE_EMULATOR_HOST: storage.url,
      PUBSUB_EMULATOR_HOST: pubsub.host,
      BATCH_EMULATOR_HOST: `127.0.0.1:${ports.batch}`,
      WORKFLOWS_EMULATOR_HOST: `127.0.0.1:${ports.workflows}`,
      RUN_EMULATOR_HOST: `127.0.0.1:${ports.run}`,
    };
    Object.assign(process.env, clientEnv);
    const baseDir = dirname(options.configPath);

    const batch = await startBatchService({
      port: ports.batch,
      images: config.local.images,
      baseDir,
      logDir,
      pubsubHost: pubsub.host,
      env: clientEnv,
      onEvent: report,
      log:
        options.serviceLog ??
        createLogger({
          name: 'local-batch',
          level: 'warn',
          destination: pino.destination({ fd: 2, sync: true }),
        }),
      // Jobs interrupted by the last stop are reported FAILED, but only once the router
      // subscribes: the emulator's topics and subscriptions do not survive a restart.
      ...(dataDir ? { dataDir: join(dataDir, 'batch'), holdRestartNotifications: true } : {}),
    });
    stack.push(() => batch.close());

    const run = await startRunService({
      port: ports.run,
      images: config.local.images,
      baseDir,
      logDir,
      env: clientEnv,
      onEvent: report,
    });
    stack.push(() => run.close());

    const workflows = await startWorkflowsService({
      port: ports.workflows,
      workflowsDir: join(options.rootDir, 'workflows'),
      project: config.project,
      region: config.region,
      env: clientEnv,
      onEvent: report,
    });
    stack.push(() => workflows.close());

    const functionUrls: Record<string, string> = {};
    for (const name of ['onUpload', 'onSchedule', 'onComplete'] as const) {
      const fn = await startFunctionProcess({
        name,
        port: ports[name],
        sourceDir: options.rootDir,
        env: clientEnv,
        onLine: (line) => options.console.functionLine(name, line),
        onExit: (code) => {
          if (code !== null && code !== 0)
            report({ kind: 'platform', message: `${name} exited with code ${code}` });
        },
      });
      stack.push(() => fn.stop());
      functionUrls[name] = fn.url;
    }

    await provision(config, { storageUrl: storage.url });

    const { PubSub } = await import('@google-cloud/pubsub');
    const pubsubClient = new PubSub({ projectId: config.project });
    stack.push(() => pubsubClient.close());
    const router = await startEventarcRouter({
      storage,
      pubsub: pubsubClient,
      // The plan's event triggers, each delivered to its function's local URL.
      ...localTriggers(config, functionUrls),
      retry: { maxAgeMs: config.maxEventAgeSeconds * 1000 },
      onActivity: (activity) => {
        if (activity.kind !== 'event.delivered') report(activity);
      },
    });
    stack.push(() => router.close());
    await batch.releaseRestartNotifications();

    const scheduler = startScheduler({
      config,
      targetUrl: functionUrls.onSchedule as string,
      enabled: options.schedules ?? true,
      onEvent: report,
    });
    stack.push(() => scheduler.stop());
    const schedulerApi = await startSchedulerApi({
      scheduler,
      project: config.project,
      region: config.region,
      targetUrl: functionUrls.onSchedule as string,
      port: ports.scheduler,
    });
    stack.push(() => schedulerApi.close());

    const env: Record<string, string> = {
      ...clientEnv,
      BATCHWIRE_ON_UPLOAD_URL: functionUrls.onUpload as string,
      BATCHWIRE_ON_SCHEDULE_URL: functionUrls.onSchedule as string,
      BATCHWIRE_ON_COMPLETE_URL: functionUrls.onComplete as string,
      BATCHWIRE_SCHEDULER_URL: schedulerApi.url,
      BATCHWIRE_LOG_DIR: logDir,
    };
    writeEnvFile(envPath, env);

    return {
      env,
      ports,
      logDir,
      fireFlow: (flow, product, client) => scheduler.fireNow(flow, product, client),
      stop,
    };
  } catch (err) {
    await stop();
    // Something took a port between the check and the listen().
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      const port = (err as { port?: number }).port;
      const name = (Object.keys(ports) as PortName[]).find((key) => ports[key] === port);
      if (name && port !== undefined) throw new PortInUseError(name, port, { cause: err });
    }
    throw err;
  }
}

/** Throws {@link PortInUseError} unless `port` can be bound on loopback (port 0 is always free). */
async function assertPortFree(name: PortName, port: number): Promise<void> {
  if (port === 0) return;
  const probe = net.createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new PortInUseError(name, port, { cause: err }) : err),
    );
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
}

/** The Eventarc triggers of the plan's functions, as the local router takes them (`onUpload` → `on-upload`). */
function localTriggers(
  config: Config,
  functionUrls: Record<string, string>,
): { storageTriggers: StorageTrigger[]; pubsubTriggers: PubSubTrigger[] } {
  const storageTriggers: StorageTrigger[] = [];
  const pubsubTriggers: PubSubTrigger[] = [];
  for (const fn of buildPlan(config, { configFile: DEFAULT_CONFIG_FILE }).functions) {
    const name = fn.name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    const destination = functionUrls[fn.name] as string;
    if (fn.trigger.kind === 'storage') storageTriggers.push({ name, bucket: fn.trigger.bucket, destination });
    if (fn.trigger.kind === 'topic') {
      pubsubTriggers.push({ name, project: config.project, topic: fn.trigger.topic, destination });
    }
  }
  return { storageTriggers, pubsubTriggers };
}
