import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorMap } from './errors.js';

/** What `events.await_callback` returns, as Google documents it. */
export interface CallbackEvent {
  http_request: {
    body: unknown;
    headers: Record<string, string>;
    method: string;
    query: Record<string, string[]>;
    url: string;
  };
  received_time: string;
  type: 'HTTP';
}

interface Endpoint {
  method: string;
  received: CallbackEvent[];
  waiters: Array<(event: CallbackEvent) => void>;
}

/**
 * The local stand-in for Workflows callbacks (`events.create_callback_endpoint`,
 * `events.await_callback`, https://cloud.google.com/workflows/docs/creating-callback-endpoints):
 * a loopback HTTP server started on first use. A request to an endpoint with its method is
 * answered 200 and handed to the (next) await; requests that arrive before the await are kept.
 */
export class CallbackHub {
  private server?: Promise<{ server: Server; base: string }>;
  private readonly endpoints = new Map<string, Endpoint>();

  async create(method: string): Promise<{ url: string }> {
    const { base } = await this.listening();
    const id = randomUUID();
    this.endpoints.set(id, { method: method.toUpperCase(), received: [], waiters: [] });
    return { url: `${base}/callbacks/${id}` };
  }

  /** Resolves with the next request to `url`; raises TimeoutError after `timeoutS` seconds. */
  async await(url: string, timeoutS: number, signal?: AbortSignal): Promise<CallbackEvent> {
    const endpoint = this.endpoints.get(url.split('/').pop() ?? '');
    if (!endpoint || !url.includes('/callbacks/')) {
      throw errorMap('ValueError', `${url} is not a callback endpoint of this execution`);
    }
    const early = endpoint.received.shift();
    if (early) return early;
    return new Promise<CallbackEvent>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const waiter = (event: CallbackEvent) => {
        done();
        resolve(event);
      };
      const timer = setTimeout(() => {
        endpoint.waiters.splice(endpoint.waiters.indexOf(waiter), 1);
        done();
        reject(errorMap('TimeoutError', `no callback to ${url} within ${timeoutS} s`));
      }, timeoutS * 1000);
      const onAbort = () => {
        endpoint.waiters.splice(endpoint.waiters.indexOf(waiter), 1);
        done();
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      endpoint.waiters.push(waiter);
    });
  }

  async close(): Promise<void> {
    const started = this.server;
    this.server = undefined;
    if (!started) return;
    const { server } = await started;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }

  private listening(): Promise<{ server: Server; base: string }> {
    this.server ??= new Promise((resolve, reject) => {
      const server = createServer((req, res) => this.receive(req, res));
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.unref();
        resolve({ server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
      });
    });
    return this.server;
  }

  private receive(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const match = /^\/callbacks\/([0-9a-f-]+)$/.exec(url.pathname);
    const endpoint = match ? this.endpoints.get(match[1] as string) : undefined;
    if (!endpoint) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('no such callback endpoint\n');
      return;
    }
    if (req.method !== endpoint.method) {
      res
        .writeHead(405, { allow: endpoint.method, 'content-type': 'text/plain' })
        .end(`use ${endpoint.method}\n`);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text === '' ? null : text;
      if (text !== '' && /json/i.test(req.headers['content-type'] ?? '')) {
        try {
          body = JSON.parse(text);
        } catch {
          res.writeHead(400, { 'content-type': 'text/plain' }).end('the body is not JSON\n');
          return;
        }
      }
      const query: Record<string, string[]> = {};
      for (const key of new Set(url.searchParams.keys())) query[key] = url.searchParams.getAll(key);
      const headers: Record<string, string> = {};
      for (const [key, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers[key] = Array.isArray(value) ? value.join(', ') : value;
      }
      const event: CallbackEvent = {
        http_request: { body, headers, method: endpoint.method, query, url: url.pathname + url.search },
        received_time: new Date().toISOString(),
        type: 'HTTP',
      };
      const waiter = endpoint.waiters.shift();
      if (waiter) waiter(event);
      else endpoint.received.push(event);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}\n');
    });
  }
}
