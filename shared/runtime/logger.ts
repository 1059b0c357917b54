import { pino } from 'pino';

/** pino levels → Cloud Logging severities. */
const SEVERITY: Record<string, string> = {
  trace: 'DEBUG',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'CRITICAL',
};

export type Logger = pino.Logger;

/**
 * A pino logger writing one JSON line per entry in the shape Cloud Logging parses from
 * stdout: `severity`, `message`, `time`, and the trace under `logging.googleapis.com/trace`.
 * Per-event fields (event id, product, client, job id) are bound with `logger.child({...})`.
 *
 * @example
 * const log = createLogger({ name: 'onUpload' }).child({ eventId, product, client });
 * log.info({ jobId }, 'job created');
 */
export function createLogger(
  options: { name?: string; level?: string; destination?: pino.DestinationStream } = {},
): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? 'info';
  return pino(
    {
      name: options.name,
      level,
      messageKey: 'message',
      timestamp: pino.stdTimeFunctions.isoTime,
      base: undefined,
      formatters: {
        level: (label) => ({ severity: SEVERITY[label] ?? 'DEFAULT' }),
      },
      serializers: { err: pino.stdSerializers.err },
    },
    options.destination ?? pino.destination({ sync: true }),
  );
}

/**
 * The Cloud Logging trace field for a W3C `traceparent` (as Eventarc and Cloud Run send it),
 * so that a function's entries group under the request's trace.
 */
export function traceField(project: string, traceparent: string | undefined): Record<string, string> {
  const traceId = traceparent?.split('-')[1];
  if (!traceId || !/^[0-9a-f]{32}$/.test(traceId)) return {};
  return { 'logging.googleapis.com/trace': `projects/${project}/traces/${traceId}` };
}

/** The process-wide logger of a function instance. */
export const logger: Logger = createLogger({ name: 'batchwire' });
