import { PermanentError } from '#shared/runtime/errors.js';
import {
  nextAckIdNumber,
  type PubSubSnapshot,
  type RestoreOutcome,
  readPubSubSnapshot,
  readPubSubSnapshotFile,
  restorePubSubSnapshot,
  type TakeBackOutcome,
  takeBackLeases,
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
   * Saves the emulator's state into the file, cutting clients off on the way; what their
   * subscribers had received and not acknowledged is saved too. Call it once nothing of the
   * platform consumes any more, before the emulator stops.
   */
  save(): Promise<TakeBackOutcome>;
}

/**
 * How long a save may spend taking back what clients' subscribers held: the whole save must fit
 * in one step of the platform's stop (15 s), reading the backlog included.
 */
const TAKE_BACK_TIMEOUT_MS = 5_000;

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
  // Clients get no delivery before this one: where a save starts looking for their leases.
  const clientsFirstAckId = await nextAckIdNumber(emulatorHost, project);
  const relay = await openTcpRelay(options.port, emulatorHost);
  return {
    host: relay.host,
    ...(restored ? { restored } : {}),
    async save() {
      let snapshot: PubSubSnapshot;
      try {
        // Clients stay connected while the backlog is read: an ack they send meanwhile still
        // counts, and what is not acknowledged by the time they are cut off is taken back below.
        snapshot = await readPubSubSnapshot(emulatorHost, project);
      } finally {
        await relay.close();
      }
      // What a subscriber received and had not acknowledged is leased to its stream, which the
      // emulator would give back only after the ack deadline, and then die with it: taken back
      // now, it is delivered again after the restart (at least once: if the client did process
      // it, a duplicate, which consumers dedupe on `ce-id`).
      const taken = await takeBackLeases(emulatorHost, snapshot, {
        fromAckId: clientsFirstAckId,
        timeoutMs: TAKE_BACK_TIMEOUT_MS,
      }).catch((err: Error) => ({ takenBack: 0, notTakenBack: err.message }));
      writePubSubSnapshot(file, snapshot);
      return taken;
    },
  };
}
