import { errorMap } from './errors.js';
import { deepEqual, getField, isMap, typeName } from './values.js';

/** The syntax tree of one `${...}` expression. */
export type Expr =
  | { t: 'lit'; value: unknown }
  | { t: 'var'; name: string }
  | { t: 'member'; object: Expr; name: string }
  | { t: 'index'; object: Expr; index: Expr }
  | { t: 'call'; name: string; args: Expr[] }
  | { t: 'unary'; op: '-' | 'not'; operand: Expr }
  | { t: 'binary'; op: BinaryOp; left: Expr; right: Expr }
  | { t: 'list'; items: Expr[] }
  | { t: 'map'; entries: Array<[Expr, Expr]> };

export type BinaryOp =
  | '+'
  | '-'
  | '*'
  | '/'
  | '//'
  | '%'
  | '=='
  | '!='
  | '<'
  | '<='
  | '>'
  | '>='
  | 'in'
  | 'and'
  | 'or';

/** A malformed expression; `offset` is the character position inside the expression text. */
export class ExpressionSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = 'ExpressionSyntaxError';
  }
}

type TokenType = 'num' | 'str' | 'ident' | 'op' | 'eof';
interface Token {
  type: TokenType;
  value: string;
  num?: number;
  pos: number;
}

const OPERATORS = [
  '//',
  '==',
  '!=',
  '<=',
  '>=',
  '+',
  '-',
  '*',
  '/',
  '%',
  '<',
  '>',
  '(',
  ')',
  '[',
  ']',
  '{',
  '}',
  ',',
  ':',
  '.',
];
const ESCAPES: Record<string, string> = {
  n: '\n',
  t: '\t',
  r: '\r',
  '\\': '\\',
  '"': '"',
  "'": "'",
  '/': '/',
  b: '\b',
  f: '\f',
};

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const start = i;
    if (/[0-9]/.test(c)) {
      const match = /^(\d+(\.\d*)?([eE][+-]?\d+)?)/.exec(source.slice(i)) as RegExpExecArray;
      const text = match[1] as string;
      tokens.push({ type: 'num', value: text, num: Number(text), pos: start });
      i += text.length;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const text = (/^[A-Za-z_][A-Za-z0-9_]*/.exec(source.slice(i)) as RegExpExecArray)[0];
      tokens.push({ type: 'ident', value: text, pos: start });
      i += text.length;
      continue;
    }
    if (c === '"' || c === "'") {
      let text = '';
      i++;
      while (i < source.length && source[i] !== c) {
        if (source[i] === '\\') {
          const e = source[i + 1] ?? '';
          if (e === 'u') {
            const hex = source.slice(i + 2, i + 6);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw new ExpressionSyntaxError('bad \\u escape', i);
            text += String.fromCharCode(Number.parseInt(hex, 16));
            i += 6;
            continue;
          }
          const mapped = ESCAPES[e];
          if (mapped === undefined) throw new ExpressionSyntaxError(`unknown escape \\${e}`, i);
          text += mapped;
          i += 2;
          continue;
        }
        text += source[i];
        i++;
      }
      if (i >= source.length) throw new ExpressionSyntaxError('unterminated string', start);
      i++;
      tokens.push({ type: 'str', value: text, pos: start });
      continue;
    }
    const op = OPERATORS.find((o) => source.startsWith(o, i));
    if (!op) throw new ExpressionSyntaxError(`unexpected character "${c}"`, i);
    tokens.push({ type: 'op', value: op, pos: start });
    i += op.length;
  }
  tokens.push({ type: 'eof', value: '', pos: source.length });
  return tokens;
}

const KEYWORD_LITERALS: Record<string, unknown> = {
  true: true,
  True: true,
  TRUE: true,
  false: false,
  False: false,
  FALSE: false,
  null: null,
};

/** Binding power of the infix operators (higher binds tighter). */
const INFIX: Record<string, number> = {
  or: 10,
  and: 20,
  '==': 40,
  '!=': 40,
  '<': 40,
  '<=': 40,
  '>': 40,
  '>=': 40,
  in: 40,
  '+': 50,
  '-': 50,
  '*': 60,
  '/': 60,
  '//': 60,
  '%': 60,
};
const NOT_BP = 30;

/** Workflows accepts the logical operators in lower and in upper case (`and`, `AND`). */
const WORD_OPERATORS = new Map<string, 'and' | 'or' | 'not' | 'in'>([
  ['and', 'and'],
  ['AND', 'and'],
  ['or', 'or'],
  ['OR', 'or'],
  ['not', 'not'],
  ['NOT', 'not'],
  ['in', 'in'],
]);
const NEG_BP = 70;

/**
 * Parses the text inside `${...}` with a Pratt parser.
 *
 * @example parseExpression('a.b["c"][0] + len(xs) * 2')
 */
export function parseExpression(source: string): Expr {
  const tokens = tokenize(source);
  let p = 0;
  const peek = () => tokens[p] as Token;
  const next = () => tokens[p++] as Token;
  const isOp = (value: string) => peek().type === 'op' && peek().value === value;
  const expect = (value: string) => {
    const token = next();
    if (token.type !== 'op' || token.value !== value) {
      throw new ExpressionSyntaxError(`expected "${value}" but found "${token.value || 'end'}"`, token.pos);
    }
  };
  const infixOf = (token: Token): string | undefined => {
    if (token.type === 'op' && token.value in INFIX) return token.value;
    const word = token.type === 'ident' ? WORD_OPERATORS.get(token.value) : undefined;
    return word === 'not' ? undefined : word;
  };

  const parse = (minBp: number): Expr => {
    let left = prefix();
    for (;;) {
      const token = peek();
      if (token.type === 'op' && (token.value === '.' || token.value === '[' || token.value === '(')) {
        left = postfix(left);
        continue;
      }
      const op = infixOf(token);
      if (!op) break;
      const bp = INFIX[op] as number;
      if (bp <= minBp) break;
      next();
      const right = parse(bp);
      left = { t: 'binary', op: op as BinaryOp, left, right };
    }
    return left;
  };

  const postfix = (left: Expr): Expr => {
    const token = next();
    if (token.value === '.') {
      const name = next();
      if (name.type !== 'ident') throw new ExpressionSyntaxError('expected a field name after "."', name.pos);
      return { t: 'member', object: left, name: name.value };
    }
    if (token.value === '[') {
      const index = parse(0);
      expect(']');
      return { t: 'index', object: left, index };
    }
    const name = dottedName(left);
    if (!name) throw new ExpressionSyntaxError('only named functions can be called', token.pos);
    const args: Expr[] = [];
    if (!isOp(')')) {
      do args.push(parse(0));
      while (isOp(',') && next());
    }
    expect(')');
    return { t: 'call', name, args };
  };

  const prefix = (): Expr => {
    const token = next();
    switch (token.type) {
      case 'num':
        return { t: 'lit', value: token.num };
      case 'str':
        return { t: 'lit', value: token.value };
      case 'ident':
        if (Object.hasOwn(KEYWORD_LITERALS, token.value))
          return { t: 'lit', value: KEYWORD_LITERALS[token.value] };
        if (WORD_OPERATORS.get(token.value) === 'not')
          return { t: 'unary', op: 'not', operand: parse(NOT_BP) };
        if (WORD_OPERATORS.get(token.value)) {
          throw new ExpressionSyntaxError(`unexpected "${token.value}"`, token.pos);
        }
        return { t: 'var', name: token.value };
      case 'op':
        if (token.value === '-') return { t: 'unary', op: '-', operand: parse(NEG_BP) };
        if (token.value === '(') {
          const inner = parse(0);
          expect(')');
          return inner;
        }
        if (token.value === '[') {
          const items: Expr[] = [];
          if (!isOp(']')) {
            do items.push(parse(0));
            while (isOp(',') && next());
          }
          expect(']');
          return { t: 'list', items };
        }
        if (token.value === '{') {
          const entries: Array<[Expr, Expr]> = [];
          if (!isOp('}')) {
            do {
              const key = parse(0);
              expect(':');
              entries.push([key, parse(0)]);
            } while (isOp(',') && next());
          }
          expect('}');
          return { t: 'map', entries };
        }
        throw new ExpressionSyntaxError(`unexpected "${token.value}"`, token.pos);
      default:
        throw new ExpressionSyntaxError('unexpected end of expression', token.pos);
    }
  };

  if (peek().type === 'eof') throw new ExpressionSyntaxError('empty expression', 0);
  const expr = parse(0);
  const rest = peek();
  if (rest.type !== 'eof') throw new ExpressionSyntaxError(`unexpected "${rest.value}"`, rest.pos);
  return expr;
}

/** `a.b.c` as a dotted name when the expression is a plain chain of names, else undefined. */
export function dottedName(expr: Expr): string | undefined {
  if (expr.t === 'var') return expr.name;
  if (expr.t === 'member') {
    const base = dottedName(expr.object);
    return base === undefined ? undefined : `${base}.${expr.name}`;
  }
  return undefined;
}

/** What an expression needs from the running workflow. */
export interface EvalContext {
  /** A variable's value, or `{ found: false }`. */
  lookup(name: string): { found: true; value: unknown } | { found: false };
  /** A named value that is not a variable: a subworkflow or builtin function, or a builtin constant. */
  named(name: string): { found: true; value: unknown } | { found: false };
  /** Calls a standard library function or a subworkflow with positional arguments. */
  call(name: string, args: unknown[]): Promise<unknown>;
}

/** Evaluates an expression; errors are raised as Workflows raises them (`WorkflowException`). */
export async function evaluate(expr: Expr, ctx: EvalContext): Promise<unknown> {
  switch (expr.t) {
    case 'lit':
      return expr.value;
    case 'var': {
      const variable = ctx.lookup(expr.name);
      if (variable.found) return variable.value;
      const named = ctx.named(expr.name);
      if (named.found) return named.value;
      throw errorMap('KeyError', `variable "${expr.name}" is not defined`);
    }
    case 'member': {
      // `http.default_retry` reads a builtin when `http` is not a variable.
      const name = dottedName(expr);
      if (name !== undefined) {
        const root = name.split('.')[0] as string;
        if (!ctx.lookup(root).found) {
          const named = ctx.named(name);
          if (named.found) return named.value;
        }
      }
      return getField(await evaluate(expr.object, ctx), expr.name);
    }
    case 'index': {
      const container = await evaluate(expr.object, ctx);
      const index = await evaluate(expr.index, ctx);
      return getField(container, index);
    }
    case 'call': {
      const args: unknown[] = [];
      for (const arg of expr.args) args.push(await evaluate(arg, ctx));
      return ctx.call(expr.name, args);
    }
    case 'unary': {
      const value = await evaluate(expr.operand, ctx);
      if (expr.op === 'not') {
        if (typeof value !== 'boolean')
          throw errorMap('TypeError', `"not" needs a boolean, got ${typeName(value)}`);
        return !value;
      }
      if (typeof value !== 'number')
        throw errorMap('TypeError', `unary "-" needs a number, got ${typeName(value)}`);
      return -value;
    }
    case 'binary':
      return evaluateBinary(expr, ctx);
    case 'list': {
      const items: unknown[] = [];
      for (const item of expr.items) items.push(await evaluate(item, ctx));
      return items;
    }
    case 'map': {
      const map: Record<string, unknown> = {};
      for (const [keyExpr, valueExpr] of expr.entries) {
        const key = await evaluate(keyExpr, ctx);
        if (typeof key !== 'string')
          throw errorMap('TypeError', `map keys must be strings, got ${typeName(key)}`);
        map[key] = await evaluate(valueExpr, ctx);
      }
      return map;
    }
  }
}

async function evaluateBinary(expr: Extract<Expr, { t: 'binary' }>, ctx: EvalContext): Promise<unknown> {
  const { op } = expr;
  const left = await evaluate(expr.left, ctx);
  if (op === 'and' || op === 'or') {
    if (typeof left !== 'boolean')
      throw errorMap('TypeError', `"${op}" needs booleans, got ${typeName(left)}`);
    // Short-circuit: the right side may be an expression that only holds when the left does.
    if (op === 'and' ? !left : left) return left;
    const right = await evaluate(expr.right, ctx);
    if (typeof right !== 'boolean')
      throw errorMap('TypeError', `"${op}" needs booleans, got ${typeName(right)}`);
    return right;
  }
  const right = await evaluate(expr.right, ctx);
  return applyBinary(op, left, right);
}

/** One binary operator with Workflows' typing: no implicit conversions between strings and numbers. */
export function applyBinary(op: BinaryOp, left: unknown, right: unknown): unknown {
  const mismatch = () =>
    errorMap('TypeError', `unsupported operand types for ${op}: ${typeName(left)} and ${typeName(right)}`);
  switch (op) {
    case '==':
      return deepEqual(left, right);
    case '!=':
      return !deepEqual(left, right);
    case 'in':
      if (Array.isArray(right)) return right.some((item) => deepEqual(item, left));
      if (isMap(right)) {
        if (typeof left !== 'string') throw mismatch();
        return Object.hasOwn(right, left);
      }
      throw mismatch();
    case '<':
    case '<=':
    case '>':
    case '>=': {
      const bothNumbers = typeof left === 'number' && typeof right === 'number';
      const bothStrings = typeof left === 'string' && typeof right === 'string';
      if (!bothNumbers && !bothStrings) throw mismatch();
      const l = left as number | string;
      const r = right as number | string;
      if (op === '<') return l < r;
      if (op === '<=') return l <= r;
      if (op === '>') return l > r;
      return l >= r;
    }
    case '+':
      if (typeof left === 'number' && typeof right === 'number') return left + right;
      if (typeof left === 'string' && typeof right === 'string') return left + right;
      throw mismatch();
    default: {
      if (typeof left !== 'number' || typeof right !== 'number') throw mismatch();
      if (op === '-') return left - right;
      if (op === '*') return left * right;
      if (right === 0)
        throw errorMap(
          'ZeroDivisionError',
          op === '/' ? 'division by zero' : 'integer division or modulo by zero',
        );
      if (op === '/') return left / right;
      if (op === '//') return Math.floor(left / right);
      // Python-style modulo: the result takes the sign of the divisor.
      return left - Math.floor(left / right) * right;
    }
  }
}

/** Function names called anywhere in an expression, for validation. */
export function calledFunctions(expr: Expr, out: string[] = []): string[] {
  switch (expr.t) {
    case 'call':
      out.push(expr.name);
      for (const arg of expr.args) calledFunctions(arg, out);
      break;
    case 'member':
      calledFunctions(expr.object, out);
      break;
    case 'index':
      calledFunctions(expr.object, out);
      calledFunctions(expr.index, out);
      break;
    case 'unary':
      calledFunctions(expr.operand, out);
      break;
    case 'binary':
      calledFunctions(expr.left, out);
      calledFunctions(expr.right, out);
      break;
    case 'list':
      for (const item of expr.items) calledFunctions(item, out);
      break;
    case 'map':
      for (const [k, v] of expr.entries) {
        calledFunctions(k, out);
        calledFunctions(v, out);
      }
      break;
    default:
      break;
  }
  return out;
}
