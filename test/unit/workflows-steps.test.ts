import { describe, expect, it } from 'vitest';
import {
  type Clock,
  type ConnectorRegistry,
  executeWorkflow,
  parseWorkflow,
  WorkflowCancelledError,
  WorkflowException,
  type WorkflowRuntime,
  WorkflowRuntimeError,
} from '#local/workflows/index.js';

/** A clock that records every sleep and advances instantly. */
function fakeClock(start = 0): Clock & { sleeps: number[] } {
  let now = start;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms);
      now += ms;
    },
  };
}

function run(source: string, argument?: unknown, runtime: Partial<WorkflowRuntime> = {}): Promise<unknown> {
  return executeWorkflow(parseWorkflow(source, 'test.yaml'), argument, {
    connectors: {},
    env: {},
    clock: fakeClock(),
    ...runtime,
  });
}

async function failure(promise: Promise<unknown>): Promise<WorkflowRuntimeError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WorkflowRuntimeError);
  return error as WorkflowRuntimeError;
}

describe('workflow steps', () => {
  it('runs a top-level list of steps as an implicit main', async () => {
    const source = `
- init:
    assign:
      - a: 1
      - b: \${a + 1}
- done:
    return: \${[a, b]}
`;
    expect(await run(source)).toEqual([1, 2]);
  });

  it('binds the execution argument to the single param of main and returns null when main ends without return', async () => {
    const withParam = `
main:
  params: [input]
  steps:
    - r:
        return: \${input.name}
`;
    const noReturn = `
- a:
    assign:
      - x: 1
`;
    expect(await run(withParam, { name: 'acme' })).toBe('acme');
    expect(await run(noReturn)).toBeNull();
  });

  it('assigns into nested maps and lists with value semantics', async () => {
    const source = `
- init:
    assign:
      - a: {inner: {n: 1}, list: [1, 2]}
      - b: \${a}
      - b.inner.n: 2
      - b.list[1]: 9
      - b["new"]: true
      - b.created.deep: x
- done:
    return: '\${ {"a": a, "b": b} }'
`;
    expect(await run(source)).toEqual({
      a: { inner: { n: 1 }, list: [1, 2] },
      b: { inner: { n: 2 }, list: [1, 9], new: true, created: { deep: 'x' } },
    });
  });

  it.each([
    [5, 'big'],
    [1, 'small'],
    [0, 'zero'],
    [-1, 'fallthrough'],
  ])('switch on %s takes the first matching condition (%s)', async (n, expected) => {
    const source = `
main:
  params: [n]
  steps:
    - pick:
        switch:
          - condition: \${n > 3}
            next: big
          - condition: \${n == 1}
            steps:
              - mark:
                  assign:
                    - label: small
            next: out
          - condition: \${n == 0}
            return: zero
        next: fallback
    - big:
        assign:
          - label: big
        next: out
    - fallback:
        assign:
          - label: fallthrough
    - out:
        return: \${label}
`;
    expect(await run(source, n)).toBe(expected);
  });

  it('switch can raise, and a non-boolean condition is a TypeError', async () => {
    const raising = `
- s:
    switch:
      - condition: true
        raise: nope
`;
    const nonBoolean = `
- s:
    switch:
      - condition: 1
        next: end
`;
    expect((await failure(run(raising))).payload).toBe('nope');
    expect((await failure(run(nonBoolean))).payload).toMatchObject({ tags: ['TypeError'] });
  });

  it('next jumps backwards to loop and next: end stops the routine', async () => {
    const source = `
- init:
    assign:
      - i: 0
- inc:
    assign:
      - i: \${i + 1}
- check:
    switch:
      - condition: \${i < 5}
        next: inc
    next: finish
- never:
    return: unreachable
- finish:
    assign:
      - result: \${i}
    next: end
- after:
    return: unreachable
`;
    expect(await run(source)).toBeNull();
  });

  it('next from nested steps reaches a step of the enclosing list', async () => {
    const source = `
- outer:
    steps:
      - inner:
          next: target
      - skipped:
          return: skipped
- middle:
    return: middle
- target:
    return: target
`;
    expect(await run(source)).toBe('target');
  });

  it('for over a list binds value and index; loop-local variables do not leak, outer ones are updated', async () => {
    const source = `
- init:
    assign:
      - seen: []
      - total: 0
- loop:
    for:
      value: v
      index: i
      in: ["a", "b", "c"]
      steps:
        - add:
            assign:
              - seen: \${list.concat(seen, string(i) + v)}
              - total: \${total + 1}
              - local: \${v}
- done:
    return: '\${ {"seen": seen, "total": total} }'
`;
    const result = (await run(source)) as Record<string, unknown>;
    expect(result.seen).toEqual(['0a', '1b', '2c']);
    expect(result.total).toBe(3);
    const leak = `
- loop:
    for:
      value: v
      in: [1]
      steps:
        - a:
            assign:
              - local: 1
- r:
    return: \${local}
`;
    expect((await failure(run(leak))).payload).toMatchObject({ tags: ['KeyError'] });
  });

  it('for over a range with continue and break', async () => {
    const source = `
- init:
    assign:
      - picked: []
- loop:
    for:
      value: n
      range: [1, 10]
      steps:
        - skip_odd:
            switch:
              - condition: \${n % 2 == 1}
                next: continue
        - stop:
            switch:
              - condition: \${n > 6}
                next: break
        - keep:
            assign:
              - picked: \${list.concat(picked, n)}
- done:
    return: \${picked}
`;
    expect(await run(source)).toEqual([2, 4, 6]);
  });

  it('raise of a string fails with the payload and a Workflows-style context naming step, routine and line', async () => {
    const source = `main:
  steps:
    - prepare:
        assign:
          - x: 1
    - fail:
        raise: boom
`;
    const error = await failure(run(source));
    expect(error.payload).toBe('boom');
    expect(error.context).toBe('RuntimeError: "boom"\nin step "fail", routine "main", line: 6');
    expect(error.line).toBe(6);
    expect(error.frames).toEqual([{ step: 'fail', routine: 'main', line: 6 }]);
  });

  it('raise of a map keeps the map as payload', async () => {
    const source = `
- fail:
    raise:
      code: 55
      message: \${"bad " + "thing"}
`;
    expect((await failure(run(source))).payload).toEqual({ code: 55, message: 'bad thing' });
  });

  it('try/except catches a KeyError and exposes the error map under "as"', async () => {
    const source = `
- init:
    assign:
      - m: {}
- attempt:
    try:
      steps:
        - read:
            assign:
              - v: \${m.missing}
    except:
      as: e
      steps:
        - handled:
            return: '\${ {"tags": e.tags, "isKey": "KeyError" in e.tags} }'
`;
    expect(await run(source)).toEqual({ tags: ['KeyError'], isKey: true });
  });

  it('an error raised again in except propagates, and try around a single call step works', async () => {
    const source = `
- attempt:
    try:
      call: boom
      result: r
    except:
      as: e
      steps:
        - rethrow:
            raise: '\${ {"wrapped": e} }'
`;
    const error = await failure(
      run(source, undefined, {
        connectors: {
          boom: async () => {
            throw { code: 404, message: 'nope', tags: ['HttpError'] };
          },
        },
      }),
    );
    expect(error.payload).toEqual({ wrapped: { code: 404, message: 'nope', tags: ['HttpError'] } });
  });

  it('retry with an explicit backoff sleeps initial_delay * multiplier^n capped at max_delay, under a fake clock', async () => {
    // Arrange: a connector that answers 503 three times, then succeeds.
    let calls = 0;
    const connectors: ConnectorRegistry = {
      'googleapis.flaky.v1.get': async () => {
        calls++;
        if (calls <= 3)
          throw new WorkflowException({ code: 503, message: 'unavailable', tags: ['HttpError'] });
        return { ok: calls };
      },
    };
    const clock = fakeClock();
    const source = `
- call_flaky:
    try:
      call: googleapis.flaky.v1.get
      result: r
    retry:
      predicate: \${http.default_retry_predicate}
      max_retries: 5
      backoff:
        initial_delay: 1
        max_delay: 3
        multiplier: 2
- done:
    return: \${r}
`;
    // Act
    const result = await run(source, undefined, { connectors, clock });
    // Assert
    expect(result).toEqual({ ok: 4 });
    expect(clock.sleeps).toEqual([1000, 2000, 3000]);
  });

  it('retry: http.default_retry gives up after 5 retries with 1.25 backoff, then except runs', async () => {
    let calls = 0;
    const clock = fakeClock();
    const source = `
- call_flaky:
    try:
      call: googleapis.flaky.v1.get
    retry: \${http.default_retry}
    except:
      as: e
      steps:
        - give_up:
            return: \${e.code}
`;
    const result = await run(source, undefined, {
      clock,
      connectors: {
        'googleapis.flaky.v1.get': async () => {
          calls++;
          throw { code: 429, message: 'slow down', tags: ['HttpError'] };
        },
      },
    });
    expect(result).toBe(429);
    expect(calls).toBe(6);
    expect(clock.sleeps).toEqual([1000, 1250, 1562.5, 1953.125, 2441.40625]);
  });

  it('retry does not retry when the predicate (a subworkflow) answers false', async () => {
    let calls = 0;
    const clock = fakeClock();
    const source = `
main:
  steps:
    - call_it:
        try:
          call: googleapis.flaky.v1.get
        retry:
          predicate: \${only_503}
          max_retries: 3
          backoff:
            initial_delay: 1
            max_delay: 10
            multiplier: 2
only_503:
  params: [e]
  steps:
    - check:
        return: \${e.code == 503}
`;
    const error = await failure(
      run(source, undefined, {
        clock,
        connectors: {
          'googleapis.flaky.v1.get': async () => {
            calls++;
            throw { code: 404, message: 'missing', tags: ['HttpError'] };
          },
        },
      }),
    );
    expect(calls).toBe(1);
    expect(clock.sleeps).toEqual([]);
    expect(error.payload).toMatchObject({ code: 404 });
    expect(error.context).toContain('in step "call_it"');
  });

  it('parallel branches write shared variables and keep their own locals', async () => {
    const source = `
- init:
    assign:
      - a: 0
      - b: 0
- both:
    parallel:
      shared: [a, b]
      branches:
        - left:
            steps:
              - set_a:
                  assign:
                    - tmp: 1
                    - a: \${tmp + 10}
        - right:
            steps:
              - set_b:
                  assign:
                    - tmp: 2
                    - b: \${tmp + 20}
- done:
    return: \${[a, b]}
`;
    expect(await run(source)).toEqual([11, 22]);
  });

  it('parallel for sums into a shared variable with a concurrency limit', async () => {
    let active = 0;
    let peak = 0;
    const source = `
- init:
    assign:
      - total: 0
- fan_out:
    parallel:
      shared: [total]
      concurrency_limit: 2
      for:
        value: n
        in: [1, 2, 3, 4, 5]
        steps:
          - work:
              call: googleapis.work.v1.do
              args:
                n: \${n}
              result: r
          - add:
              assign:
                - total: \${total + r}
- done:
    return: \${total}
`;
    const result = await run(source, undefined, {
      connectors: {
        'googleapis.work.v1.do': async (args) => {
          active++;
          peak = Math.max(peak, active);
          await new Promise((resolve) => setTimeout(resolve, 5));
          active--;
          return (args.n as number) * 10;
        },
      },
    });
    expect(result).toBe(150);
    expect(peak).toBe(2);
  });

  it('each assignment to a shared variable is atomic (Google: parallel_aggregate sums 4 iterations to 10)', async () => {
    // The value awaits a subworkflow call, so without the lock every iteration would read 0.
    const source = `
main:
  steps:
    - init:
        assign:
          - total: 0
          - seen: {}
    - fan_out:
        parallel:
          shared: [total, seen]
          for:
            value: v
            in: [1, 2, 3, 4]
            steps:
              - add:
                  assign:
                    - total: \${total + identity(v)}
                    - seen[string(identity(v))]: \${v * 10}
    - done:
        return: '\${ {"total": total, "seen": seen} }'
identity:
  params: [x]
  steps:
    - pause:
        call: sys.sleep
        args:
          seconds: 0.01
    - back:
        return: \${x}
`;
    expect(await run(source)).toEqual({ total: 10, seen: { '1': 10, '2': 20, '3': 30, '4': 40 } });
  });

  it('a parallel branch may not assign an outer variable that is not shared', async () => {
    const source = `
- init:
    assign:
      - x: 0
- par:
    parallel:
      branches:
        - b1:
            steps:
              - set:
                  assign:
                    - x: 1
`;
    const error = await failure(run(source));
    const payload = error.payload as { tags: string[]; branches: Array<{ error: { payload: unknown } }> };
    expect(payload.tags).toEqual(['UnhandledBranchError']);
    expect(payload.branches[0]?.error.payload).toMatchObject({ tags: ['TypeError'] });
    expect(JSON.stringify(payload.branches[0]?.error.payload)).toContain('\\"x\\"');
  });

  it.each([
    ['the default exception policy', ''],
    ['exception_policy: unhandled', 'exception_policy: unhandled'],
    ['exception_policy: continueAll', 'exception_policy: continueAll'],
  ])(
    'parallel with %s: every branch runs, then UnhandledBranchError lists the failed ones',
    async (_name, policy) => {
      const source = `
- init:
    assign:
      - done: 0
- guarded:
    try:
      steps:
        - par:
            parallel:
              shared: [done]
              ${policy}
              branches:
                - bad:
                    steps:
                      - fail:
                          raise: broken
                - good:
                    steps:
                      - wait:
                          call: sys.sleep
                          args:
                            seconds: 1
                      - ok:
                          assign:
                            - done: 1
    except:
      as: e
      steps:
        - report:
            return: '\${ {"done": done, "error": e} }'
`;
      const result = (await run(source)) as { done: number; error: Record<string, unknown> };
      expect(result.done).toBe(1);
      expect(result.error).toEqual({
        message: 'One or more branches or iterations encountered an unhandled runtime error',
        tags: ['UnhandledBranchError'],
        branches: [
          {
            id: 'bad',
            error: { payload: 'broken', context: expect.stringContaining('RuntimeError: "broken"') },
          },
        ],
        truncated: false,
      });
    },
  );

  it('calls subworkflows with named args, defaults and as expression functions, recursively', async () => {
    const source = `
main:
  steps:
    - greet:
        call: greeting
        args:
          name: acme
        result: hello
    - custom:
        call: greeting
        args:
          name: globex
          salutation: Hi
        result: hi
    - done:
        return: '\${ {"hello": hello, "hi": hi, "fact": factorial(5)} }'
greeting:
  params: [name, salutation: Hello]
  steps:
    - build:
        return: \${salutation + ", " + name}
factorial:
  params: [n]
  steps:
    - base:
        switch:
          - condition: \${n <= 1}
            return: 1
    - recurse:
        return: \${n * factorial(n - 1)}
`;
    expect(await run(source)).toEqual({ hello: 'Hello, acme', hi: 'Hi, globex', fact: 120 });
  });

  it('an error in a subworkflow reports the innermost step and a frame per routine', async () => {
    const source = `main:
  steps:
    - outer:
        call: inner
inner:
  steps:
    - explode:
        assign:
          - x: \${1 / 0}
`;
    const error = await failure(run(source));
    expect(error.payload).toEqual({ message: 'division by zero', tags: ['ZeroDivisionError'] });
    expect(error.context).toBe(
      'ZeroDivisionError: division by zero\nin step "explode", routine "inner", line: 7',
    );
    expect(error.frames).toEqual([
      { step: 'explode', routine: 'inner', line: 7 },
      { step: 'outer', routine: 'main', line: 3 },
    ]);
  });

  it('a missing subworkflow argument is a TypeError', async () => {
    const source = `
main:
  steps:
    - c:
        call: needs
        args: {}
needs:
  params: [value]
  steps:
    - r:
        return: \${value}
`;
    expect((await failure(run(source))).payload).toMatchObject({ tags: ['TypeError'] });
  });

  it('stops an endless loop at the step limit with an error no try can catch', async () => {
    const source = `
- guarded:
    try:
      steps:
        - spin:
            next: spin
    except:
      steps:
        - caught:
            return: caught
`;
    const error = await failure(run(source, undefined, { maxSteps: 50 }));
    expect(error.payload).toMatchObject({ tags: ['ResourceLimitError'] });
  });

  it('a switch condition may embed a call; a next beside return is accepted and never taken', async () => {
    // As in GoogleCloudPlatform/workflows-demos bigtable-ai/.../batch-export.yaml and workflows-bigquery-load.
    const logs: unknown[] = [];
    const source = `
main:
  steps:
    - decide:
        switch:
          - condition: \${true}
            call: double
            args:
              x: 21
            result: answer
    - done:
        return: \${answer}
        next: end
double:
  params: [x]
  steps:
    - log:
        call: sys.log
        args:
          text: doubling
    - r:
        return: \${x * 2}
`;
    expect(await run(source, undefined, { log: (entry) => logs.push(entry.data) })).toBe(42);
    expect(logs).toEqual(['doubling']);
  });

  it('a connector without a local stand-in fails the execution naming it, bypassing except', async () => {
    const source = `
- attempt:
    try:
      call: googleapis.bigquery.v2.jobs.insert
      args:
        projectId: p
    except:
      steps:
        - swallowed:
            return: swallowed
`;
    const error = await failure(run(source));
    expect(error.payload).toMatchObject({ tags: ['UnsupportedError'] });
    expect(error.context).toContain('test.yaml:2');
    expect(error.context).toContain('"googleapis.bigquery.v2.jobs.insert" has no local stand-in');
  });

  it('a connector called inside an expression gets its positional arguments by name', async () => {
    // GoogleCloudPlatform/workflows-samples src/connectors/connector_secretmanager.workflows.yaml
    const calls: unknown[] = [];
    const source = `
- read:
    return: \${googleapis.secretmanager.v1.projects.secrets.versions.accessString("token", "latest", "acme")}
`;
    const result = await run(source, undefined, {
      connectors: {
        'googleapis.secretmanager.v1.projects.secrets.versions.accessString': async (args) => {
          calls.push(args);
          return 's3cret';
        },
      },
    });
    expect(result).toBe('s3cret');
    expect(calls).toEqual([{ secret_id: 'token', version: 'latest', project_id: 'acme' }]);
    const missing = await failure(
      run(`- q:\n    return: '\${googleapis.bigquery.v2.jobs.get({"projectId": "p", "jobId": "j"})}'\n`),
    );
    expect(missing.context).toContain('"googleapis.bigquery.v2.jobs.get" has no local stand-in');
  });

  it('sys.log goes to runtime.log and sys.sleep to the clock', async () => {
    const clock = fakeClock(10_000);
    const logs: Array<{ severity: string; data: unknown }> = [];
    const source = `
- log:
    call: sys.log
    args:
      text: hello
      severity: WARNING
- log_data:
    call: sys.log
    args:
      data: {k: 1}
- nap:
    call: sys.sleep
    args:
      seconds: 2.5
- done:
    return: \${sys.now()}
`;
    const result = await run(source, undefined, { clock, log: (entry) => logs.push(entry) });
    expect(logs).toEqual([
      { severity: 'WARNING', data: 'hello' },
      { severity: 'DEFAULT', data: { k: 1 } },
    ]);
    expect(clock.sleeps).toEqual([2500]);
    expect(result).toBe(12.5);
  });

  it('passes evaluated args to a connector and stores its result', async () => {
    const received: unknown[] = [];
    const source = `
main:
  params: [input]
  steps:
    - create:
        call: googleapis.batch.v1.projects.locations.jobs.create
        args:
          parent: \${"projects/" + sys.get_env("GOOGLE_CLOUD_PROJECT_ID") + "/locations/europe-west2"}
          jobId: \${input.id}
          body:
            taskGroups:
              - taskCount: 2
        result: job
    - done:
        return: \${job.status.state}
`;
    const result = await run(
      source,
      { id: 'train-1' },
      {
        env: { GOOGLE_CLOUD_PROJECT_ID: 'p1' },
        connectors: {
          'googleapis.batch.v1.projects.locations.jobs.create': async (args) => {
            received.push(args);
            return { name: 'x', status: { state: 'SUCCEEDED' } };
          },
        },
      },
    );
    expect(result).toBe('SUCCEEDED');
    expect(received).toEqual([
      {
        parent: 'projects/p1/locations/europe-west2',
        jobId: 'train-1',
        body: { taskGroups: [{ taskCount: 2 }] },
      },
    ]);
  });

  it('aborting runtime.signal cancels the execution', async () => {
    const controller = new AbortController();
    const source = `
- wait:
    call: googleapis.slow.v1.wait
- after:
    return: done
`;
    const promise = run(source, undefined, {
      signal: controller.signal,
      connectors: {
        'googleapis.slow.v1.wait': (_args, { signal }) =>
          new Promise((_resolve, reject) =>
            signal?.addEventListener('abort', () => reject(new Error('aborted'))),
          ),
      },
    });
    controller.abort();
    await expect(promise).rejects.toBeInstanceOf(WorkflowCancelledError);
  });
});
