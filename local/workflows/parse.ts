import { isAlias, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, type YAMLMap } from 'yaml';
import { WorkflowSyntaxError } from './errors.js';
import { type Expr, ExpressionSyntaxError, parseExpression } from './expression.js';
import type {
  AssignTarget,
  ForLoop,
  MapKey,
  Parallel,
  RetrySpec,
  Routine,
  Step,
  SwitchCondition,
  Template,
  WorkflowProgram,
} from './types.js';

const STEP_KINDS = [
  'assign',
  'call',
  'switch',
  'for',
  'parallel',
  'try',
  'raise',
  'return',
  'steps',
] as const;
const ALLOWED_KEYS: Record<string, string[]> = {
  assign: ['assign', 'next'],
  call: ['call', 'args', 'result', 'next'],
  switch: ['switch', 'next'],
  for: ['for', 'next'],
  parallel: ['parallel', 'next'],
  try: ['try', 'except', 'retry', 'next'],
  // Workflows deploys a `next` beside `return`/`raise` (it is never taken).
  raise: ['raise', 'next'],
  return: ['return', 'next'],
  steps: ['steps', 'next'],
  next: ['next'],
};

/**
 * Parses a Workflows definition (YAML or JSON) in either form: a list of steps (an implicit
 * `main`) or a map of subworkflows with `main`. Expressions are compiled here, so a malformed
 * `${...}` fails at parse time.
 *
 * @throws WorkflowSyntaxError with `file:line:` in its message.
 */
export function parseWorkflow(source: string, fileName: string): WorkflowProgram {
  return new Parser(source, fileName).program();
}

/** True when a YAML string is one Workflows evaluates: the whole value is `${...}`. */
export function isExpressionString(value: string): boolean {
  return value.startsWith('${') && value.endsWith('}');
}

class Parser {
  private readonly lines = new LineCounter();
  private readonly root: Node | null;

  constructor(
    source: string,
    private readonly file: string,
  ) {
    const doc = parseDocument(source, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
    const error = doc.errors[0];
    if (error) {
      const line = error.linePos?.[0]?.line ?? this.lines.linePos(error.pos[0]).line;
      throw new WorkflowSyntaxError(file, line, `invalid YAML: ${error.message.split('\n')[0]}`);
    }
    this.root = doc.contents as Node | null;
  }

  program(): WorkflowProgram {
    const routines = new Map<string, Routine>();
    const root = this.root;
    if (isSeq(root)) {
      routines.set('main', { name: 'main', line: this.line(root), params: [], steps: this.steps(root) });
    } else if (isMap(root)) {
      for (const pair of root.items) {
        const name = this.keyName(pair.key);
        routines.set(name, this.routine(name, pair.key as Node, pair.value as Node));
      }
      if (!routines.has('main')) this.fail(root, 'a workflow with subworkflows needs a "main" subworkflow');
    } else {
      this.fail(root, 'a workflow is a list of steps or a map of subworkflows with "main"');
    }
    return { file: this.file, routines };
  }

  private routine(name: string, keyNode: Node, node: Node): Routine {
    const body = this.map(node, `subworkflow "${name}"`);
    const keys = this.keys(body, ['params', 'steps'], `subworkflow "${name}"`);
    const params: Routine['params'] = [];
    const paramsNode = keys.get('params');
    if (paramsNode) {
      if (!isSeq(paramsNode)) this.fail(paramsNode, `params of "${name}" must be a list`);
      for (const item of paramsNode.items as Node[]) {
        if (isScalar(item) && typeof item.value === 'string') {
          params.push({ name: item.value });
        } else if (isMap(item) && item.items.length === 1) {
          const pair = item.items[0] as { key: Node; value: Node };
          params.push({ name: this.keyName(pair.key), default: this.template(pair.value) });
        } else {
          this.fail(item, `a param of "${name}" must be a name or {name: default}`);
        }
      }
    }
    const stepsNode = keys.get('steps');
    if (!stepsNode) this.fail(node, `subworkflow "${name}" has no steps`);
    return { name, line: this.line(keyNode), params, steps: this.steps(stepsNode) };
  }

  private steps(node: Node | null | undefined): Step[] {
    if (!isSeq(node)) this.fail(node, 'steps must be a list');
    if (node.items.length === 0) this.fail(node, 'steps must not be empty');
    return (node.items as Node[]).map((item) => {
      if (!isMap(item) || item.items.length !== 1) {
        this.fail(item, 'each step must be a map with exactly one key, the step name');
      }
      const pair = item.items[0] as { key: Node; value: Node };
      const name = this.keyName(pair.key);
      return this.stepBody(name, this.line(pair.key), this.map(pair.value, `step "${name}"`));
    });
  }

  private stepBody(name: string, line: number, body: YAMLMap): Step {
    const present = body.items.map((pair) => this.keyName(pair.key as Node));
    const kinds = STEP_KINDS.filter((k) => present.includes(k));
    if (kinds.length > 1) this.fail(body, `step "${name}" mixes ${kinds.join(' and ')}`);
    const kind = kinds[0] ?? (present.includes('next') ? 'next' : undefined);
    if (!kind) this.fail(body, `step "${name}" has no supported action (keys: ${present.join(', ')})`);
    const keys = this.keys(body, ALLOWED_KEYS[kind] as string[], `step "${name}"`);
    const nextNode = keys.get('next');
    const base = {
      name,
      line,
      ...(nextNode ? { next: this.string(nextNode, 'next'), nextLine: this.line(nextNode) } : {}),
    };
    const node = keys.get(kind) as Node;
    switch (kind) {
      case 'assign':
        return { ...base, kind, items: this.assignments(node) };
      case 'call': {
        const args = keys.get('args');
        const result = keys.get('result');
        return {
          ...base,
          kind,
          fn: this.string(node, 'call'),
          ...(args ? { args: this.template(args) } : {}),
          ...(result ? { result: this.string(result, 'result') } : {}),
        };
      }
      case 'switch':
        return { ...base, kind, conditions: this.switchConditions(node) };
      case 'for':
        return { ...base, kind, loop: this.forLoop(node) };
      case 'parallel':
        return { ...base, kind, parallel: this.parallel(node) };
      case 'try':
        return this.tryStep(base, node, keys.get('retry'), keys.get('except'));
      case 'raise':
        return { ...base, kind, value: this.template(node) };
      case 'return':
        return { ...base, kind, value: this.template(node) };
      case 'steps':
        return { ...base, kind, steps: this.steps(node) };
      default:
        return { ...base, kind: 'next' };
    }
  }

  private tryStep(
    base: { name: string; line: number; next?: string; nextLine?: number },
    bodyNode: Node,
    retryNode: Node | undefined,
    exceptNode: Node | undefined,
  ): Step {
    const bodyMap = this.map(bodyNode, `try of step "${base.name}"`);
    const body = this.stepBody(base.name, this.line(bodyNode), bodyMap);
    let except: Extract<Step, { kind: 'try' }>['except'];
    if (exceptNode) {
      const keys = this.keys(
        this.map(exceptNode, 'except'),
        ['as', 'steps'],
        `except of step "${base.name}"`,
      );
      const asNode = keys.get('as');
      except = {
        line: this.line(exceptNode),
        steps: this.steps(keys.get('steps')),
        ...(asNode ? { as: this.string(asNode, 'as') } : {}),
      };
    }
    return {
      ...base,
      kind: 'try',
      body,
      ...(retryNode ? { retry: this.retry(retryNode) } : {}),
      ...(except ? { except } : {}),
    };
  }

  private retry(node: Node): RetrySpec {
    if (isScalar(node)) return { k: 'expr', policy: this.template(node), line: this.line(node) };
    const keys = this.keys(this.map(node, 'retry'), ['predicate', 'max_retries', 'backoff'], 'retry');
    const spec: RetrySpec = { k: 'map', line: this.line(node) };
    const predicate = keys.get('predicate');
    const maxRetries = keys.get('max_retries');
    if (predicate) spec.predicate = this.template(predicate);
    if (maxRetries) spec.maxRetries = this.template(maxRetries);
    const backoffNode = keys.get('backoff');
    if (backoffNode) {
      if (isScalar(backoffNode)) this.fail(backoffNode, 'retry backoff must be a map');
      const backoff = this.keys(
        this.map(backoffNode, 'backoff'),
        ['initial_delay', 'max_delay', 'multiplier'],
        'backoff',
      );
      const initial = backoff.get('initial_delay');
      const max = backoff.get('max_delay');
      const multiplier = backoff.get('multiplier');
      if (initial) spec.initialDelay = this.template(initial);
      if (max) spec.maxDelay = this.template(max);
      if (multiplier) spec.multiplier = this.template(multiplier);
    }
    return spec;
  }

  private switchConditions(node: Node): SwitchCondition[] {
    if (!isSeq(node)) this.fail(node, 'switch must be a list of conditions');
    return (node.items as Node[]).map((item) => {
      const keys = this.keys(
        this.map(item, 'switch condition'),
        ['condition', 'next', 'steps', 'assign', 'call', 'args', 'result', 'return', 'raise'],
        'switch condition',
      );
      const condition = keys.get('condition');
      if (!condition) this.fail(item, 'switch entry without "condition"');
      const out: SwitchCondition = { line: this.line(item), condition: this.template(condition) };
      // A condition may embed a call, as a step does (`call`, `args`, `result`).
      const call = keys.get('call');
      if (call) {
        const args = keys.get('args');
        const result = keys.get('result');
        out.call = {
          fn: this.string(call, 'call'),
          ...(args ? { args: this.template(args) } : {}),
          ...(result ? { result: this.string(result, 'result') } : {}),
        };
      } else if (keys.has('args') || keys.has('result')) {
        this.fail(item, '"args" and "result" in a switch condition need "call"');
      }
      const next = keys.get('next');
      const steps = keys.get('steps');
      const assign = keys.get('assign');
      const ret = keys.get('return');
      const raise = keys.get('raise');
      if (next) out.next = this.string(next, 'next');
      if (steps) out.steps = this.steps(steps);
      if (assign) out.assign = this.assignments(assign);
      if (ret) out.return = this.template(ret);
      if (raise) out.raise = this.template(raise);
      return out;
    });
  }

  private forLoop(node: Node): ForLoop {
    const keys = this.keys(this.map(node, 'for'), ['value', 'index', 'in', 'range', 'steps'], 'for');
    const loop: ForLoop = { line: this.line(node), steps: this.steps(keys.get('steps')) };
    const value = keys.get('value');
    const index = keys.get('index');
    const inNode = keys.get('in');
    const rangeNode = keys.get('range');
    if (value) loop.value = this.string(value, 'value');
    if (index) loop.index = this.string(index, 'index');
    if (!loop.value && !loop.index) this.fail(node, 'for needs "value" or "index"');
    if ((inNode ? 1 : 0) + (rangeNode ? 1 : 0) !== 1)
      this.fail(node, 'for needs exactly one of "in" and "range"');
    if (inNode) loop.in = this.template(inNode);
    if (rangeNode) {
      const range = this.template(rangeNode);
      if (range.k === 'lit' || (range.k === 'list' && range.items.length !== 2) || range.k === 'map') {
        this.fail(rangeNode, 'range must be [start, end] or an expression giving that list');
      }
      loop.range = range;
    }
    return loop;
  }

  private parallel(node: Node): Parallel {
    const keys = this.keys(
      this.map(node, 'parallel'),
      ['shared', 'exception_policy', 'concurrency_limit', 'branches', 'for'],
      'parallel',
    );
    const out: Parallel = { line: this.line(node), shared: [], exceptionPolicy: 'raise' };
    const shared = keys.get('shared');
    if (shared) {
      if (!isSeq(shared)) this.fail(shared, 'shared must be a list of variable names');
      out.shared = (shared.items as Node[]).map((item) => this.string(item, 'shared'));
    }
    const policy = keys.get('exception_policy');
    if (policy) {
      const value = this.string(policy, 'exception_policy');
      // `unhandled` names the default policy explicitly.
      if (value !== 'continueAll' && value !== 'unhandled') {
        this.fail(policy, `unsupported exception_policy "${value}" (unhandled or continueAll)`);
      }
      out.exceptionPolicy = value === 'continueAll' ? 'continueAll' : 'raise';
    }
    const limit = keys.get('concurrency_limit');
    if (limit) out.concurrencyLimit = this.template(limit);
    const branches = keys.get('branches');
    const loop = keys.get('for');
    if ((branches ? 1 : 0) + (loop ? 1 : 0) !== 1)
      this.fail(node, 'parallel needs exactly one of "branches" and "for"');
    if (loop) out.for = this.forLoop(loop);
    if (branches) {
      if (!isSeq(branches)) this.fail(branches, 'branches must be a list');
      out.branches = (branches.items as Node[]).map((item) => {
        if (!isMap(item) || item.items.length !== 1)
          this.fail(item, 'each branch is a map with one key, its name');
        const pair = item.items[0] as { key: Node; value: Node };
        const name = this.keyName(pair.key);
        const body = this.keys(this.map(pair.value, `branch "${name}"`), ['steps'], `branch "${name}"`);
        return { name, line: this.line(pair.key), steps: this.steps(body.get('steps')) };
      });
    }
    return out;
  }

  private assignments(node: Node): Extract<Step, { kind: 'assign' }>['items'] {
    if (!isSeq(node)) this.fail(node, 'assign must be a list of {variable: value}');
    return (node.items as Node[]).map((item) => {
      if (!isMap(item) || item.items.length !== 1) this.fail(item, 'each assignment is a map with one key');
      const pair = item.items[0] as { key: Node; value: Node };
      return {
        target: this.target(pair.key),
        value: this.template(pair.value),
        line: this.line(pair.key),
      };
    });
  }

  private target(node: Node): AssignTarget {
    const text = this.keyName(node);
    let expr: Expr;
    try {
      expr = parseExpression(text);
    } catch (err) {
      return this.fail(node, `invalid assignment target "${text}": ${(err as Error).message}`);
    }
    const path: AssignTarget['path'] = [];
    let cursor = expr;
    for (;;) {
      if (cursor.t === 'var') return { root: cursor.name, path: path.reverse() };
      if (cursor.t === 'member') path.push({ k: 'field', name: cursor.name });
      else if (cursor.t === 'index') path.push({ k: 'index', expr: cursor.index });
      else this.fail(node, `invalid assignment target "${text}"`);
      cursor = cursor.object;
    }
  }

  /** A YAML value with every `${...}` string compiled. */
  private template(node: Node | null | undefined): Template {
    if (node === null || node === undefined) return { k: 'lit', value: null };
    if (isAlias(node)) this.fail(node, 'YAML aliases are not supported');
    if (isScalar(node)) {
      const value = node.value;
      if (typeof value === 'string' && isExpressionString(value)) {
        const source = value.slice(2, -1);
        try {
          return { k: 'expr', expr: parseExpression(source), source, line: this.line(node) };
        } catch (err) {
          if (err instanceof ExpressionSyntaxError) {
            this.fail(node, `invalid expression \${${source}}: ${err.message} at offset ${err.offset}`);
          }
          throw err;
        }
      }
      return { k: 'lit', value: typeof value === 'bigint' ? Number(value) : (value ?? null) };
    }
    if (isSeq(node)) return { k: 'list', items: (node.items as Node[]).map((item) => this.template(item)) };
    if (isMap(node)) {
      return {
        k: 'map',
        entries: node.items.map((pair) => [this.mapKey(pair.key as Node), this.template(pair.value as Node)]),
      };
    }
    return this.fail(node, 'unsupported YAML node');
  }

  /** `"${key}": value` evaluates the key, as Workflows does for keys of maps in values. */
  private mapKey(node: Node): MapKey {
    const name = this.keyName(node);
    if (!isExpressionString(name)) return name;
    const source = name.slice(2, -1);
    try {
      return { expr: parseExpression(source), source, line: this.line(node) };
    } catch (err) {
      if (err instanceof ExpressionSyntaxError) {
        this.fail(
          node,
          `invalid expression \${${source}} in a map key: ${err.message} at offset ${err.offset}`,
        );
      }
      throw err;
    }
  }

  private keys(map: YAMLMap, allowed: string[], where: string): Map<string, Node> {
    const out = new Map<string, Node>();
    for (const pair of map.items) {
      const key = this.keyName(pair.key as Node);
      if (!allowed.includes(key)) {
        this.fail(pair.key as Node, `unsupported key "${key}" in ${where} (allowed: ${allowed.join(', ')})`);
      }
      out.set(key, pair.value as Node);
    }
    return out;
  }

  private map(node: Node | null | undefined, what: string): YAMLMap {
    if (!isMap(node)) this.fail(node, `${what} must be a map`);
    return node;
  }

  private keyName(node: unknown): string {
    if (isScalar(node) && (typeof node.value === 'string' || typeof node.value === 'number'))
      return String(node.value);
    return this.fail(node as Node, 'keys must be names');
  }

  private string(node: Node, what: string): string {
    if (isScalar(node) && typeof node.value === 'string') return node.value;
    return this.fail(node, `${what} must be a string`);
  }

  private line(node: Node | null | undefined): number {
    const offset = node?.range?.[0];
    return offset === undefined ? 1 : this.lines.linePos(offset).line;
  }

  private fail(node: Node | null | undefined, message: string): never {
    throw new WorkflowSyntaxError(this.file, this.line(node), message);
  }
}
