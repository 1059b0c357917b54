import { describe, expect, it } from 'vitest';
import { jobStateMessages } from '#local/batch/notifications.js';
import type { JobMessage, JobState } from '#local/batch/types.js';
import { NOTIFIED_JOB_STATES } from '#shared/domain/inference-job.js';

const TOPIC = 'projects/test-project/topics/completions';
const JOB_NAME = 'projects/test-project/locations/europe-west2/jobs/bw-acme-1';

/** A stored job (proto-loader keepCase shape) carrying the notifications onUpload asks for. */
function jobWithPlatformNotifications(): JobMessage {
  return {
    name: JOB_NAME,
    uid: 'bw-acme-1-uid',
    task_groups: [],
    status: { state: 'QUEUED', status_events: [], task_groups: {}, run_duration: null },
    create_time: { seconds: '0', nanos: 0 },
    update_time: { seconds: '0', nanos: 0 },
    notifications: NOTIFIED_JOB_STATES.map((state) => ({
      pubsub_topic: TOPIC,
      message: { type: 'JOB_STATE_CHANGED', new_job_state: state },
    })),
  } as JobMessage;
}

describe('local Batch notifications: the new_job_state filter of google.cloud.batch.v1.JobNotification.Message', () => {
  it.each<[JobState, JobState]>([
    ['STATE_UNSPECIFIED', 'QUEUED'],
    ['QUEUED', 'SCHEDULED'],
    ['SCHEDULED', 'RUNNING'],
  ])('publishes nothing when the job goes from %s to %s', (previous, state) => {
    // Act
    const messages = jobStateMessages(jobWithPlatformNotifications(), previous, state, Date.now());

    // Assert
    expect(messages).toEqual([]);
  });

  it.each<JobState>(['SUCCEEDED', 'FAILED', 'CANCELLED', 'DELETION_IN_PROGRESS'])(
    'publishes exactly one message when the job becomes %s',
    (state) => {
      // Act
      const messages = jobStateMessages(jobWithPlatformNotifications(), 'RUNNING', state, Date.now());

      // Assert
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatchObject({
        topic: TOPIC,
        attributes: { Type: 'JOB_STATE_CHANGED', JobName: JOB_NAME, NewJobState: state },
      });
    },
  );
});
