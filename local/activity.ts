/**
 * What the local services report as it happens (jobs created, states changed, schedules
 * fired…): `batchwire dev` prints it and the console shows it. One shape for every service.
 */
export interface PlatformActivity {
  /** Dotted kind, e.g. `job.created`, `task.state`, `run.execution`, `schedule.fired`. */
  kind: string;
  message: string;
  [key: string]: unknown;
}

/** Where a service sends its activity. */
export type ActivityListener = (activity: PlatformActivity) => void;
