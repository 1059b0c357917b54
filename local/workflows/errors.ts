import { PermanentError } from '#shared/runtime/errors.js';

/** A workflow file that cannot be parsed: the message starts with `file:line:`. */
export class WorkflowSyntaxError extends PermanentError {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly detail: string,
  ) {
    super(`${file}:${line}: ${detail}`);
  }
}

/** One frame of the stack of a failed execution, innermost first. */
export interface WorkflowStackFrame {
  step: string;
  routine: string;
  line: number;
}

/**
 * An execution that ended with an unhandled error, reported as Workflows reports it:
 * `payload` is the raised value (a string, or a map with `message` and `tags`), `context`
 * reads `RuntimeError: "boom"\nin step "fail", routine "main", line: 12`.
 */
export class WorkflowRuntimeError extends PermanentError {
  constructor(
    readonly payload: unknown,
    readonly context: string,
    readonly line?: number,
    /** Innermost first: one frame per subworkflow invocation (Execution.error.stack_trace). */
    readonly frames: WorkflowStackFrame[] = [],
  ) {
    super(context);
  }
}

/** The execution was cancelled through `runtime.signal`; no `try` step can catch this. */
export class WorkflowCancelledError extends WorkflowRuntimeError {
  constructor(context = 'Execution cancelled') {
    super({ message: 'Execution cancelled', tags: ['CancelledError'] }, context);
  }
}

/**
 * A value raised inside a running workflow (by `raise`, by an operator, by a standard library
 * function or by a connector). It is what `try`/`except` catches and what `retry` predicates
 * see. Connectors may throw this, or any plain object, which is raised as it is.
 */
export class WorkflowException extends Error {
  /** Where it was raised, filled in by the interpreter as it unwinds. */
  frames: WorkflowStackFrame[] = [];
  /** True for values a `raise` step raised (context then reads `RuntimeError: <json>`). */
  userRaised = false;

  constructor(readonly value: unknown) {
    super(describeRaised(value));
    this.name = 'WorkflowException';
  }
}

/** The error map Workflows raises for its built-in error types (`KeyError`, `TypeError`, ...). */
export function errorMap(
  tag: string,
  message: string,
  extra: Record<string, unknown> = {},
): WorkflowException {
  return new WorkflowException({ message, tags: [tag], ...extra });
}

function describeRaised(value: unknown): string {
  if (value && typeof value === 'object' && 'message' in value) {
    const map = value as { message: unknown; tags?: unknown };
    const tag = Array.isArray(map.tags) && typeof map.tags[0] === 'string' ? `${map.tags[0]}: ` : '';
    return `${tag}${String(map.message)}`;
  }
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
