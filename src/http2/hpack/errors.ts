/**
 * The error type of the HPACK codec.
 *
 * @module
 */

/**
 * Why an HPACK header block could not be decoded.
 *
 * Two codes are *list limits*: the decoder still processed the whole block, so its dynamic
 * table stays in sync with the peer's encoder and the connection can go on (answer the stream
 * with RST_STREAM or HTTP 431):
 *
 * - `HEADER_LIST_TOO_LARGE`: the decoded fields sum to more than `maxHeaderListSize`
 *   (RFC 9113 §6.5.2 accounting: name + value + 32 octets per field).
 * - `TOO_MANY_FIELDS`: the block holds more than `maxFields` fields.
 *
 * All other codes mean the block is malformed or exceeds a hard limit; the decoder's state is
 * then unknown, it refuses further blocks, and the connection must end with a connection error
 * of type COMPRESSION_ERROR (RFC 9113 §4.3):
 *
 * - `INVALID_INDEX`: index 0, or an index beyond the static plus dynamic table (§2.3.3).
 * - `INVALID_INTEGER`: a prefix integer above 2^31 - 1 or with redundant trailing octets (§5.1).
 * - `INVALID_HUFFMAN`: a Huffman string containing EOS, or padded with more than 7 bits or with
 *   bits other than 1 (§5.2).
 * - `STRING_TOO_LONG`: a string literal longer than `maxStringLength` octets (encoded or decoded).
 * - `TABLE_SIZE_UPDATE`: a dynamic table size update after the first field of a block, or
 *   above the advertised maximum (§4.2, §6.3).
 * - `TRUNCATED`: the block ends inside a representation.
 *
 * @example
 * ```ts
 * import type { HpackErrorCode } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const keepsConnection = (code: HpackErrorCode) =>
 *   code === "HEADER_LIST_TOO_LARGE" || code === "TOO_MANY_FIELDS";
 * assert.equal(keepsConnection("TRUNCATED"), false);
 * ```
 */
export type HpackErrorCode =
  | "INVALID_INDEX"
  | "INVALID_INTEGER"
  | "INVALID_HUFFMAN"
  | "STRING_TOO_LONG"
  | "HEADER_LIST_TOO_LARGE"
  | "TOO_MANY_FIELDS"
  | "TABLE_SIZE_UPDATE"
  | "TRUNCATED";

/**
 * Thrown by {@linkcode HpackDecoder.decode} when a header block is malformed or exceeds a limit.
 * Check {@linkcode HpackError.code}, never the message; see {@linkcode HpackErrorCode} for which
 * codes leave the connection usable.
 *
 * @example
 * ```ts
 * import { HpackDecoder, HpackError } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * // 0x80 is "indexed field, index 0": never valid.
 * assert.throws(
 *   () => new HpackDecoder().decode(new Uint8Array([0x80])),
 *   (e) => e instanceof HpackError && e.code === "INVALID_INDEX",
 * );
 * ```
 */
export class HpackError extends Error {
  /** What went wrong; see {@linkcode HpackErrorCode}. */
  readonly code: HpackErrorCode;

  /**
   * Creates the error.
   *
   * @param code what went wrong
   * @param message "Cannot <action>: <reason>"
   * @param options the underlying cause, if any
   */
  constructor(code: HpackErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HpackError";
    this.code = code;
  }
}
