import { createDevConsole } from '#local/platform/console.js';
import type { FunctionHealth } from '#local/platform/index.js';
import type { Ports } from '#local/platform/ports.js';
import { cliConfig, startLocalPlatform } from '../lib/context.js';
import { onStopSignal } from '../lib/signals.js';

export interface DevOptions {
  data?: string;
  json?: boolean;
  verbose?: boolean;
  schedules?: boolean;
  /** Task processes that may run at once (`--max-tasks`); default from the machine. */
  maxTasks?: number;
  ports: Partial<Ports>;
}

/** The longest a stop may take before `batchwire dev` exits anyway. */
const STOP_TIMEOUT_MS = 90_000;
/** After a failed start (already cleaned up, error printed), exit at the latest this much later. */
const FAILED_START_EXIT_MS = 5_000;

/** `batchwire dev`: runs the whole platform until Ctrl-C (SIGINT) or SIGTERM. */
export async function dev(options: DevOptions): Promise<void> {
  const { config, path } = cliConfig();
  const devConsole = createDevConsole({ json: options.json ?? false, verbose: options.verbose ?? false });
  devConsole.activity({
    kind: 'platform',
    message: `starting Batchwire for project ${config.project} (config ${path})`,
  });
  let platform: Awaited<ReturnType<typeof startLocalPlatform>>;
  try {
    platform = await startLocalPlatform({
      ports: options.ports,
      ...(options.data ? { dataDir: options.data } : {}),
      schedules: options.schedules ?? true,
      ...(options.maxTasks === undefined ? {} : { maxTasks: options.maxTasks }),
      console: devConsole,
    });
  } catch (err) {
    // The failed start stopped what it had started; whatever handle is left (a half-opened
    // server, an idle client channel) must not keep the terminal, or a supervisor, waiting.
    setTimeout(() => process.exit(1), FAILED_START_EXIT_MS).unref();
    throw err;
  }

  const { env } = platform;
  devConsole.activity({
    kind: 'platform',
    message: [
      'ready —',
      `console ${env.BATCHWIRE_CONSOLE_URL}`,
      `storage ${env.STORAGE_EMULATOR_HOST}`,
      `pubsub ${env.PUBSUB_EMULATOR_HOST}`,
      `batch ${env.BATCH_EMULATOR_HOST}`,
      `workflows ${env.WORKFLOWS_EMULATOR_HOST}`,
      `run ${env.RUN_EMULATOR_HOST}`,
      `onUpload ${env.BATCHWIRE_ON_UPLOAD_URL}`,
      `onSchedule ${env.BATCHWIRE_ON_SCHEDULE_URL}`,
      `onComplete ${env.BATCHWIRE_ON_COMPLETE_URL}`,
      `scheduler ${env.BATCHWIRE_SCHEDULER_URL}`,
      '(also in .batchwire/env; Ctrl-C stops)',
    ].join('  '),
    ...env,
  });

  // One line per change of a function's process: pid when up, why when it went down.
  const showHealth = (health: FunctionHealth) =>
    devConsole.activity({
      kind: 'function.health',
      message:
        health.state === 'up'
          ? `${health.name} up (pid ${health.pid}${health.restarts ? `, ${health.restarts} restarts` : ''})`
          : health.state === 'crashed'
            ? `${health.name} keeps failing to start (${health.restarts} restarts so far); still retrying`
            : `${health.name} ${health.state}`,
      ...health,
    });
  for (const health of platform.functionHealth()) showHealth(health);
  platform.onFunctionHealth(showHealth);

  const stopped = await new Promise<boolean>((resolve) => {
    onStopSignal(() => {
      devConsole.activity({
        kind: 'platform',
        message: 'stopping: no new deliveries, finishing the ones under way…',
      });
      // Every step of the stop is bounded already; this bounds the whole, so that a stop can
      // never leave the terminal waiting (e.g. a SIGTERM to the whole process group that took
      // the emulator and the functions down before the platform could stop them itself).
      const hardStop = setTimeout(() => resolve(false), STOP_TIMEOUT_MS);
      hardStop.unref();
      platform.stop().then(
        () => resolve(true),
        () => resolve(true),
      );
    });
  });
  devConsole.activity({
    kind: 'platform',
    message: stopped ? 'stopped' : `stop did not finish within ${STOP_TIMEOUT_MS / 1000} s; exiting anyway`,
  });
  // Everything the platform started is stopped; idle Google client channels (the workflow
  // connectors' among them) must not keep the terminal waiting.
  process.exit(stopped ? 0 : 1);
}
