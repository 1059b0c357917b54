import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonRecords, writeFileAtomically } from '../atomic-file.js';
import { duration, millis, timestamp } from '../grpc/timestamp.js';
import type { ExecutionResource } from './server.js';

/** What an execution found still recorded as running at a start failed with. */
export const LOST_WITH_THE_PROCESS =
  'the local Workflows service stopped unexpectedly (a crash or a kill) while this execution ran; its steps stopped with it';

const SUFFIX = '.json';
const EXECUTION_NAME = /^projects\/[^/]+\/locations\/[^/]+\/workflows\/[^/]+\/executions\/([^/]+)$/;

/**
 * The executions that are ACTIVE, one file each (`<execution-id>.json`, the execution as it was
 * created), kept so that a process that ends without closing the service (SIGKILL, a crash, the
 * OOM killer) leaves a trace of what it was running: executions themselves live in memory, and
 * their clients would otherwise wait forever. A file is written once, when the execution starts
 * (never per step: a flow's start is rare, its steps are not), and removed when the execution
 * ends; whoever reports an execution cut short removes its file once the report is out.
 */
export class RunningExecutionStore {
  constructor(
    private readonly dir: string,
    private readonly onUnreadable: (file: string, err: unknown) => void,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  private file(name: string): string {
    const id = EXECUTION_NAME.exec(name)?.[1];
    if (!id) throw new Error(`not an execution name: ${name}`);
    return join(this.dir, `${id}${SUFFIX}`);
  }

  /** Records `execution` as running (atomically: a crash mid-write leaves no torn record). */
  add(execution: ExecutionResource): void {
    writeFileAtomically(this.file(execution.name), JSON.stringify(execution));
  }

  /** Forgets `name` (none recorded is fine: safe to call twice). */
  remove(name: string): void {
    rmSync(this.file(name), { force: true });
  }

  /** Every readable record; leftovers of interrupted writes are removed, unreadable files skipped. */
  loadAll(): ExecutionResource[] {
    return readJsonRecords(this.dir, checkExecution, this.onUnreadable);
  }
}

function checkExecution(value: unknown): ExecutionResource {
  const execution = value as ExecutionResource;
  if (
    typeof execution?.name !== 'string' ||
    !EXECUTION_NAME.test(execution.name) ||
    typeof execution.argument !== 'string' ||
    millis(execution.start_time) === undefined ||
    Number.isNaN(millis(execution.start_time))
  ) {
    throw new Error('not a running execution record');
  }
  return execution;
}

/**
 * An execution recorded as running when its process ended without closing the service, as it
 * is known after the restart: FAILED (nothing runs it any more, and nothing ever will: re-running
 * it could repeat the side effects of steps that already ran), ended `at` (when the loss was
 * found: the moment the process died is not known).
 */
export function lostExecution(running: ExecutionResource, at: number): ExecutionResource {
  const started = millis(running.start_time) ?? at;
  return {
    ...running,
    state: 'FAILED',
    end_time: timestamp(at),
    duration: duration(at - started),
    error: {
      payload: JSON.stringify({ message: LOST_WITH_THE_PROCESS, tags: ['SystemError'] }),
      context: LOST_WITH_THE_PROCESS,
      stack_trace: { elements: [] },
    },
  };
}
