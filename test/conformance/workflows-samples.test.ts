import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { CallbackHub } from '#local/workflows/callbacks.js';
import {
  type Clock,
  executeWorkflow,
  parseWorkflow,
  validateWorkflow,
  WorkflowRuntimeError,
  WorkflowSyntaxError,
} from '#local/workflows/index.js';

/**
 * Google's published Workflows examples, reproduced on the local interpreter. Each case is
 * written here (no copied files) to show the behaviour of one example and its documented result;
 * its name cites the example in GoogleCloudPlatform/workflows-samples (snapshot 127ed78) and the
 * page of cloud.google.com/workflows/docs that publishes it. `http.*` calls go to a loopback
 * server standing in for the example's URL.
 *
 * With WORKFLOWS_SAMPLES_DIR=<a checkout of GoogleCloudPlatform/workflows-samples>, the last
 * block also validates every workflow of that corpus and runs the self-contained ones whose
 * documented result is listed in KNOWN_RESULTS, printing the counts.
 */

/** Sleeps finish at once and are recorded, so retry backoffs are asserted, not waited for. */
function recordingClock(): Clock & { sleeps: number[] } {
  const sleeps: number[] = [];
  let now = Date.UTC(2026, 0, 5, 9, 0, 0);
  return {
    sleeps,
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms);
      now += ms;
    },
  };
}

async function run(
  source: string,
  argument: unknown = null,
  clock: Clock = recordingClock(),
): Promise<unknown> {
  const program = parseWorkflow(source, 'sample.yaml');
  expect(validateWorkflow(program)).toEqual([]);
  return executeWorkflow(program, argument, { connectors: {}, env: {}, clock });
}

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;
let server: Server;
let base: string;
let handler: Handler = (_req, _body, res) => res.writeHead(404).end();

function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString('utf8');
    });
    req.on('end', () => handler(req, body, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

describe('Google Workflows samples, reproduced', () => {
  it('runtime arguments: src/args.workflows.yaml (docs: passing runtime arguments) returns the greeting', async () => {
    const source = `
main:
  params: [args]
  steps:
    - greet:
        assign:
          - out: \${"Hello " + args.firstName + " " + args.lastName}
    - done:
        return: \${out}
`;
    expect(await run(source, { firstName: 'Sherlock', lastName: 'Holmes' })).toBe('Hello Sherlock Holmes');
  });

  it('jump loop: src/step_iterate.workflows.yaml (docs: iterate with jumps) concatenates to "foobar"', async () => {
    const source = `
- define:
    assign:
      - parts: ["foo", "ba", "r"]
      - acc: ""
      - i: 0
- check:
    switch:
      - condition: \${len(parts) > i}
        next: take
    next: finish
- take:
    assign:
      - acc: \${acc + parts[i]}
      - i: \${i + 1}
    next: check
- finish:
    return:
      concat_result: \${acc}
`;
    expect(await run(source)).toEqual({ concat_result: 'foobar' });
  });

  it('dynamic map key: src/dictionary.workflows.yaml (docs: maps) stores a "dynamicKey" expression key under its value', async () => {
    const source = `
- create:
    assign:
      - dynamicKey: "MiddleName"
      - person:
          FirstName: "John"
          \${dynamicKey}: "Apple"
          Address:
            City: "Superville"
- done:
    return: \${person}
`;
    expect(await run(source)).toEqual({
      FirstName: 'John',
      MiddleName: 'Apple',
      Address: { City: 'Superville' },
    });
  });

  it('expressions: src/expression.workflows.yaml (docs: expressions) converts 27 C to "Current temperature is 80.6 F"', async () => {
    const source = `
- compute:
    assign:
      - celsius: 27
      - fahrenheit: \${celsius * 9/5 + 32}
      - msg: \${"Current temperature is " + string(fahrenheit) + " F"}
- done:
    return: \${msg}
`;
    expect(await run(source)).toBe('Current temperature is 80.6 F');
  });

  it.each([
    ['src/iterate_for_range.workflows.yaml: range [1, 9] sums to 45', 'range: [1, 9]', 45],
    ['src/iterate_list.workflows.yaml: in [1..5] sums to 15', 'in: [1, 2, 3, 4, 5]', 15],
  ])('for loops (docs: iteration): %s', async (_name, loop, expected) => {
    const source = `
- init:
    assign:
      - sum: 0
- loop:
    for:
      value: v
      ${loop}
      steps:
        - add:
            assign:
              - sum: \${sum + v}
- done:
    return: \${sum}
`;
    expect(await run(source)).toBe(expected);
  });

  it('map iteration: src/iterate_map.workflows.yaml (docs: iteration) sums the values of numeric YAML keys to 60', async () => {
    const source = `
- init:
    assign:
      - m:
          1: 10
          2: 20
          3: 30
      - sum: 0
- loop:
    for:
      value: key
      in: \${keys(m)}
      steps:
        - add:
            assign:
              - sum: \${sum + m[key]}
- done:
    return: \${sum}
`;
    expect(await run(source)).toBe(60);
  });

  it('subworkflow with list.prepend: src/list_reverse.workflows.yaml documents [3,2,1]', async () => {
    const source = `
main:
  steps:
    - call_it:
        call: reversed
        args:
          items: [1, 2, 3]
        result: out
    - done:
        return: \${out}
reversed:
  params: [items]
  steps:
    - init:
        assign:
          - acc: []
    - loop:
        for:
          value: item
          in: \${items}
          steps:
            - put:
                assign:
                  - acc: \${list.prepend(acc, item)}
    - back:
        return: \${acc}
`;
    expect(await run(source)).toEqual([3, 2, 1]);
  });

  it('loop scope: src/loop_scope.workflows.yaml (docs: for loop scope) keeps the last inner write to the workflow variable, [8]', async () => {
    const source = `
- init:
    assign:
      - outer: foo
- outerLoop:
    for:
      value: a
      in: [1, 2, 3, 4]
      steps:
        - innerLoop:
            for:
              value: b
              in: [5, 6, 7, 8]
              steps:
                - write:
                    assign:
                      - outer: \${b}
                      - local: \${a}
- done:
    return:
      - \${outer}
`;
    expect(await run(source)).toEqual([8]);
  });

  it('embedded switch steps: src/step_switch_embedded.workflows.yaml returns "increase a to:8"', async () => {
    const source = `
- init:
    assign:
      - a: 1
- decide:
    switch:
      - condition: \${a == 1}
        steps:
          - bump:
              assign:
                - a: \${a + 7}
          - early:
              return: \${"increase a to:" + string(a)}
- fallback:
    return: \${"default a=" + string(a)}
`;
    expect(await run(source)).toBe('increase a to:8');
  });

  it('parallel error handling: src/parallel_error_handling.workflows.yaml (docs: parallel steps) catches one UnhandledBranchError naming every odd iteration', async () => {
    const source = `
- guarded:
    try:
      steps:
        - each:
            parallel:
              for:
                value: n
                range: [0, 5]
                steps:
                  - odd:
                      switch:
                        - condition: \${n % 2 != 0}
                          raise: "how odd!"
    except:
      as: e
      steps:
        - out:
            return: \${e}
`;
    const error = (await run(source)) as { tags: string[]; branches: Array<{ id: string; error: unknown }> };
    expect(error.tags).toEqual(['UnhandledBranchError']);
    expect(error.branches.map((b) => b.id)).toEqual(['1', '3', '5']);
    for (const branch of error.branches) expect(branch.error).toMatchObject({ payload: 'how odd!' });
  });

  it('upper-case logical operators: src/connectors/connector_firestore.workflows.yaml checks two fields with AND', async () => {
    const source = `
- doc:
    assign:
      - got:
          fields:
            fieldA: {stringValue: "abc"}
            fieldB: {integerValue: "123"}
- check:
    switch:
      - condition: \${got.fields.fieldA.stringValue == "abc" AND int(got.fields.fieldB.integerValue) == 123}
        return: matched
- otherwise:
    return: mismatch
`;
    expect(await run(source)).toBe('matched');
  });

  it('http.get with headers and query: src/http_get.workflows.yaml returns the response body', async () => {
    let seen: { url?: string; contentType?: string } = {};
    handler = (req, _body, res) => {
      seen = { url: req.url ?? '', contentType: req.headers['content-type'] ?? '' };
      json(res, 200, { message: 'hi' });
    };
    const source = `
- get:
    call: http.get
    args:
      url: ${base}/endpoint
      headers:
        Content-Type: "text/plain"
      query:
        some_val: "Hello World"
        another_val: 123
    result: r
- done:
    return: \${r.body}
`;
    expect(await run(source)).toEqual({ message: 'hi' });
    expect(seen).toEqual({
      url: '/endpoint?some_val=Hello+World&another_val=123',
      contentType: 'text/plain',
    });
  });

  it('http.post with a map body: src/http_post.workflows.yaml sends it as JSON', async () => {
    let received: unknown;
    handler = (req, body, res) => {
      received = { type: req.headers['content-type'], body: JSON.parse(body) };
      json(res, 200, 'stored');
    };
    const source = `
- send:
    call: http.post
    args:
      url: ${base}/endpoint
      body:
        some_val: "Hello World"
        another_val: 123
    result: r
- done:
    return: \${[r.code, r.body]}
`;
    expect(await run(source)).toEqual([200, 'stored']);
    expect(received).toEqual({
      type: 'application/json',
      body: { some_val: 'Hello World', another_val: 123 },
    });
  });

  it.each([
    [404, "Sorry, URL wasn't found"],
    [403, 'Authentication error'],
    [0, 'Connection problem; check URL'],
  ])(
    'HttpError and connection errors: src/error_catch.workflows.yaml maps status %i to %j',
    async (status, expected) => {
      handler = (_req, _body, res) => json(res, status, { error: 'no' });
      const url = status === 0 ? 'http://127.0.0.1:9/refused' : `${base}/someapi`;
      const source = `
- read:
    try:
      call: http.get
      args:
        url: ${url}
        auth:
          type: OIDC
      result: response
    except:
      as: e
      steps:
        - known:
            switch:
              - condition: \${not("HttpError" in e.tags)}
                next: connection_problem
              - condition: \${e.code == 404}
                next: not_found
              - condition: \${e.code == 403}
                next: auth_problem
        - other:
            raise: \${e}
- found:
    return: \${response.body}
- connection_problem:
    return: "Connection problem; check URL"
- not_found:
    return: "Sorry, URL wasn't found"
- auth_problem:
    return: "Authentication error"
`;
      expect(await run(source)).toBe(expected);
    },
  );

  it('retry with a custom predicate: src/error_retry_500.workflows.yaml retries 500s with backoff 2 s, 4 s, then returns "OK"', async () => {
    let calls = 0;
    handler = (_req, _body, res) => {
      calls++;
      json(res, calls <= 2 ? 500 : 200, { calls });
    };
    const clock = recordingClock();
    const source = `
main:
  steps:
    - read:
        try:
          call: http.get
          args:
            url: ${base}/api
          result: response
        retry:
          predicate: \${only_500}
          max_retries: 5
          backoff:
            initial_delay: 2
            max_delay: 60
            multiplier: 2
    - done:
        return: "OK"
only_500:
  params: [e]
  steps:
    - check:
        switch:
          - condition: \${e.code == 500}
            return: true
    - no:
        return: false
`;
    expect(await run(source, null, clock)).toBe('OK');
    expect(calls).toBe(3);
    expect(clock.sleeps).toEqual([2000, 4000]);
  });

  it('shared variables: src/parallel_shared_variables.workflows.yaml fills one map from two branches', async () => {
    handler = (req, _body, res) => {
      const delay = req.url?.includes('getStock') ? 30 : 0;
      setTimeout(() => json(res, 200, { some: { entry: req.url?.split('/').pop() } }), delay);
    };
    const source = `
- init:
    assign:
      - input: ["apples", "oranges"]
      - my_result: {}
- both:
    parallel:
      shared: [my_result]
      branches:
        - getStock:
            steps:
              - get:
                  call: http.get
                  args:
                    url: \${"${base}/getStock/" + input[0]}
                  result: local_result
              - put:
                  assign:
                    - my_result["getStock"]: \${local_result.body.some.entry}
        - orderStock:
            steps:
              - get:
                  call: http.get
                  args:
                    url: \${"${base}/orderStock/" + input[1]}
                  result: local_result
              - put:
                  assign:
                    - my_result["orderStock"]: \${local_result.body.some.entry}
- done:
    return: \${my_result}
`;
    expect(await run(source)).toEqual({ getStock: 'apples', orderStock: 'oranges' });
  });

  it('atomic shared assignment: src/parallel_aggregate.workflows.yaml sums every parallel iteration into numWords', async () => {
    // The sample adds BigQuery counts; here each iteration's count comes over http.get, answered
    // out of order, and each `numWords: ${numWords + ...}` is one atomic assignment.
    const counts: Record<string, number> = { sonnets: 3, various: 5, comedyoferrors: 7, kinglear: 11 };
    handler = (req, _body, res) => {
      const corpus = req.url?.split('/').pop() ?? '';
      setTimeout(() => json(res, 200, { count: counts[corpus] }), 40 - (counts[corpus] ?? 0) * 3);
    };
    const source = `
main:
  steps:
    - init:
        assign:
          - numWords: 0
          - corpuses: ["sonnets", "various", "comedyoferrors", "kinglear"]
    - count:
        parallel:
          shared: [numWords]
          for:
            value: corpus
            in: \${corpuses}
            steps:
              - add:
                  assign:
                    - numWords: \${numWords + http.get("${base}/count/" + corpus).body.count}
    - done:
        return: \${numWords}
`;
    expect(await run(source)).toBe(26);
  });

  it('range as an expression: src/parallel_for_range.workflows.yaml iterates a range expression [0, len(list) - 1] in parallel', async () => {
    handler = (req, body, res) =>
      json(res, 200, { translated: JSON.parse(body).text.toUpperCase(), path: req.url });
    const source = `
- init:
    assign:
      - texts: [{text: "hello"}, {text: "world"}, {text: "again"}]
      - translated: ["", "", ""]
- each:
    parallel:
      shared: [translated]
      for:
        range: \${[0, len(texts) - 1]}
        value: i
        steps:
          - translate:
              call: http.post
              args:
                url: ${base}/translate
                body: \${texts[i]}
              result: r
          - put:
              assign:
                - translated[i]: \${r.body.translated}
- done:
    return: \${translated}
`;
    expect(await run(source)).toEqual(['HELLO', 'WORLD', 'AGAIN']);
  });

  it('a double range: src/iterate_for_range_http.workflows.yaml steps from -14.5 by 1 until the service says stop', async () => {
    const seen: number[] = [];
    handler = (req, _body, res) => {
      const temp = Number(new URL(req.url ?? '', base).searchParams.get('temp'));
      seen.push(temp);
      json(res, 200, temp < -12);
    };
    const source = `
- init:
    assign:
      - minTemp: -14.5
      - maxTemp: 42.8
- loop:
    for:
      value: temp
      range: \${[minTemp, maxTemp]}
      steps:
        - check:
            call: http.get
            args:
              url: \${"${base}/isBodyTempNormal?temp=" + string(temp)}
            result: isNormal
        - storeOrBreak:
            switch:
              - condition: \${isNormal.body}
                next: continue
            next: break
- done:
    return: stopped
`;
    expect(await run(source)).toBe('stopped');
    expect(seen).toEqual([-14.5, -13.5, -12.5, -11.5]);
  });

  it('callbacks (docs: "Wait using callbacks", creating-callback-endpoints): the awaited request comes back to the workflow', async () => {
    const hub = new CallbackHub();
    const logged: unknown[] = [];
    const source = `
- create:
    call: events.create_callback_endpoint
    args:
      http_callback_method: POST
    result: callback_details
- tell:
    call: sys.log
    args:
      text: \${callback_details.url}
- wait:
    call: events.await_callback
    args:
      callback: \${callback_details}
      timeout: 3600
    result: callback_request
- done:
    return: \${[callback_request.http_request.method, callback_request.http_request.body, callback_request.type]}
`;
    const program = parseWorkflow(source, 'callback.yaml');
    expect(validateWorkflow(program)).toEqual([]);
    try {
      const execution = executeWorkflow(program, null, {
        connectors: {},
        env: {},
        clock: recordingClock(),
        callbacks: hub,
        log: (entry) => logged.push(entry.data),
      });
      await vi.waitFor(() => expect(logged).toHaveLength(1));
      const url = logged[0] as string;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callbacks\//);
      // The wrong method is refused; the right one is answered 200 and handed to the await.
      expect((await fetch(url, { method: 'GET' })).status).toBe(405);
      const answer = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ approved: true }),
      });
      expect(answer.status).toBe(200);
      expect(await execution).toEqual(['POST', { approved: true }, 'HTTP']);
    } finally {
      await hub.close();
    }
  });

  it('callbacks: a timeout raises TimeoutError, and a runtime without callbacks says it has no local stand-in', async () => {
    const hub = new CallbackHub();
    const source = `
- create:
    call: events.create_callback_endpoint
    result: cb
- wait:
    try:
      call: events.await_callback
      args:
        callback: \${cb}
        timeout: 0.05
    except:
      as: e
      steps:
        - out:
            return: \${e.tags}
`;
    const program = parseWorkflow(source, 'callback.yaml');
    try {
      expect(
        await executeWorkflow(program, null, {
          connectors: {},
          env: {},
          clock: recordingClock(),
          callbacks: hub,
        }),
      ).toEqual(['TimeoutError']);
    } finally {
      await hub.close();
    }
    const error = await executeWorkflow(program, null, {
      connectors: {},
      env: {},
      clock: recordingClock(),
    }).catch((e: unknown) => e);
    expect((error as WorkflowRuntimeError).context).toContain('no local stand-in');
  });
});

// ---- the published corpus, measured without committing it ------------------------------------

/**
 * Documented results of the self-contained samples (no http, connector or environment), by
 * path in GoogleCloudPlatform/workflows-samples: from the "Expected output" comments and the
 * result comments in each file, and from the docs pages that publish them.
 */
const KNOWN_RESULTS: Record<string, { argument?: unknown; result: unknown }> = {
  'src/args.workflows.yaml': {
    argument: { firstName: 'Sherlock', lastName: 'Holmes' },
    result: 'Hello Sherlock Holmes',
  },
  'src/array.workflows.yaml': { result: { concat_result: 'foobar' } },
  'src/dictionary.workflows.yaml': { result: null },
  'src/expression.workflows.yaml': { result: 'Current temperature is 80.6 F' },
  'src/iterate_for_range.workflows.yaml': { result: 45 },
  'src/iterate_list.workflows.yaml': { result: 15 },
  'src/iterate_map.workflows.yaml': { result: 60 },
  'src/list.workflows.yaml': { result: null },
  'src/list_reverse.workflows.yaml': { result: [3, 2, 1] },
  'src/loop_scope.workflows.yaml': { result: [8] },
  'src/parallel_error_handling.workflows.yaml': {
    result: expect.objectContaining({
      tags: ['UnhandledBranchError'],
      branches: ['1', '3', '5'].map((id) => expect.objectContaining({ id })),
    }),
  },
  'src/step_iterate.workflows.yaml': { result: { concat_result: 'foobar' } },
  'src/step_switch_embedded.workflows.yaml': { result: 'increase a to:8' },
  'src/subworkflow.workflows.yaml': { result: 'Hello Kristof' },
  'src/vars.workflows.yaml': { result: null },
};

/** Calls that need something outside the workflow: not self-contained. */
const EXTERNAL =
  /\b(googleapis\.|http\.(get|post|put|patch|delete|request)\b|events\.|gke\.|sys\.get_env|experimental\.)/;

const STEP_KEYS = ['call', 'assign', 'return', 'switch', 'for', 'parallel', 'try', 'raise', 'steps', 'next'];

/** A YAML document that is a Workflows definition: `main` with steps, or a list of steps. */
function isWorkflowDocument(doc: unknown): boolean {
  const isMapValue = (v: unknown): v is Record<string, unknown> =>
    v !== null && typeof v === 'object' && !Array.isArray(v);
  const isStep = (item: unknown) => {
    if (!isMapValue(item) || Object.keys(item).length !== 1) return false;
    const body = Object.values(item)[0];
    return isMapValue(body) && Object.keys(body).some((key) => STEP_KEYS.includes(key));
  };
  if (Array.isArray(doc)) return doc.length > 0 && doc.every(isStep);
  return isMapValue(doc) && isMapValue(doc.main) && 'steps' in doc.main;
}

/** Every `*.yaml`/`*.yml` under `dir` that holds a workflow (build configs and the like are left out). */
function workflowFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.ya?ml$/.test(entry.name)) {
        let doc: unknown;
        try {
          doc = parseYaml(readFileSync(path, 'utf8'));
        } catch {
          doc = undefined;
        }
        // A workflow file that is not valid YAML still counts (and fails validation).
        if (doc === undefined ? /\.workflows\.ya?ml$/.test(entry.name) : isWorkflowDocument(doc))
          out.push(path);
      }
    }
  };
  walk(dir);
  return out.sort();
}

const samplesDir = process.env.WORKFLOWS_SAMPLES_DIR;
if (samplesDir) {
  describe(`the published corpus in WORKFLOWS_SAMPLES_DIR (${samplesDir})`, () => {
    const files = workflowFiles(samplesDir);

    it('at least 95% of the workflows validate, and every self-contained one with a documented result returns it', async () => {
      const invalid: string[] = [];
      const selfContained: string[] = [];
      const wrong: string[] = [];
      const unknown: string[] = [];
      for (const file of files) {
        const name = relative(samplesDir, file);
        const source = readFileSync(file, 'utf8');
        let program: ReturnType<typeof parseWorkflow>;
        try {
          program = parseWorkflow(source, name);
        } catch (err) {
          if (!(err instanceof WorkflowSyntaxError)) throw err;
          invalid.push(err.message);
          continue;
        }
        const problems = validateWorkflow(program);
        if (problems.length > 0) {
          invalid.push(...problems.map((p) => `${p.file}:${p.line}: ${p.message}`));
          continue;
        }
        if (EXTERNAL.test(source.replace(/#.*$/gm, ''))) continue;
        selfContained.push(name);
        const known = KNOWN_RESULTS[name];
        if (!known) {
          unknown.push(name);
          continue;
        }
        try {
          const result = await executeWorkflow(program, known.argument ?? null, {
            connectors: {},
            env: {},
            clock: recordingClock(),
          });
          if (!matches(result, known.result)) wrong.push(`${name}: got ${JSON.stringify(result)}`);
        } catch (err) {
          wrong.push(`${name}: ${err instanceof WorkflowRuntimeError ? err.context : String(err)}`);
        }
      }
      const validCount = files.length - new Set(invalid.map((line) => line.split(':')[0])).size;
      const ran = selfContained.length - unknown.length;
      console.log(
        [
          `Workflows corpus ${samplesDir}: ${files.length} workflows`,
          `  validate: ${validCount}/${files.length} (${((100 * validCount) / files.length).toFixed(1)}%)`,
          `  self-contained: ${selfContained.length}; with a documented result: ${ran}; returned it: ${ran - wrong.length}/${ran}`,
          ...invalid.map((line) => `  invalid: ${line}`),
          ...wrong.map((line) => `  wrong: ${line}`),
          ...unknown.map((line) => `  no documented result listed: ${line}`),
        ].join('\n'),
      );
      expect(files.length).toBeGreaterThan(0);
      expect(validCount / files.length).toBeGreaterThanOrEqual(0.95);
      // Self-contained workflows with no documented result are listed, not judged.
      expect(wrong).toEqual([]);
    });
  });
}

function matches(actual: unknown, expected: unknown): boolean {
  try {
    expect(actual).toEqual(expected);
    return true;
  } catch {
    return false;
  }
}
