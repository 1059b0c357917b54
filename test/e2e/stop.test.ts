import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/dist.js';
import { type CliPlatform, REPO_ROOT, startCliPlatform } from '../helpers/platform.js';

/**
 * What process managers and CI do: SIGTERM to the platform's whole process group, which takes
 * the Pub/Sub emulator and the function processes down at the same moment as `batchwire dev`
 * itself. The platform must still stop by itself (no restarts of what the signal took, each
 * step of the stop bounded) and exit, leaving nothing behind.
 */

const CONFIG_PATH = join(REPO_ROOT, 'test', 'fixtures', 'e2e', 'batchwire.yaml');
const dataDir = mkdtempSync(join(tmpdir(), 'batchwire-stop-'));
const platforms: CliPlatform[] = [];

afterAll(async () => {
  for (const platform of platforms) await platform.dispose();
  rmSync(dataDir, { recursive: true, force: true });
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('batchwire dev and a SIGTERM to its process group', () => {
  it('stops, exits and leaves no function process behind', { timeout: 180_000 }, async () => {
    await ensureBuilt();
    // Arrange: the platform leading its own process group, with its own emulator and --data.
    const platform = await startCliPlatform({
      config: CONFIG_PATH,
      ownPubSub: true,
      timeoutMs: 120_000,
      detached: true,
      extraArgs: ['--data', dataDir],
    });
    platforms.push(platform);
    const functionPids = platform
      .output()
      .split('\n')
      .filter((line) => line.includes('"kind":"function.health"'))
      .map((line) => (JSON.parse(line) as { pid?: number }).pid)
      .filter((pid): pid is number => typeof pid === 'number');
    expect(functionPids).toHaveLength(3);

    // Act: every process of the group gets the signal at once.
    process.kill(-platform.pid, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      platform.exited,
      new Promise<'hanging'>((resolve) => {
        timer = setTimeout(() => resolve('hanging'), 120_000);
      }),
    ]);
    clearTimeout(timer);

    // Assert
    expect(code).toBe(0);
    expect(platform.output()).toContain('"message":"stopped"');
    expect(platform.output()).not.toMatch(/restarted \(pid/);
    expect(functionPids.filter(alive)).toEqual([]);
  });
});
