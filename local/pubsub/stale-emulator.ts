/**
 * The Pub/Sub emulator a platform with `--data` runs is in a process group of its own (so that a
 * SIGTERM to the platform's group leaves it up for the stop to save its state), and a JVM keeps
 * nothing tying it to its parent: when the platform is killed without a stop (SIGKILL, a crash,
 * the OOM killer), it stays behind, holding its memory and every message of the run. Its pid and
 * port are recorded beside the snapshot, so the next start can find it, save what it holds (a
 * newer state than the last stop saved) and stop it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomically } from '../atomic-file.js';
import { isProcessAlive } from '../process-alive.js';
import { readPubSubSnapshot, takeBackLeases, writePubSubSnapshot } from './persistence.js';

const RECORD = 'emulator.json';
/** How long a stale emulator may take to hand its state over before it is stopped without. */
const SAVE_TIMEOUT_MS = 15_000;
/** Within that: how long taking back what the killed run's subscribers held may take. */
const TAKE_BACK_TIMEOUT_MS = 5_000;
const EXIT_TIMEOUT_MS = 5_000;

interface EmulatorRecord {
  pid: number;
  port: number;
  /** The process that started it: while that one lives, the emulator is its, never stale. */
  owner: number;
}

/** Records the emulator this process started in `dir` (the emulator's working folder under `--data`). */
export function recordEmulator(dir: string, emulator: { pid: number; port: number }): void {
  const record: EmulatorRecord = { ...emulator, owner: process.pid };
  writeFileAtomically(join(dir, RECORD), JSON.stringify(record));
}

/** Forgets it, once it is stopped. */
export function forgetEmulator(dir: string): void {
  rmSync(join(dir, RECORD), { force: true });
}

/** What {@link takeOverStaleEmulator} found. */
export interface StaleEmulator {
  pid: number;
  /** Its state went into the snapshot file (else it did not answer, and the file is as it was). */
  saved: boolean;
  /** Why its state could not be saved. */
  error?: string;
}

/**
 * Finds the emulator a previous run recorded in `dir` and left running (that run was killed
 * without a stop), saves its state into `snapshotFile` and stops it. Resolves with undefined
 * when there is none: no record, an owner still running, an emulator gone, or a pid now used by
 * something else. Safe to run twice.
 */
export async function takeOverStaleEmulator(options: {
  dir: string;
  project: string;
  snapshotFile: string;
}): Promise<StaleEmulator | undefined> {
  const record = readRecord(join(options.dir, RECORD));
  // Another platform running on the same --data is its owner's business (and a mistake of its own).
  if (record && record.owner !== process.pid && isProcessAlive(record.owner)) return undefined;
  if (!record || !isEmulatorOnPort(record.pid, record.port)) {
    forgetEmulator(options.dir);
    return undefined;
  }
  const found: StaleEmulator = { pid: record.pid, saved: false };
  try {
    const host = `127.0.0.1:${record.port}`;
    const snapshot = await withTimeout(
      (async () => {
        const read = await readPubSubSnapshot(host, options.project);
        // What the killed run's router and its clients had received and not acknowledged is
        // leased to streams that are gone: taken back, it is delivered again after this start.
        await takeBackLeases(host, read, { fromAckId: 1, timeoutMs: TAKE_BACK_TIMEOUT_MS });
        return read;
      })(),
      SAVE_TIMEOUT_MS,
    );
    writePubSubSnapshot(options.snapshotFile, snapshot);
    found.saved = true;
  } catch (err) {
    found.error = (err as Error).message;
  }
  // Its state is saved (or cannot be): nothing is left to stop gracefully.
  signal(record.pid, 'SIGKILL');
  const deadline = Date.now() + EXIT_TIMEOUT_MS;
  while (isProcessAlive(record.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  forgetEmulator(options.dir);
  return found;
}

function readRecord(file: string): EmulatorRecord | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const record = JSON.parse(readFileSync(file, 'utf8')) as EmulatorRecord;
    return [record?.pid, record?.port, record?.owner].every(Number.isInteger) ? record : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether `pid` is alive and still Google's emulator on `port` (its command line says so): a
 * pid the system has given to another process since must never be signalled.
 */
function isEmulatorOnPort(pid: number, port: number): boolean {
  if (!isProcessAlive(pid)) return false;
  let commandLine: string;
  try {
    commandLine = existsSync('/proc')
      ? readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
      : execFileSync('ps', ['-o', 'command=', '-p', String(pid)], { encoding: 'utf8' });
  } catch {
    return false;
  }
  return commandLine.includes('cloud-pubsub-emulator') && commandLine.includes(`--port=${port}`);
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Gone meanwhile.
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
