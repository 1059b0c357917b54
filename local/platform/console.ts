/**
 * The dev console: one readable line per thing that flows through the platform (uploads,
 * jobs, task progress, states, results), or the same as JSON lines with `--json`.
 */

import type { PlatformActivity } from '../activity.js';

export interface DevConsole {
  activity(activity: PlatformActivity): void;
  /** One stdout/stderr line of a function process (JSON logs in Cloud Logging's shape, or text). */
  functionLine(fn: string, line: string): void;
}

const SEVERITY_RANK: Record<string, number> = {
  DEBUG: 0,
  INFO: 1,
  NOTICE: 1,
  WARNING: 2,
  ERROR: 3,
  CRITICAL: 4,
};

export function createDevConsole(options: {
  json: boolean;
  write?: (line: string) => void;
  verbose?: boolean;
}): DevConsole {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const minimum = options.verbose ? 0 : 1;

  const print = (source: string, kind: string, message: string, fields: Record<string, unknown>) => {
    if (options.json) {
      write(JSON.stringify({ time: new Date().toISOString(), source, kind, message, ...fields }));
      return;
    }
    const time = new Date().toTimeString().slice(0, 8);
    write(`${time}  ${source.padEnd(10)} ${message}`);
  };

  return {
    activity(activity) {
      const { kind, message, ...fields } = activity;
      print(kind.split('.')[0] ?? kind, kind, message, fields);
    },
    functionLine(fn, line) {
      if (!line.trim()) return;
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        // functions-framework's own banner and anything a dependency prints.
        if (options.verbose) print(fn, 'log', line, {});
        return;
      }
      const severity = String(entry.severity ?? 'INFO');
      if ((SEVERITY_RANK[severity] ?? 1) < minimum) return;
      const { message, severity: _s, time: _t, function: _f, ...fields } = entry;
      const context = [
        fields.product && fields.client ? `${fields.product}/${fields.client}` : '',
        fields.jobId,
      ]
        .filter(Boolean)
        .join(' ');
      const prefix =
        severity === 'ERROR' || severity === 'CRITICAL' ? 'ERROR ' : severity === 'WARNING' ? 'WARN ' : '';
      print(fn, 'log', `${prefix}${String(message ?? '')}${context ? `  (${context})` : ''}`, {
        severity,
        ...fields,
      });
    },
  };
}

/** The part of the task slot pool the console reads (local/executor/task-slots.ts). */
export interface SlotsSource {
  snapshot(): { limit: number; inUse: number; waiting: number; waitingOwners: string[] };
  onChange(listener: () => void): () => void;
}

/**
 * Shows queued work: a `slots` line such as `task slots 4/4 busy, 37 jobs queued` whenever
 * the backlog changes, at most once per `intervalMs` (a burst of 500 uploads must not print 500
 * lines of it), and one last line when the queue is empty again. Nothing while no job waits.
 * Returns the function that stops following.
 */
export function followTaskSlots(
  slots: SlotsSource,
  report: (activity: PlatformActivity) => void,
  intervalMs = 1_000,
): () => void {
  let timer: NodeJS.Timeout | undefined;
  let printed = '';
  let queuedBefore = false;
  const print = () => {
    timer = undefined;
    const { limit, inUse, waitingOwners } = slots.snapshot();
    const queued = waitingOwners.length;
    if (queued === 0 && !queuedBefore) return;
    const message = `task slots ${inUse}/${limit} busy, ${queued === 0 ? 'no job' : queued === 1 ? '1 job' : `${queued} jobs`} queued`;
    queuedBefore = queued > 0;
    if (message === printed) return;
    printed = message;
    report({ kind: 'slots', message, limit, inUse, queued });
  };
  const unsubscribe = slots.onChange(() => {
    if (timer) return;
    timer = setTimeout(print, intervalMs);
    timer.unref();
  });
  return () => {
    unsubscribe();
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
}
