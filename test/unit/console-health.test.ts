import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startHealthMonitor } from '#local/console/health.js';

describe('console health monitor', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  });

  /** An HTTP server on a free port that counts the requests it gets. */
  async function countingServer() {
    const counter = { requests: 0 };
    const server = createServer((_request, response) => {
      counter.requests++;
      response.writeHead(405).end();
    });
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, counter };
  }

  it('reports an HTTP service up without sending it a request', async () => {
    // Arrange: a function that would log every GET it gets as a 405 warning
    const { url, counter } = await countingServer();

    // Act
    const monitor = startHealthMonitor({
      services: [{ name: 'onUpload', address: url }],
      onChange: () => {},
    });
    await monitor.ready;
    monitor.stop();

    // Assert
    expect(monitor.current()).toMatchObject([{ name: 'onUpload', up: true, detail: '' }]);
    expect(counter.requests).toBe(0);
  });

  it('reports a service down, with the address, when nothing listens on its port', async () => {
    // Arrange: a port that was free a moment ago
    const { url } = await countingServer();
    await new Promise((resolve) => servers.splice(0)[0]?.close(resolve));

    // Act
    const monitor = startHealthMonitor({
      services: [{ name: 'onComplete', address: url }],
      onChange: () => {},
    });
    await monitor.ready;
    monitor.stop();

    // Assert
    expect(monitor.current()).toMatchObject([{ name: 'onComplete', up: false }]);
    expect(monitor.current()[0]?.detail).toContain(`nothing listens at ${url}`);
  });

  it('merges what the platform says of a service whose port answers', async () => {
    // Arrange: a supervisor that restarted the function once
    const { url } = await countingServer();

    // Act
    const monitor = startHealthMonitor({
      services: [{ name: 'onUpload', address: url }],
      health: async () => ({ onUpload: { up: true, detail: 'restarted 1×' } }),
      onChange: () => {},
    });
    await monitor.ready;
    monitor.stop();

    // Assert
    expect(monitor.current()).toMatchObject([{ name: 'onUpload', up: true, detail: 'restarted 1×' }]);
  });
});
