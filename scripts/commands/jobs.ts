import { grpcClientOptions } from '#shared/clients/endpoints.js';
import { attachToPlatform, cliConfig } from '../lib/context.js';

/** `batchwire jobs`: the Batch jobs of the local platform with their states. */
export async function jobs(options: { json?: boolean }): Promise<void> {
  attachToPlatform();
  const { config } = cliConfig();
  const { BatchServiceClient } = await import('@google-cloud/batch');
  const client = new BatchServiceClient(await grpcClientOptions('batch'));
  try {
    const [list] = await client.listJobs({ parent: `projects/${config.project}/locations/${config.region}` });
    const rows = list
      .map((job) => ({
        job: job.name?.split('/').pop() ?? '',
        state: String(job.status?.state ?? ''),
        tasks: Number(job.taskGroups?.[0]?.taskCount ?? 0),
        product: job.labels?.product ?? '',
        client: job.labels?.client ?? '',
        created: job.createTime?.seconds ? new Date(Number(job.createTime.seconds) * 1000).toISOString() : '',
      }))
      .sort((a, b) => a.created.localeCompare(b.created));
    if (options.json) {
      process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      return;
    }
    if (rows.length === 0) {
      process.stdout.write('no jobs yet\n');
      return;
    }
    process.stdout.write(
      `${['JOB'.padEnd(48), 'STATE'.padEnd(12), 'TASKS', 'PRODUCT/CLIENT'.padEnd(30), 'CREATED'].join(' ')}\n`,
    );
    for (const row of rows) {
      process.stdout.write(
        `${[row.job.padEnd(48), row.state.padEnd(12), String(row.tasks).padStart(5), `${row.product}/${row.client}`.padEnd(30), row.created].join(' ')}\n`,
      );
    }
  } finally {
    await client.close();
  }
}
