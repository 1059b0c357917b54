import { describe, expect, it } from 'vitest';
import {
  FINAL_JOB_STATES,
  isFinalJobState,
  jobFailureDescription,
  jobStateDescription,
  parseExitCode,
  parseJobTransition,
  parseTaskIndex,
  taskStateDescription,
} from '#shared/domain/batch-states.js';
import {
  type FinishedJobResource,
  failureReason,
  jobTransitions,
} from '#shared/domain/completion/finished-job.js';

/**
 * `status.statusEvents` of a real Cloud Batch job that failed (exit code 127), as printed by
 * `gcloud batch jobs describe batch-bbdp-000002-1782363960 --location=europe-west4
 * --format='value(status.statusEvents)'` on 2026-06-25 (a session transcript kept in a public
 * repository, found with the code search). Batch writes no space after the job name's period.
 */
const JOB = 'projects/943461313144/locations/europe-west4/jobs/batch-bbdp-000002-1782363960';
const CAPTURED_STATUS_EVENTS = [
  {
    type: 'STATUS_CHANGED',
    description: `Job state is set from QUEUED to SCHEDULED for job ${JOB}.`,
    eventTime: '2026-06-25T05:06:05.855552307Z',
  },
  {
    type: 'STATUS_CHANGED',
    description: `Job state is set from SCHEDULED to RUNNING for job ${JOB}.`,
    eventTime: '2026-06-25T05:07:17.548517753Z',
  },
  {
    type: 'STATUS_CHANGED',
    description:
      `Job state is set from RUNNING to FAILED for job ${JOB}.Job failed due to task failure. ` +
      'Specifically, task with index 0 failed due to the following task event: "Task state is updated ' +
      'from RUNNING to FAILED on zones/europe-west4-c/instances/1331099789278906760 with exit code 127."',
    eventTime: '2026-06-25T05:07:18.658472680Z',
  },
];

/** An RFC 3339 time as the gRPC client hands it over (a Timestamp: seconds and nanos). */
function timestamp(rfc3339: string): { seconds: number; nanos: number } {
  const fraction = /\.(\d+)Z$/.exec(rfc3339)?.[1] ?? '';
  return { seconds: Math.floor(Date.parse(rfc3339) / 1000), nanos: Number(fraction.padEnd(9, '0')) };
}

function capturedJob(): FinishedJobResource {
  return {
    name: JOB,
    uid: 'batch-bbdp-000002-1782363960',
    taskGroups: [{ taskCount: 1, taskSpec: { maxRetryCount: 0 } }],
    status: {
      state: 'FAILED',
      statusEvents: CAPTURED_STATUS_EVENTS.map((event) => ({
        ...event,
        eventTime: timestamp(event.eventTime),
      })),
    },
  };
}

describe("Batch's status wording, read from a real job's status events", () => {
  it('finds every job transition with its time', () => {
    // Act
    const transitions = jobTransitions(capturedJob());

    // Assert
    expect(transitions).toEqual([
      { from: 'QUEUED', to: 'SCHEDULED', time: '2026-06-25T05:06:05.855Z' },
      { from: 'SCHEDULED', to: 'RUNNING', time: '2026-06-25T05:07:17.548Z' },
      { from: 'RUNNING', to: 'FAILED', time: '2026-06-25T05:07:18.658Z' },
    ]);
  });

  it('finds the failed task and its exit code in the FAILED event', () => {
    // Arrange
    const failed = CAPTURED_STATUS_EVENTS[2]?.description ?? '';

    // Act + Assert
    expect(parseTaskIndex(failed)).toBe(0);
    expect(parseExitCode(failed)).toBe(127);
    expect(failureReason(capturedJob(), 'FAILED')).toMatch(
      /^1 of 1 task failed; task 0 exited with code 127 after 1 attempt; /,
    );
  });
});

describe("the writers produce Batch's wording, which the parsers read back", () => {
  it('words a job transition as Batch does', () => {
    // Act
    const text = jobStateDescription('QUEUED', 'SCHEDULED', JOB);

    // Assert: the captured text, character for character
    expect(text).toBe(CAPTURED_STATUS_EVENTS[0]?.description);
    expect(parseJobTransition(text)).toEqual({ from: 'QUEUED', to: 'SCHEDULED' });
  });

  it('words a task failure and the job failure that quotes it as Batch does', () => {
    // Act
    const task = taskStateDescription(
      'RUNNING',
      'FAILED',
      'zones/europe-west4-c/instances/1331099789278906760',
      127,
    );
    const job = jobFailureDescription('RUNNING', JOB, 0, task);

    // Assert
    expect(job).toBe(CAPTURED_STATUS_EVENTS[2]?.description);
    expect(parseJobTransition(job)).toEqual({ from: 'RUNNING', to: 'FAILED' });
  });

  it('words a task start without an exit code, and a failure of an unknown task without an index', () => {
    // Act
    const start = taskStateDescription('ASSIGNED', 'RUNNING', 'zones/z/instances/i');
    const job = jobFailureDescription('RUNNING', 'j', undefined, 'x');

    // Assert
    expect(start).toBe('Task state is updated from ASSIGNED to RUNNING on zones/z/instances/i.');
    expect(parseExitCode(start)).toBeNull();
    expect(parseTaskIndex(job)).toBeNull();
  });

  it('knows which job states are final', () => {
    expect(FINAL_JOB_STATES.every(isFinalJobState)).toBe(true);
    expect(['RUNNING', 'DELETION_IN_PROGRESS', 'CANCELLATION_IN_PROGRESS'].some(isFinalJobState)).toBe(false);
  });
});
