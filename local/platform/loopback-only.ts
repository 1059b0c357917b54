/**
 * Preloaded (`node --import`) into each functions-framework process of the local platform.
 * The functions-framework CLI listens on every interface (`server.listen(port)`); on a
 * developer's machine the local platform must stay on loopback, so a listen() that names only
 * a port is given 127.0.0.1. Nothing else about the framework changes.
 */
import net from 'node:net';

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
  const [first, second] = args;
  const portOnly = (typeof first === 'number' || typeof first === 'string') && typeof second !== 'string';
  if (portOnly) args.splice(1, 0, '127.0.0.1');
  return listen.apply(this, args as Parameters<typeof listen>);
} as typeof listen;
