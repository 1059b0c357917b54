/**
 * `google.protobuf.Timestamp` and `Duration` as proto-loader (keepCase, longs as strings)
 * encodes them: the one conversion between milliseconds and these messages for every local
 * gRPC service.
 */

export interface Timestamp {
  seconds: string;
  nanos: number;
}

export interface Duration {
  seconds: string;
  nanos: number;
}

/** A Timestamp message for a time in milliseconds since the epoch. */
export function timestamp(ms: number): Timestamp {
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
}

/** A Duration message for a span in milliseconds (a negative span is zero). */
export function duration(ms: number): Duration {
  const clamped = Math.max(0, ms);
  return { seconds: String(Math.floor(clamped / 1000)), nanos: (clamped % 1000) * 1_000_000 };
}

/** Milliseconds since the epoch of a Timestamp message; undefined for none. */
export function millis(time: Timestamp | null | undefined): number | undefined {
  return time ? Number(time.seconds) * 1000 + Math.floor(time.nanos / 1_000_000) : undefined;
}
