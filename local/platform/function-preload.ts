/**
 * Preloaded (`node --import`) into each functions-framework process of the local platform, to
 * make a developer's machine behave; nothing about the framework or the function changes.
 *
 * - Loopback only: the functions-framework CLI listens on every interface
 *   (`server.listen(port)`); a listen() that names only a port is given 127.0.0.1.
 * - The port it got: started with `--port=0`, the framework binds a port of the kernel's choice
 *   (and prints `URL: http://localhost:0/`); once that server listens, the port it got goes to
 *   the parent over the IPC channel, when there is one ({@link ListeningMessage}). A port picked
 *   by the parent and handed over could be taken by another process in between; this cannot.
 * - No orphans: the platform holds this process's stdin open; when the platform goes away, by
 *   Ctrl-C or by a crash, stdin ends and this process exits too.
 */
import net from 'node:net';

/** What the process sends its parent once the framework's server listens. */
export interface ListeningMessage {
  listening: { port: number };
}

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
  const [first, second] = args;
  // The framework's own call (`server.listen(options.port, callback)`) is the one that names
  // only a port: that server is the function's, the one whose port the parent needs.
  const portOnly = (typeof first === 'number' || typeof first === 'string') && typeof second !== 'string';
  if (!portOnly) return listen.apply(this, args as Parameters<typeof listen>);
  args.splice(1, 0, '127.0.0.1');
  const server = listen.apply(this, args as Parameters<typeof listen>);
  server.once('listening', () => {
    const address = server.address();
    if (typeof address !== 'object' || !address || !process.send) return;
    const message: ListeningMessage = { listening: { port: address.port } };
    process.send(message);
  });
  return server;
} as typeof listen;

process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
