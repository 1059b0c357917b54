import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonRecords, writeFileAtomically } from '../atomic-file.js';
import type { BinaryCloudEvent } from './delivery.js';

/** An event the router accepted and has not delivered, rejected or dropped yet. */
export interface PendingEvent {
  version: 1;
  /** The trigger it is for, by name: its destination is looked up again after a restart (ports move). */
  trigger: string;
  subject: string;
  event: BinaryCloudEvent;
}

const SUFFIX = '.json';

/**
 * The router's undelivered events on disk, one JSON file per event (named by its `ce-id`).
 * An event is written before its first attempt and removed once it is delivered, rejected or
 * dropped, so a stop, a crash or a failed start between the two leaves it here for the next
 * start to deliver. Writes are synchronous and atomic (temp file + rename), as in the Batch
 * job store: a write happens inside the finalize notification that causes it.
 */
export class PendingEventStore {
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  private file(id: string): string {
    return join(this.dir, `${encodeURIComponent(id)}${SUFFIX}`);
  }

  save(pending: PendingEvent): void {
    const target = this.file(pending.event.headers['ce-id'] ?? '');
    writeFileAtomically(target, JSON.stringify(pending));
  }

  remove(id: string): void {
    rmSync(this.file(id), { force: true });
  }

  /** Every readable record, oldest event first; torn writes are removed, unreadable files skipped. */
  loadAll(onUnreadable: (file: string, err: unknown) => void = () => {}): PendingEvent[] {
    const records = readJsonRecords(
      this.dir,
      (value) => {
        const pending = value as PendingEvent;
        if (pending?.version !== 1 || typeof pending.event?.headers?.['ce-id'] !== 'string') {
          throw new Error('not a pending event record of this version');
        }
        return pending;
      },
      onUnreadable,
    );
    return records.sort((a, b) => a.event.time - b.event.time);
  }
}
