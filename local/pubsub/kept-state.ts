import { PermanentError } from '#shared/runtime/errors.js';
import {
  type PubSubSnapshot,
  type RestoreOutcome,
  readPubSubSnapshot,
  readPubSubSnapshotFile,
  restorePubSubSnapshot,
  writePubSubSnapshot,
} from './persistence.js';
import { openTcpRelay } from './relay.js';

/** A Pub/Sub emulator whose state is kept in a file across restarts, as clients reach it. */
export interface KeptPubSub {
  /** `127.0.0.1:PORT` where clients connect (`PUBSUB_EMULATOR_HOST`). */
  host: string;
  /** What was restored from the file, if it held a snapshot. */
  restored?: { snapshot: PubSubSnapshot; outcome: RestoreOutcome };
  /**
   * Saves the emulator's state into the file, then cuts clients off. Call it once nothing of the
   * platform consumes any more, before the emulator stops.
   */
  save(): Promise<void>;
}

/**
 * Restores the state saved in `file` (if any) into the fresh emulator at `emulatorHost`, and
 * only then lets clients in, through a relay on 127.0.0.1:`port`. A client library that
 * reconnects by itself (a subscriber kept running across a restart) thus never reaches the
 * emulator before its subscription exists again: a stream that finds it missing ends for good.
 *
 * The file stays until the next save replaces it, so a start that fails after this, or a crash,
 * restores the same messages again (at least once) rather than losing them.
 *
 * @throws PermanentError when the file cannot be read or restored, naming the file to move away.
 */
export async function keepPubSubState(options: {
  emulatorHost: string;
  project: string;
  file: string;
  port: number;
}): Promise<KeptPubSub> {
  const { emulatorHost, project, file } = options;
  let snapshot: PubSubSnapshot | undefined;
  try {
    snapshot = readPubSubSnapshotFile(file);
  } catch (err) {
    throw new PermanentError(
      `could not read the Pub/Sub snapshot ${file} (${(err as Error).message}); move that file away to start without the messages it holds`,
      { cause: err },
    );
  }
  let restored: KeptPubSub['restored'];
  if (snapshot) {
    const saved = snapshot;
    const outcome = await restorePubSubSnapshot(emulatorHost, saved).catch((err: Error) => {
      throw new PermanentError(
        `could not restore Pub/Sub from ${file} (${err.message}); move that file away to start without the messages it holds`,
        { cause: err },
      );
    });
    restored = { snapshot: saved, outcome };
  }
  const relay = await openTcpRelay(options.port, emulatorHost);
  return {
    host: relay.host,
    ...(restored ? { restored } : {}),
    async save() {
      try {
        // Clients stay connected while it is read: what the emulator streams to a subscriber
        // meanwhile reaches it, rather than being cut off on the wire and lost with the emulator.
        writePubSubSnapshot(file, await readPubSubSnapshot(emulatorHost, project));
      } finally {
        await relay.close();
      }
    },
  };
}
