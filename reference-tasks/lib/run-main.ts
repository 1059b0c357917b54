import { TaskError } from './errors.js';
import { createTaskLogger, type TaskLogger } from './log.js';

/**
 * The entry of a task process: runs `body`, and on failure writes one clear ERROR line to
 * stderr and sets the exit code (2 for a bad environment, 1 otherwise), so Batch or Cloud Run
 * marks the task failed and its log says why.
 */
export async function runMain(task: string, body: (log: TaskLogger) => Promise<void>): Promise<void> {
  const log = createTaskLogger({ task });
  try {
    await body(log);
    process.exitCode = 0;
  } catch (error) {
    const exitCode = error instanceof TaskError ? error.exitCode : 1;
    const message = error instanceof Error ? error.message : String(error);
    log.error(`${task} task failed: ${message}`, {
      error: error instanceof Error ? { name: error.name, stack: error.stack } : String(error),
      exitCode,
    });
    process.exitCode = exitCode;
  }
}
