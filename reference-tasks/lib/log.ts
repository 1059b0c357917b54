/**
 * One JSON line per entry in the shape Cloud Logging parses from a container's output
 * (`severity`, `message`), the same shape Batch and Cloud Run ship to Cloud Logging. Errors
 * go to stderr, the rest to stdout. Kept dependency-free: the task image stays small.
 */
export interface TaskLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A logger binding `fields` (task name, index) to every entry. */
export function createTaskLogger(
  fields: Record<string, unknown>,
  out: { write(line: string): unknown } = process.stdout,
  err: { write(line: string): unknown } = process.stderr,
): TaskLogger {
  const emit = (stream: { write(line: string): unknown }, severity: string) => {
    return (message: string, extra: Record<string, unknown> = {}) => {
      stream.write(
        `${JSON.stringify({ severity, message, time: new Date().toISOString(), ...fields, ...extra })}\n`,
      );
    };
  };
  return { info: emit(out, 'INFO'), warn: emit(out, 'WARNING'), error: emit(err, 'ERROR') };
}
