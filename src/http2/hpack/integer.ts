/**
 * HPACK prefix integers (RFC 7541 §5.1).
 *
 * An integer starts in the low `N` bits of a first octet whose high bits carry flags. Values
 * below `2^N - 1` fit there; larger ones fill the prefix with ones and continue in 7-bit
 * groups, least significant first, with the high bit of each octet meaning "more follows".
 *
 * @module
 */

import { HpackError } from "./errors.ts";

/**
 * The largest integer the decoder accepts: 2^31 - 1. Every HPACK integer is an index, a string
 * length or a table size, all far below this; larger values can only come from a broken or
 * hostile peer (§5.1: "exceed implementation limits ... MUST be treated as decoding errors").
 */
export const MAX_INTEGER = 0x7fffffff;

/** Most octets an encoded integer up to 2^32 - 1 takes: the prefix octet plus five 7-bit groups. */
export const MAX_INTEGER_OCTETS = 6;

/** Weight of the fifth continuation group (2^28). */
const _LAST_GROUP_MULTIPLIER = 2 ** 28;

/** A read position in a header block, advanced by the decoding functions. */
export interface HpackCursor {
  /** Offset of the next unread octet. */
  offset: number;
}

/**
 * Writes `value` as a prefix integer at `out[offset]`, or-ing `flags` into the first octet.
 * The caller guarantees room for {@linkcode MAX_INTEGER_OCTETS} octets.
 *
 * @param out destination
 * @param offset where the first octet goes
 * @param value a non-negative integer below 2^32
 * @param prefixBits the prefix size `N`, 1 to 8
 * @param flags the representation's high bits (must not overlap the prefix)
 * @returns the offset after the integer
 */
export function encodeInteger(
  out: Uint8Array,
  offset: number,
  value: number,
  prefixBits: number,
  flags: number,
): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`Cannot encode integer: expected 0 to 2^32 - 1, received ${value}`);
  }
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out[offset++] = flags | value;
    return offset;
  }
  out[offset++] = flags | max;
  value -= max;
  while (value >= 0x80) {
    out[offset++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  out[offset++] = value;
  return offset;
}

/**
 * Reads a prefix integer starting at `bytes[cursor.offset]` (which must exist) and advances the
 * cursor past it. The first octet's bits above the prefix are ignored.
 *
 * Rejects, as {@linkcode HpackError}, values above {@linkcode MAX_INTEGER} and overlong
 * encodings (a final continuation octet of zero that adds nothing) with `INVALID_INTEGER`, and
 * integers cut off by the end of `bytes` with `TRUNCATED`.
 *
 * @param bytes the header block
 * @param cursor read position, advanced
 * @param prefixBits the prefix size `N`, 1 to 8
 * @returns the value
 */
export function decodeInteger(bytes: Uint8Array, cursor: HpackCursor, prefixBits: number): number {
  const max = (1 << prefixBits) - 1;
  let offset = cursor.offset;
  let value = bytes[offset++]! & max;
  if (value < max) {
    cursor.offset = offset;
    return value;
  }
  let multiplier = 1;
  for (;;) {
    const octet = bytes[offset];
    if (octet === undefined) {
      throw new HpackError("TRUNCATED", "Cannot decode integer: header block ends inside it");
    }
    offset++;
    value += (octet & 0x7f) * multiplier;
    if (value > MAX_INTEGER) {
      throw new HpackError("INVALID_INTEGER", `Cannot decode integer: exceeds ${MAX_INTEGER}`);
    }
    if ((octet & 0x80) === 0) {
      // A zero final group after other groups only lengthens the encoding.
      if (octet === 0 && multiplier !== 1) {
        throw new HpackError("INVALID_INTEGER", "Cannot decode integer: overlong encoding");
      }
      cursor.offset = offset;
      return value;
    }
    // Five groups carry 35 bits, more than MAX_INTEGER needs; more can only be padding.
    if (multiplier === _LAST_GROUP_MULTIPLIER) {
      throw new HpackError("INVALID_INTEGER", "Cannot decode integer: too many octets");
    }
    multiplier *= 128;
  }
}
