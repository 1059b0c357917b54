import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';

const require = createRequire(import.meta.url);

/** The functions-framework CLI, exactly what `npx functions-framework` runs. */
export function functionsFrameworkMain(): string {
  return join(dirname(require.resolve('@google-cloud/functions-framework')), 'main.js');
}

export interface FunctionProcess {
  name: string;
  url: string;
  stop(): Promise<void>;
}

/**
 * Runs one function in its own functions-framework process, as Cloud Functions runs each
 * function as its own service: `functions-framework --target=NAME --port=PORT --source=ROOT`.
 * Each stdout line (the function's JSON logs) goes to `onLine`.
 */
export async function startFunctionProcess(options: {
  name: string;
  port: number;
  sourceDir: string;
  env: Record<string, string>;
  onLine: (line: string) => void;
  onExit?: (code: number | null) => void;
}): Promise<FunctionProcess> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--import',
      new URL('./function-preload.js', import.meta.url).href,
      functionsFrameworkMain(),
      `--target=${options.name}`,
      `--port=${options.port}`,
      `--source=${options.sourceDir}`,
    ],
    { env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      exited = true;
      options.onExit?.(code);
      resolve();
    }),
  );
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) createInterface({ input: stream }).on('line', options.onLine);
  }
  const url = `http://127.0.0.1:${options.port}`;
  await waitForHttp(url, () => exited, `${options.name} (functions-framework on port ${options.port})`);
  return {
    name: options.name,
    url,
    async stop() {
      if (!exited) child.kill('SIGTERM');
      await exit;
    },
  };
}

/** Waits until an HTTP server answers anything at all. */
export async function waitForHttp(url: string, hasDied: () => boolean, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (hasDied()) throw new Error(`${what} exited before it answered`);
    try {
      await fetch(url, { method: 'GET', signal: AbortSignal.timeout(1000) });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${what} did not answer within ${timeoutMs} ms`);
}
