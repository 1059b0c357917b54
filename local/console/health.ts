import net from 'node:net';
import type { ServiceHealth } from './api-types.js';

/** A service of the local platform and how to tell it is alive. */
export interface ServiceProbe {
  name: string;
  /** An http URL or host:port: the service is up when its port accepts a TCP connection. */
  address: string;
}

/** What the platform may tell the console itself (e.g. a supervisor that restarts functions). */
export type HealthCallback = () => Promise<Record<string, { up: boolean; detail?: string }>>;

/** The host and port an http URL or a host:port names. */
function endpoint(address: string): { host: string; port: number } {
  if (address.startsWith('http')) {
    const url = new URL(address);
    return { host: url.hostname, port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)) };
  }
  const [host, port] = address.split(':');
  return { host: host || '127.0.0.1', port: Number(port) };
}

/**
 * An accepted connection means up. No request is sent: an HTTP GET every 2 s would reach each
 * function's handler (which answers a GET 405 and logs a warning) and cost the platform CPU for
 * nothing a connection does not tell; what a port cannot tell (a function restarting, crashed)
 * comes from the platform's own health.
 */
async function probe(address: string): Promise<{ up: boolean; detail: string }> {
  const { host, port } = endpoint(address);
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (up: boolean, detail: string) => {
      socket.destroy();
      resolve({ up, detail });
    };
    socket.setTimeout(1_500, () => done(false, `no answer at ${address} within 1.5 s`));
    socket.once('connect', () => done(true, ''));
    socket.once('error', (err) => done(false, `nothing listens at ${address} (${err.message})`));
  });
}

/**
 * Probes each service every `intervalMs` (a crashed function stops answering on its port,
 * which is what a user would notice too) and merges what the platform's own `health()` says.
 * Calls `onChange` when any service goes up or down.
 */
export function startHealthMonitor(options: {
  services: ServiceProbe[];
  health?: HealthCallback;
  intervalMs?: number;
  onChange: (health: ServiceHealth[]) => void;
}) {
  let current: ServiceHealth[] = options.services.map((service) => ({
    ...service,
    up: false,
    detail: 'not checked yet',
    checked: '',
    lastDown: null,
  }));
  let stopped = false;
  const check = async () => {
    const reported = options.health ? await options.health().catch(() => ({})) : {};
    const next = await Promise.all(
      options.services.map(async (service): Promise<ServiceHealth> => {
        const own = (reported as Record<string, { up: boolean; detail?: string }>)[service.name];
        const probed = await probe(service.address);
        const up = probed.up && (own?.up ?? true);
        // Up with a note is still worth showing: a supervised function that was restarted.
        const detail = !probed.up
          ? probed.detail
          : own && !own.up
            ? (own.detail ?? 'reported down')
            : (own?.detail ?? '');
        const checked = new Date().toISOString();
        const before = current.find((known) => known.name === service.name);
        // The first check is the start, not an incident.
        const lastDown = !up && before?.checked ? { time: checked, detail } : (before?.lastDown ?? null);
        return { ...service, up, detail, checked, lastDown };
      }),
    );
    // A restart between two checks changes only the detail ("restarted 1×"): that is news too.
    const changed = next.some(
      (service, i) => service.up !== current[i]?.up || service.detail !== current[i]?.detail,
    );
    current = next;
    if (changed && !stopped) options.onChange(current);
  };
  const timer = setInterval(() => void check(), options.intervalMs ?? 2_000);
  timer.unref();
  const first = check();
  return {
    ready: first,
    current: () => current,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
