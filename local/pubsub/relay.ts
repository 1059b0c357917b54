import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';

/** A loopback port whose connections are passed through, byte for byte, to another address. */
export interface TcpRelay {
  /** `127.0.0.1:PORT`, where clients connect. */
  host: string;
  port: number;
  /** Stops listening and cuts every connection passing through: clients see the server go away. */
  close(): Promise<void>;
}

/**
 * Listens on 127.0.0.1:`port` (0: any free port) and relays each connection to `target`
 * (`host:port`). The platform puts one in front of a Pub/Sub emulator whose state it restores:
 * a client library that reconnects by itself (a streaming subscriber kept across a restart)
 * can then only reach the emulator once the restore is complete, and is cut off before the
 * emulator's state is saved.
 */
export async function openTcpRelay(port: number, target: string): Promise<TcpRelay> {
  const targetHost = target.slice(0, target.lastIndexOf(':'));
  const targetPort = Number(target.slice(target.lastIndexOf(':') + 1));
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: targetHost, port: targetPort });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.setNoDelay(true);
      // Either side gone ends both: the client then reconnects, as it would to the emulator.
      socket.once('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
      socket.on('error', () => {});
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.listen({ port, host: '127.0.0.1' });
  await once(server, 'listening');
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  let closing: Promise<void> | undefined;
  return {
    host: `127.0.0.1:${bound}`,
    port: bound,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}
