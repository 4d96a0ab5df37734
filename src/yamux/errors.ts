/**
 * The yamux error domain.
 *
 * @module
 */

/**
 * What went wrong, for callers to branch on:
 *
 * - `SESSION_CLOSED`: the session was closed locally, or by a normal remote GoAway and
 *   close; the operation cannot proceed.
 * - `CONNECTION_LOST`: the transport ended or failed while the session was live (the peer
 *   vanished). Streams that had not finished see this, never a clean end-of-stream.
 * - `GO_AWAY`: the peer sent GoAway: no new streams (`goAwayCode` 0), or the session ended
 *   with the peer's error code (1 protocol error, 2 internal error).
 * - `PROTOCOL_ERROR`: the peer violated the protocol (`violation` says how); we sent
 *   GoAway(1) and ended the session.
 * - `STREAM_RESET`: the stream was reset, by the peer (`remote`) or locally.
 * - `STREAM_CLOSED`: write after the stream's write side was closed.
 * - `TIMEOUT`: a bounded wait expired (open without ACK, close without the peer's FIN,
 *   a transport write, a ping).
 * - `KEEPALIVE_TIMEOUT`: the peer stopped answering keepalive pings.
 * - `STREAMS_EXHAUSTED`: no stream ids left on this session.
 * - `TOO_MANY_STREAMS`: `maxConcurrentStreams` reached.
 */
export type YamuxErrorCode =
  | "SESSION_CLOSED"
  | "CONNECTION_LOST"
  | "GO_AWAY"
  | "PROTOCOL_ERROR"
  | "STREAM_RESET"
  | "STREAM_CLOSED"
  | "TIMEOUT"
  | "KEEPALIVE_TIMEOUT"
  | "STREAMS_EXHAUSTED"
  | "TOO_MANY_STREAMS";

/** How a peer violated the protocol, for `PROTOCOL_ERROR`. */
export type YamuxViolation =
  | "INVALID_VERSION"
  | "INVALID_TYPE"
  | "RECV_WINDOW_EXCEEDED"
  | "DUPLICATE_STREAM"
  | "INVALID_STREAM_ID"
  | "UNEXPECTED_FLAG"
  | "WINDOW_OVERFLOW";

/** Extra fields of a {@linkcode YamuxError}. */
export interface YamuxErrorOptions extends ErrorOptions {
  /** The stream concerned, if any. */
  streamId?: number;
  /** True if the peer caused it (RST, GoAway received). */
  remote?: boolean;
  /** The GoAway code sent or received. */
  goAwayCode?: number;
  /** For `PROTOCOL_ERROR`: what the peer did wrong. */
  violation?: YamuxViolation;
}

/**
 * An error from a yamux session or stream. Branch on `code`, never on the message.
 *
 * @example
 * ```ts
 * import { YamuxError } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const error = new YamuxError("STREAM_RESET", "Cannot read: stream 3 was reset by the peer", {
 *   streamId: 3,
 *   remote: true,
 * });
 * assert.equal(error.code, "STREAM_RESET");
 * assert.equal(error.remote, true);
 * assert.equal(error.name, "YamuxError");
 * ```
 */
export class YamuxError extends Error {
  /** What went wrong. */
  readonly code: YamuxErrorCode;
  /** The stream concerned, if any. */
  readonly streamId: number | undefined;
  /** True if the peer caused it. */
  readonly remote: boolean;
  /** The GoAway code sent or received, if any. */
  readonly goAwayCode: number | undefined;
  /** For `PROTOCOL_ERROR`: what the peer did wrong. */
  readonly violation: YamuxViolation | undefined;

  /**
   * Creates the error.
   *
   * @param code what went wrong
   * @param message human-readable detail ("Cannot <action>: <reason>")
   * @param options stream, origin and cause
   */
  constructor(code: YamuxErrorCode, message: string, options: YamuxErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "YamuxError";
    this.code = code;
    this.streamId = options.streamId;
    this.remote = options.remote ?? false;
    this.goAwayCode = options.goAwayCode;
    this.violation = options.violation;
  }
}
