import type { PubSub, Topic } from '@google-cloud/pubsub';
import type { Logger } from '#shared/runtime/logger.js';
import { PUBLISH_CALL_OPTIONS, PUBLISH_DEADLINE_MS } from './notification-retry.js';
import type { JobMessage, JobNotificationMessage, JobState, TaskState } from './types.js';

/**
 * What Cloud Batch publishes for `notifications`, reproduced from messages Batch really sent
 * (a Google sample's captured notification, GoogleCloudPlatform-licensed evekhm/gcp-dragen
 * `cloud_functions/get_status/main.py`):
 *
 *   attributes: { JobName: 'projects/593129167048/locations/us-central1/jobs/job-dragen-…',
 *                 JobUID: 'job-dragen-ae0e459-1866e3ae-c20b-4ce50', NewJobState: 'SUCCEEDED',
 *                 Region: 'us-central1', Type: 'JOB_STATE_CHANGED' }
 *   data: 'Job state was updated: jobName=projects/…/jobs/job-dragen-…, jobUID=job-dragen-…,
 *          previousState=RUNNING, currentState=SUCCEEDED, timestamp=2023-08-24T16:21:14-07:00'
 *
 * `JobName` is the full resource name (with the project as Batch wrote it), so a consumer can
 * GetJob it directly. Task notifications are modelled on the same pattern (`TaskName`,
 * `TaskUID`, `NewTaskState`; consumers in the wild read exactly these names).
 */
export interface NotificationMessage {
  topic: string;
  data: string;
  attributes: Record<string, string>;
}

/** Region of a job resource name `projects/P/locations/L/jobs/J`. */
function regionOf(jobName: string): string {
  return jobName.split('/')[3] ?? '';
}

/** RFC 3339 without fractions, as Batch writes it in the body. */
function bodyTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function wantsJobState(config: JobNotificationMessage, state: JobState): boolean {
  const message = config.message;
  if (!message) return false; // Batch: without `message`, no message is sent.
  const type = message.type ?? 'TYPE_UNSPECIFIED';
  const wanted = message.new_job_state ?? 'STATE_UNSPECIFIED';
  if (type === 'TASK_STATE_CHANGED') return false;
  if (type === 'JOB_STATE_CHANGED') return wanted === 'STATE_UNSPECIFIED' || wanted === state;
  return wanted !== 'STATE_UNSPECIFIED' && wanted === state;
}

function wantsTaskState(config: JobNotificationMessage, state: TaskState): boolean {
  const message = config.message;
  if (!message) return false;
  const type = message.type ?? 'TYPE_UNSPECIFIED';
  const wanted = message.new_task_state ?? 'STATE_UNSPECIFIED';
  if (type === 'JOB_STATE_CHANGED') return false;
  if (type === 'TASK_STATE_CHANGED') return wanted === 'STATE_UNSPECIFIED' || wanted === state;
  return wanted !== 'STATE_UNSPECIFIED' && wanted === state;
}

/** The messages Batch would publish for a job's state change, one per matching notification. */
export function jobStateMessages(
  job: JobMessage,
  previous: JobState,
  state: JobState,
  at: number,
): NotificationMessage[] {
  const data =
    `Job state was updated: jobName=${job.name}, jobUID=${job.uid}, ` +
    `previousState=${previous}, currentState=${state}, timestamp=${bodyTime(at)}`;
  return (job.notifications ?? [])
    .filter((config) => config.pubsub_topic && wantsJobState(config, state))
    .map((config) => ({
      topic: config.pubsub_topic as string,
      data,
      attributes: {
        Type: 'JOB_STATE_CHANGED',
        JobName: job.name,
        JobUID: job.uid,
        NewJobState: state,
        Region: regionOf(job.name),
      },
    }));
}

/** The messages Batch would publish for a task's state change. */
export function taskStateMessages(
  job: JobMessage,
  task: { name: string; uid: string },
  previous: TaskState,
  state: TaskState,
  at: number,
): NotificationMessage[] {
  const data =
    `Task state was updated: taskName=${task.name}, taskUID=${task.uid}, ` +
    `previousState=${previous}, currentState=${state}, timestamp=${bodyTime(at)}`;
  return (job.notifications ?? [])
    .filter((config) => config.pubsub_topic && wantsTaskState(config, state))
    .map((config) => ({
      topic: config.pubsub_topic as string,
      data,
      attributes: {
        Type: 'TASK_STATE_CHANGED',
        JobName: job.name,
        JobUID: job.uid,
        TaskName: task.name,
        TaskUID: task.uid,
        NewTaskState: state,
        Region: regionOf(job.name),
      },
    }));
}

// The client retries within PUBLISH_DEADLINE_MS; this only guards against a call that never settles.
const PUBLISH_TIMEOUT_MS = PUBLISH_DEADLINE_MS + 5_000;
/** How long close() waits for queued notifications. */
const CLOSE_TIMEOUT_MS = 10_000;

/**
 * Publishes notifications with the real Pub/Sub client to the emulator. Messages of one job are
 * published one after another (each awaited), so subscribers see them in state order; a missing
 * topic is logged and skipped, as the job itself must not depend on its notifications.
 */
export class NotificationPublisher {
  private client: Promise<PubSub> | undefined;
  private readonly topics = new Map<string, Topic>();
  private readonly pending = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly host: string | undefined,
    private readonly log: Logger,
  ) {}

  /** Queues `messages` after `previous` (the job's chain); resolves once they were attempted. */
  chain(previous: Promise<void>, messages: NotificationMessage[]): Promise<void> {
    if (messages.length === 0) return previous;
    const next = previous.then(async () => {
      for (const message of messages) await this.publish(message);
    });
    this.pending.add(next);
    void next.finally(() => this.pending.delete(next));
    return next;
  }

  private async publish(message: NotificationMessage): Promise<void> {
    if (this.closed) return;
    if (!this.host) {
      // Without an emulator there is nowhere local to publish; never fall back to Google Cloud.
      this.log.warn({ topic: message.topic }, 'no Pub/Sub emulator configured: Batch notification dropped');
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      const topic = await this.topic(message.topic);
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`publish timed out after ${PUBLISH_TIMEOUT_MS} ms`)),
          PUBLISH_TIMEOUT_MS,
        );
      });
      await Promise.race([
        topic.publishMessage({ data: Buffer.from(message.data), attributes: message.attributes }),
        timeout,
      ]);
    } catch (err) {
      const code = (err as { code?: number }).code;
      this.log.warn(
        { topic: message.topic, code, err },
        code === 5
          ? 'notification topic does not exist: Batch notification dropped'
          : 'Batch notification not published',
      );
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  private async topic(name: string): Promise<Topic> {
    const cached = this.topics.get(name);
    if (cached) return cached;
    this.client ??= import('@google-cloud/pubsub').then(
      ({ PubSub }) =>
        new PubSub({ projectId: name.split('/')[1], apiEndpoint: this.host, emulatorMode: true }),
    );
    const client = await this.client;
    // One message per batch: a state change is published now, not after a batching delay.
    const topic = client.topic(name, { batching: { maxMessages: 1 }, gaxOpts: PUBLISH_CALL_OPTIONS });
    this.topics.set(name, topic);
    return topic;
  }

  /** Waits (bounded) for queued notifications, then closes the client. */
  async close(): Promise<void> {
    await Promise.race([
      Promise.allSettled([...this.pending]),
      new Promise((resolve) => setTimeout(resolve, CLOSE_TIMEOUT_MS).unref()),
    ]);
    this.closed = true;
    const client = this.client;
    this.client = undefined;
    this.topics.clear();
    if (client) await (await client).close();
  }
}
