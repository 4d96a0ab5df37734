/**
 * The error every pkt-line and sideband codec in this folder throws.
 *
 * @module
 */

/**
 * What went wrong, as a stable string callers can switch on.
 *
 * - `INVALID_LENGTH`: a length prefix that is not four hex digits, or a length above
 *   {@linkcode MAX_PKT_SIZE}, or a packet whose prefix disagrees with its size.
 * - `TOO_LARGE`: a payload too large to encode in one packet.
 * - `INCOMPLETE_PREFIX`: the input ended 1–3 bytes into a length prefix.
 * - `UNEXPECTED_EOF`: the input ended inside a packet.
 * - `UNEXPECTED_FLUSH`: a flush packet where a payload was required.
 * - `INVALID_SIDEBAND`: a sideband packet without a band byte (`0004`, `0000`, …).
 * - `UNEXPECTED_BAND`: a sideband packet on a band nobody reads.
 */
export type PktlineErrorCode =
  | "INVALID_LENGTH"
  | "TOO_LARGE"
  | "INCOMPLETE_PREFIX"
  | "UNEXPECTED_EOF"
  | "UNEXPECTED_FLUSH"
  | "INVALID_SIDEBAND"
  | "UNEXPECTED_BAND";

/**
 * A malformed or unencodable pkt-line stream.
 *
 * Check {@linkcode PktlineError.code}, never the message text.
 *
 * @example
 * ```ts
 * import { encodePkt, PktlineError } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => encodePkt(new Uint8Array(65517)), (e: unknown) => {
 *   assert.ok(e instanceof PktlineError);
 *   assert.equal(e.code, "TOO_LARGE");
 *   return true;
 * });
 * ```
 */
export class PktlineError extends Error {
  /** What went wrong. */
  readonly code: PktlineErrorCode;

  /**
   * Creates the error.
   *
   * @param code what went wrong
   * @param message "Cannot <action>: <reason>"
   * @param options the `cause`, if any
   */
  constructor(code: PktlineErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PktlineError";
    this.code = code;
  }
}
