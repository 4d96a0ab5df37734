/**
 * Sidechannel wire format (Gitaly `internal/grpc/sidechannel`): the open preamble, the
 * confirmation, the client's chunk framing and the metadata key. Pure: no I/O, no timers.
 *
 * ```
 * server → client, on a server-opened yamux stream:
 *   "sidechannel" (11 bytes) | id (int64, big-endian)
 * client → server:
 *   "ok" | ( %04x(len+4) chunk )* | "0000"        chunk ≤ 65516 bytes
 * server → client:
 *   raw bytes … yamux FIN
 * ```
 *
 * @module
 */

import { SidechannelError } from "./errors.ts";

/**
 * The magic a server writes first on a stream it opens for a sidechannel,
 * `sidechannel` (`73 69 64 65 63 68 61 6e 6e 65 6c`).
 */
export const SIDECHANNEL_MAGIC = "sidechannel";

/** The metadata key that carries a call's sidechannel id, as a decimal int64. */
export const SIDECHANNEL_ID_METADATA = "gitaly-sidechannel-id";

/** What the client answers once it has taken the sidechannel: `ok` (`6f 6b`). */
export const SIDECHANNEL_CONFIRMATION = "ok";

/**
 * Largest chunk a client sends in one packet: a pkt-line's 65520 bytes minus its 4-byte
 * header (Gitaly's `maxChunkSize`). The largest header is therefore `fff0`.
 */
export const SIDECHANNEL_MAX_CHUNK = 65516;

/** Length of the open preamble: the magic and the int64 id. */
export const SIDECHANNEL_PREAMBLE_LENGTH = 19;

const _INT64_MIN = -(1n << 63n);
const _INT64_MAX = (1n << 63n) - 1n;
const _HEX = "0123456789abcdef";

function _checkId(id: bigint | number): bigint {
  const value = typeof id === "bigint" ? id : Number.isSafeInteger(id) ? BigInt(id) : undefined;
  if (value === undefined || value < _INT64_MIN || value > _INT64_MAX) {
    throw new RangeError(`Cannot encode sidechannel id: ${id} is not an int64`);
  }
  return value;
}

/**
 * Encodes what a server writes on a stream it opened: the magic, then the id as a
 * big-endian int64.
 *
 * @param id the sidechannel id from the call's metadata
 * @returns 19 bytes
 * @throws {RangeError} If `id` is not an int64 (or an unsafe number).
 *
 * @example
 * ```ts
 * import { encodeSidechannelPreamble } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeSidechannelPreamble(258);
 * assert.equal(new TextDecoder().decode(bytes.subarray(0, 11)), "sidechannel");
 * assert.deepEqual([...bytes.subarray(11)], [0, 0, 0, 0, 0, 0, 1, 2]);
 * ```
 */
export function encodeSidechannelPreamble(id: bigint | number): Uint8Array {
  const value = _checkId(id);
  const out = new Uint8Array(SIDECHANNEL_PREAMBLE_LENGTH);
  for (let i = 0; i < SIDECHANNEL_MAGIC.length; i++) out[i] = SIDECHANNEL_MAGIC.charCodeAt(i);
  new DataView(out.buffer).setBigInt64(SIDECHANNEL_MAGIC.length, value, false);
  return out;
}

/**
 * Decodes the 8-byte big-endian id that follows the magic.
 *
 * @param bytes exactly 8 bytes
 * @returns the id
 * @throws {RangeError} If `bytes` is not 8 bytes long.
 *
 * @example
 * ```ts
 * import { decodeSidechannelId } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decodeSidechannelId(new Uint8Array([0, 0, 0, 0, 0, 0, 1, 2])), 258n);
 * assert.equal(decodeSidechannelId(new Uint8Array(8).fill(0xff)), -1n);
 * ```
 */
export function decodeSidechannelId(bytes: Uint8Array): bigint {
  if (bytes.byteLength !== 8) {
    throw new RangeError(`Cannot decode sidechannel id: need 8 bytes, received ${bytes.byteLength}`);
  }
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigInt64(0, false);
}

/**
 * Writes the 4-hex-digit header of a client chunk (`%04x` of `length + 4`) into `target`.
 *
 * @param target where to write
 * @param offset position in `target`
 * @param length chunk length, 1–65516
 */
export function _writeChunkHeader(target: Uint8Array, offset: number, length: number): void {
  const value = length + 4;
  target[offset] = _HEX.charCodeAt((value >>> 12) & 0xf);
  target[offset + 1] = _HEX.charCodeAt((value >>> 8) & 0xf);
  target[offset + 2] = _HEX.charCodeAt((value >>> 4) & 0xf);
  target[offset + 3] = _HEX.charCodeAt(value & 0xf);
}

/**
 * Frames bytes the way a sidechannel client sends them: chunks of at most
 * {@linkcode SIDECHANNEL_MAX_CHUNK} bytes, each after its `%04x` header (length + 4).
 * Empty input frames to nothing. The closing `0000` is not included.
 *
 * @param data the bytes to send
 * @returns the framed bytes
 *
 * @example Gitaly's `TestClientWrite` cases
 * ```ts
 * import { frameSidechannelChunks } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const text = (s: string) => new TextDecoder().decode(frameSidechannelChunks(new TextEncoder().encode(s)));
 * assert.equal(text(""), "");
 * assert.equal(text("h"), "0005h");
 * assert.equal(text("hello this world"), "0014hello this world");
 * const big = frameSidechannelChunks(new Uint8Array(65517).fill(0x62));
 * assert.equal(new TextDecoder().decode(big.subarray(0, 4)), "fff0");
 * assert.equal(new TextDecoder().decode(big.subarray(65520)), "0005b");
 * ```
 */
export function frameSidechannelChunks(data: Uint8Array): Uint8Array {
  const chunks = Math.ceil(data.byteLength / SIDECHANNEL_MAX_CHUNK);
  const out = new Uint8Array(data.byteLength + 4 * chunks);
  let at = 0;
  for (let offset = 0; offset < data.byteLength; offset += SIDECHANNEL_MAX_CHUNK) {
    const chunk = data.subarray(offset, offset + SIDECHANNEL_MAX_CHUNK);
    _writeChunkHeader(out, at, chunk.byteLength);
    out.set(chunk, at + 4);
    at += 4 + chunk.byteLength;
  }
  return out;
}

/**
 * Parses a 4-byte chunk header as Gitaly's server-side reader does (see
 * {@linkcode SidechannelServerConn}).
 *
 * @param h the header bytes
 * @returns the packet length including the header (0 for `0000`, 4 for `0004`)
 * @throws {SidechannelError} `INVALID_HEADER` for `0001`–`0003`, non-hex digits or a length above 65520.
 */
export function _parseChunkHeader(h: Uint8Array): number {
  let value = 0;
  for (let i = 0; i < 4; i++) {
    const c = h[i]!;
    let digit: number;
    if (c >= 0x30 && c <= 0x39) digit = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) digit = c - 0x57;
    else if (c >= 0x41 && c <= 0x46) digit = c - 0x37;
    else {
      throw new SidechannelError(
        "INVALID_HEADER",
        `Cannot read sidechannel: invalid pkt header ${
          JSON.stringify(String.fromCharCode(...h.subarray(0, 4)))
        }`,
      );
    }
    value = (value << 4) | digit;
  }
  if (value > 0 && value < 4) {
    throw new SidechannelError("INVALID_HEADER", `Cannot read sidechannel: invalid header ${value}`);
  }
  if (value > 65520) {
    throw new SidechannelError("INVALID_HEADER", `Cannot read sidechannel: invalid length ${value}`);
  }
  return value;
}

/**
 * Reads a call's sidechannel id from its metadata values for
 * {@linkcode SIDECHANNEL_ID_METADATA}. The **last** value wins: a proxy (Praefect)
 * appends its own id after the client's.
 *
 * Quirk, deliberately not reproduced (gitaly.md §1.10, §6.6): Gitaly ignores a parse
 * error and uses id 0. Here an unparsable id is rejected (`INVALID_ID`), because id 0
 * is a real id, that of the client's first registered waiter, so the sidechannel
 * would reach the wrong call. Compliant clients send `%d`, which always parses.
 * Accepted: a decimal int64 with an optional sign (Go's `ParseInt(s, 10, 64)`).
 *
 * @param values the metadata values, in order
 * @returns the id
 * @throws {SidechannelError} `MISSING_ID` without a value, `INVALID_ID` for a bad last value.
 *
 * @example
 * ```ts
 * import { parseSidechannelId } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseSidechannelId(["3"]), 3n);
 * assert.equal(parseSidechannelId(["3", "17"]), 17n); // appended by a proxy
 * assert.throws(() => parseSidechannelId([]), { code: "MISSING_ID" });
 * assert.throws(() => parseSidechannelId(["x1"]), { code: "INVALID_ID" });
 * ```
 */
export function parseSidechannelId(values: readonly (string | Uint8Array)[]): bigint {
  const last = values.at(-1);
  if (last === undefined) {
    throw new SidechannelError(
      "MISSING_ID",
      `Cannot open sidechannel: ${SIDECHANNEL_ID_METADATA} not found in incoming metadata`,
    );
  }
  const text = typeof last === "string" ? last : new TextDecoder().decode(last);
  if (/^[+-]?[0-9]{1,19}$/.test(text)) {
    const value = BigInt(text);
    if (value >= _INT64_MIN && value <= _INT64_MAX) return value;
  }
  throw new SidechannelError(
    "INVALID_ID",
    `Cannot open sidechannel: invalid ${SIDECHANNEL_ID_METADATA} ${JSON.stringify(text)}`,
  );
}

/**
 * Formats an id for {@linkcode SIDECHANNEL_ID_METADATA}: decimal, as Gitaly's `%d`.
 *
 * @param id the id
 * @returns the metadata value
 *
 * @example
 * ```ts
 * import { formatSidechannelId } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatSidechannelId(0), "0");
 * assert.equal(formatSidechannelId(12345678901234n), "12345678901234");
 * ```
 */
export function formatSidechannelId(id: bigint | number): string {
  return _checkId(id).toString(10);
}
