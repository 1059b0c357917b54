/** The local platform's default ports, as the README and `.batchwire/env` show them. */
export const DEFAULT_PORTS = {
  pubsub: 8085,
  storage: 4443,
  batch: 8091,
  workflows: 8092,
  run: 8093,
  onUpload: 8081,
  onSchedule: 8082,
  onComplete: 8083,
  scheduler: 8094,
  /** The web console (local/console). */
  console: 4000,
} as const;

export type PortName = keyof typeof DEFAULT_PORTS;
export type Ports = Record<PortName, number>;

/** The `batchwire dev` flag that sets a port: `onUpload` → `--on-upload-port`. */
export function portFlag(name: PortName): string {
  return `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}-port`;
}
