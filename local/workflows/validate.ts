import { readFileSync } from 'node:fs';
import { isKnownCallTarget } from './catalogue.js';
import { LOCAL_CONNECTOR_NAMES } from './connectors.js';
import { WorkflowSyntaxError } from './errors.js';
import { dottedName, type Expr } from './expression.js';
import { parseWorkflow } from './parse.js';
import { STDLIB, STDLIB_VALUES } from './stdlib.js';
import type { ForLoop, Routine, Step, Template, WorkflowDiagnostic, WorkflowProgram } from './types.js';

/**
 * Namespaces no variable is likely to shadow: `${sys.foo}` under one of them must be a builtin.
 * (`text`, `json`, `map`, `list`, `time` are left out: they are plausible variable names.)
 */
const STRICT_NAMESPACES = new Set([
  'sys',
  'http',
  'retry',
  'base64',
  'uuid',
  'math',
  'events',
  'experimental',
]);

/** Workflows' standard library namespaces. */
const NAMESPACES = new Set([
  ...Object.keys(STDLIB).map((name) => name.split('.')[0] as string),
  ...Object.keys(STDLIB_VALUES).map((name) => name.split('.')[0] as string),
  'events',
  'experimental',
  'hash',
  'googleapis',
]);

export interface ValidateOptions {
  /**
   * Connector names a `call` may use besides Google's catalogue (`catalogue.ts`); defaults to
   * those `createLocalConnectors` provides.
   */
  connectors?: Iterable<string>;
}

/**
 * Checks what Workflows checks at deploy time and what this interpreter needs: every `next` names
 * a step in reach, `break`/`continue` sit in a loop, every call is a subworkflow, a supported
 * standard library function, one of Google's connectors or call targets (whether or not the local
 * cloud has a stand-in for it: that shows at run time), subworkflow arguments match their params.
 */
export function validateWorkflow(
  program: WorkflowProgram,
  options: ValidateOptions = {},
): WorkflowDiagnostic[] {
  return new Validator(program, new Set(options.connectors ?? LOCAL_CONNECTOR_NAMES)).run();
}

/** Parses and validates one file; a syntax error becomes a diagnostic. */
export function validateWorkflowFile(path: string, options: ValidateOptions = {}): WorkflowDiagnostic[] {
  let source: string;
  try {
    source = readFileSync(path, 'utf8');
  } catch (err) {
    return [{ file: path, line: 1, message: `cannot read: ${(err as Error).message}` }];
  }
  try {
    return validateWorkflow(parseWorkflow(source, path), options);
  } catch (err) {
    if (err instanceof WorkflowSyntaxError) return [{ file: path, line: err.line, message: err.detail }];
    throw err;
  }
}

class Validator {
  private readonly diagnostics: WorkflowDiagnostic[] = [];

  constructor(
    private readonly program: WorkflowProgram,
    private readonly connectors: Set<string>,
  ) {}

  run(): WorkflowDiagnostic[] {
    for (const routine of this.program.routines.values()) {
      if (routine.name === 'main' && routine.params.length > 1) {
        this.report(routine.line, 'main takes at most one parameter (the execution argument)');
      }
      const seen = new Set<string>();
      for (const param of routine.params) {
        if (seen.has(param.name)) this.report(routine.line, `parameter "${param.name}" is declared twice`);
        seen.add(param.name);
        if (param.default) this.template(param.default, routine.line);
      }
      this.steps(routine.steps, [], false);
    }
    return this.diagnostics.sort((a, b) => a.line - b.line);
  }

  private report(line: number, message: string): void {
    this.diagnostics.push({ file: this.program.file, line, message });
  }

  /** `reach`: the step names a `next` may target, innermost list first. */
  private steps(steps: Step[], reach: string[][], inLoop: boolean): void {
    const names = new Set<string>();
    for (const step of steps) {
      if (names.has(step.name))
        this.report(step.line, `step name "${step.name}" is used twice in the same steps list`);
      names.add(step.name);
    }
    const inner = [[...names], ...reach];
    for (const step of steps) this.step(step, inner, inLoop);
  }

  private step(step: Step, reach: string[][], inLoop: boolean): void {
    if (step.next !== undefined) this.target(step.next, step.nextLine ?? step.line, reach, inLoop);
    switch (step.kind) {
      case 'assign':
        this.assignments(step.items);
        break;
      case 'call':
        if (step.args) this.template(step.args, step.line);
        this.call(step);
        break;
      case 'switch':
        for (const condition of step.conditions) {
          this.template(condition.condition, condition.line);
          if (condition.assign) this.assignments(condition.assign);
          if (condition.call) {
            const embedded = {
              name: step.name,
              line: condition.line,
              kind: 'call' as const,
              ...condition.call,
            };
            if (embedded.args) this.template(embedded.args, condition.line);
            this.call(embedded);
          }
          if (condition.steps) this.steps(condition.steps, reach, inLoop);
          if (condition.return) this.template(condition.return, condition.line);
          if (condition.raise) this.template(condition.raise, condition.line);
          if (condition.next !== undefined) this.target(condition.next, condition.line, reach, inLoop);
        }
        break;
      case 'for':
        this.loop(step.loop);
        break;
      case 'parallel': {
        const { parallel } = step;
        if (parallel.concurrencyLimit) this.template(parallel.concurrencyLimit, parallel.line);
        if (parallel.for) this.loop(parallel.for);
        for (const branch of parallel.branches ?? []) this.steps(branch.steps, [], false);
        break;
      }
      case 'try':
        this.step(step.body, reach, inLoop);
        if (step.retry) this.retry(step.retry);
        if (step.except) this.steps(step.except.steps, reach, inLoop);
        break;
      case 'raise':
        this.template(step.value, step.line);
        break;
      case 'return':
        if (step.value) this.template(step.value, step.line);
        break;
      case 'steps':
        this.steps(step.steps, reach, inLoop);
        break;
      case 'next':
        break;
    }
  }

  /** A loop body is its own jump scope: leave it with `break`, not with `next: <outer step>`. */
  private loop(loop: ForLoop): void {
    if (loop.in) this.template(loop.in, loop.line);
    if (loop.range) this.template(loop.range, loop.line);
    this.steps(loop.steps, [], true);
  }

  private target(target: string, line: number, reach: string[][], inLoop: boolean): void {
    if (target === 'end') return;
    if (target === 'break' || target === 'continue') {
      if (!inLoop) this.report(line, `next: ${target} is only allowed inside a for loop`);
      return;
    }
    if (!reach.some((names) => names.includes(target))) {
      this.report(
        line,
        `next: step "${target}" is not in reach (steps of this list and its enclosing lists)`,
      );
    }
  }

  private assignments(items: Extract<Step, { kind: 'assign' }>['items']): void {
    for (const item of items) {
      for (const part of item.target.path) if (part.k === 'index') this.expr(part.expr, item.line);
      this.template(item.value, item.line);
    }
  }

  private retry(retry: NonNullable<Extract<Step, { kind: 'try' }>['retry']>): void {
    if (retry.k === 'expr') {
      this.template(retry.policy, retry.line);
      return;
    }
    if (!retry.predicate) this.report(retry.line, 'retry needs a "predicate"');
    for (const t of [
      retry.predicate,
      retry.maxRetries,
      retry.initialDelay,
      retry.maxDelay,
      retry.multiplier,
    ]) {
      if (t) this.template(t, retry.line);
    }
    if (retry.predicate?.k === 'expr') {
      const name = dottedName(retry.predicate.expr);
      if (name && !NAMESPACES.has(name.split('.')[0] as string) && !this.program.routines.has(name)) {
        this.report(retry.predicate.line, `retry predicate "${name}" is not a subworkflow`);
      }
    }
  }

  private call(step: Extract<Step, { kind: 'call' }>): void {
    const keys = step.args?.k === 'map' ? step.args.entries.map(([name]) => name) : undefined;
    // Argument names given by expressions are known at run time only.
    const argNames = keys?.every((k) => typeof k === 'string') ? (keys as string[]) : undefined;
    const routine = this.program.routines.get(step.fn);
    if (routine) {
      if (argNames) this.routineArgs(routine, argNames, step.line);
      else if (!step.args) this.routineArgs(routine, [], step.line);
      return;
    }
    const builtin = STDLIB[step.fn];
    if (builtin) {
      if (!argNames) return;
      for (const name of argNames) {
        if (!builtin.params.includes(name)) this.report(step.line, `${step.fn} has no argument "${name}"`);
      }
      for (const name of builtin.params.slice(0, builtin.required)) {
        if (!argNames.includes(name)) this.report(step.line, `${step.fn} needs the argument "${name}"`);
      }
      return;
    }
    if (this.connectors.has(step.fn) || isKnownCallTarget(step.fn)) return;
    if (step.fn.startsWith('googleapis.')) {
      this.report(
        step.line,
        `"${step.fn}" is not a Google connector (googleapis.<api>.<version>.<resource>.<method> of an API in Google's connectors reference)`,
      );
    } else {
      this.report(
        step.line,
        `unknown function "${step.fn}" in step "${step.name}" (not a subworkflow, a supported standard library function or a connector)`,
      );
    }
  }

  private routineArgs(routine: Routine, names: string[], line: number): void {
    for (const name of names) {
      if (!routine.params.some((p) => p.name === name)) {
        this.report(line, `subworkflow "${routine.name}" has no parameter "${name}"`);
      }
    }
    for (const param of routine.params) {
      if (!param.default && !names.includes(param.name)) {
        this.report(line, `subworkflow "${routine.name}" needs the argument "${param.name}"`);
      }
    }
  }

  private template(template: Template, line: number): void {
    switch (template.k) {
      case 'expr':
        this.expr(template.expr, template.line);
        break;
      case 'list':
        for (const item of template.items) this.template(item, line);
        break;
      case 'map':
        for (const [key, item] of template.entries) {
          if (typeof key !== 'string') this.expr(key.expr, key.line);
          this.template(item, line);
        }
        break;
      default:
        break;
    }
  }

  private expr(expr: Expr, line: number): void {
    switch (expr.t) {
      case 'call': {
        const routine = this.program.routines.get(expr.name);
        const builtin = STDLIB[expr.name];
        if (routine) {
          const required = routine.params.filter((p) => !p.default).length;
          if (expr.args.length < required || expr.args.length > routine.params.length) {
            this.report(
              line,
              `subworkflow "${expr.name}" takes ${routine.params.length} arguments, got ${expr.args.length}`,
            );
          }
        } else if (builtin) {
          if (expr.args.length < builtin.required || expr.args.length > builtin.params.length) {
            this.report(
              line,
              `${expr.name}() takes ${builtin.required}..${builtin.params.length} arguments, got ${expr.args.length}`,
            );
          }
        } else if (!this.connectors.has(expr.name) && !isKnownCallTarget(expr.name)) {
          this.report(line, `unknown function "${expr.name}" in expression`);
        }
        for (const arg of expr.args) this.expr(arg, line);
        break;
      }
      case 'member': {
        const name = dottedName(expr);
        const root = name?.split('.')[0];
        if (name && root && STRICT_NAMESPACES.has(root) && name.split('.').length === 2) {
          if (!STDLIB[name] && !STDLIB_VALUES[name])
            this.report(line, `unknown standard library name "${name}"`);
        } else {
          this.expr(expr.object, line);
        }
        break;
      }
      case 'index':
        this.expr(expr.object, line);
        this.expr(expr.index, line);
        break;
      case 'unary':
        this.expr(expr.operand, line);
        break;
      case 'binary':
        this.expr(expr.left, line);
        this.expr(expr.right, line);
        break;
      case 'list':
        for (const item of expr.items) this.expr(item, line);
        break;
      case 'map':
        for (const [k, v] of expr.entries) {
          this.expr(k, line);
          this.expr(v, line);
        }
        break;
      default:
        break;
    }
  }
}
