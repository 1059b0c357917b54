import { backoffDelay } from '../backoff.js';
import { systemClock as systemTime } from '../clock.js';
import { EXPRESSION_CONNECTOR_PARAMS, isKnownCallTarget } from './catalogue.js';
import {
  errorMap,
  WorkflowCancelledError,
  WorkflowException,
  WorkflowRuntimeError,
  type WorkflowStackFrame,
} from './errors.js';
import { type EvalContext, evaluate } from './expression.js';
import { STDLIB, STDLIB_VALUES, type StdlibContext } from './stdlib.js';
import type {
  AssignTarget,
  Clock,
  Connector,
  ForLoop,
  Routine,
  Step,
  Template,
  WorkflowProgram,
  WorkflowRuntime,
} from './types.js';
import { FunctionRef, isMap, typeName } from './values.js';

/** Workflows' limit on nested subworkflow calls. */
const MAX_CALL_DEPTH = 20;
const DEFAULT_MAX_STEPS = 100_000;

/** Node fires a timer longer than this (about 24.8 days) at once: longer sleeps go in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The real clock: `Date.now` and timers that stop early when the signal aborts. */
export const systemClock: Clock = {
  now: systemTime.now,
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const until = Date.now() + ms;
      let timer: NodeJS.Timeout;
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const step = () => {
        const left = until - Date.now();
        if (left <= 0) {
          signal?.removeEventListener('abort', onAbort);
          resolve();
          return;
        }
        timer = setTimeout(step, Math.min(left, MAX_TIMER_MS));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      step();
    }),
};

/**
 * Runs a parsed workflow with `argument` as the runtime argument of `main`, resolving with what
 * `main` returns.
 *
 * @throws WorkflowRuntimeError when an error is not caught (payload, context and line as Workflows
 *   reports them); WorkflowCancelledError when `runtime.signal` aborts.
 */
export async function executeWorkflow(
  program: WorkflowProgram,
  argument: unknown,
  runtime: WorkflowRuntime,
): Promise<unknown> {
  return new Interpreter(program, runtime).run(argument);
}

/** How control leaves a step or a list of steps. */
type Flow =
  | { k: 'next' }
  | { k: 'jump'; target: string }
  | { k: 'return'; value: unknown }
  | { k: 'break' }
  | { k: 'continue' };

const NEXT: Flow = { k: 'next' };

/** Variables: a routine's, or those a `for` iteration or a parallel branch adds on top of it. */
class Scope {
  readonly vars = new Map<string, unknown>();

  constructor(
    readonly parent?: Scope,
    readonly kind: 'routine' | 'loop' | 'branch' = 'routine',
    readonly shared: ReadonlySet<string> = new Set(),
  ) {}

  lookup(name: string): { found: true; value: unknown } | { found: false } {
    for (let scope: Scope | undefined = this; scope; scope = scope.parent) {
      if (scope.vars.has(name)) return { found: true, value: scope.vars.get(name) };
    }
    return { found: false };
  }

  has(name: string): boolean {
    return this.lookup(name).found;
  }

  /**
   * The scope that holds `name` when writing it from here crosses a parallel branch (a shared
   * variable), else undefined: such writes must not interleave with the other branches'.
   */
  sharedOwner(name: string): Scope | undefined {
    let crossed = false;
    for (let scope: Scope | undefined = this; scope; scope = scope.parent) {
      if (scope.vars.has(name)) return crossed ? scope : undefined;
      if (scope.kind === 'branch') {
        if (!scope.shared.has(name)) return undefined;
        crossed = true;
      }
    }
    return undefined;
  }

  /**
   * Workflows scoping: a loop body updates variables that exist outside it and keeps new ones to
   * itself; a parallel branch may only write the outer variables listed in `shared`.
   */
  assign(name: string, value: unknown): void {
    if (this.vars.has(name) || !this.parent) {
      this.vars.set(name, value);
    } else if (this.kind === 'loop' && this.parent.has(name)) {
      this.parent.assign(name, value);
    } else if (this.kind === 'branch' && this.shared.has(name)) {
      this.parent.assign(name, value);
    } else if (this.kind === 'branch' && this.parent.has(name)) {
      throw errorMap(
        'TypeError',
        `variable "${name}" is assigned in a parallel branch but is not declared in "shared"`,
      );
    } else {
      this.vars.set(name, value);
    }
  }
}

interface Frame {
  routine: Routine;
  scope: Scope;
  depth: number;
  /** One object per routine invocation: errors get one stack frame per invocation. */
  invocation: object;
  /** Set when a sibling branch failed and this branch must stop. */
  cancel?: AbortSignal;
  step: string;
  line: number;
}

/** An error no `try` may catch: unsupported constructs, the step limit. */
class FatalError extends Error {
  constructor(
    readonly payload: { message: string; tags: string[] },
    readonly line: number,
    readonly frame: WorkflowStackFrame,
  ) {
    super(payload.message);
  }
}

/** A branch stopped because a sibling failed. */
class BranchCancelled extends Error {}

/** Runs async critical sections one after another, in arrival order. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(section: () => Promise<T>): Promise<T> {
    const result = this.tail.then(section);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** How Workflows describes where an error was raised: `RuntimeError: "boom"\nin step "s", routine "main", line: 12`. */
function errorContext(err: WorkflowException): string {
  const head = err.userRaised ? `RuntimeError: ${safeJson(err.value)}` : err.message;
  const frame = err.frames[0];
  return frame ? `${head}\nin step "${frame.step}", routine "${frame.routine}", line: ${frame.line}` : head;
}

const annotated = new WeakMap<WorkflowException, Set<object>>();

class Interpreter {
  private steps = 0;
  private readonly maxSteps: number;
  /** One lock per scope that holds shared variables of a running parallel step. */
  private readonly sharedLocks = new WeakMap<Scope, Mutex>();

  constructor(
    private readonly program: WorkflowProgram,
    private readonly runtime: WorkflowRuntime,
  ) {
    this.maxSteps = runtime.maxSteps ?? DEFAULT_MAX_STEPS;
  }

  async run(argument: unknown): Promise<unknown> {
    const main = this.program.routines.get('main') as Routine;
    const args: Record<string, unknown> = {};
    const param = main.params[0];
    if (param && (argument !== undefined || !param.default)) args[param.name] = argument ?? null;
    const root: Frame = {
      routine: main,
      scope: new Scope(),
      depth: 0,
      invocation: {},
      step: '',
      line: main.line,
    };
    try {
      const value = await this.invoke(main, args, root, true);
      return value === undefined ? null : value;
    } catch (err) {
      throw this.toRuntimeError(err);
    }
  }

  private toRuntimeError(err: unknown): unknown {
    if (err instanceof WorkflowRuntimeError) return err;
    if (this.runtime.signal?.aborted) return new WorkflowCancelledError();
    if (err instanceof WorkflowException) {
      return new WorkflowRuntimeError(err.value, errorContext(err), err.frames[0]?.line, err.frames);
    }
    if (err instanceof FatalError) {
      const { step, routine, line } = err.frame;
      const context = `${err.payload.tags[0]}: ${err.payload.message}\nin step "${step}", routine "${routine}", line: ${line}`;
      return new WorkflowRuntimeError(err.payload, context, err.line, [err.frame]);
    }
    return err;
  }

  // ---- routines -------------------------------------------------------------------------

  private async invoke(
    routine: Routine,
    args: Record<string, unknown>,
    caller: Frame,
    isMain = false,
  ): Promise<unknown> {
    if (caller.depth + 1 > MAX_CALL_DEPTH) {
      throw errorMap(
        'RecursionError',
        `maximum call stack depth (${MAX_CALL_DEPTH}) exceeded calling "${routine.name}"`,
      );
    }
    const frame: Frame = {
      routine,
      scope: new Scope(),
      depth: isMain ? 0 : caller.depth + 1,
      invocation: {},
      ...(caller.cancel ? { cancel: caller.cancel } : {}),
      step: '',
      line: routine.line,
    };
    for (const name of Object.keys(args)) {
      if (!routine.params.some((p) => p.name === name)) {
        throw errorMap('TypeError', `subworkflow "${routine.name}" has no parameter "${name}"`);
      }
    }
    for (const param of routine.params) {
      if (Object.hasOwn(args, param.name)) frame.scope.vars.set(param.name, args[param.name]);
      else if (param.default) frame.scope.vars.set(param.name, await this.value(param.default, frame));
      else throw errorMap('TypeError', `missing argument "${param.name}" for subworkflow "${routine.name}"`);
    }
    const flow = await this.runSteps(routine.steps, frame);
    switch (flow.k) {
      case 'return':
        return flow.value;
      case 'next':
        return null;
      case 'jump':
        throw this.fatal(frame, 'UnsupportedError', `next: step "${flow.target}" not found in reach`);
      default:
        throw this.fatal(frame, 'UnsupportedError', `next: ${flow.k} outside of a for loop`);
    }
  }

  private async callFunction(name: string, args: unknown[], frame: Frame): Promise<unknown> {
    const routine = this.program.routines.get(name);
    if (routine) {
      if (args.length > routine.params.length) {
        throw errorMap(
          'TypeError',
          `subworkflow "${name}" takes ${routine.params.length} arguments, got ${args.length}`,
        );
      }
      const named: Record<string, unknown> = {};
      args.forEach((arg, i) => {
        named[(routine.params[i] as { name: string }).name] = arg;
      });
      return this.invoke(routine, named, frame);
    }
    const builtin = STDLIB[name];
    if (builtin) {
      if (args.length < builtin.required || args.length > builtin.params.length) {
        throw errorMap(
          'TypeError',
          `${name}() takes ${builtin.required === builtin.params.length ? builtin.required : `${builtin.required} to ${builtin.params.length}`} arguments, got ${args.length}`,
        );
      }
      return builtin.fn(args, this.stdlibContext(frame));
    }
    const connector = this.runtime.connectors[name];
    if (connector) {
      const positional = EXPRESSION_CONNECTOR_PARAMS[name];
      let connectorArgs: Record<string, unknown>;
      if (args.length === 1 && isMap(args[0]) && !positional) connectorArgs = args[0];
      else if (positional && args.length <= positional.length) {
        connectorArgs = Object.fromEntries(args.map((arg, i) => [positional[i] as string, arg]));
      } else {
        throw errorMap('TypeError', `connector ${name} in an expression takes one map of arguments`);
      }
      return this.callConnector(connector, connectorArgs, frame);
    }
    if (isKnownCallTarget(name)) throw this.noStandIn(frame, name);
    throw this.fatal(
      frame,
      'UnsupportedError',
      `unsupported function "${name}" (not a subworkflow or a supported standard library function)`,
    );
  }

  /** A valid call the local cloud cannot serve: it fails the execution, saying so, rather than pretend. */
  private noStandIn(frame: Frame, name: string): FatalError {
    return this.fatal(
      frame,
      'UnsupportedError',
      `"${name}" has no local stand-in: the local cloud serves the standard library, http.* and the Batch, Cloud Run jobs, Pub/Sub publish and Cloud Storage objects connectors (local/README.md, Workflows)`,
    );
  }

  private async callConnector(
    connector: Connector,
    args: Record<string, unknown>,
    frame: Frame,
  ): Promise<unknown> {
    const signal = this.signalFor(frame);
    try {
      return await connector(args, signal ? { signal } : {});
    } catch (err) {
      if (this.runtime.signal?.aborted) throw new WorkflowCancelledError();
      if (frame.cancel?.aborted) throw new BranchCancelled();
      throw asWorkflowException(err);
    }
  }

  private stdlibContext(frame: Frame): StdlibContext {
    const signal = this.signalFor(frame);
    return { runtime: this.runtime, ...(signal ? { signal } : {}) };
  }

  private signalFor(frame: Frame): AbortSignal | undefined {
    const signals = [this.runtime.signal, frame.cancel].filter((s): s is AbortSignal => s !== undefined);
    if (signals.length <= 1) return signals[0];
    return AbortSignal.any(signals);
  }

  // ---- steps ----------------------------------------------------------------------------

  private async runSteps(steps: Step[], frame: Frame): Promise<Flow> {
    let i = 0;
    while (i < steps.length) {
      const flow = await this.runStep(steps[i] as Step, frame);
      if (flow.k === 'next') {
        i++;
      } else if (flow.k === 'jump') {
        const target = steps.findIndex((s) => s.name === flow.target);
        if (target < 0) return flow;
        i = target;
      } else {
        return flow;
      }
    }
    return NEXT;
  }

  private async runStep(step: Step, frame: Frame): Promise<Flow> {
    if (this.runtime.signal?.aborted) throw new WorkflowCancelledError();
    if (frame.cancel?.aborted) throw new BranchCancelled();
    frame.step = step.name;
    frame.line = step.line;
    this.runtime.onStep?.({ routine: frame.routine.name, step: step.name });
    if (++this.steps > this.maxSteps) {
      throw this.fatal(
        frame,
        'ResourceLimitError',
        `the execution exceeded ${this.maxSteps} steps (an endless loop?)`,
      );
    }
    try {
      return await this.stepBody(step, frame);
    } catch (err) {
      if (err instanceof WorkflowException) {
        const seen = annotated.get(err) ?? new Set<object>();
        if (!seen.has(frame.invocation)) {
          seen.add(frame.invocation);
          annotated.set(err, seen);
          err.frames.push({ step: step.name, routine: frame.routine.name, line: step.line });
        }
      }
      throw err;
    } finally {
      frame.step = step.name;
      frame.line = step.line;
    }
  }

  private async stepBody(step: Step, frame: Frame): Promise<Flow> {
    switch (step.kind) {
      case 'assign':
        await this.assignAll(step.items, frame);
        return this.after(step);
      case 'call': {
        const result = await this.call(step, frame);
        if (step.result) frame.scope.assign(step.result, result);
        return this.after(step);
      }
      case 'switch':
        return this.switchStep(step, frame);
      case 'for':
        return this.forStep(step, step.loop, frame);
      case 'parallel':
        return this.parallelStep(step, frame);
      case 'try':
        return this.tryStep(step, frame);
      case 'raise': {
        const error = new WorkflowException(await this.value(step.value, frame));
        error.userRaised = true;
        throw error;
      }
      case 'return':
        return { k: 'return', value: step.value ? await this.value(step.value, frame) : null };
      case 'steps': {
        const flow = await this.runSteps(step.steps, frame);
        return flow.k === 'next' ? this.after(step) : flow;
      }
      case 'next':
        return this.after(step);
    }
  }

  /** Where control goes after a step that finished normally. */
  private after(step: { next?: string }): Flow {
    return step.next === undefined ? NEXT : this.jump(step.next);
  }

  private jump(target: string): Flow {
    if (target === 'end') return { k: 'return', value: null };
    if (target === 'break') return { k: 'break' };
    if (target === 'continue') return { k: 'continue' };
    return { k: 'jump', target };
  }

  private async assignAll(items: Extract<Step, { kind: 'assign' }>['items'], frame: Frame): Promise<void> {
    for (const item of items) {
      frame.line = item.line;
      await this.assign(item.target, item.value, frame);
    }
  }

  /**
   * One assignment. Workflows makes each assignment to a shared variable atomic: in a parallel
   * branch, `total: ${total + v}` reads and writes `total` while no other branch assigns it, so
   * the reading, the evaluation (which may await) and the writing happen under the lock of the
   * scope that holds the variable.
   */
  private async assign(target: AssignTarget, valueTemplate: Template, frame: Frame): Promise<void> {
    const owner = frame.scope.sharedOwner(target.root);
    const write = async () => {
      const value = await this.value(valueTemplate, frame);
      if (target.path.length === 0) {
        frame.scope.assign(target.root, value);
        return;
      }
      const keys: unknown[] = [];
      for (const part of target.path) {
        keys.push(part.k === 'field' ? part.name : await evaluate(part.expr, this.evalContext(frame)));
      }
      // Read the container only now, with nothing left to await before the write: copy-on-write
      // along the path (Workflows maps and lists are values, never shared references).
      const current = frame.scope.lookup(target.root);
      if (!current.found) throw errorMap('KeyError', `variable "${target.root}" is not defined`);
      frame.scope.assign(target.root, setIn(current.value, keys, value));
    };
    if (!owner) return write();
    let lock = this.sharedLocks.get(owner);
    if (!lock) {
      lock = new Mutex();
      this.sharedLocks.set(owner, lock);
    }
    return lock.run(write);
  }

  private async call(step: Extract<Step, { kind: 'call' }>, frame: Frame): Promise<unknown> {
    const args = step.args ? await this.value(step.args, frame) : {};
    if (!isMap(args))
      throw errorMap('TypeError', `args of "${step.fn}" must be a map, got ${typeName(args)}`);
    const routine = this.program.routines.get(step.fn);
    if (routine) return this.invoke(routine, args, frame);
    const builtin = STDLIB[step.fn];
    if (builtin) {
      for (const name of Object.keys(args)) {
        if (!builtin.params.includes(name))
          throw errorMap('TypeError', `${step.fn} has no argument "${name}"`);
      }
      const positional = builtin.params.map((p) => args[p]);
      const missing = builtin.params.slice(0, builtin.required).find((p) => args[p] === undefined);
      if (missing) throw errorMap('TypeError', `${step.fn} needs the argument "${missing}"`);
      while (positional.length > 0 && positional[positional.length - 1] === undefined) positional.pop();
      return builtin.fn(positional, this.stdlibContext(frame));
    }
    const connector = this.runtime.connectors[step.fn];
    if (connector) return this.callConnector(connector, args, frame);
    if (isKnownCallTarget(step.fn)) throw this.noStandIn(frame, step.fn);
    throw this.fatal(
      frame,
      'UnsupportedError',
      `unsupported call "${step.fn}" in step "${step.name}" (not a subworkflow, a supported standard library function or a registered connector)`,
    );
  }

  private async switchStep(step: Extract<Step, { kind: 'switch' }>, frame: Frame): Promise<Flow> {
    for (const condition of step.conditions) {
      const holds = await this.value(condition.condition, frame);
      if (typeof holds !== 'boolean') {
        throw errorMap('TypeError', `switch condition must be a boolean, got ${typeName(holds)}`);
      }
      if (!holds) continue;
      if (condition.assign) await this.assignAll(condition.assign, frame);
      if (condition.call) {
        const embedded = { name: step.name, line: condition.line, kind: 'call' as const, ...condition.call };
        const result = await this.call(embedded, frame);
        if (embedded.result) frame.scope.assign(embedded.result, result);
      }
      if (condition.steps) {
        const flow = await this.runSteps(condition.steps, frame);
        if (flow.k !== 'next') return flow;
      }
      if (condition.return) return { k: 'return', value: await this.value(condition.return, frame) };
      if (condition.raise) {
        const error = new WorkflowException(await this.value(condition.raise, frame));
        error.userRaised = true;
        throw error;
      }
      if (condition.next) return this.jump(condition.next);
      return this.after(step);
    }
    return this.after(step);
  }

  private async iterations(loop: ForLoop, frame: Frame): Promise<Array<{ value: unknown; index: number }>> {
    if (loop.in) {
      const items = await this.value(loop.in, frame);
      if (!Array.isArray(items)) throw errorMap('TypeError', `for "in" needs a list, got ${typeName(items)}`);
      return items.map((value, index) => ({ value, index }));
    }
    const range = await this.value(loop.range as Template, frame);
    if (!Array.isArray(range) || range.length !== 2) {
      throw errorMap('ValueError', `for "range" needs a list [start, end], got ${typeName(range)}`);
    }
    const [start, end] = range;
    if (typeof start !== 'number' || typeof end !== 'number') {
      throw errorMap('TypeError', `for "range" needs numbers, got ${typeName(start)} and ${typeName(end)}`);
    }
    const out: Array<{ value: unknown; index: number }> = [];
    for (let v = start, i = 0; v <= end; v++, i++) {
      if (out.length >= this.maxSteps) {
        throw this.fatal(frame, 'ResourceLimitError', `range [${start}, ${end}] is too large`);
      }
      out.push({ value: v, index: i });
    }
    return out;
  }

  private bindLoopVars(scope: Scope, loop: ForLoop, item: { value: unknown; index: number }): void {
    if (loop.value) scope.vars.set(loop.value, item.value);
    if (loop.index) scope.vars.set(loop.index, item.index);
  }

  private async forStep(step: Step, loop: ForLoop, frame: Frame): Promise<Flow> {
    for (const item of await this.iterations(loop, frame)) {
      const scope = new Scope(frame.scope, 'loop');
      this.bindLoopVars(scope, loop, item);
      const inner: Frame = { ...frame, scope };
      const flow = await this.runSteps(loop.steps, inner);
      frame.step = inner.step;
      frame.line = inner.line;
      if (flow.k === 'break') break;
      if (flow.k === 'return' || flow.k === 'jump') return flow;
    }
    return this.after(step);
  }

  private async parallelStep(step: Extract<Step, { kind: 'parallel' }>, frame: Frame): Promise<Flow> {
    const { parallel } = step;
    for (const name of parallel.shared) {
      if (!frame.scope.has(name)) {
        throw errorMap('KeyError', `shared variable "${name}" must be assigned before the parallel step`);
      }
    }
    const shared = new Set(parallel.shared);
    const controller = new AbortController();
    const cancel = frame.cancel ? AbortSignal.any([frame.cancel, controller.signal]) : controller.signal;
    const tasks: Array<{ id: string; run: () => Promise<Flow> }> = [];
    const branchFrame = (scope: Scope): Frame => ({ ...frame, scope, cancel });
    if (parallel.branches) {
      for (const branch of parallel.branches) {
        tasks.push({
          id: branch.name,
          run: () => this.runSteps(branch.steps, branchFrame(new Scope(frame.scope, 'branch', shared))),
        });
      }
    } else {
      const loop = parallel.for as ForLoop;
      for (const item of await this.iterations(loop, frame)) {
        tasks.push({
          id: String(item.index),
          run: () => {
            const scope = new Scope(frame.scope, 'branch', shared);
            this.bindLoopVars(scope, loop, item);
            return this.runSteps(loop.steps, branchFrame(scope));
          },
        });
      }
    }
    let limit = tasks.length;
    if (parallel.concurrencyLimit) {
      const value = await this.value(parallel.concurrencyLimit, frame);
      if (typeof value !== 'number' || value < 1)
        throw errorMap('ValueError', 'concurrency_limit must be a positive integer');
      limit = Math.floor(value);
    }

    // Google's exception policy: an error a branch does not handle ends that branch only; every
    // other branch (and every iteration not started yet) still runs, then the step raises one
    // UnhandledBranchError listing each failed branch. `continueAll` behaves the same. Only what
    // no `try` may catch (an unsupported construct, a cancelled execution) stops the siblings.
    let fatal: unknown;
    const failures: Array<{ id: string; index: number; error: WorkflowException }> = [];
    let nextTask = 0;
    const worker = async () => {
      while (nextTask < tasks.length) {
        const index = nextTask++;
        const task = tasks[index] as (typeof tasks)[number];
        if (controller.signal.aborted) return;
        try {
          await task.run();
        } catch (err) {
          if (err instanceof BranchCancelled && controller.signal.aborted) continue;
          if (err instanceof WorkflowException) {
            failures.push({ id: task.id, index, error: err });
            continue;
          }
          if (fatal === undefined) fatal = err;
          controller.abort();
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, tasks.length)) }, worker));
    if (fatal !== undefined) throw fatal;
    if (failures.length > 0) {
      failures.sort((a, b) => a.index - b.index);
      throw errorMap(
        'UnhandledBranchError',
        'One or more branches or iterations encountered an unhandled runtime error',
        {
          branches: failures.map(({ id, error }) => ({
            id,
            error: { context: errorContext(error), payload: error.value },
          })),
          truncated: false,
        },
      );
    }
    return this.after(step);
  }

  private async tryStep(step: Extract<Step, { kind: 'try' }>, frame: Frame): Promise<Flow> {
    let attempt = 0;
    for (;;) {
      try {
        const flow = await this.stepBody(step.body, frame);
        return flow.k === 'next' ? this.after(step) : flow;
      } catch (err) {
        if (!(err instanceof WorkflowException)) throw err;
        if (step.retry) {
          const policy = await this.retryPolicy(step.retry, frame);
          if (attempt < policy.maxRetries && (await this.predicate(policy.predicate, err.value, frame))) {
            // Workflows' documented schedule: initial_delay × multiplier^n, capped at max_delay.
            const delayMs = backoffDelay(
              {
                initialDelayMs: policy.initialDelay * 1000,
                multiplier: policy.multiplier,
                maxDelayMs: policy.maxDelay * 1000,
              },
              attempt,
            );
            attempt++;
            try {
              await this.runtime.clock.sleep(delayMs, this.signalFor(frame));
            } catch (sleepError) {
              if (this.runtime.signal?.aborted) throw new WorkflowCancelledError();
              if (frame.cancel?.aborted) throw new BranchCancelled();
              throw sleepError;
            }
            continue;
          }
        }
        if (!step.except) throw err;
        if (step.except.as) frame.scope.assign(step.except.as, err.value);
        const flow = await this.runSteps(step.except.steps, frame);
        return flow.k === 'next' ? this.after(step) : flow;
      }
    }
  }

  private async retryPolicy(
    spec: NonNullable<Extract<Step, { kind: 'try' }>['retry']>,
    frame: Frame,
  ): Promise<{
    predicate: unknown;
    maxRetries: number;
    initialDelay: number;
    maxDelay: number;
    multiplier: number;
  }> {
    const number = async (t: Template | undefined, fallback: number, what: string): Promise<number> => {
      if (!t) return fallback;
      const value = await this.value(t, frame);
      if (typeof value !== 'number')
        throw errorMap('TypeError', `retry ${what} must be a number, got ${typeName(value)}`);
      return value;
    };
    if (spec.k === 'expr') {
      const policy = await this.value(spec.policy, frame);
      if (!isMap(policy)) throw errorMap('TypeError', `retry policy must be a map, got ${typeName(policy)}`);
      const backoff = isMap(policy.backoff) ? policy.backoff : {};
      const num = (v: unknown, fallback: number) => (typeof v === 'number' ? v : fallback);
      return {
        predicate: policy.predicate,
        maxRetries: num(policy.max_retries, 5),
        initialDelay: num(backoff.initial_delay, 1),
        maxDelay: num(backoff.max_delay, 60),
        multiplier: num(backoff.multiplier, 1.25),
      };
    }
    return {
      predicate: spec.predicate
        ? await this.value(spec.predicate, frame)
        : new FunctionRef('http.default_retry_predicate'),
      maxRetries: await number(spec.maxRetries, 5, 'max_retries'),
      initialDelay: await number(spec.initialDelay, 1, 'initial_delay'),
      maxDelay: await number(spec.maxDelay, 60, 'max_delay'),
      multiplier: await number(spec.multiplier, 1.25, 'multiplier'),
    };
  }

  private async predicate(predicate: unknown, error: unknown, frame: Frame): Promise<boolean> {
    if (!(predicate instanceof FunctionRef)) {
      throw errorMap('TypeError', `retry predicate must be a function, got ${typeName(predicate)}`);
    }
    const verdict = await this.callFunction(predicate.name, [error], frame);
    if (typeof verdict !== 'boolean') {
      throw errorMap(
        'TypeError',
        `retry predicate "${predicate.name}" must return a boolean, got ${typeName(verdict)}`,
      );
    }
    return verdict;
  }

  // ---- values ---------------------------------------------------------------------------

  private evalContext(frame: Frame): EvalContext {
    return {
      lookup: (name) => frame.scope.lookup(name),
      named: (name) => {
        if (this.program.routines.has(name) || STDLIB[name])
          return { found: true, value: new FunctionRef(name) };
        const constant = STDLIB_VALUES[name];
        return constant ? { found: true, value: constant() } : { found: false };
      },
      call: (name, args) => this.callFunction(name, args, frame),
    };
  }

  private async value(template: Template, frame: Frame): Promise<unknown> {
    switch (template.k) {
      case 'lit':
        return template.value;
      case 'expr':
        return evaluate(template.expr, this.evalContext(frame));
      case 'list': {
        const out: unknown[] = [];
        for (const item of template.items) out.push(await this.value(item, frame));
        return out;
      }
      case 'map': {
        const out: Record<string, unknown> = {};
        for (const [keyTemplate, item] of template.entries) {
          let key = keyTemplate;
          if (typeof key !== 'string') {
            const evaluated = await evaluate(key.expr, this.evalContext(frame));
            if (typeof evaluated !== 'string') {
              throw errorMap('TypeError', `map keys must be strings, got ${typeName(evaluated)}`);
            }
            key = evaluated;
          }
          out[key] = await this.value(item, frame);
        }
        return out;
      }
    }
  }

  private fatal(frame: Frame, tag: string, message: string): FatalError {
    const where = `${this.program.file}:${frame.line}: ${message}`;
    return new FatalError({ message: where, tags: [tag] }, frame.line, {
      step: frame.step,
      routine: frame.routine.name,
      line: frame.line,
    });
  }
}

function setIn(container: unknown, keys: unknown[], value: unknown): unknown {
  const [key, ...rest] = keys;
  if (isMap(container)) {
    if (typeof key !== 'string')
      throw errorMap('TypeError', `map keys must be strings, got ${typeName(key)}`);
    const copy = { ...container };
    copy[key] = rest.length === 0 ? value : setIn(Object.hasOwn(copy, key) ? copy[key] : {}, rest, value);
    return copy;
  }
  if (Array.isArray(container)) {
    if (typeof key !== 'number' || !Number.isInteger(key)) {
      throw errorMap('TypeError', `list index must be an integer, got ${typeName(key)}`);
    }
    if (key < 0 || key >= container.length) {
      throw errorMap('IndexError', `list index out of range: ${key} (length ${container.length})`);
    }
    const copy = [...container];
    copy[key] = rest.length === 0 ? value : setIn(copy[key], rest, value);
    return copy;
  }
  throw errorMap('TypeError', `cannot assign into a value of type ${typeName(container)}`);
}

/** What a connector threw, as the value a workflow sees (`except: as: e`). */
function asWorkflowException(err: unknown): WorkflowException {
  if (err instanceof WorkflowException) return err;
  if (err instanceof Error) {
    const payload = (err as { payload?: unknown }).payload;
    if (payload !== undefined) return new WorkflowException(payload);
    return new WorkflowException({ message: err.message, tags: ['SystemError'] });
  }
  return new WorkflowException(err);
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? 'null';
  } catch {
    return String(value);
  }
}
