import type { StepEntry } from './api-types.js';

export interface ExecutionStatus {
  state: string;
  currentSteps: Array<{ routine: string; step: string }>;
}

/** Executions remembered; the oldest are forgotten first. */
const KEEP = 200;

/**
 * Records the steps of running workflow executions from what the Workflows API exposes:
 * `Execution.status.currentSteps` ("currently executing or last executed step names"), read
 * every `intervalMs` while the execution is ACTIVE. The v1 client ships no step-entries call,
 * so this is the step history a user can have; a step shorter than the interval may be missed
 * (the page says so), and an execution that ended before the console saw it has none.
 */
export function createStepRecorder(options: {
  read: (execution: string) => Promise<ExecutionStatus>;
  intervalMs?: number;
}) {
  const runs = new Map<string, StepEntry[]>();
  const watching = new Set<string>();
  let stopped = false;
  const interval = options.intervalMs ?? 100;

  async function follow(execution: string): Promise<void> {
    const entries = runs.get(execution) ?? [];
    runs.set(execution, entries);
    while (runs.size > KEEP) runs.delete(runs.keys().next().value as string);
    for (;;) {
      if (stopped) return;
      let status: ExecutionStatus;
      try {
        status = await options.read(execution);
      } catch {
        return; // gone, or Workflows is down: the health panel tells
      }
      const now = new Date().toISOString();
      const current = status.currentSteps.at(-1);
      const open = entries.at(-1);
      if (current && (!open || open.step !== current.step || open.routine !== current.routine)) {
        if (open && open.end === null) open.end = now;
        entries.push({ routine: current.routine, step: current.step, start: now, end: null });
      }
      if (status.state !== 'ACTIVE') {
        const last = entries.at(-1);
        if (last && last.end === null) last.end = now;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, interval).unref());
    }
  }

  return {
    /** Starts following an execution (once; a second call is a no-op). */
    watch(execution: string): void {
      if (watching.has(execution) || stopped) return;
      watching.add(execution);
      void follow(execution).finally(() => watching.delete(execution));
    },
    steps(execution: string): StepEntry[] {
      return runs.get(execution) ?? [];
    },
    stop(): void {
      stopped = true;
    },
  };
}
