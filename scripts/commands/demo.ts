import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Message } from '@google-cloud/pubsub';
import { createDevConsole } from '#local/platform/console.js';
import { PlatformRunningError } from '#local/platform/lock.js';
import type { Ports } from '#local/platform/ports.js';
import { grpcClientOptions, storageClientOptions } from '#shared/clients/endpoints.js';
import { outputTopic } from '#shared/plan/names.js';
import { attachToPlatform, CliError, cliConfig, startLocalPlatform } from '../lib/context.js';
import { formatEvent, type ReceivedEvent, receivedEvent } from '../lib/events.js';
import { onStopSignal } from '../lib/signals.js';
import { uploadFile } from './upload.js';

export interface DemoOptions {
  ports: Partial<Ports>;
  product: string;
  client: string;
  /** Records in the generated sample input (about 80 bytes each). */
  records: number;
  timeoutSeconds: number;
  verbose?: boolean;
}

/**
 * `batchwire demo`: the whole mission on this machine. Starts the platform (or uses the one
 * running here), uploads a sample input for a client, follows the Batch job to its end, and
 * prints the result event from the client's output topic and a few output lines.
 */
export async function demo(options: DemoOptions): Promise<void> {
  const { config } = cliConfig();
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const started = Date.now();
  const seconds = () => ((Date.now() - started) / 1000).toFixed(1);

  let stopPlatform: (() => Promise<void>) | undefined;
  // Ctrl-C mid-demo still stops what the demo started, the Pub/Sub emulator's JVM included.
  const removeSignalHandlers = onStopSignal(() => {
    void (stopPlatform?.() ?? Promise.resolve()).finally(() => process.exit(130));
  });
  try {
    const devConsole = createDevConsole({
      json: false,
      verbose: options.verbose ?? false,
      write: options.verbose ? (line) => process.stderr.write(`  │ ${line}\n`) : () => {},
    });
    out(
      '▶ starting the local platform (Pub/Sub emulator, Cloud Storage, Batch, Workflows, Run, three functions)…',
    );
    const platform = await startLocalPlatform({
      ports: options.ports,
      schedules: false,
      console: devConsole,
    });
    stopPlatform = platform.stop;
    out(
      `  ready in ${seconds()} s; the web console is at ${platform.env.BATCHWIRE_CONSOLE_URL} while the demo runs`,
    );
  } catch (err) {
    if (!(err instanceof PlatformRunningError)) throw err;
    attachToPlatform();
    out(`▶ using the platform already running here (pid ${err.pid})`);
  }

  const workDir = mkdtempSync(join(tmpdir(), 'batchwire-demo-'));
  const { PubSub } = await import('@google-cloud/pubsub');
  const pubsub = new PubSub({ projectId: config.project });
  const topic = pubsub.topic(outputTopic(options.product, options.client));
  try {
    const [subscription] = await topic.createSubscription(`demo-${randomUUID().slice(0, 8)}`);
    const events: ReceivedEvent[] = [];
    subscription.on('message', (message: Message) => {
      events.push(receivedEvent(message));
      message.ack();
    });

    const input = join(workDir, `reviews-${Date.now()}.jsonl`);
    writeFileSync(input, sampleInput(options.records));
    const upload = await uploadFile(input, { product: options.product, client: options.client });
    out(`▶ uploaded ${upload.uri} (${options.records} records), generation ${upload.generation}`);
    const jobId = upload.jobId;
    if (!jobId) throw new CliError(`onUpload would not start a job for ${upload.uri}`);
    out(`  onUpload derives the Batch job id from (bucket, name, generation): ${jobId}`);

    const jobName = `projects/${config.project}/locations/${config.region}/jobs/${jobId}`;
    await followJob(jobName, options.timeoutSeconds * 1000, out);

    const event = await waitFor(
      () => events.find((e) => JSON.stringify(e.data).includes(jobId)),
      options.timeoutSeconds * 1000,
    );
    if (!event) throw new CliError(`no result event on ${topic.name} within ${options.timeoutSeconds} s`);
    out(`▶ result event on ${topic.name.split('/').pop()}:`);
    out(`  ${formatEvent(event)}`);
    await subscription.close();
    await subscription.delete().catch(() => {});

    if (!event.type.endsWith('.succeeded')) {
      const reason = (event.data as { reason?: string }).reason ?? 'see the event above';
      throw new CliError(`the job did not succeed: ${reason}`);
    }
    await printOutputs(config.bucket, `${options.product}/${options.client}/outputs/${jobId}/`, out);
    out(`✔ done in ${seconds()} s: upload → Batch job → ${event.type} on the client's topic`);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
    await pubsub.close();
    await stopPlatform?.();
    removeSignalHandlers();
  }
}

/** Polls the Batch job and prints its progress until it ends. */
async function followJob(name: string, timeoutMs: number, out: (line: string) => void): Promise<void> {
  const { BatchServiceClient } = await import('@google-cloud/batch');
  const client = new BatchServiceClient(await grpcClientOptions('batch'));
  const deadline = Date.now() + timeoutMs;
  let last = '';
  try {
    while (Date.now() < deadline) {
      const job = await client
        .getJob({ name })
        .then(([j]) => j)
        .catch(() => undefined);
      const state = String(job?.status?.state ?? '');
      const counts = Object.values(job?.status?.taskGroups ?? {})[0]?.counts ?? {};
      const total = Number(job?.taskGroups?.[0]?.taskCount ?? 0);
      const done = Number(counts.SUCCEEDED ?? 0) + Number(counts.FAILED ?? 0);
      const line = job
        ? `  job ${state}${total ? `  tasks ${done}/${total} ${bar(done, total)}` : ''}`
        : '  waiting for Eventarc → onUpload to create the job…';
      if (line !== last) out(line);
      last = line;
      if (state === 'SUCCEEDED' || state === 'FAILED') return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new CliError(
      `the job did not finish within ${timeoutMs / 1000} s (batchwire logs ${name.split('/').pop()})`,
    );
  } finally {
    await client.close();
  }
}

async function printOutputs(bucket: string, prefix: string, out: (line: string) => void): Promise<void> {
  const { Storage } = await import('@google-cloud/storage');
  const storage = new Storage(storageClientOptions());
  const [files] = await storage.bucket(bucket).getFiles({ prefix });
  out(`▶ outputs under gs://${bucket}/${prefix}:`);
  for (const file of files) out(`  ${file.name.slice(prefix.length)}  ${file.metadata.size} bytes`);
  const part = files.find((f) => /part-0+\.jsonl$/.test(f.name));
  if (!part) return;
  const [contents] = await part.download();
  out('  first lines of the first part:');
  for (const line of contents.toString('utf8').split('\n').slice(0, 3)) out(`    ${line}`);
}

function bar(done: number, total: number): string {
  const width = 20;
  const filled = Math.round((done / Math.max(total, 1)) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

async function waitFor<T>(probe: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

/** A deterministic sample of customer reviews, one JSON object a line. */
export function sampleInput(records: number): string {
  const words = [
    'great',
    'slow',
    'delivery',
    'fits',
    'well',
    'colour',
    'as',
    'pictured',
    'would',
    'buy',
    'again',
  ];
  const lines: string[] = [];
  for (let i = 0; i < records; i++) {
    const text = Array.from({ length: 6 }, (_, k) => words[(i * 7 + k * 3) % words.length]).join(' ');
    lines.push(JSON.stringify({ id: `review-${String(i).padStart(6, '0')}`, text, stars: (i % 5) + 1 }));
  }
  return `${lines.join('\n')}\n`;
}
