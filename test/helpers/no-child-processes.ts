import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';

/**
 * Setup of the unit project: unit tests spawn nothing. Every way to start a process throws, so a
 * test that needs one (a real task, a real CLI) is found at once and moved to test/integration,
 * where real processes belong; unit tests stay fast and run anywhere.
 */
const STARTERS = ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork'] as const;

for (const name of STARTERS) {
  Object.assign(childProcess, {
    [name]: () => {
      throw new Error(`unit tests spawn nothing: ${name}() belongs in a test under test/integration`);
    },
  });
}
// `import { spawn } from 'node:child_process'` reads the ESM bindings: bring them in line.
syncBuiltinESMExports();
