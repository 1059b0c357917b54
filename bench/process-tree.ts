import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Names the kind of a process from its command line (`dev`, `emulator`, `onUpload`, …). */
export type ProcessKind = (args: string) => string;

export interface TreeSample {
  /** Summed resident memory of the root and all its descendants, in bytes. */
  rssBytes: number;
  /** Processes of the tree whose command line contains one of the `count` patterns. */
  matching: number;
  processes: number;
  /** The largest processes of the tree: `<MiB> <kind or command line, cut>`. */
  largest: string[];
  /** Summed resident memory by process kind (see {@link ProcessKind}), in bytes. */
  rssBytesByKind: Record<string, number>;
}

/**
 * One look at a process tree through `ps` (Linux and macOS): every descendant of `rootPid`,
 * however deep and whatever its process group (Batch tasks run in groups of their own).
 */
export async function sampleTree(
  rootPid: number,
  count: readonly string[],
  kindOf: ProcessKind = (args) => args.slice(0, 100),
): Promise<TreeSample> {
  const { stdout } = await run('ps', ['-e', '-o', 'pid=,ppid=,rss=,args='], { maxBuffer: 16 * 1024 * 1024 });
  const children = new Map<number, Array<{ pid: number; rssKiB: number; args: string }>>();
  for (const line of stdout.split('\n')) {
    const match = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const [, pid, ppid, rss, args = ''] = match;
    const entry = { pid: Number(pid), rssKiB: Number(rss), args };
    const siblings = children.get(Number(ppid)) ?? [];
    siblings.push(entry);
    children.set(Number(ppid), siblings);
  }
  const root = [...children.values()].flat().find((entry) => entry.pid === rootPid);
  if (!root) return { rssBytes: 0, matching: 0, processes: 0, largest: [], rssBytesByKind: {} };
  const all: Array<{ rssKiB: number; args: string }> = [];
  let rssKiB = 0;
  let matching = 0;
  let processes = 0;
  const stack = [root];
  while (stack.length > 0) {
    const entry = stack.pop() as (typeof stack)[number];
    processes++;
    rssKiB += entry.rssKiB;
    all.push(entry);
    if (count.some((pattern) => entry.args.includes(pattern))) matching++;
    stack.push(...(children.get(entry.pid) ?? []));
  }
  const largest = all
    .sort((a, b) => b.rssKiB - a.rssKiB)
    .slice(0, 5)
    .map((entry) => `${Math.round(entry.rssKiB / 1024)} MiB ${kindOf(entry.args)}`);
  const rssBytesByKind: Record<string, number> = {};
  for (const entry of all) {
    const kind = kindOf(entry.args);
    rssBytesByKind[kind] = (rssBytesByKind[kind] ?? 0) + entry.rssKiB * 1024;
  }
  return { rssBytes: rssKiB * 1024, matching, processes, largest, rssBytesByKind };
}

/**
 * Samples the tree every `intervalMs` until stopped, keeping the peaks. A sampler can miss a
 * peak shorter than its interval; the Batch service's own pool is what enforces the limit, this
 * is the outside view that checks it.
 */
export function watchTree(rootPid: number, count: readonly string[], kindOf?: ProcessKind, intervalMs = 200) {
  let peakRssBytes = 0;
  /** Each kind's own peak (its summed RSS in one sample), whenever it happened. */
  const peakRssBytesByKind: Record<string, number> = {};
  let largestAtPeak: string[] = [];
  let peakMatching = 0;
  let samples = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const sample = await sampleTree(rootPid, count, kindOf);
        samples++;
        for (const [kind, bytes] of Object.entries(sample.rssBytesByKind)) {
          peakRssBytesByKind[kind] = Math.max(peakRssBytesByKind[kind] ?? 0, bytes);
        }
        if (sample.rssBytes > peakRssBytes) {
          peakRssBytes = sample.rssBytes;
          largestAtPeak = sample.largest;
        }
        peakMatching = Math.max(peakMatching, sample.matching);
      } catch {
        // ps failed once (the machine is busy): the next sample counts.
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    async stop(): Promise<{
      peakRssBytes: number;
      largestAtPeak: string[];
      peakRssBytesByKind: Record<string, number>;
      peakMatching: number;
      samples: number;
    }> {
      stopped = true;
      await loop;
      return { peakRssBytes, largestAtPeak, peakRssBytesByKind, peakMatching, samples };
    },
  };
}

/**
 * CPU time (user + system, in seconds) the tree has used so far: each live process's own time
 * plus the time of its children that have exited and been reaped (Linux `/proc/<pid>/stat`
 * fields utime, stime, cutime, cstime). Batch tasks are reaped by the platform process, so a
 * finished task still counts, and `reapedByRoot` (the root's cutime + cstime) is the CPU of its
 * children that have exited: the tasks, as the platform's other children live until it stops.
 * `byKind` splits the live processes' own time (utime + stime) by `kindOf` of their command
 * line. NaN where `/proc` is missing.
 */
export async function treeCpuSeconds(
  rootPid: number,
  kindOf: ProcessKind = () => 'process',
  ticksPerSecond = 100,
): Promise<{ total: number; reapedByRoot: number; byKind: Record<string, number> }> {
  const { readFile } = await import('node:fs/promises');
  const { stdout } = await run('ps', ['-e', '-o', 'pid=,ppid=,args='], { maxBuffer: 16 * 1024 * 1024 });
  const children = new Map<number, number[]>();
  const argsOf = new Map<number, string>();
  for (const line of stdout.split('\n')) {
    const match = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const pid = Number(match[1]);
    const ppid = Number(match[2]);
    argsOf.set(pid, match[3] ?? '');
    children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  let ticks = 0;
  let reapedTicks = 0;
  const byKind: Record<string, number> = {};
  const stack = [rootPid];
  while (stack.length > 0) {
    const pid = stack.pop() as number;
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      // Fields after the command (which may hold spaces) start at ") ": state is field 3.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const own = Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
      const reaped = Number(fields[13] ?? 0) + Number(fields[14] ?? 0);
      ticks += own + reaped;
      if (pid === rootPid) reapedTicks = reaped;
      const kind = kindOf(argsOf.get(pid) ?? '');
      byKind[kind] = (byKind[kind] ?? 0) + own / ticksPerSecond;
    } catch {
      if (pid === rootPid) return { total: Number.NaN, reapedByRoot: Number.NaN, byKind: {} };
      // Exited between ps and now: its time went to its parent's cutime.
    }
    stack.push(...(children.get(pid) ?? []));
  }
  return { total: ticks / ticksPerSecond, reapedByRoot: reapedTicks / ticksPerSecond, byKind };
}
