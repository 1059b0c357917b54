import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  LOCAL_CONNECTOR_NAMES,
  parseWorkflow,
  validateWorkflow,
  validateWorkflowFile,
  WorkflowSyntaxError,
} from '#local/workflows/index.js';

function diagnose(source: string, connectors?: string[]) {
  return validateWorkflow(parseWorkflow(source, 'flow.yaml'), connectors ? { connectors } : {});
}

describe('validateWorkflow', () => {
  it('accepts a workflow using steps, subworkflows, stdlib and a local connector', () => {
    const source = `main:
  params: [args]
  steps:
    - init:
        assign:
          - project: \${sys.get_env("GOOGLE_CLOUD_PROJECT_ID")}
    - create:
        try:
          call: googleapis.batch.v1.projects.locations.jobs.create
          args:
            parent: \${"projects/" + project + "/locations/europe-west2"}
            body: {}
          result: job
        retry: \${http.default_retry}
        except:
          as: e
          steps:
            - report:
                call: notify
                args:
                  state: FAILED
            - fail:
                raise: \${e}
    - loop:
        for:
          value: n
          range: [1, 3]
          steps:
            - maybe:
                switch:
                  - condition: \${n == 2}
                    next: break
    - done:
        call: notify
        args:
          state: SUCCEEDED
        result: r
notify:
  params: [state, extra: null]
  steps:
    - publish:
        call: googleapis.pubsub.v1.projects.topics.publish
        args:
          topic: projects/p/topics/t
          body:
            messages:
              - data: '\${base64.encode(json.encode({"state": state}))}'
    - out:
        return: \${state}
`;
    expect(diagnose(source)).toEqual([]);
  });

  it.each([
    [
      'a next to a missing step',
      `- a:\n    assign:\n      - x: 1\n    next: nowhere\n`,
      4,
      'next: step "nowhere" is not in reach',
    ],
    [
      'next: break outside a loop',
      `- a:\n    assign:\n      - x: 1\n- b:\n    next: break\n`,
      5,
      'next: break is only allowed inside a for loop',
    ],
    [
      'a jump from a loop body to an outer step',
      `- outer:\n    assign:\n      - x: 1\n- loop:\n    for:\n      value: v\n      in: [1]\n      steps:\n        - jump:\n            next: outer\n`,
      10,
      'next: step "outer" is not in reach',
    ],
    [
      'an unknown call',
      `- a:\n    assign:\n      - x: 1\n- b:\n    call: http.fetch\n`,
      4,
      'unknown function "http.fetch" in step "b"',
    ],
    [
      'a connector of an API Google publishes no connector for',
      `- a:\n    call: googleapis.nosuchapi.v1.things.get\n`,
      1,
      '"googleapis.nosuchapi.v1.things.get" is not a Google connector',
    ],
    [
      'an unknown function in an expression',
      `- a:\n    assign:\n      - x: 1\n      - y: \${nope(x)}\n`,
      4,
      'unknown function "nope" in expression',
    ],
    [
      'an unknown standard library name',
      `- a:\n    try:\n      call: sys.log\n      args:\n        text: hi\n    retry: \${http.default_retries}\n`,
      6,
      'unknown standard library name "http.default_retries"',
    ],
    [
      'a stdlib call with a wrong argument',
      `- a:\n    call: sys.log\n    args:\n      message: hi\n`,
      1,
      'sys.log has no argument "message"',
    ],
    [
      'a wrong stdlib arity in an expression',
      `- a:\n    return: \${len(1, 2)}\n`,
      2,
      'len() takes 1..1 arguments, got 2',
    ],
  ])('reports %s with its line', (_name, source, line, message) => {
    // Act
    const diagnostics = diagnose(source);
    // Assert
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]).toMatchObject({ file: 'flow.yaml', line });
    expect(diagnostics[0]?.message).toContain(message);
  });

  it('checks subworkflow calls: unknown and missing arguments, arity in expressions', () => {
    const source = `main:
  steps:
    - c:
        call: sub
        args:
          wrong: 1
    - d:
        return: \${sub()}
sub:
  params: [needed, optional: 2]
  steps:
    - r:
        return: \${needed}
`;
    expect(diagnose(source)).toEqual([
      { file: 'flow.yaml', line: 3, message: 'subworkflow "sub" has no parameter "wrong"' },
      { file: 'flow.yaml', line: 3, message: 'subworkflow "sub" needs the argument "needed"' },
      { file: 'flow.yaml', line: 8, message: 'subworkflow "sub" takes 2 arguments, got 0' },
    ]);
  });

  it("accepts any call of Google's catalogue, with or without a local stand-in", () => {
    // As in GoogleCloudPlatform/workflows-samples: src/http_get, src/connectors/connector_bigquery,
    // src/connectors/connector_secretmanager (accessString in an expression), src/connect_kubernetes_api_request.
    const source = `
- get:
    call: http.get
    args:
      url: https://example.com
    result: r
- query:
    call: googleapis.bigquery.v2.jobs.insert
    args:
      projectId: p
- cb:
    call: events.create_callback_endpoint
    args:
      http_callback_method: POST
    result: callback
- k8s:
    call: gke.request
    args:
      cluster_id: c
- secret:
    assign:
      - s: \${googleapis.secretmanager.v1.projects.secrets.versions.accessString("id", "1", "p")}
      - both: \${r.code == 200 AND NOT (s == "")}
- loop:
    for:
      value: i
      range: \${[0, len(s) - 1]}
      steps:
        - noop:
            assign:
              - keyed: '\${ {"k": i} }'
`;
    expect(diagnose(source)).toEqual([]);
  });

  it('uses the given connector names instead of the local ones', () => {
    const source = `- a:\n    call: googleapis.custom.v1.thing\n`;
    expect(diagnose(source, ['googleapis.custom.v1.thing'])).toEqual([]);
    expect(LOCAL_CONNECTOR_NAMES).toContain('googleapis.run.v2.projects.locations.jobs.run');
  });
});

describe('parseWorkflow syntax errors', () => {
  it.each([
    ['invalid YAML', `main:\n  steps:\n    - a: [\n`, /^w\.yaml:\d+: invalid YAML/],
    [
      'an unknown step key',
      `- a:\n    assign:\n      - x: 1\n    nxt: b\n`,
      /^w\.yaml:4: unsupported key "nxt" in step "a"/,
    ],
    ['a step without action', `- a:\n    foo: 1\n`, /^w\.yaml:2: step "a" has no supported action/],
    [
      'a map workflow without main',
      `other:\n  steps:\n    - a:\n        return: 1\n`,
      /^w\.yaml:1: .*"main"/,
    ],
    [
      'mixed step kinds',
      `- a:\n    assign:\n      - x: 1\n    return: 1\n`,
      /^w\.yaml:2: step "a" mixes assign and return/,
    ],
    [
      'for with in and range',
      `- l:\n    for:\n      value: v\n      in: [1]\n      range: [1, 2]\n      steps:\n        - s:\n            return: 1\n`,
      /^w\.yaml:3: for needs exactly one of "in" and "range"/,
    ],
    [
      'an unsupported exception policy',
      `- p:\n    parallel:\n      exception_policy: stopAll\n      branches:\n        - b:\n            steps:\n              - s:\n                  return: 1\n`,
      /^w\.yaml:3: unsupported exception_policy/,
    ],
  ])('rejects %s with file:line', (_name, source, pattern) => {
    expect(() => parseWorkflow(source, 'w.yaml')).toThrow(WorkflowSyntaxError);
    expect(() => parseWorkflow(source, 'w.yaml')).toThrow(pattern);
  });
});

describe('validateWorkflowFile', () => {
  it('turns a syntax error into a diagnostic and validates a good file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wf-validate-'));
    const bad = join(dir, 'bad.workflows.yaml');
    const good = join(dir, 'good.workflows.yaml');
    writeFileSync(bad, `- a:\n    assign:\n      - x: \${1 +}\n`);
    writeFileSync(good, `- a:\n    return: \${1 + 1}\n`);
    expect(validateWorkflowFile(bad)).toEqual([
      { file: bad, line: 3, message: expect.stringContaining('invalid expression $' + '{1 +}') },
    ]);
    expect(validateWorkflowFile(good)).toEqual([]);
  });
});
