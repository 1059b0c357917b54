import { attachToPlatform, CliError, cliConfig } from '../lib/context.js';

interface SchedulerJobResource {
  name: string;
  schedule?: string;
  timeZone: string;
  state: string;
  scheduleTime?: string;
}

/** The local scheduler's base URL and the jobs' parent, from the running platform. */
function schedulerApi(): { url: string; parent: string } {
  const env = attachToPlatform();
  const { config } = cliConfig();
  if (!env.BATCHWIRE_SCHEDULER_URL)
    throw new CliError('the running platform has no scheduler address in .batchwire/env');
  return {
    url: env.BATCHWIRE_SCHEDULER_URL,
    parent: `projects/${config.project}/locations/${config.region}`,
  };
}

/** `batchwire schedules`: the scheduler's jobs, their cron and when each fires next. */
export async function listSchedules(options: { json?: boolean }): Promise<void> {
  const { url, parent } = schedulerApi();
  const response = await fetch(`${url}/v1/${parent}/jobs`);
  if (!response.ok) throw new CliError(`the scheduler answered ${response.status}: ${await response.text()}`);
  const { jobs } = (await response.json()) as { jobs: SchedulerJobResource[] };
  if (options.json) {
    process.stdout.write(`${JSON.stringify(jobs, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    `${['JOB'.padEnd(40), 'SCHEDULE'.padEnd(16), 'TIME ZONE'.padEnd(18), 'NEXT'].join(' ')}\n`,
  );
  for (const job of jobs) {
    const id = job.name.split('/').pop() ?? job.name;
    process.stdout.write(
      `${[id.padEnd(40), (job.schedule ?? '(manual)').padEnd(16), job.timeZone.padEnd(18), job.scheduleTime ?? '-'].join(' ')}\n`,
    );
  }
}

/** `batchwire schedules run JOB`: fires a scheduler job now, as `gcloud scheduler jobs run` does. */
export async function runSchedule(job: string): Promise<void> {
  const { url, parent } = schedulerApi();
  const response = await fetch(`${url}/v1/${parent}/jobs/${encodeURIComponent(job)}:run`, { method: 'POST' });
  const body = (await response.json()) as {
    lastAttempt?: { status: number; body: unknown };
    error?: { message: string };
  };
  if (!response.ok) throw new CliError(body.error?.message ?? `the scheduler answered ${response.status}`);
  const attempt = body.lastAttempt;
  process.stdout.write(`${job}: onSchedule answered ${attempt?.status} ${JSON.stringify(attempt?.body)}\n`);
  if (attempt && attempt.status >= 400) process.exitCode = 1;
}
