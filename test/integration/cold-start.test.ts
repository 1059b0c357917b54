import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/dist.js';

/**
 * The cold-start rule, through the real entry point (`dist/functions/index.js`, the package's
 * `main`) in fresh Node processes: registering all three functions loads no Google client
 * library, and neither does an invocation that never needs one (an ignored upload, a bad
 * Scheduler body). Only a fresh process can show this: the vitest worker has them all loaded.
 */

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '..', '..');
const ENTRY = join(REPO, 'dist', 'functions', 'index.js');
const CLIENTS = ['batch', 'storage', 'pubsub', 'workflows', 'run'] as const;

/**
 * Prelude of every child script: a `loadedClients()` that names the Google client packages
 * this process has loaded. Two sources, because the packages come in both module systems:
 * CJS packages (batch, pubsub, workflows, run) land in the CommonJS cache even when imported
 * from ESM; `@google-cloud/storage` resolves to its ESM build, which no cache API exposes (only
 * a helper .cjs of it shows there, by accident of its build), so a resolve hook (off-thread in
 * Node 20) reports every resolved URL over a MessagePort, drained synchronously: the hook posts
 * before it answers, so every import so far is already in the queue.
 */
const PRELUDE = `
import { createRequire, register } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
const hooks = 'data:text/javascript,' + encodeURIComponent(\`
  let port;
  export function initialize(data) { port = data.port; }
  export async function resolve(specifier, context, next) {
    const result = await next(specifier, context);
    port.postMessage(result.url);
    return result;
  }\`);
const { port1, port2 } = new MessageChannel();
register(hooks, { data: { port: port2 }, transferList: [port2] });
const require = createRequire(import.meta.url);
const resolved = new Set();
const GOOGLE = /[\\\\/]node_modules[\\\\/]@google-cloud[\\\\/](${CLIENTS.join('|')})[\\\\/]/;
function loadedClients() {
  for (let m = receiveMessageOnPort(port1); m; m = receiveMessageOnPort(port1)) resolved.add(m.message);
  const files = [
    ...Object.keys(require.cache),
    ...[...resolved].filter((url) => url.startsWith('file:')).map((url) => fileURLToPath(url)),
  ];
  return [...new Set(files.map((file) => GOOGLE.exec(file)?.[1]).filter(Boolean))].sort();
}
const report = {};
const done = () => console.log('BWREPORT ' + JSON.stringify(report));
`;

/** Imports each client named, one at a time, recording what is loaded after each. */
const CONTROL = `${PRELUDE}
report.before = loadedClients();
await import('@google-cloud/batch');
report.afterBatch = loadedClients();
await import('@google-cloud/storage');
report.afterStorage = loadedClients();
done();
`;

/** Imports the entry point, then invokes onUpload and onSchedule on inputs that need no client. */
const FUNCTIONS = `${PRELUDE}
await import(${JSON.stringify(pathToFileURL(ENTRY).href)});
const { getFunction } = await import('@google-cloud/functions-framework/testing');
report.registered = ['onUpload', 'onSchedule', 'onComplete'].filter((name) => typeof getFunction(name) === 'function');
report.afterRegister = loadedClients();

// Both are HTTP functions (onUpload behind its CloudEvent guard): an Express-shaped request and response.
const response = () => ({
  statusCode: 200,
  set() { return this; },
  status(code) { this.statusCode = code; return this; },
  json(body) { this.body = body; return this; },
  end() { return this; },
});
const uploadRes = response();
await getFunction('onUpload')({
  method: 'POST',
  path: '/',
  headers: {
    'content-type': 'application/json',
    'ce-specversion': '1.0',
    'ce-id': 'cold-start-1',
    'ce-source': '//storage.googleapis.com/projects/_/buckets/batchwire-local-batch',
    'ce-type': 'google.cloud.storage.object.v1.finalized',
    'ce-subject': 'objects/other/prefix/file.txt',
    'ce-time': new Date().toISOString(),
  },
  body: { bucket: 'batchwire-local-batch', name: 'other/prefix/file.txt', generation: '1', size: '12' },
  get(name) { return this.headers[name.toLowerCase()]; },
}, uploadRes);
report.upload = { status: uploadRes.statusCode };
report.afterUpload = loadedClients();

const raw = Buffer.from('{ not json');
const req = {
  method: 'POST',
  headers: { 'content-type': 'application/octet-stream', 'content-length': String(raw.length) },
  rawBody: raw,
  body: raw,
  get(name) { return this.headers[name.toLowerCase()]; },
};
const res = response();
await getFunction('onSchedule')(req, res);
report.schedule = { status: res.statusCode, body: res.body };
report.afterSchedule = loadedClients();
done();
`;

interface ChildRun {
  report: Record<string, unknown>;
  stdout: string;
}

async function runChild(script: string): Promise<ChildRun> {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd: REPO,
    env: {
      PATH: process.env.PATH ?? '',
      BATCHWIRE_CONFIG: join(REPO, 'batchwire.yaml'),
      METADATA_SERVER_DETECTION: 'none',
      // DEBUG, so that the log shows the handler reached its decision (an ignored object).
      LOG_LEVEL: 'debug',
    },
    timeout: 20_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const line = stdout.split('\n').find((entry) => entry.startsWith('BWREPORT '));
  if (!line) throw new Error(`the child printed no report:\n${stdout}`);
  return { report: JSON.parse(line.slice('BWREPORT '.length)) as Record<string, unknown>, stdout };
}

beforeAll(() => ensureBuilt(), 150_000);

describe('cold start of dist/functions/index.js', () => {
  it('detects a client once it is imported, CJS (batch) and ESM (storage) alike (control)', async () => {
    const { report } = await runChild(CONTROL);

    expect(report.before).toEqual([]);
    expect(report.afterBatch).toEqual(['batch']);
    expect(report.afterStorage).toEqual(['batch', 'storage']);
  });

  it('registers all three functions and loads no Google client, nor when an invocation needs none', async () => {
    const { report, stdout } = await runChild(FUNCTIONS);

    expect(report.registered).toEqual(['onUpload', 'onSchedule', 'onComplete']);
    expect(report.afterRegister).toEqual([]);
    // onUpload ran to its decision: the object is not under {product}/{client}/inputs/.
    expect(stdout).toMatch(/"message":"object ignored \(/);
    expect(report.upload).toEqual({ status: 204 });
    expect(report.afterUpload).toEqual([]);
    // onSchedule answered the bad body itself, before building any client.
    expect(report.schedule).toMatchObject({ status: 400, body: { error: expect.stringMatching(/JSON/) } });
    expect(report.afterSchedule).toEqual([]);
  });
});
