import type { Clock as LocalClock } from '../clock.js';
import type { CallbackHub } from './callbacks.js';
import type { Expr } from './expression.js';

/** How the interpreter reads the time (local/clock.ts) and waits; tests hand in a fake one. */
export interface Clock extends LocalClock {
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** A connector call (`call: googleapis....`): the evaluated `args`, resolving with the step's result. */
export type Connector = (
  args: Record<string, unknown>,
  context: { signal?: AbortSignal },
) => Promise<unknown>;

/** Connectors by their full call name, e.g. `googleapis.batch.v1.projects.locations.jobs.create`. */
export type ConnectorRegistry = Record<string, Connector>;

/** What an execution may use from the outside world. */
export interface WorkflowRuntime {
  connectors: ConnectorRegistry;
  /** What `sys.get_env` reads (GOOGLE_CLOUD_PROJECT_ID, GOOGLE_CLOUD_LOCATION, GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID, ...). */
  env: Record<string, string>;
  clock: Clock;
  /** `sys.log` entries. */
  log?(entry: { severity: string; data: unknown }): void;
  /** Aborting it cancels the execution (WorkflowCancelledError). */
  signal?: AbortSignal;
  /** Guard against endless loops: the execution fails after this many steps (default 100000). */
  maxSteps?: number;
  /**
   * Runs another workflow by its id to completion (what `experimental.executions.map` starts);
   * without it, that function fails saying it has no local stand-in.
   */
  runWorkflow?(workflowId: string, argument: unknown, signal?: AbortSignal): Promise<unknown>;
  /** Where `events.create_callback_endpoint` endpoints live; without it, callbacks have no local stand-in. */
  callbacks?: CallbackHub;
  /** Each step as it is entered (what an execution's `status.currentSteps` reports). */
  onStep?(step: { routine: string; step: string }): void;
}

/** A problem `validateWorkflow` found. */
export interface WorkflowDiagnostic {
  file: string;
  line: number;
  message: string;
}

/** A YAML value with `${...}` expressions compiled. */
export type Template =
  | { k: 'lit'; value: unknown }
  | { k: 'expr'; expr: Expr; source: string; line: number }
  | { k: 'list'; items: Template[] }
  | { k: 'map'; entries: Array<[MapKey, Template]> };

/** A key of a YAML map: a name, or a `"${...}"` key that Workflows evaluates to a string. */
export type MapKey = string | { expr: Expr; source: string; line: number };

/** Where an `assign` writes: `a`, `a.b`, `a["b"][0]`. */
export interface AssignTarget {
  root: string;
  path: Array<{ k: 'field'; name: string } | { k: 'index'; expr: Expr }>;
}

interface StepBase {
  name: string;
  line: number;
  next?: string;
  nextLine?: number;
}

export type Step =
  | (StepBase & { kind: 'assign'; items: Array<{ target: AssignTarget; value: Template; line: number }> })
  | (StepBase & { kind: 'call'; fn: string; args?: Template; result?: string })
  | (StepBase & { kind: 'switch'; conditions: SwitchCondition[] })
  | (StepBase & { kind: 'for'; loop: ForLoop })
  | (StepBase & { kind: 'parallel'; parallel: Parallel })
  | (StepBase & {
      kind: 'try';
      body: Step;
      retry?: RetrySpec;
      except?: { as?: string; steps: Step[]; line: number };
    })
  | (StepBase & { kind: 'raise'; value: Template })
  | (StepBase & { kind: 'return'; value?: Template })
  | (StepBase & { kind: 'steps'; steps: Step[] })
  | (StepBase & { kind: 'next' });

export interface SwitchCondition {
  line: number;
  condition: Template;
  next?: string;
  steps?: Step[];
  assign?: Extract<Step, { kind: 'assign' }>['items'];
  call?: { fn: string; args?: Template; result?: string };
  return?: Template;
  raise?: Template;
}

export interface ForLoop {
  line: number;
  value?: string;
  index?: string;
  in?: Template;
  /** `[start, end]` (inclusive): a YAML list of two values, or one expression giving that list. */
  range?: Template;
  steps: Step[];
}

export interface Parallel {
  line: number;
  shared: string[];
  exceptionPolicy: 'raise' | 'continueAll';
  concurrencyLimit?: Template;
  branches?: Array<{ name: string; line: number; steps: Step[] }>;
  for?: ForLoop;
}

export type RetrySpec =
  | { k: 'expr'; policy: Template; line: number }
  | {
      k: 'map';
      line: number;
      predicate?: Template;
      maxRetries?: Template;
      initialDelay?: Template;
      maxDelay?: Template;
      multiplier?: Template;
    };

export interface Routine {
  name: string;
  line: number;
  params: Array<{ name: string; default?: Template }>;
  steps: Step[];
}

/** A parsed workflow definition. */
export interface WorkflowProgram {
  file: string;
  routines: Map<string, Routine>;
}
