import { createDevConsole } from '../../local/platform/console.js';
import type { Ports } from '../../local/platform/ports.js';
import { cliConfig, startLocalPlatform } from '../lib/context.js';
import { onStopSignal } from '../lib/signals.js';

export interface DevOptions {
  data?: string;
  json?: boolean;
  verbose?: boolean;
  schedules?: boolean;
  ports: Partial<Ports>;
}

/** `batchwire dev`: runs the whole platform until Ctrl-C. */
export async function dev(options: DevOptions): Promise<void> {
  const { config, path } = cliConfig();
  const devConsole = createDevConsole({ json: options.json ?? false, verbose: options.verbose ?? false });
  devConsole.activity({
    kind: 'platform',
    message: `starting Batchwire for project ${config.project} (config ${path})`,
  });
  const platform = await startLocalPlatform({
    ports: options.ports,
    ...(options.data ? { dataDir: options.data } : {}),
    schedules: options.schedules ?? true,
    console: devConsole,
  });

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

  await new Promise<void>((resolve) => {
    onStopSignal(() => {
      devConsole.activity({ kind: 'platform', message: 'stopping…' });
      platform.stop().then(resolve, resolve);
    });
  });
  devConsole.activity({ kind: 'platform', message: 'stopped' });
  // Everything the platform started is stopped; idle Google client channels (the workflow
  // connectors' among them) must not keep the terminal waiting.
  process.exit(0);
}
