/**
 * Runs `stop` on the first SIGINT or SIGTERM and keeps the process alive until it is done.
 *
 * Later signals are ignored rather than left to Node's default (which exits at once): one
 * Ctrl-C under `npm start` reaches this process twice, from the terminal and again from npm,
 * and a second signal must not cut the cleanup short and orphan what the platform started.
 * A third one is taken as "really quit".
 *
 * @returns a function that removes the handlers
 */
export function onStopSignal(stop: () => void): () => void {
  let received = 0;
  const handler = () => {
    received += 1;
    if (received === 1) stop();
    else if (received >= 3) process.exit(130);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}
