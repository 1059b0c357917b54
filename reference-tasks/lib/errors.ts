/**
 * Errors of the reference tasks. `reference-tasks/` is built into its own image and does not import
 * `shared/`, so it carries its own two-kind split: a task exits 2 for a usage error (the
 * environment is wrong; a retry cannot help) and 1 for anything else.
 */
export class TaskError extends Error {
  readonly exitCode: number = 1;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The task was started with a missing or invalid environment variable. */
export class TaskConfigError extends TaskError {
  override readonly exitCode: number = 2;
}

/** The input cannot be read or is not usable as a whole (not a bad line: those are rejects). */
export class InputError extends TaskError {}
