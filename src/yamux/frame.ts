/**
 * Yamux wire format (hashicorp/yamux `spec.md`, "Framing"): constants and the 12-byte
 * header codec. Pure: no I/O, no timers.
 *
 * ```
 * | version u8 | type u8 | flags u16 | stream id u32 | length u32 |   all big-endian
 * ```
 *
 * @module
 */

/** Protocol version; receivers reject anything else. */
export const YAMUX_VERSION = 0;
/** Size of a frame header in bytes. */
export const HEADER_SIZE = 12;

/** Frame type: data follows the header (`length` bytes). */
export const TYPE_DATA = 0;
/** Frame type: `length` is a receive-window delta for the stream. */
export const TYPE_WINDOW_UPDATE = 1;
/** Frame type: ping; `length` is an opaque value echoed in the reply. Stream id 0. */
export const TYPE_PING = 2;
/** Frame type: go away; `length` is the code. Stream id 0. */
export const TYPE_GO_AWAY = 3;

/** Flag: opens a stream (on Data/Window Update); a ping request (on Ping). */
export const FLAG_SYN = 0x1;
/** Flag: accepts a stream; a ping reply. */
export const FLAG_ACK = 0x2;
/** Flag: half-closes the sender's direction of a stream. */
export const FLAG_FIN = 0x4;
/** Flag: resets a stream at once. */
export const FLAG_RST = 0x8;

/** Go away code: normal termination. */
export const GO_AWAY_NORMAL = 0;
/** Go away code: the peer violated the protocol. */
export const GO_AWAY_PROTOCOL_ERROR = 1;
/** Go away code: an internal error. */
export const GO_AWAY_INTERNAL_ERROR = 2;

/** Every stream starts with this receive window in each direction, without negotiation. */
export const INITIAL_STREAM_WINDOW = 256 * 1024;
/** Largest value of the 32-bit length field and of stream ids. */
export const MAX_UINT32 = 0xffff_ffff;

/** A decoded frame header. */
export interface FrameHeader {
  /** Protocol version (0). */
  version: number;
  /** One of the `TYPE_*` constants (or an unknown value to reject). */
  type: number;
  /** Bit set of `FLAG_*` constants. */
  flags: number;
  /** Stream id; 0 for the session (Ping, GoAway). */
  streamId: number;
  /** Payload length, window delta, ping value or go-away code, by type. */
  length: number;
}

/**
 * Writes a frame header into `target` at `offset`.
 *
 * @param target destination, at least `offset + 12` bytes
 * @param offset where the header starts
 * @param type frame type
 * @param flags flag bits
 * @param streamId stream id (0 for session frames)
 * @param length the length field
 *
 * @example A window update opening stream 1
 * ```ts
 * import { encodeHeaderInto, FLAG_SYN, TYPE_WINDOW_UPDATE } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const bytes = new Uint8Array(12);
 * encodeHeaderInto(bytes, 0, TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0);
 * assert.deepEqual(bytes, new Uint8Array([0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]));
 * ```
 */
export function encodeHeaderInto(
  target: Uint8Array,
  offset: number,
  type: number,
  flags: number,
  streamId: number,
  length: number,
): void {
  target[offset] = YAMUX_VERSION;
  target[offset + 1] = type;
  target[offset + 2] = flags >>> 8;
  target[offset + 3] = flags & 0xff;
  target[offset + 4] = streamId >>> 24;
  target[offset + 5] = (streamId >>> 16) & 0xff;
  target[offset + 6] = (streamId >>> 8) & 0xff;
  target[offset + 7] = streamId & 0xff;
  target[offset + 8] = length >>> 24;
  target[offset + 9] = (length >>> 16) & 0xff;
  target[offset + 10] = (length >>> 8) & 0xff;
  target[offset + 11] = length & 0xff;
}

/**
 * Encodes a frame header into a new 12-byte array.
 *
 * @param type frame type
 * @param flags flag bits
 * @param streamId stream id
 * @param length the length field
 * @returns the header bytes
 *
 * @example A ping request with opaque value 7
 * ```ts
 * import { encodeHeader, FLAG_SYN, TYPE_PING } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(encodeHeader(TYPE_PING, FLAG_SYN, 0, 7), new Uint8Array([0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7]));
 * ```
 */
export function encodeHeader(type: number, flags: number, streamId: number, length: number): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE);
  encodeHeaderInto(out, 0, type, flags, streamId, length);
  return out;
}

/**
 * Decodes a frame header. Validation (version, type) is the session's job.
 *
 * @param bytes at least 12 bytes starting at `offset`
 * @param offset where the header starts
 * @returns the fields
 *
 * @example Gitaly's ACK of stream 1 granting a 16 MiB window
 * ```ts
 * import { decodeHeader, FLAG_ACK, TYPE_WINDOW_UPDATE } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const h = decodeHeader(new Uint8Array([0, 1, 0, 2, 0, 0, 0, 1, 0, 0xfc, 0, 0]));
 * assert.deepEqual(h, { version: 0, type: TYPE_WINDOW_UPDATE, flags: FLAG_ACK, streamId: 1, length: 0xfc0000 });
 * ```
 */
export function decodeHeader(bytes: Uint8Array, offset = 0): FrameHeader {
  if (bytes.byteLength - offset < HEADER_SIZE) {
    throw new RangeError(`Cannot decode yamux header: need 12 bytes, have ${bytes.byteLength - offset}`);
  }
  return {
    version: bytes[offset]!,
    type: bytes[offset + 1]!,
    flags: (bytes[offset + 2]! << 8) | bytes[offset + 3]!,
    streamId: ((bytes[offset + 4]! << 24) | (bytes[offset + 5]! << 16) | (bytes[offset + 6]! << 8) |
      bytes[offset + 7]!) >>> 0,
    length: ((bytes[offset + 8]! << 24) | (bytes[offset + 9]! << 16) | (bytes[offset + 10]! << 8) |
      bytes[offset + 11]!) >>> 0,
  };
}

/**
 * A readable rendering of a header, for logs and error messages.
 *
 * @param header the header
 * @returns e.g. `WindowUpdate SYN|ACK stream=3 length=0`
 *
 * @example
 * ```ts
 * import { describeHeader } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   describeHeader({ version: 0, type: 0, flags: 4, streamId: 2, length: 5 }),
 *   "Data FIN stream=2 length=5",
 * );
 * ```
 */
export function describeHeader(header: FrameHeader): string {
  const type = ["Data", "WindowUpdate", "Ping", "GoAway"][header.type] ?? `Type(${header.type})`;
  const flags = [[FLAG_SYN, "SYN"], [FLAG_ACK, "ACK"], [FLAG_FIN, "FIN"], [FLAG_RST, "RST"]]
    .filter(([bit]) => (header.flags & (bit as number)) !== 0).map(([, name]) => name).join("|");
  const version = header.version === YAMUX_VERSION ? "" : ` version=${header.version}`;
  return `${type}${flags ? ` ${flags}` : ""} stream=${header.streamId} length=${header.length}${version}`;
}
