/**
 * The backchannel error domain (listenmux, handshakes, peers).
 *
 * @module
 */

import { GrpcError, Status } from "../grpc/status.ts";

/**
 * What went wrong, for callers to branch on:
 *
 * - `HANDSHAKE`: a connection handshake failed: the magic could not be written or
 *   peeked, the yamux session could not start, or the first stream did not arrive in
 *   time. The connection is closed.
 * - `NOT_MULTIPLEXED`: a handler asked for its peer's backchannel, but the call came over
 *   a plain (non-multiplexed) connection (Gitaly's `non-multiplexed connection`).
 * - `UNKNOWN_PEER`: no backchannel is registered for that peer id (Gitaly's
 *   `no backchannel for peer N`).
 * - `CLOSED`: the backchannel connection was closed.
 */
export type BackchannelErrorCode = "HANDSHAKE" | "NOT_MULTIPLEXED" | "UNKNOWN_PEER" | "CLOSED";

const _STATUS: Readonly<Record<BackchannelErrorCode, Status>> = {
  HANDSHAKE: Status.UNAVAILABLE,
  NOT_MULTIPLEXED: Status.FAILED_PRECONDITION,
  UNKNOWN_PEER: Status.FAILED_PRECONDITION,
  CLOSED: Status.UNAVAILABLE,
};

/**
 * An error of the backchannel layer. Branch on `code`, never on the message.
 *
 * `status` is the gRPC status a server reports when this error ends an RPC.
 *
 * @example
 * ```ts
 * import { BackchannelError, Status } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const error = new BackchannelError("NOT_MULTIPLEXED", "Cannot reach the peer: non-multiplexed connection");
 * assert.equal(error.code, "NOT_MULTIPLEXED");
 * assert.equal(error.status, Status.FAILED_PRECONDITION);
 * assert.equal(error.name, "BackchannelError");
 * assert.equal(error.toGrpcError().code, Status.FAILED_PRECONDITION);
 * ```
 */
export class BackchannelError extends Error {
  /** What went wrong. */
  readonly code: BackchannelErrorCode;
  /** The gRPC status this error maps to at an RPC boundary. */
  readonly status: Status;

  /**
   * Creates the error.
   *
   * @param code what went wrong
   * @param message "Cannot <action>: <reason>"
   * @param options the `cause`, if any
   */
  constructor(code: BackchannelErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BackchannelError";
    this.code = code;
    this.status = _STATUS[code];
  }

  /**
   * The error as a gRPC status, for a handler to throw.
   *
   * @returns a {@linkcode GrpcError} with {@linkcode BackchannelError.status}, this message and this error as cause
   */
  toGrpcError(): GrpcError {
    return new GrpcError(this.status, this.message, { cause: this });
  }
}
