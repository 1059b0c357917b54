import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pino } from 'pino';
import { DEFAULT_CONFIG_FILE } from '#shared/config/load.js';
import type { Config } from '#shared/config/schema.js';
import { parseObjectName } from '#shared/domain/object-path.js';
import { buildPlan } from '#shared/plan/build-plan.js';
import { PermanentError } from '#shared/runtime/errors.js';
import { createLogger, type Logger } from '#shared/runtime/logger.js';
import type { PlatformActivity } from '../activity.js';
import { startBatchService } from '../batch/server.js';
import type { HealthCallback } from '../console/health.js';
import { type ConsoleServer, startConsoleServer } from '../console/server.js';
import { type PubSubTrigger, type StorageTrigger, startEventarcRouter } from '../eventarc/router.js';
import { defaultTaskSlots, TaskSlots } from '../executor/index.js';
import { startPubSubEmulator } from '../pubsub/emulator.js';
import { keepPubSubState } from '../pubsub/kept-state.js';
import { forgetEmulator, recordEmulator, takeOverStaleEmulator } from '../pubsub/stale-emulator.js';
import { startRunService } from '../run/server.js';
import { startSchedulerApi } from '../scheduler/api.js';
import { startScheduler } from '../scheduler/scheduler.js';
import { startStorageServer } from '../storage/server.js';
import { type ExecutionResource, startWorkflowsService } from '../workflows/server.js';
import { type DevConsole, followTaskSlots } from './console.js';
import { gcloudApiOverrides, gcloudStorageEnv, removeEnvFile, writeEnvFile } from './env-file.js';
import { type FunctionHealth, type SupervisedFunction, superviseFunction } from './function-process.js';
import {
  interruptedFlowCompletions,
  PLATFORM_STOPPED,
  PLATFORM_STOPPED_UNEXPECTEDLY,
  publishFlowCompletions,
} from './interrupted-flows.js';
import { acquireLock } from './lock.js';
import { DEFAULT_PORTS, type PortName, type Ports, portFlag } from './ports.js';
import { provision } from './provision.js';
import { reconcile } from './reconcile.js';

export type { FunctionHealth, FunctionState } from './function-process.js';

/** The platform's three functions, each its own process. */
export const FUNCTION_NAMES = ['onUpload', 'onSchedule', 'onComplete'] as const;
export type FunctionName = (typeof FUNCTION_NAMES)[number];

/** The longest any one step of a stop may take: a dead dependency must not keep `stop()` waiting. */
const STOP_STEP_TIMEOUT_MS = 15_000;

/** A port the platform needs is taken; the message names the port and the flag that moves it. */
export class PortInUseError extends PermanentError {
  constructor(
    readonly portName: PortName,
    readonly port: number,
    options?: ErrorOptions,
  ) {
    super(
      `port ${port} (${portName}) is already in use: stop what holds it, or move it with ${portFlag(portName)} <port>`,
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
  /** The ports to bind; 0 lets the kernel pick one (the ones bound are in `RunningPlatform.ports`). */
  ports?: Partial<Ports>;
  /** Keep buckets, messages and job records here across restarts; by default nothing is kept. */
  dataDir?: string;
  /**
   * How many task processes (Batch tasks and Cloud Run job tasks together) may run at once;
   * more jobs wait QUEUED. Default: {@link defaultTaskSlots} (from the cores and free memory).
   */
  maxTasks?: number;
  /** Fire flows on their cron schedules (default true). */
  schedules?: boolean;
  console: DevConsole;
  /**
   * Where the local services' own diagnostics go; the console shows their activity already, so
   * by default only warnings and errors, on stderr.
   */
  serviceLog?: Logger;
  /**
   * Each event function's timeout in ms, the deadline of every delivery to it (default 60 s, as
   * gen2 deploys a function without `--timeout`).
   */
  functionTimeoutsMs?: Partial<Record<FunctionName, number>>;
  /** How long a stop lets deliveries under way finish (default 10 s). */
  drainMs?: number;
  /**
   * The platform's own view of its services' health (e.g. a supervisor's), by service name as
   * the web console lists them; merged with the console's own probes of each port.
   */
  health?: HealthCallback;
}

export interface RunningPlatform {
  /** What `.batchwire/env` holds: every address a client needs. */
  env: Record<string, string>;
  /** The ports bound: those asked for, and the kernel's choice where 0 was asked. */
  ports: Ports;
  logDir: string;
  /** Fires a flow now, as Cloud Scheduler would; resolves with onSchedule's answer. */
  fireFlow(flow: string, product: string, client?: string): Promise<{ status: number; body: unknown }>;
  /** How each function process is doing now (up, restarting, crashed; restarts so far). */
  functionHealth(): FunctionHealth[];
  /** Calls `listener` on every change of a function's health; returns the unsubscribe. */
  onFunctionHealth(listener: (health: FunctionHealth) => void): () => void;
  /**
   * Stops taking new work, lets deliveries under way finish (bounded, see `drainMs`), then
   * stops everything this platform started, in reverse order. With `dataDir`, what was
   * accepted and not delivered is kept for the next start.
   */
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
  const startedAt = Date.now();
  const timeoutOf = (name: FunctionName) => timeoutFor(options.functionTimeoutsMs, name);
  const ports: Ports = { ...DEFAULT_PORTS, ...options.ports };
  // The web console starts last; until then there is no open page to tell.
  let webConsole: ConsoleServer | undefined;
  const report = (activity: PlatformActivity) => {
    options.console.activity(activity);
    webConsole?.notify(activity);
  };
  const envPath = join(options.stateDir, 'env');
  const releaseLock = acquireLock(join(options.stateDir, 'dev.lock'));
  // Left by a run that was killed (a stop removes it): it names addresses nothing answers at.
  // It is written again once everything of this run answers.
  removeEnvFile(envPath);
  const stack: Array<() => Promise<void> | void> = [releaseLock];
  // What must hold from the moment a stop begins, before any step of it (no new uploads).
  const whenStopBegins: Array<() => void> = [];
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      for (const begin of whenStopBegins) begin();
      removeEnvFile(envPath);
      while (stack.length > 0) {
        const step = stack.pop();
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            Promise.resolve().then(() => step?.()),
            new Promise<never>((_, reject) => {
              timer = setTimeout(
                () => reject(new Error(`a step did not finish within ${STOP_STEP_TIMEOUT_MS} ms; going on`)),
                STOP_STEP_TIMEOUT_MS,
              );
            }),
          ]);
        } catch (err) {
          report({ kind: 'platform', message: `while stopping: ${(err as Error).message}` });
        } finally {
          clearTimeout(timer);
        }
      }
    })();
    return stopping;
  };
  const healthListeners = new Set<(health: FunctionHealth) => void>();

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

    // Only an emulator of our own is empty at start and ours to save: one named by
    // PUBSUB_EMULATOR_HOST belongs to someone else and keeps its state across our restarts.
    const ownsPubSub = !process.env.PUBSUB_EMULATOR_HOST;
    const keepsPubSub = dataDir !== undefined && ownsPubSub;
    const pubsubDir = dataDir ? join(dataDir, 'pubsub') : undefined;
    if (pubsubDir && keepsPubSub) {
      // The emulator of a run killed without a stop outlives it (see stale-emulator.ts).
      const stale = await takeOverStaleEmulator({
        dir: pubsubDir,
        project: config.project,
        snapshotFile: join(pubsubDir, 'snapshot.json'),
      });
      if (stale) {
        report({
          kind: 'platform',
          message: stale.saved
            ? `Pub/Sub: the emulator the last run left running (pid ${stale.pid}; that run ended without a stop) had its state saved, to be restored now; it is stopped`
            : `Pub/Sub: the emulator the last run left running (pid ${stale.pid}) could not hand its state over (${stale.error}); it is stopped, and the state the last stop saved is restored`,
        });
      }
    }
    // An emulator whose state is restored listens on a port of its own, and clients reach it
    // through a relay on the Pub/Sub port, opened only once the restore is complete: a client
    // library that reconnects by itself (a subscriber kept running across the restart) never
    // finds its subscription missing, which would end its stream for good.
    // Its state is saved at the end of a stop: a SIGTERM to the whole process group must not
    // take it down before that.
    const emulator = await startPubSubEmulator({
      port: keepsPubSub ? 0 : ports.pubsub,
      ownProcessGroup: keepsPubSub,
      project: config.project,
      ...(pubsubDir ? { dataDir: pubsubDir } : {}),
    });
    stack.push(async () => {
      await emulator.stop();
      if (pubsubDir && keepsPubSub) forgetEmulator(pubsubDir);
      // A stopped emulator of ours must not look like someone else's to a later start.
      if (ownsPubSub) delete process.env.PUBSUB_EMULATOR_HOST;
    });
    // Recorded so that the start after a kill of this process finds it and stops it.
    if (pubsubDir && keepsPubSub && emulator.pid) {
      recordEmulator(pubsubDir, { pid: emulator.pid, port: emulator.port });
    }
    let pubsubHost = emulator.host;
    if (dataDir && keepsPubSub) {
      // Restored before anything publishes or subscribes; saved at stop once nothing of the
      // platform consumes any more (this step runs last but one).
      const kept = await keepPubSubState({
        emulatorHost: emulator.host,
        project: config.project,
        file: join(dataDir, 'pubsub', 'snapshot.json'),
        port: ports.pubsub,
      });
      pubsubHost = kept.host;
      stack.push(async () => {
        const { takenBack, notTakenBack } = await kept.save();
        if (takenBack > 0) {
          report({
            kind: 'platform',
            message: `Pub/Sub: kept ${takenBack} message(s) subscribers had received and not acknowledged; they are delivered again after the next start`,
          });
        }
        if (notTakenBack) {
          report({
            kind: 'platform',
            message: `Pub/Sub: messages subscribers held unacknowledged may not all be kept (${notTakenBack}); those are lost with the emulator`,
          });
        }
      });
      if (kept.restored) {
        const { snapshot, outcome } = kept.restored;
        for (const { subscription, count } of outcome.unacknowledged) {
          report({
            kind: 'platform',
            message: `Pub/Sub: ${count} message(s) ${subscription} had acknowledged before the stop could not be acknowledged again; its subscriber may see them once more`,
          });
        }
        if (outcome.ackIdsNotSkipped) {
          report({
            kind: 'platform',
            message: `Pub/Sub: the last run's ack ids could not be skipped (${outcome.ackIdsNotSkipped}); an ack a client retries across the restart may acknowledge another message`,
          });
        }
        const backlog = snapshot.subscriptions.reduce((sum, s) => sum + s.backlog.length, 0);
        report({
          kind: 'platform',
          message: `restored Pub/Sub: ${snapshot.topics.length} topics, ${snapshot.subscriptions.length} subscriptions, ${backlog} unacknowledged messages`,
        });
      }
    }
    const pubsub = { host: pubsubHost, port: Number(pubsubHost.slice(pubsubHost.lastIndexOf(':') + 1)) };
    process.env.PUBSUB_EMULATOR_HOST = pubsub.host;

    const storage = await startStorageServer({
      port: ports.storage,
      ...(dataDir ? { dataDir: join(dataDir, 'storage') } : {}),
    });
    stack.push(() => storage.close());
    // An upload acknowledged while stopping might never become a job: from the start of a stop
    // inputs are refused (503, which clients retry), while what the platform itself still
    // writes as its deliveries drain (claims, rejection records, task outputs) goes on.
    whenStopBegins.push(() =>
      storage.refuseWrites(
        'the local platform is stopping: uploads are taken again once it has started',
        (bucket, name) => bucket === config.bucket && parseObjectName(name).kind === 'input',
      ),
    );
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
    };
    // The other services' addresses join as each one listens (a port asked as 0 is known only
    // then): the services read this object when they start a task or an execution, never before.
    const addAddress = (name: string, value: string) => {
      clientEnv[name] = value;
      process.env[name] = value;
    };
    Object.assign(process.env, clientEnv);
    const baseDir = dirname(options.configPath);

    // One pool for the machine: the Batch and Cloud Run jobs services take slots from it alike.
    const slots = new TaskSlots(options.maxTasks ?? defaultTaskSlots());
    report({
      kind: 'slots',
      message: `at most ${slots.limit} task process${slots.limit === 1 ? '' : 'es'} at once (--max-tasks); more jobs wait QUEUED`,
      limit: slots.limit,
    });
    stack.push(followTaskSlots(slots, report));

    const batch = await startBatchService({
      slots,
      port: ports.batch,
      images: config.local.images,
      baseDir,
      logDir,
      pubsubHost: pubsub.host,
      env: clientEnv,
      onEvent: report,
      locations: [config.region],
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
    addAddress('BATCH_EMULATOR_HOST', batch.host);

    const run = await startRunService({
      slots,
      port: ports.run,
      images: config.local.images,
      baseDir,
      logDir,
      env: clientEnv,
      onEvent: report,
    });
    stack.push(() => run.close());
    addAddress('RUN_EMULATOR_HOST', run.host);

    const workflows = await startWorkflowsService({
      port: ports.workflows,
      workflowsDir: join(options.rootDir, 'workflows'),
      project: config.project,
      region: config.region,
      env: clientEnv,
      onEvent: report,
      // Executions are in memory; their records say which ones a kill of this process cut short.
      ...(dataDir ? { dataDir: join(dataDir, 'workflows') } : {}),
    });
    /**
     * Flows cut short are reported failed, saying why; an execution's record goes only once
     * that is published, so one whose report never went out (a failed publish, a kill) is
     * reported by the next start instead, and none is reported twice.
     */
    const reportInterruptedFlows = async (
      executions: readonly ExecutionResource[],
      reason: string,
      cause: string,
    ) => {
      const interrupted = interruptedFlowCompletions(executions, new Date(), reason);
      await publishFlowCompletions(config.project, interrupted);
      workflows.forgetInterrupted(executions);
      for (const { completion } of interrupted) {
        report({
          kind: 'platform',
          message: `flow ${completion.flow} (${completion.product}${completion.client ? `/${completion.client}` : ''}) cut short by ${cause}: reported failed`,
          execution: completion.execution,
        });
      }
    };
    // Flows cut short by the stop: their completion waits on the completion topic (saved with
    // the rest of Pub/Sub under --data) for onComplete.
    stack.push(async () => reportInterruptedFlows(await workflows.close(), PLATFORM_STOPPED, 'the stop'));
    addAddress('WORKFLOWS_EMULATOR_HOST', workflows.host);

    // The three start together (each is its own process, as each is its own Cloud Function): a
    // cold start is seconds of module loading, and nothing orders them.
    const started = await Promise.allSettled(
      FUNCTION_NAMES.map((name) =>
        superviseFunction({
          name,
          port: ports[name],
          sourceDir: options.rootDir,
          env: clientEnv,
          onLine: (line) => options.console.functionLine(name, line),
          onEvent: (message) => report({ kind: 'platform', message, function: name }),
          shouldRestart: () => stopping === undefined,
          onHealth: (changed) => {
            for (const listener of healthListeners) listener(changed);
          },
        }),
      ),
    );
    const functions: SupervisedFunction[] = [];
    const functionUrls: Record<string, string> = {};
    for (const outcome of started) {
      if (outcome.status !== 'fulfilled') continue;
      stack.push(() => outcome.value.stop());
      functions.push(outcome.value);
      functionUrls[outcome.value.name] = outcome.value.url;
    }
    const failed = started.find((outcome) => outcome.status === 'rejected');
    if (failed) throw failed.reason;

    await provision(config, { storageUrl: storage.url });

    const { PubSub } = await import('@google-cloud/pubsub');
    const pubsubClient = new PubSub({ projectId: config.project });
    stack.push(() => pubsubClient.close());
    const router = await startEventarcRouter({
      storage,
      pubsub: pubsubClient,
      // The plan's event triggers, each delivered to its function's local URL within its timeout.
      ...localTriggers(config, functionUrls, timeoutOf),
      retry: { maxAgeMs: config.maxEventAgeSeconds * 1000 },
      ...(dataDir ? { dataDir: join(dataDir, 'eventarc') } : {}),
      onActivity: (activity) => {
        if (activity.kind !== 'event.delivered') report(activity);
      },
    });
    // The first step of a stop: no new deliveries, the ones under way finish (bounded).
    stack.push(() => router.close(options.drainMs === undefined ? {} : { drainMs: options.drainMs }));
    await batch.releaseRestartNotifications();
    // Flows the last run was running when it was killed (no stop, so no report then): published
    // once onComplete's subscription exists, since a kill leaves Pub/Sub as its last snapshot
    // (or empty), which may not hold that subscription. A start that fails before this point
    // keeps their records, and the next one reports them.
    await reportInterruptedFlows(
      workflows.lostWithLastProcess,
      PLATFORM_STOPPED_UNEXPECTEDLY,
      'a crash or kill of the last run',
    );
    if (dataDir) {
      // In the background: the platform is ready meanwhile (everything it redelivers goes through
      // the router like any event), and a stop waits for it. What it reads is durable, so a
      // reconcile cut short is simply done again by the next start.
      const reconciling = reconcile(config, {
        storageUrl: storage.url,
        batchHost: batch.host,
        redeliverFinalize: (object) => router.redeliverFinalize(object),
        startedAt,
      }).then(
        (found) => {
          if (found.inputsRedelivered.length + found.jobsRenotified.length === 0) return;
          report({
            kind: 'platform',
            message: `reconciled: ${found.inputsRedelivered.length} inputs without a job sent to onUpload again, ${found.jobsRenotified.length} finished jobs without a published result notified again`,
            ...found,
          });
        },
        (err: Error) =>
          report({
            kind: 'platform',
            message: `reconcile failed (the next start tries again): ${err.message}`,
          }),
      );
      stack.push(() => reconciling);
    }

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

    const consoleServer = await startConsoleServer({
      config,
      port: ports.console,
      logDir,
      storageUrl: storage.url,
      schedulerUrl: schedulerApi.url,
      services: [
        { name: 'onUpload', address: functionUrls.onUpload as string },
        { name: 'onSchedule', address: functionUrls.onSchedule as string },
        { name: 'onComplete', address: functionUrls.onComplete as string },
        { name: 'Cloud Storage', address: storage.url },
        { name: 'Pub/Sub', address: pubsub.host },
        { name: 'Batch', address: batch.host },
        { name: 'Workflows', address: workflows.host },
        { name: 'Cloud Run', address: run.host },
        { name: 'Cloud Scheduler', address: schedulerApi.url },
      ],
      // The supervisor knows what a port probe cannot: a function restarting or crashed.
      health: async () => ({
        ...Object.fromEntries(functions.map((fn) => [fn.name, supervisedHealth(fn.health())])),
        ...(await options.health?.()),
      }),
    });
    webConsole = consoleServer;
    stack.push(() => {
      webConsole = undefined;
      return consoleServer.close();
    });

    const env: Record<string, string> = {
      ...clientEnv,
      BATCHWIRE_ON_UPLOAD_URL: functionUrls.onUpload as string,
      BATCHWIRE_ON_SCHEDULE_URL: functionUrls.onSchedule as string,
      BATCHWIRE_ON_COMPLETE_URL: functionUrls.onComplete as string,
      BATCHWIRE_SCHEDULER_URL: schedulerApi.url,
      BATCHWIRE_LOG_DIR: logDir,
      ...gcloudStorageEnv(storage.url, config.project),
      BATCHWIRE_CONSOLE_URL: consoleServer.url,
      ...gcloudApiOverrides({
        batch: clientEnv.BATCH_EMULATOR_HOST as string,
        workflows: clientEnv.WORKFLOWS_EMULATOR_HOST as string,
      }),
    };
    writeEnvFile(envPath, env);

    const functionPort = (name: FunctionName) => functions.find((fn) => fn.name === name)?.port as number;
    return {
      env,
      ports: {
        pubsub: pubsub.port,
        storage: storage.port,
        batch: batch.port,
        workflows: workflows.port,
        run: run.port,
        onUpload: functionPort('onUpload'),
        onSchedule: functionPort('onSchedule'),
        onComplete: functionPort('onComplete'),
        scheduler: schedulerApi.port,
        console: consoleServer.port,
      },
      logDir,
      fireFlow: (flow, product, client) => scheduler.fireNow(flow, product, client),
      functionHealth: () => functions.map((fn) => fn.health()),
      onFunctionHealth: (listener) => {
        healthListeners.add(listener);
        return () => healthListeners.delete(listener);
      },
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

/** A supervised function's health as the web console shows it. */
function supervisedHealth(health: FunctionHealth): { up: boolean; detail?: string } {
  if (health.state === 'up') {
    return { up: true, ...(health.restarts > 0 ? { detail: `restarted ${health.restarts}×` } : {}) };
  }
  const exit = health.lastExit;
  const cause = exit ? ` after it exited (${exit.signal ?? `code ${exit.code}`}) at ${exit.at}` : '';
  return { up: false, detail: `${health.state}${cause}` };
}

/** The delivery deadline for a function: its configured timeout, when the caller gave one. */
function timeoutFor(
  timeouts: PlatformOptions['functionTimeoutsMs'],
  name: FunctionName,
): { timeoutMs?: number } {
  const timeoutMs = timeouts?.[name];
  return timeoutMs === undefined ? {} : { timeoutMs };
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
  timeoutOf: (name: FunctionName) => { timeoutMs?: number },
): { storageTriggers: StorageTrigger[]; pubsubTriggers: PubSubTrigger[] } {
  const storageTriggers: StorageTrigger[] = [];
  const pubsubTriggers: PubSubTrigger[] = [];
  for (const fn of buildPlan(config, { configFile: DEFAULT_CONFIG_FILE }).functions) {
    const name = fn.name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    const destination = functionUrls[fn.name] as string;
    // A delivery's deadline is the function's timeout, as the plan deploys it unless overridden.
    const timeoutMs = timeoutOf(fn.name).timeoutMs ?? fn.timeoutSeconds * 1000;
    if (fn.trigger.kind === 'storage') {
      storageTriggers.push({ name, bucket: fn.trigger.bucket, destination, timeoutMs });
    }
    if (fn.trigger.kind === 'topic') {
      pubsubTriggers.push({ name, project: config.project, topic: fn.trigger.topic, destination, timeoutMs });
    }
  }
  return { storageTriggers, pubsubTriggers };
}
