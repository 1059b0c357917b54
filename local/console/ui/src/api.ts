import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';

/** An error the console API answered with, in its own words. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function parse<T>(response: Response): Promise<T> {
  const text = await response.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(response.status, text || response.statusText);
  }
  if (!response.ok) {
    const message = (body as { error?: { message?: string } })?.error?.message ?? response.statusText;
    throw new ApiError(response.status, message);
  }
  return body as T;
}

export async function get<T>(path: string): Promise<T> {
  return parse<T>(await fetch(path, { headers: { accept: 'application/json' } }));
}

/** A change: same-origin only, which the server checks with the Origin header. */
export async function send<T>(method: 'POST' | 'DELETE', path: string, body?: BodyInit): Promise<T> {
  return parse<T>(await fetch(path, { method, ...(body ? { body } : {}) }));
}

type Listener = (event: string, data: unknown) => void;
const listeners = new Set<Listener>();
let source: EventSource | undefined;
let connected = true;
const connectionListeners = new Set<(up: boolean) => void>();

/** One event stream per page; views subscribe to it. */
export function connect(): void {
  if (source) return;
  source = new EventSource('/api/stream');
  for (const event of ['activity', 'topic', 'health']) {
    source.addEventListener(event, (message) => {
      const data = JSON.parse((message as MessageEvent<string>).data) as unknown;
      for (const listener of listeners) listener(event, data);
    });
  }
  source.onopen = () => setConnected(true);
  source.onerror = () => setConnected(false);
}

function setConnected(up: boolean) {
  if (connected === up) return;
  connected = up;
  for (const listener of connectionListeners) listener(up);
}

export function onLive(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function useConnected(): boolean {
  const [up, setUp] = useState(connected);
  useEffect(() => {
    connectionListeners.add(setUp);
    return () => connectionListeners.delete(setUp);
  }, []);
  return up;
}

/**
 * Loads `path` and loads it again whenever the platform reports something (debounced: a burst
 * of task changes costs one request, never one per job).
 */
export function useLive<T>(path: string | null, events: string[] = ['activity', 'topic']) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string>('');
  const [tick, setTick] = useState(0);
  const timer = useRef<number | undefined>(undefined);
  useEffect(() => {
    if (!path) return;
    let cancelled = false;
    get<T>(path).then(
      (value) => {
        if (cancelled) return;
        setData(value);
        setError('');
      },
      (err: Error) => {
        if (!cancelled) setError(err.message);
      },
    );
    return () => {
      cancelled = true;
    };
  }, [path, tick]);
  useEffect(
    () =>
      onLive((event) => {
        if (!events.includes(event)) return;
        window.clearTimeout(timer.current);
        timer.current = window.setTimeout(() => setTick((n) => n + 1), 300);
      }),
    [events.join()],
  );
  return { data, error, reload: () => setTick((n) => n + 1) };
}

export function ErrorNote({ error, where }: { error: string; where: string }) {
  if (!error) return null;
  return html`<p class="error" role="alert"><strong>${where}:</strong> ${error}</p>`;
}

export function time(iso: string | null | undefined): string {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(undefined, { hour12: false });
}

export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function StateBadge({ state }: { state: string }) {
  return html`<span class=${`state state-${state.toLowerCase()}`}>${state}</span>`;
}
