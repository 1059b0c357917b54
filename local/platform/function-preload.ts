/**
 * Preloaded (`node --import`) into each functions-framework process of the local platform, to
 * make a developer's machine behave; nothing about the framework or the function changes.
 *
 * - Loopback only: the functions-framework CLI listens on every interface
 *   (`server.listen(port)`); a listen() that names only a port is given 127.0.0.1.
 * - No orphans: the platform holds this process's stdin open; when the platform goes away, by
 *   Ctrl-C or by a crash, stdin ends and this process exits too.
 */
import net from 'node:net';

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
  const [first, second] = args;
  const portOnly = (typeof first === 'number' || typeof first === 'string') && typeof second !== 'string';
  if (portOnly) args.splice(1, 0, '127.0.0.1');
  return listen.apply(this, args as Parameters<typeof listen>);
} as typeof listen;

process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
