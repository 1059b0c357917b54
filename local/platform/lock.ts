import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { isProcessAlive } from '../process-alive.js';

/** Another `batchwire dev` holds the lock. */
export class PlatformRunningError extends Error {
  constructor(readonly pid: number) {
    super(
      `Batchwire is already running here (pid ${pid}); stop it with Ctrl-C, or use its addresses in .batchwire/env`,
    );
    this.name = 'PlatformRunningError';
  }
}

/**
 * Takes the single-instance lock: a file holding our pid, created with O_EXCL so two starts
 * cannot both win. A lock whose pid is gone (a crash, a kill -9) is stale and taken over.
 * Returns the release function.
 */
export function acquireLock(path: string): () => void {
  mkdirSync(dirname(path), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(path, 'utf8').trim());
      if (pid && pid !== process.pid && isProcessAlive(pid)) throw new PlatformRunningError(pid);
      rmSync(path, { force: true });
    }
  }
  throw new Error(`cannot take the lock ${path}`);
}
