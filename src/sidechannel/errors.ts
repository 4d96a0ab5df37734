/**
 * The sidechannel error domain, and its mapping to gRPC status codes.
 *
 * @module
 */

import { GrpcError, Status } from "../grpc/status.ts";
import { YamuxError } from "../yamux/errors.ts";
import { UnexpectedEofError } from "../streams/byte_reader.ts";

/**
 * What went wrong, for callers to branch on, with the gRPC status each maps to:
 *
 * | code | meaning | status |
 * |---|---|---|
 * | `HANDSHAKE` | the server could not open the sidechannel: opening the stream, writing the magic and id, or reading the confirmation failed or timed out (retryable; Gitaly's `RetryableError`) | `UNAVAILABLE` |
 * | `BAD_CONFIRMATION` | the client answered something other than `ok` | `INTERNAL` |
 * | `MISSING_ID` | the call carries no `gitaly-sidechannel-id` | `INVALID_ARGUMENT` |
 * | `INVALID_ID` | the id is not a decimal int64 | `INVALID_ARGUMENT` |
 * | `NOT_MULTIPLEXED` | the call came over a plain connection, without a yamux session | `FAILED_PRECONDITION` |
 * | `ID_NOT_REGISTERED` | (client) the server opened a sidechannel for an id no waiter holds | `INTERNAL` |
 * | `CALLBACK_DID_NOT_RUN` | (client) the waiter was closed before the server opened its sidechannel | `INTERNAL` |
 * | `INVALID_HEADER` | (server reader) a pkt header other than `0000`, `0004` or a data length: `0001`–`0003`, not hex, or above 65520 | `INVALID_ARGUMENT` |
 * | `UNEXPECTED_EOF` | (server reader) the stream ended before the closing `0000`, or inside a packet | `CANCELLED` |
 * | `HALF_CLOSED` | (client) a write after `closeWrite()` | `INTERNAL` |
 * | `RESET` | the peer reset the sidechannel (it hung up: for a client, its 1 s close timeout ran out) | `CANCELLED` |
 * | `CONNECTION_LOST` | the connection under the sidechannel failed or closed mid-transfer | `UNAVAILABLE` |
 * | `CLOSED` | the sidechannel (or its registry) was closed locally | `CANCELLED` |
 */
export type SidechannelErrorCode =
  | "HANDSHAKE"
  | "BAD_CONFIRMATION"
  | "MISSING_ID"
  | "INVALID_ID"
  | "NOT_MULTIPLEXED"
  | "ID_NOT_REGISTERED"
  | "CALLBACK_DID_NOT_RUN"
  | "INVALID_HEADER"
  | "UNEXPECTED_EOF"
  | "HALF_CLOSED"
  | "RESET"
  | "CONNECTION_LOST"
  | "CLOSED";

const _STATUS: Readonly<Record<SidechannelErrorCode, Status>> = {
  HANDSHAKE: Status.UNAVAILABLE,
  BAD_CONFIRMATION: Status.INTERNAL,
  MISSING_ID: Status.INVALID_ARGUMENT,
  INVALID_ID: Status.INVALID_ARGUMENT,
  NOT_MULTIPLEXED: Status.FAILED_PRECONDITION,
  ID_NOT_REGISTERED: Status.INTERNAL,
  CALLBACK_DID_NOT_RUN: Status.INTERNAL,
  INVALID_HEADER: Status.INVALID_ARGUMENT,
  UNEXPECTED_EOF: Status.CANCELLED,
  HALF_CLOSED: Status.INTERNAL,
  RESET: Status.CANCELLED,
  CONNECTION_LOST: Status.UNAVAILABLE,
  CLOSED: Status.CANCELLED,
};

/**
 * An error of a sidechannel: its handshake, its framing, its registry. Branch on
 * `code`, never on the message. `cause` carries the underlying error (a
 * {@linkcode YamuxError}, a timeout, a callback's error).
 *
 * Messages are this library's ("Cannot open sidechannel: receive confirmation
 * failed"), not Gitaly's strings: in particular Gitaly's SSH handler's `opennig
 * sidechannel` typo (gitaly.md §4.1, §6.6) is deliberately not reproduced; the codes
 * and gRPC statuses are the contract.
 *
 * @example
 * ```ts
 * import { SidechannelError, Status } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const error = new SidechannelError("HANDSHAKE", "Cannot open sidechannel: receive confirmation: EOF");
 * assert.equal(error.code, "HANDSHAKE");
 * assert.equal(error.retryable, true);
 * assert.equal(error.status, Status.UNAVAILABLE);
 * assert.equal(error.toGrpcError().code, Status.UNAVAILABLE);
 * ```
 */
export class SidechannelError extends Error {
  /** What went wrong. */
  readonly code: SidechannelErrorCode;
  /** The gRPC status this error maps to at an RPC boundary. */
  readonly status: Status;

  /**
   * Creates the error.
   *
   * @param code what went wrong
   * @param message "Cannot <action>: <reason>"
   * @param options the `cause`, if any
   */
  constructor(code: SidechannelErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SidechannelError";
    this.code = code;
    this.status = _STATUS[code];
  }

  /** True when a client may retry the call: the sidechannel could not be set up. */
  get retryable(): boolean {
    return this.code === "HANDSHAKE";
  }

  /**
   * The error as a gRPC status, for a handler to throw.
   *
   * @returns a {@linkcode GrpcError} with {@linkcode SidechannelError.status}, this message and this error as cause
   */
  toGrpcError(): GrpcError {
    return new GrpcError(this.status, this.message, { cause: this });
  }
}

/**
 * Turns an I/O error of the stream under a sidechannel into a {@linkcode SidechannelError}:
 * a reset by the peer becomes `RESET`, a failed or closed connection `CONNECTION_LOST`, a
 * local close `CLOSED`. Sidechannel errors pass through.
 *
 * @param error what the stream threw
 * @param action what was being done, for the message ("read", "write")
 * @returns the typed error
 */
export function _wrapIoError(error: unknown, action: string): SidechannelError {
  if (error instanceof SidechannelError) return error;
  if (error instanceof YamuxError) {
    switch (error.code) {
      case "STREAM_RESET":
        return error.remote
          ? new SidechannelError("RESET", `Cannot ${action}: the peer reset the sidechannel`, {
            cause: error,
          })
          : new SidechannelError("CLOSED", `Cannot ${action}: the sidechannel was reset locally`, {
            cause: error,
          });
      case "STREAM_CLOSED":
        return new SidechannelError("CLOSED", `Cannot ${action}: the sidechannel is closed`, {
          cause: error,
        });
      case "TIMEOUT":
        if (error.streamId !== undefined) {
          // Our close timer expired: the peer never closed its side; we reset it.
          return new SidechannelError("CLOSED", `Cannot ${action}: the sidechannel was closed`, {
            cause: error,
          });
        }
        break;
    }
    return new SidechannelError("CONNECTION_LOST", `Cannot ${action}: the connection was lost`, {
      cause: error,
    });
  }
  if (error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe) {
    return new SidechannelError("RESET", `Cannot ${action}: the peer reset the sidechannel`, {
      cause: error,
    });
  }
  if (error instanceof UnexpectedEofError) {
    return new SidechannelError("UNEXPECTED_EOF", `Cannot ${action}: unexpected end of stream`, {
      cause: error,
    });
  }
  return new SidechannelError("CONNECTION_LOST", `Cannot ${action}: the connection failed`, { cause: error });
}
