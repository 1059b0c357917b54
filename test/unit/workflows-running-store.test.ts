import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  interruptedFlowCompletions,
  PLATFORM_STOPPED_UNEXPECTEDLY,
} from '#local/platform/interrupted-flows.js';
import {
  LOST_WITH_THE_PROCESS,
  lostExecution,
  RunningExecutionStore,
} from '#local/workflows/running-store.js';
import type { ExecutionResource } from '#local/workflows/server.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'running-store-'));
  dirs.push(dir);
  return dir;
}

function running(id: string, argument: unknown = { name: 'x' }): ExecutionResource {
  return {
    name: `projects/p/locations/l/workflows/train/executions/${id}`,
    start_time: { seconds: '1796200000', nanos: 250_000_000 },
    end_time: null,
    duration: null,
    state: 'ACTIVE',
    argument: JSON.stringify(argument),
    result: '',
    error: null,
    workflow_revision_id: '000001-abc',
    call_log_level: 'CALL_LOG_LEVEL_UNSPECIFIED',
    status: { current_steps: [] },
    labels: { product: 'mlops-template' },
  };
}

describe('RunningExecutionStore', () => {
  it('keeps what is recorded until it is removed, across instances (a restart)', () => {
    // Arrange
    const dir = tempDir();
    const store = new RunningExecutionStore(dir, () => {});
    store.add(running('e1'));
    store.add(running('e2'));

    // Act: e1 ends; a later process opens the same folder.
    store.remove('projects/p/locations/l/workflows/train/executions/e1');
    store.remove('projects/p/locations/l/workflows/train/executions/e1');
    const found = new RunningExecutionStore(dir, () => {}).loadAll();

    // Assert
    expect(found).toEqual([running('e2')]);
    expect(readdirSync(dir)).toEqual(['e2.json']);
  });

  it('skips a record that does not read and removes what an interrupted write left', () => {
    // Arrange
    const dir = tempDir();
    const store = new RunningExecutionStore(dir, () => {});
    store.add(running('e1'));
    writeFileSync(join(dir, 'torn.json'), '{"name": "projects/p/loc');
    writeFileSync(join(dir, 'other.json'), JSON.stringify({ name: 'not an execution', argument: '' }));
    writeFileSync(join(dir, 'e3.json.abc123.tmp'), '{');
    const unreadable: string[] = [];

    // Act
    const found = new RunningExecutionStore(dir, (file) => unreadable.push(file)).loadAll();

    // Assert: the good record is there; the bad ones are named and stay for a look.
    expect(found.map((execution) => execution.name)).toEqual([running('e1').name]);
    expect(unreadable.sort()).toEqual([join(dir, 'other.json'), join(dir, 'torn.json')]);
    expect(readdirSync(dir).sort()).toEqual(['e1.json', 'other.json', 'torn.json']);
  });
});

describe('lostExecution', () => {
  it('is FAILED when the loss is found, saying the process stopped while it ran', () => {
    // Arrange
    const found = 1_796_200_060_250;

    // Act
    const lost = lostExecution(running('e1'), found);

    // Assert
    expect(lost).toMatchObject({
      name: running('e1').name,
      state: 'FAILED',
      end_time: { seconds: '1796200060', nanos: 250_000_000 },
      duration: { seconds: '60', nanos: 0 },
      argument: running('e1').argument,
      labels: { product: 'mlops-template' },
    });
    expect(lost.error?.context).toBe(LOST_WITH_THE_PROCESS);
    expect(JSON.parse(lost.error?.payload ?? '{}')).toEqual({
      message: LOST_WITH_THE_PROCESS,
      tags: ['SystemError'],
    });
  });

  it("becomes the flow's FAILED completion, with the reason its client reads", () => {
    // Arrange
    const flow = running('e1', {
      flow: 'train',
      product: 'mlops-template',
      client: 'acme',
      completionTopic: 'projects/p/topics/completions',
    });

    // Act
    const [message] = interruptedFlowCompletions(
      [lostExecution(flow, 1_796_200_060_250)],
      new Date('2026-12-02T10:00:00Z'),
      PLATFORM_STOPPED_UNEXPECTEDLY,
    );

    // Assert
    expect(message?.topic).toBe('projects/p/topics/completions');
    expect(message?.completion).toMatchObject({
      flow: 'train',
      client: 'acme',
      execution: flow.name,
      state: 'FAILED',
      error: PLATFORM_STOPPED_UNEXPECTEDLY,
    });
    expect(PLATFORM_STOPPED_UNEXPECTEDLY).toMatch(/platform stopped unexpectedly/);
  });
});
