/**
 * Git pkt-line constants and encoders, with Gitaly's limits.
 *
 * A packet is four lowercase hex digits giving the packet's total length (prefix
 * included), then the payload. Lengths 0–3 are special 4-byte packets: `0000` flush,
 * `0001` delimiter, `0002` response end (protocol v2); `0003` has no meaning in git.
 *
 * @module
 */

import { PktlineError } from "./errors.ts";

/** Largest packet in bytes, length prefix included (git's `LARGE_PACKET_MAX`). */
export const MAX_PKT_SIZE = 65520;
/** Largest payload of one packet: {@linkcode MAX_PKT_SIZE} minus the 4-byte prefix. */
export const MAX_PKT_DATA = 65516;
/** Largest payload of one sideband-64k packet: {@linkcode MAX_PKT_DATA} minus the band byte. */
export const MAX_SIDEBAND_DATA = 65515;

/** The flush packet: ends a section or a message. */
export const FLUSH_PKT = "0000";
/** The delimiter packet: separates sections of a protocol v2 message. */
export const DELIM_PKT = "0001";
/** The response-end packet: ends a protocol v2 response (stateless transports). */
export const RESPONSE_END_PKT = "0002";

/**
 * One packet as a {@linkcode PktScanner} reports it.
 *
 * - `data`: a packet with a payload (possibly empty: `0004`).
 * - `flush`, `delim`, `response-end`: the special packets `0000`, `0001`, `0002`.
 * - `reserved`: the special packet `0003`, meaningless in git. Gitaly's splitter
 *   accepts it as a 4-byte token and leaves rejecting it to the consumer (its
 *   sidechannel reader fails with "invalid header 3"), so the scanner reports it too.
 */
export type Pkt =
  | { readonly kind: "data"; readonly payload: Uint8Array }
  | { readonly kind: "flush" | "delim" | "response-end" | "reserved" };

const _HEX = "0123456789abcdef";

/**
 * Writes `value` (0–0xffff) as four lowercase hex digits at `offset`.
 * @private Internal code, shared with `sideband.ts`.
 */
export function _writeHex4(target: Uint8Array, offset: number, value: number): void {
  target[offset] = _HEX.charCodeAt((value >> 12) & 15);
  target[offset + 1] = _HEX.charCodeAt((value >> 8) & 15);
  target[offset + 2] = _HEX.charCodeAt((value >> 4) & 15);
  target[offset + 3] = _HEX.charCodeAt(value & 15);
}

function _hexDigit(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30; // 0-9
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x57; // a-f
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x37; // A-F
  return -1;
}

/**
 * Parses a 4-byte length prefix: hex digits of either case, nothing else.
 * @returns the length, or -1 if the prefix is not four hex digits.
 * @private Internal code, shared with `scanner.ts`.
 */
export function _parseHex4(a: number, b: number, c: number, d: number): number {
  const h0 = _hexDigit(a), h1 = _hexDigit(b), h2 = _hexDigit(c), h3 = _hexDigit(d);
  if ((h0 | h1 | h2 | h3) < 0) return -1;
  return (h0 << 12) | (h1 << 8) | (h2 << 4) | h3;
}

/**
 * Renders bytes for an error message, like Go's `%q` would show them.
 * @private Internal code.
 */
export function _quote(bytes: Uint8Array): string {
  return JSON.stringify(String.fromCharCode(...bytes.subarray(0, 32)));
}

const _encoder = new TextEncoder();

/**
 * The 4-byte prefix of a packet carrying `dataLength` payload bytes.
 *
 * For writers that send the prefix and the payload as separate writes, so the payload
 * is never copied (Gitaly's sidechannel client does exactly that).
 *
 * @param dataLength payload length, 0 to {@linkcode MAX_PKT_DATA}
 * @returns four lowercase hex digits
 * @throws {PktlineError} `TOO_LARGE` above {@linkcode MAX_PKT_DATA}.
 * @throws {RangeError} For a negative or non-integer length.
 *
 * @example
 * ```ts
 * import { encodePktHeader } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(new TextDecoder().decode(encodePktHeader(5)), "0009");
 * assert.equal(new TextDecoder().decode(encodePktHeader(65516)), "fff0");
 * ```
 */
export function encodePktHeader(dataLength: number): Uint8Array {
  if (!Number.isInteger(dataLength) || dataLength < 0) {
    throw new RangeError(`Cannot encode pkt-line header: invalid length ${dataLength}`);
  }
  if (dataLength > MAX_PKT_DATA) {
    throw new PktlineError(
      "TOO_LARGE",
      `Cannot encode pkt-line: payload of ${dataLength} bytes exceeds ${MAX_PKT_DATA}`,
    );
  }
  const header = new Uint8Array(4);
  _writeHex4(header, 0, dataLength + 4);
  return header;
}

/**
 * Encodes one data packet: `%04x` of the total length, then the payload.
 *
 * Strings are encoded as UTF-8. The result is a new buffer; use
 * {@linkcode encodePktHeader} to avoid copying a large payload.
 *
 * @param data the payload, at most {@linkcode MAX_PKT_DATA} bytes
 * @returns the packet bytes
 * @throws {PktlineError} `TOO_LARGE` if the payload does not fit in one packet.
 *
 * @example
 * ```ts
 * import { encodePkt } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(new TextDecoder().decode(encodePkt("hello world!")), "0010hello world!");
 * assert.equal(new TextDecoder().decode(encodePkt("")), "0004");
 * ```
 */
export function encodePkt(data: Uint8Array | string): Uint8Array {
  const bytes = typeof data === "string" ? _encoder.encode(data) : data;
  if (bytes.byteLength > MAX_PKT_DATA) {
    throw new PktlineError(
      "TOO_LARGE",
      `Cannot encode pkt-line: payload of ${bytes.byteLength} bytes exceeds ${MAX_PKT_DATA}`,
    );
  }
  const out = new Uint8Array(bytes.byteLength + 4);
  _writeHex4(out, 0, bytes.byteLength + 4);
  out.set(bytes, 4);
  return out;
}

/**
 * The flush packet `0000`, as new bytes.
 *
 * @returns `0000`
 *
 * @example
 * ```ts
 * import { encodeFlush } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(new TextDecoder().decode(encodeFlush()), "0000");
 * ```
 */
export function encodeFlush(): Uint8Array {
  return _encoder.encode(FLUSH_PKT);
}

/**
 * The delimiter packet `0001`, as new bytes.
 *
 * @returns `0001`
 *
 * @example
 * ```ts
 * import { encodeDelim } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(new TextDecoder().decode(encodeDelim()), "0001");
 * ```
 */
export function encodeDelim(): Uint8Array {
  return _encoder.encode(DELIM_PKT);
}

/**
 * The response-end packet `0002`, as new bytes.
 *
 * @returns `0002`
 *
 * @example
 * ```ts
 * import { encodeResponseEnd } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(new TextDecoder().decode(encodeResponseEnd()), "0002");
 * ```
 */
export function encodeResponseEnd(): Uint8Array {
  return _encoder.encode(RESPONSE_END_PKT);
}

/**
 * The bytes after the 4-byte prefix of an encoded packet, unchecked (Gitaly's `Data`).
 *
 * Empty for the special packets. Returns a view, not a copy.
 *
 * @param pkt one encoded packet
 * @returns a view of `pkt` without its first four bytes
 *
 * @example
 * ```ts
 * import { pktData } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const text = (b: Uint8Array) => new TextDecoder().decode(b);
 * assert.equal(text(pktData(new TextEncoder().encode("0008abcd"))), "abcd");
 * assert.equal(pktData(new TextEncoder().encode("0000")).byteLength, 0);
 * ```
 */
export function pktData(pkt: Uint8Array): Uint8Array {
  return pkt.subarray(Math.min(4, pkt.byteLength));
}

/**
 * Whether `pkt` is exactly the flush packet `0000`.
 *
 * @param pkt one encoded packet
 * @returns `true` for `0000` only
 *
 * @example
 * ```ts
 * import { isFlush } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const bytes = (s: string) => new TextEncoder().encode(s);
 * assert.equal(isFlush(bytes("0000")), true);
 * assert.equal(isFlush(bytes("0001")), false);
 * assert.equal(isFlush(bytes("0008abcd")), false);
 * ```
 */
export function isFlush(pkt: Uint8Array): boolean {
  return pkt.byteLength === 4 && pkt[0] === 0x30 && pkt[1] === 0x30 && pkt[2] === 0x30 &&
    pkt[3] === 0x30;
}

/**
 * The payload of one encoded packet, checked (Gitaly's `Payload`): the prefix must be
 * hex and equal the packet's size.
 *
 * @param pkt exactly one encoded data packet
 * @returns a view of the payload
 * @throws {PktlineError} `UNEXPECTED_FLUSH` for `0000`; `INVALID_LENGTH` for a packet
 * shorter than 4 bytes, a non-hex prefix, or a prefix that disagrees with the size.
 *
 * @example
 * ```ts
 * import { pktPayload, PktlineError } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const bytes = (s: string) => new TextEncoder().encode(s);
 * assert.equal(new TextDecoder().decode(pktPayload(bytes("0009hello"))), "hello");
 * assert.throws(() => pktPayload(bytes("0006a")), PktlineError);
 * ```
 */
export function pktPayload(pkt: Uint8Array): Uint8Array {
  if (pkt.byteLength < 4) {
    throw new PktlineError("INVALID_LENGTH", `Cannot read pkt-line payload: packet too small ${_quote(pkt)}`);
  }
  if (isFlush(pkt)) {
    throw new PktlineError("UNEXPECTED_FLUSH", "Cannot read pkt-line payload: flush packets have none");
  }
  const length = _parseHex4(pkt[0]!, pkt[1]!, pkt[2]!, pkt[3]!);
  if (length < 0) {
    throw new PktlineError(
      "INVALID_LENGTH",
      `Cannot read pkt-line payload: invalid length prefix ${_quote(pkt.subarray(0, 4))}`,
    );
  }
  if (length !== pkt.byteLength) {
    throw new PktlineError(
      "INVALID_LENGTH",
      `Cannot read pkt-line payload: packet length ${pkt.byteLength} does not match header length ${length}`,
    );
  }
  return pkt.subarray(4);
}
