#!/usr/bin/env -S node --optimize-for-size
// `--optimize-for-size` (here, and in the npm scripts that start the CLI): V8 grows the heap of
// `batchwire dev` in smaller steps and collects sooner. Its live heap is about 70 MB, yet without
// the flag a 500-upload burst left it at a 470 MiB peak, 204 MiB with it
// (`BENCH_BURST_N=500 node dist/bench/run.js burst`, which starts dev the same way).
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_PORTS, type PortName, portFlag } from '#local/platform/ports.js';
import { BatchwireError } from '#shared/runtime/errors.js';
import { CliError } from './lib/context.js';

// The CLI creates Google clients against the local cloud only: never probe the GCE metadata server.
process.env.METADATA_SERVER_DETECTION ??= 'none';

const program = new Command()
  .name('batchwire')
  .description('Batchwire: event-driven ML batch platform on Google Cloud, and its local cloud')
  .showHelpAfterError('(add --help for usage)');

const integer = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('not a port number');
  return n;
};

const positiveInteger = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('not a positive integer');
  return n;
};

/** `--<service>-port N` for every port of the local platform (dev and demo start it). */
function withPortOptions(command: Command): Command {
  for (const [name, port] of Object.entries(DEFAULT_PORTS)) {
    command.addOption(
      new Option(`${portFlag(name as PortName)} <port>`, `port of ${name} (0: any free port)`)
        .default(port)
        .argParser(integer),
    );
  }
  return command;
}

function portsFrom(options: Record<string, unknown>): Record<PortName, number> {
  return Object.fromEntries(
    Object.keys(DEFAULT_PORTS).map((name) => [name, options[`${name}Port`] as number]),
  ) as Record<PortName, number>;
}

withPortOptions(
  program
    .command('dev')
    .description('run the whole platform on this machine until Ctrl-C (what `npm start` runs)')
    .option('--data <dir>', 'keep buckets, messages and job records in this folder across restarts')
    .option('--json', 'print activity as JSON lines')
    .option('--verbose', 'also print debug logs and framework output')
    .option('--no-schedules', 'do not fire flows on their cron schedules')
    .option(
      '--max-tasks <n>',
      'task processes (Batch and Cloud Run job tasks) that may run at once; more jobs wait QUEUED (default: 2 per core, capped by free memory at 512 MiB per task)',
      positiveInteger,
    ),
).action(async (options: Record<string, unknown>) => {
  const { dev } = await import('./commands/dev.js');
  await dev({
    ports: portsFrom(options),
    ...(options.maxTasks === undefined ? {} : { maxTasks: options.maxTasks as number }),
    ...(options.data ? { data: String(options.data) } : {}),
    json: Boolean(options.json),
    verbose: Boolean(options.verbose),
    schedules: options.schedules !== false,
  });
});

withPortOptions(
  program
    .command('demo')
    .description(
      'start the platform (or use the one running here), upload a sample input, follow its job, print the result event',
    )
    .option('--product <id>', 'product', 'mlops-template')
    .option('--client <id>', 'client', 'acme')
    .option('--records <n>', 'records in the sample input', (v) => Number.parseInt(v, 10), 30_000)
    .option('--timeout <seconds>', 'give up after this long', (v) => Number.parseInt(v, 10), 120)
    .option('--verbose', 'also show the platform activity'),
).action(async (options) => {
  const { demo } = await import('./commands/demo.js');
  await demo({
    ports: portsFrom(options),
    product: options.product,
    client: options.client,
    records: options.records,
    timeoutSeconds: options.timeout,
    verbose: Boolean(options.verbose),
  });
});

program
  .command('upload <file>')
  .description('upload a file as a client does, under {product}/{client}/inputs/')
  .requiredOption('--product <id>', 'product')
  .requiredOption('--client <id>', 'client')
  .option('--name <name>', 'object name under inputs/ (default: the file name)')
  .action(async (file: string, options) => {
    const { upload } = await import('./commands/upload.js');
    await upload(file, options);
  });

program
  .command('run <flow>')
  .description('start a flow now through onSchedule')
  .requiredOption('--product <id>', 'product')
  .option('--client <id>', 'client (for per-client flows)')
  .option('--param <key=value...>', 'flow params')
  .option('--idempotency-key <key>', 'a repeat with the same key starts nothing new')
  .action(async (flow: string, options) => {
    const { run } = await import('./commands/run.js');
    await run(flow, options);
  });

program
  .command('jobs')
  .description('list the Batch jobs of the local platform with their states')
  .option('--json', 'as JSON')
  .action(async (options) => {
    const { jobs } = await import('./commands/jobs.js');
    await jobs(options);
  });

program
  .command('logs <job>')
  .description("print a local job's task logs")
  .action(async (job: string) => {
    const { logs } = await import('./commands/logs.js');
    logs(job);
  });

const schedules = program
  .command('schedules')
  .description(
    "list the scheduler's jobs (one per flow, per client for per-client flows) and when each fires next",
  )
  .option('--json', 'as JSON')
  .action(async (options) => {
    const { listSchedules } = await import('./commands/schedules.js');
    await listSchedules(options);
  });
schedules
  .command('run <job>')
  .description(
    "fire a scheduler job now, with Cloud Scheduler's headers, as `gcloud scheduler jobs run` does",
  )
  .action(async (job: string) => {
    const { runSchedule } = await import('./commands/schedules.js');
    await runSchedule(job);
  });

program
  .command('tail')
  .description("print a client's output events as they arrive")
  .requiredOption('--product <id>', 'product')
  .requiredOption('--client <id>', 'client')
  .option('--json', 'one JSON line per event')
  .action(async (options) => {
    const { tail } = await import('./commands/tail.js');
    await tail(options);
  });

program
  .command('validate [files...]')
  .description(
    'check batchwire.yaml and every workflow in workflows/, or only the given workflow files (any Workflows definition)',
  )
  .option('--workflows <dir>', "check the workflows in this folder instead of the repository's workflows/")
  .action(async (files: string[], options: { workflows?: string }) => {
    const { validate } = await import('./commands/validate.js');
    validate({ ...(options.workflows ? { workflowsDir: options.workflows } : {}), files });
  });

program
  .command('workflow')
  .description('Cloud Workflows definitions on the local interpreter')
  .command('run <file>')
  .description(
    'run a workflow file on the local interpreter (its connectors against the running platform) and print its result as JSON',
  )
  .option('--data <json>', 'the execution argument, as JSON')
  .action(async (file: string, options: { data?: string }) => {
    const { runWorkflowFile } = await import('./commands/workflow.js');
    await runWorkflowFile(file, options);
  });

program
  .command('plan')
  .description('what the config needs in Google Cloud: a summary, JSON, a gcloud script or Terraform JSON')
  .option('--config <file>', "the environment's config (default: BATCHWIRE_CONFIG, else batchwire.yaml)")
  .addOption(
    new Option('--format <format>', 'output format')
      .choices(['summary', 'json', 'gcloud', 'terraform'])
      .default('summary'),
  )
  .option('--json', 'same as --format json')
  .option('--client <product/client>', 'only what onboarding this client creates')
  .option('--out <dir>', 'folder for the Terraform files (--format terraform)')
  .action(
    async (options: { config?: string; format: string; json?: boolean; client?: string; out?: string }) => {
      const { plan } = await import('./commands/plan.js');
      plan({
        format: (options.json ? 'json' : options.format) as 'summary' | 'json' | 'gcloud' | 'terraform',
        ...(options.config ? { config: options.config } : {}),
        ...(options.client ? { client: options.client } : {}),
        ...(options.out ? { out: options.out } : {}),
      });
    },
  );

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // One clear line (or one line per problem for validate) and a non-zero exit; no stack traces
  // for the errors users make.
  const known =
    err instanceof CliError ||
    err instanceof BatchwireError ||
    (err as Error).name === 'PlatformRunningError';
  process.stderr.write(
    `batchwire: ${known ? (err as Error).message : ((err as Error).stack ?? String(err))}\n`,
  );
  process.exitCode = err instanceof CliError ? err.exitCode : 1;
}
