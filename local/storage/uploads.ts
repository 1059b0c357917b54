/**
 * Resumable upload sessions: `Content-Range` parsing, chunks received in order, persisted-bytes
 * accounting for 308 answers, idle sessions dropped, and a retried last chunk answered again.
 */
import { randomBytes } from 'node:crypto';
import type { FinalizeRequest } from './catalog.js';
import type { ObjectHashes } from './hashes.js';
import { invalidArgument, type ObjectRecord } from './resources.js';
import type { BlobWriter, CommittedBlob } from './store.js';

/**
 * A `Content-Range` on a resumable upload PUT (shown with `_` for the star, which cannot appear
 * before a slash in a comment):
 * - `bytes _/N` or `bytes _/_`: a status query (no data);
 * - `bytes A-B/N`, `bytes A-B/_`: a chunk; `B` is `-1` for the empty final chunk of an empty
 *   object (the client sends `bytes 0--1/0`);
 * - `bytes A-_/N`, `bytes A-_/_`: the client's single-request form: the body is the rest of the object.
 * No header at all means the body is the whole object.
 */
export type ContentRange =
  | { kind: 'status'; total?: number }
  | { kind: 'data'; start: number; end?: number; total?: number };

/** Parses a resumable upload's `Content-Range`; throws 400 on a malformed value. */
export function parseContentRange(header: string | undefined): ContentRange {
  if (header === undefined || header.trim() === '') return { kind: 'data', start: 0 };
  const match = /^\s*bytes\s+(?:\*|(\d+)-(-1|\d+|\*))\/(\d+|\*)\s*$/i.exec(header);
  if (!match) throw invalidArgument(`Invalid Content-Range header: ${header}`);
  const total = match[3] === '*' ? undefined : Number(match[3]);
  if (match[1] === undefined) return total === undefined ? { kind: 'status' } : { kind: 'status', total };
  const start = Number(match[1]);
  const end = match[2] === '*' ? undefined : Number(match[2]);
  if (end !== undefined && end < start - 1) throw invalidArgument(`Invalid Content-Range header: ${header}`);
  return {
    kind: 'data',
    start,
    ...(end !== undefined ? { end } : {}),
    ...(total !== undefined ? { total } : {}),
  };
}

/** A resumable upload in progress (or just finished, kept to answer a retried last request). */
export interface ResumableSession {
  readonly id: string;
  readonly request: FinalizeRequest;
  readonly writer: BlobWriter;
  result?: ObjectRecord;
  lastActivity: number;
  /** Requests on one session run one at a time, in arrival order. */
  chain: Promise<unknown>;
}

/** What a chunk PUT leads to: more bytes wanted (308) or the finished object. */
export type ChunkOutcome = { done: false; persisted: number } | { done: true; record: ObjectRecord };

/** Idle sessions are dropped after this long (GCS keeps them a week; a local server needs less). */
const SESSION_IDLE_MS = 6 * 60 * 60 * 1000;

/** The open resumable upload sessions of one server. */
export class ResumableSessions {
  private readonly sessions = new Map<string, ResumableSession>();

  constructor(
    private readonly createWriter: () => BlobWriter,
    private readonly finalize: (request: FinalizeRequest, blob: CommittedBlob) => Promise<ObjectRecord>,
  ) {}

  create(request: FinalizeRequest): ResumableSession {
    this.prune();
    const session: ResumableSession = {
      id: randomBytes(24).toString('base64url'),
      request,
      writer: this.createWriter(),
      lastActivity: Date.now(),
      chain: Promise.resolve(),
    };
    this.sessions.set(session.id, session);
    return session;
  }

  get(id: string): ResumableSession | undefined {
    return this.sessions.get(id);
  }

  /** Cancels a session (DELETE on the session URI); resolves false when there was none. */
  async cancel(id: string): Promise<boolean> {
    const session = this.sessions.get(id);
    if (!session) return false;
    this.sessions.delete(id);
    await session.writer.abort();
    return true;
  }

  /**
   * Runs one PUT on a session: appends the bytes not yet persisted (a retried chunk may overlap
   * what arrived before), and finalizes once the declared total is reached, or when the range
   * says the body was the rest of the object.
   */
  receive(
    session: ResumableSession,
    body: AsyncIterable<Uint8Array>,
    range: ContentRange,
    declared: Partial<ObjectHashes>,
  ): Promise<ChunkOutcome> {
    const run = async (): Promise<ChunkOutcome> => {
      session.lastActivity = Date.now();
      if (session.result) {
        await drain(body);
        return { done: true, record: session.result };
      }
      const { writer } = session;
      let complete: boolean;
      if (range.kind === 'status') {
        await drain(body);
        complete = range.total !== undefined && writer.size === range.total;
      } else if (range.start > writer.size) {
        // A gap: keep nothing, tell the client where we are so it resends from there.
        await drain(body);
        return { done: false, persisted: writer.size };
      } else {
        let position = range.start;
        for await (const chunk of body) {
          const skip = Math.min(chunk.length, Math.max(0, writer.size - position));
          if (skip < chunk.length) await writer.write(skip === 0 ? chunk : chunk.subarray(skip));
          position += chunk.length;
          session.lastActivity = Date.now();
        }
        complete = range.total !== undefined ? writer.size >= range.total : range.end === undefined;
        if (range.total !== undefined && writer.size > range.total) {
          await this.cancel(session.id);
          throw invalidArgument('The upload sent more bytes than its declared total size.');
        }
      }
      if (!complete) return { done: false, persisted: writer.size };
      // The session is spent whatever the outcome: a failed precondition or hash ends it, as in GCS.
      this.sessions.delete(session.id);
      const blob = await writer.commit();
      const request: FinalizeRequest = {
        ...session.request,
        expected: { ...session.request.expected, ...declared },
      };
      const record = await this.finalize(request, blob);
      session.result = record;
      // Kept briefly so that a retried final request still gets the object, not a 404.
      this.sessions.set(session.id, session);
      return { done: true, record };
    };
    const result = session.chain.then(run, run);
    session.chain = result.catch(() => undefined);
    return result;
  }

  private prune(): void {
    const now = Date.now();
    for (const [id, session] of this.sessions) {
      if (now - session.lastActivity > SESSION_IDLE_MS) {
        this.sessions.delete(id);
        if (!session.result) void session.writer.abort();
      }
    }
  }

  async closeAll(): Promise<void> {
    const open = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(open.map((session) => (session.result ? undefined : session.writer.abort())));
  }
}

async function drain(body: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const _ of body) {
    // discard
  }
}
