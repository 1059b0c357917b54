/**
 * The dev console: one readable line per thing that flows through the platform (uploads,
 * jobs, task progress, states, results), or the same as JSON lines with `--json`.
 */

export interface Activity {
  /** Dotted kind, e.g. `upload`, `job.created`, `job.state`, `task.state`, `event.delivered`, `result`. */
  kind: string;
  message: string;
  [key: string]: unknown;
}

export interface DevConsole {
  activity(activity: Activity): void;
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
