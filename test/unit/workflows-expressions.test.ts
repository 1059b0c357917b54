import { describe, expect, it } from 'vitest';
import { type Clock, executeWorkflow, parseWorkflow, WorkflowRuntimeError } from '#local/workflows/index.js';

const fixedClock: Clock = { now: () => 1_700_000_000_000, sleep: async () => {} };

/** Evaluates one expression as the return value of a one-step workflow with `args` bound. */
async function evaluate(expression: string, args: unknown = {}): Promise<unknown> {
  const source = `main:\n  params: [args]\n  steps:\n    - r:\n        return: ${JSON.stringify(`\${${expression}}`)}\n`;
  return executeWorkflow(parseWorkflow(source, 'expr.yaml'), args, {
    connectors: {},
    env: { GOOGLE_CLOUD_PROJECT_ID: 'demo-project' },
    clock: fixedClock,
  });
}

const ARGS = { m: { a: { b: 'deep' }, n: null }, xs: [10, 20, 30], s: 'héllo' };

describe('workflow expressions', () => {
  it.each([
    ['1 + 2', 3],
    ['7 - 10', -3],
    ['6 * 7', 42],
    ['7 / 2', 3.5],
    ['7 // 2', 3],
    ['-7 // 2', -4],
    ['7 % 3', 1],
    ['-7 % 3', 2],
    ['1.5e1 + 0.5', 15.5],
    ['"a" + "b"', 'ab'],
    [`'single' + "double"`, 'singledouble'],
    ['"tab\\tend"', 'tab\tend'],
    ['1 + 2 * 3', 7],
    ['(1 + 2) * 3', 9],
    ['-(2 + 3)', -5],
    ['10 - 2 - 3', 5],
    ['1 < 2', true],
    ['2 <= 2', true],
    ['3 > 4', false],
    ['4 >= 5', false],
    ['"a" < "b"', true],
    ['1 == 1.0', true],
    ['"a" != "b"', true],
    ['[1, 2] == [1, 2]', true],
    ['{"k": [1]} == {"k": [1]}', true],
    ['true and false', false],
    ['true or false', true],
    ['not true', false],
    ['not (1 == 2)', true],
    ['True and TRUE', true],
    ['false and undefined_variable', false],
    ['true or undefined_variable', true],
    ['1 < 2 and 2 < 3', true],
    ['2 in [1, 2]', true],
    ['"k" in {"k": 1}', true],
    ['"z" in {"k": 1}', false],
    ['null == null', true],
    ['args.m.a.b', 'deep'],
    ['args.m["a"]["b"]', 'deep'],
    ['args.xs[1]', 20],
    ['args.xs[len(args.xs) - 1]', 30],
    ['args.m.n', null],
    ['[1, args.xs[0]]', [1, 10]],
    ['len(args.s)', 5],
    ['len([1, 2])', 2],
    ['len({"a": 1})', 1],
    ['keys({"a": 1, "b": 2})', ['a', 'b']],
    ['int("42") + 1', 43],
    ['int(3.9)', 3],
    ['double("1.5")', 1.5],
    ['string(12) + "!"', '12!'],
    ['string(true)', 'true'],
    ['default(null, "x")', 'x'],
    ['default(args.m.n, 5)', 5],
    ['map.get(args.m, ["a", "b"])', 'deep'],
    ['map.get(args.m, "nope")', null],
    ['map.merge({"a": 1}, {"b": 2})', { a: 1, b: 2 }],
    ['list.concat([1], 2)', [1, 2]],
    ['text.replace_all("a-b-c", "-", "+")', 'a+b+c'],
    ['text.split("a,b", ",")', ['a', 'b']],
    ['text.to_upper("ab")', 'AB'],
    ['text.to_lower("AB")', 'ab'],
    ['text.substring("hello", 1, 3)', 'el'],
    ['text.match_regex("job-42", "^job-[0-9]+$")', true],
    ['base64.encode(text.encode("hi"))', 'aGk='],
    ['text.decode(base64.decode("aGk="))', 'hi'],
    ['json.encode_to_string({"a": [1, true, null]})', '{"a":[1,true,null]}'],
    ['text.decode(json.encode("x"))', '"x"'],
    ['json.decode("{\\"a\\": 1}").a', 1],
    ['json.decode(text.encode("[1]"))', [1]],
    ['sys.get_env("GOOGLE_CLOUD_PROJECT_ID")', 'demo-project'],
    ['sys.get_env("MISSING", "fallback")', 'fallback'],
    ['sys.now()', 1_700_000_000],
    ['time.format(0)', '1970-01-01T00:00:00.000000Z'],
    ['time.format(0, "Europe/London")', '1970-01-01T01:00:00.000000+01:00'],
    ['time.parse("1970-01-01T00:01:00Z")', 60],
    ['http.default_retry.max_retries', 5],
    ['get_type(1.5)', 'double'],
    ['math.max(2, 9)', 9],
    // Upper-case logical operators, as in workflows-samples src/connectors/connector_firestore.
    ['true AND false', false],
    ['false OR true', true],
    ['NOT false', true],
    ['1 < 2 AND NOT (2 > 3) OR false', true],
    // Known digests (FIPS 180-2 "abc"; RFC 2104 HMAC-SHA256 of the well-known "quick brown fox").
    [
      'base64.encode(hash.compute_checksum(text.encode("abc"), "SHA256"))',
      'ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=',
    ],
    ['base64.encode(hash.compute_checksum(text.encode("abc"), "MD5"))', 'kAFQmDzST7DWlj99KOF/cg=='],
    [
      'base64.encode(hash.compute_hmac(text.encode("key"), text.encode("The quick brown fox jumps over the lazy dog"), "SHA256"))',
      '97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg=',
    ],
  ])('%s evaluates to %j', async (expression, expected) => {
    // Act
    const result = await evaluate(expression, ARGS);
    // Assert
    expect(result).toEqual(expected);
  });

  it('uuid.generate returns a v4 uuid', async () => {
    expect(await evaluate('uuid.generate()')).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });

  it.each([
    ['1 / 0', 'ZeroDivisionError'],
    ['1 // 0', 'ZeroDivisionError'],
    ['5 % 0', 'ZeroDivisionError'],
    ['args.m.nope', 'KeyError'],
    ['args.m["nope"]', 'KeyError'],
    ['undefined_variable', 'KeyError'],
    ['args.xs[5]', 'IndexError'],
    ['args.xs["a"]', 'TypeError'],
    ['"a" + 1', 'TypeError'],
    ['1 < "a"', 'TypeError'],
    ['not 1', 'TypeError'],
    ['-"a"', 'TypeError'],
    ['1 and true', 'TypeError'],
    ['int("x")', 'ValueError'],
    ['json.decode("{")', 'ValueError'],
    ['base64.encode("not bytes")', 'TypeError'],
    ['len(1)', 'TypeError'],
  ])('%s raises %s', async (expression, tag) => {
    // Act
    const error = await evaluate(expression, ARGS).catch((e: unknown) => e);
    // Assert
    expect(error).toBeInstanceOf(WorkflowRuntimeError);
    const payload = (error as WorkflowRuntimeError).payload as { message: string; tags: string[] };
    expect(payload.tags).toEqual([tag]);
    expect(typeof payload.message).toBe('string');
    expect((error as WorkflowRuntimeError).context).toContain(`${tag}: `);
    expect((error as WorkflowRuntimeError).line).toBe(4);
  });

  it('evaluates expression map keys and a range given as one expression', async () => {
    // Map keys as in workflows-samples src/dictionary; range as in src/parallel_for_range.
    const source = `
main:
  params: [args]
  steps:
    - init:
        assign:
          - out: {}
    - loop:
        for:
          value: i
          range: \${[args.from, args.from + 2]}
          steps:
            - put:
                assign:
                  - entry:
                      \${"item_" + string(i)}: \${i * i}
                  - out: \${map.merge(out, entry)}
    - done:
        return: \${out}
`;
    const result = await executeWorkflow(
      parseWorkflow(source, 'keys.yaml'),
      { from: 2 },
      {
        connectors: {},
        env: {},
        clock: fixedClock,
      },
    );
    expect(result).toEqual({ item_2: 4, item_3: 9, item_4: 16 });
  });

  it.each([
    ['hash.compute_checksum(text.encode("a"), "CRC99")', 'ValueError'],
    ['hash.compute_hmac(text.encode("k"), text.encode("a"), "MD5")', 'ValueError'],
    ['hash.compute_checksum("not bytes", "SHA256")', 'TypeError'],
  ])('%s raises %s', async (expression, tag) => {
    const error = (await evaluate(expression).catch((e: unknown) => e)) as WorkflowRuntimeError;
    expect(error.payload).toMatchObject({ tags: [tag] });
  });

  it('experimental.executions.map runs the workflow once per argument, in order', async () => {
    const started: unknown[] = [];
    const source = `- r:
    return: \${experimental.executions.map("square", [1, 2, 3])}
`;
    const result = await executeWorkflow(parseWorkflow(source, 'map.yaml'), null, {
      connectors: {},
      env: {},
      clock: fixedClock,
      runWorkflow: async (id, argument) => {
        started.push([id, argument]);
        return (argument as number) ** 2;
      },
    });
    expect(result).toEqual([1, 4, 9]);
    expect(started).toEqual([
      ['square', 1],
      ['square', 2],
      ['square', 3],
    ]);
    const alone = (await evaluate('experimental.executions.map("square", [1])').catch(
      (e: unknown) => e,
    )) as WorkflowRuntimeError;
    expect(alone.payload).toMatchObject({ tags: ['UnsupportedError'] });
    expect(alone.context).toContain('no local stand-in');
  });

  it('an unknown function fails the execution with its name and file:line', async () => {
    // Act
    const error = (await evaluate('nope.fn(1)').catch((e: unknown) => e)) as WorkflowRuntimeError;
    // Assert
    expect(error).toBeInstanceOf(WorkflowRuntimeError);
    expect(error.payload).toMatchObject({ tags: ['UnsupportedError'] });
    expect(error.context).toContain('expr.yaml:4');
    expect(error.context).toContain('"nope.fn"');
  });

  it.each([
    ['1 +', 'unexpected end'],
    ['(1', 'expected ")"'],
    ['"open', 'unterminated string'],
    ['a b', 'unexpected "b"'],
    ['1 # 2', 'unexpected character'],
    ['[1, 2', 'expected "]"'],
  ])('a malformed expression %s is a syntax error with file:line', (expression, detail) => {
    const source = `- a:\n    assign:\n      - x: 1\n- r:\n    return: ${JSON.stringify(`\${${expression}}`)}\n`;
    expect(() => parseWorkflow(source, 'bad.yaml')).toThrow(
      new RegExp(`^bad\\.yaml:5: invalid expression.*${detail.replace(/[()[\]]/g, '\\$&')}`),
    );
  });
});
