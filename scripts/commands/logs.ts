import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { JOB_ID_PATTERN } from '#shared/domain/job-id.js';
import { attachToPlatform, CliError } from '../lib/context.js';

/** `batchwire logs JOB`: prints every task attempt's log of a local job. */
export function logs(job: string): void {
  const env = attachToPlatform();
  const jobId = job.split('/').pop() as string;
  // A job id, never a path: `batchwire logs ..` must not read outside the log folder.
  if (!JOB_ID_PATTERN.test(jobId)) throw new CliError(`"${job}" is not a job id or job name`);
  const dir = join(env.BATCHWIRE_LOG_DIR ?? '', jobId);
  if (!env.BATCHWIRE_LOG_DIR || !existsSync(dir))
    throw new CliError(`no logs for job ${jobId} (looked in ${dir})`);
  const files = readdirSync(dir)
    .filter((name) => name.endsWith('.log'))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  for (const file of files) {
    process.stdout.write(`==> ${jobId}/${file} <==\n${readFileSync(join(dir, file), 'utf8')}\n`);
  }
}
