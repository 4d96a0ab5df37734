/**
 * The HPACK Huffman code (RFC 7541 Appendix B) for string literals (§5.2).
 *
 * Strings are octet strings held as JS strings with one char per octet (latin1: char code
 * `b` is octet `b`), so any byte sequence round-trips exactly.
 *
 * Encoding packs codes into a 32-bit accumulator. Decoding runs a precomputed state machine
 * four input bits at a time: a state is an inner node of the code tree (there are 256 of them,
 * the root is state 0), and the table says, for each state and nibble, which state follows,
 * which symbol was completed (at most one: codes are at least 5 bits long), whether EOS was
 * hit, and whether the state may end a string (only the root and the first 7 nodes on the
 * all-ones path can: valid padding is at most 7 one bits).
 *
 * @module
 */

import { HpackError } from "./errors.ts";

/** Code of each symbol 0..255 and EOS (256), aligned to the least significant bit. */
export const HUFFMAN_CODES: Uint32Array = new Uint32Array([
  // 0..31: control characters
  0x1ff8,
  0x7fffd8,
  0xfffffe2,
  0xfffffe3,
  0xfffffe4,
  0xfffffe5,
  0xfffffe6,
  0xfffffe7,
  0xfffffe8,
  0xffffea,
  0x3ffffffc,
  0xfffffe9,
  0xfffffea,
  0x3ffffffd,
  0xfffffeb,
  0xfffffec,
  0xfffffed,
  0xfffffee,
  0xfffffef,
  0xffffff0,
  0xffffff1,
  0xffffff2,
  0x3ffffffe,
  0xffffff3,
  0xffffff4,
  0xffffff5,
  0xffffff6,
  0xffffff7,
  0xffffff8,
  0xffffff9,
  0xffffffa,
  0xffffffb,
  // 32..63: ' ' to '?'
  0x14,
  0x3f8,
  0x3f9,
  0xffa,
  0x1ff9,
  0x15,
  0xf8,
  0x7fa,
  0x3fa,
  0x3fb,
  0xf9,
  0x7fb,
  0xfa,
  0x16,
  0x17,
  0x18,
  0x0,
  0x1,
  0x2,
  0x19,
  0x1a,
  0x1b,
  0x1c,
  0x1d,
  0x1e,
  0x1f,
  0x5c,
  0xfb,
  0x7ffc,
  0x20,
  0xffb,
  0x3fc,
  // 64..95: '@' to '_'
  0x1ffa,
  0x21,
  0x5d,
  0x5e,
  0x5f,
  0x60,
  0x61,
  0x62,
  0x63,
  0x64,
  0x65,
  0x66,
  0x67,
  0x68,
  0x69,
  0x6a,
  0x6b,
  0x6c,
  0x6d,
  0x6e,
  0x6f,
  0x70,
  0x71,
  0x72,
  0xfc,
  0x73,
  0xfd,
  0x1ffb,
  0x7fff0,
  0x1ffc,
  0x3ffc,
  0x22,
  // 96..127: '`' to DEL
  0x7ffd,
  0x3,
  0x23,
  0x4,
  0x24,
  0x5,
  0x25,
  0x26,
  0x27,
  0x6,
  0x74,
  0x75,
  0x28,
  0x29,
  0x2a,
  0x7,
  0x2b,
  0x76,
  0x2c,
  0x8,
  0x9,
  0x2d,
  0x77,
  0x78,
  0x79,
  0x7a,
  0x7b,
  0x7ffe,
  0x7fc,
  0x3ffd,
  0x1ffd,
  0xffffffc,
  // 128..159
  0xfffe6,
  0x3fffd2,
  0xfffe7,
  0xfffe8,
  0x3fffd3,
  0x3fffd4,
  0x3fffd5,
  0x7fffd9,
  0x3fffd6,
  0x7fffda,
  0x7fffdb,
  0x7fffdc,
  0x7fffdd,
  0x7fffde,
  0xffffeb,
  0x7fffdf,
  0xffffec,
  0xffffed,
  0x3fffd7,
  0x7fffe0,
  0xffffee,
  0x7fffe1,
  0x7fffe2,
  0x7fffe3,
  0x7fffe4,
  0x1fffdc,
  0x3fffd8,
  0x7fffe5,
  0x3fffd9,
  0x7fffe6,
  0x7fffe7,
  0xffffef,
  // 160..191
  0x3fffda,
  0x1fffdd,
  0xfffe9,
  0x3fffdb,
  0x3fffdc,
  0x7fffe8,
  0x7fffe9,
  0x1fffde,
  0x7fffea,
  0x3fffdd,
  0x3fffde,
  0xfffff0,
  0x1fffdf,
  0x3fffdf,
  0x7fffeb,
  0x7fffec,
  0x1fffe0,
  0x1fffe1,
  0x3fffe0,
  0x1fffe2,
  0x7fffed,
  0x3fffe1,
  0x7fffee,
  0x7fffef,
  0xfffea,
  0x3fffe2,
  0x3fffe3,
  0x3fffe4,
  0x7ffff0,
  0x3fffe5,
  0x3fffe6,
  0x7ffff1,
  // 192..223
  0x3ffffe0,
  0x3ffffe1,
  0xfffeb,
  0x7fff1,
  0x3fffe7,
  0x7ffff2,
  0x3fffe8,
  0x1ffffec,
  0x3ffffe2,
  0x3ffffe3,
  0x3ffffe4,
  0x7ffffde,
  0x7ffffdf,
  0x3ffffe5,
  0xfffff1,
  0x1ffffed,
  0x7fff2,
  0x1fffe3,
  0x3ffffe6,
  0x7ffffe0,
  0x7ffffe1,
  0x3ffffe7,
  0x7ffffe2,
  0xfffff2,
  0x1fffe4,
  0x1fffe5,
  0x3ffffe8,
  0x3ffffe9,
  0xffffffd,
  0x7ffffe3,
  0x7ffffe4,
  0x7ffffe5,
  // 224..255
  0xfffec,
  0xfffff3,
  0xfffed,
  0x1fffe6,
  0x3fffe9,
  0x1fffe7,
  0x1fffe8,
  0x7ffff3,
  0x3fffea,
  0x3fffeb,
  0x1ffffee,
  0x1ffffef,
  0xfffff4,
  0xfffff5,
  0x3ffffea,
  0x7ffff4,
  0x3ffffeb,
  0x7ffffe6,
  0x3ffffec,
  0x3ffffed,
  0x7ffffe7,
  0x7ffffe8,
  0x7ffffe9,
  0x7ffffea,
  0x7ffffeb,
  0xffffffe,
  0x7ffffec,
  0x7ffffed,
  0x7ffffee,
  0x7ffffef,
  0x7fffff0,
  0x3ffffee,
  // 256: EOS
  0x3fffffff,
]);

/** Length in bits of each symbol's code, 0..255 and EOS (256). */
export const HUFFMAN_LENGTHS: Uint8Array = new Uint8Array([
  // 0..31
  13,
  23,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  24,
  30,
  28,
  28,
  30,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  30,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  // 32..63
  6,
  10,
  10,
  12,
  13,
  6,
  8,
  11,
  10,
  10,
  8,
  11,
  8,
  6,
  6,
  6,
  5,
  5,
  5,
  6,
  6,
  6,
  6,
  6,
  6,
  6,
  7,
  8,
  15,
  6,
  12,
  10,
  // 64..95
  13,
  6,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  8,
  7,
  8,
  13,
  19,
  13,
  14,
  6,
  // 96..127
  15,
  5,
  6,
  5,
  6,
  5,
  6,
  6,
  6,
  5,
  7,
  7,
  6,
  6,
  6,
  5,
  6,
  7,
  6,
  5,
  5,
  6,
  7,
  7,
  7,
  7,
  7,
  15,
  11,
  14,
  13,
  28,
  // 128..159
  20,
  22,
  20,
  20,
  22,
  22,
  22,
  23,
  22,
  23,
  23,
  23,
  23,
  23,
  24,
  23,
  24,
  24,
  22,
  23,
  24,
  23,
  23,
  23,
  23,
  21,
  22,
  23,
  22,
  23,
  23,
  24,
  // 160..191
  22,
  21,
  20,
  22,
  22,
  23,
  23,
  21,
  23,
  22,
  22,
  24,
  21,
  22,
  23,
  23,
  21,
  21,
  22,
  21,
  23,
  22,
  23,
  23,
  20,
  22,
  22,
  22,
  23,
  22,
  22,
  23,
  // 192..223
  26,
  26,
  20,
  19,
  22,
  23,
  22,
  25,
  26,
  26,
  26,
  27,
  27,
  26,
  24,
  25,
  19,
  21,
  26,
  27,
  27,
  26,
  27,
  24,
  21,
  21,
  26,
  26,
  28,
  27,
  27,
  27,
  // 224..255
  20,
  24,
  20,
  21,
  22,
  21,
  21,
  23,
  22,
  22,
  25,
  25,
  24,
  24,
  26,
  23,
  26,
  27,
  26,
  26,
  27,
  27,
  27,
  27,
  27,
  28,
  27,
  27,
  27,
  27,
  27,
  26,
  // 256: EOS
  30,
]);

/** The EOS pseudo-symbol; never valid inside a string. */
export const HUFFMAN_EOS = 256;

/**
 * Octets `value` takes Huffman-encoded (bits rounded up to whole octets), or -1 if it holds a
 * char above U+00FF (not an octet string).
 *
 * @param value an octet string (one char per octet)
 * @returns the encoded length in octets, or -1
 */
export function huffmanEncodedLength(value: string): number {
  let bits = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c > 0xff) return -1;
    bits += HUFFMAN_LENGTHS[c]!;
  }
  return (bits + 7) >>> 3;
}

/**
 * Huffman-encodes `value` into `out` at `offset`, padding the last octet with the most
 * significant bits of EOS (ones). The caller checked {@linkcode huffmanEncodedLength} (which
 * also rejects chars above U+00FF) and made room for that many octets.
 *
 * @param value an octet string (one char per octet, all ≤ U+00FF)
 * @param out destination
 * @param offset where the first octet goes
 * @returns the offset after the encoded string
 */
export function huffmanEncodeInto(value: string, out: Uint8Array, offset: number): number {
  // `pending` low bits of `acc` wait for a full octet; pending < 8 between symbols, so adding
  // a code of up to 24 bits stays within 31 bits. Longer codes go in two steps.
  let acc = 0;
  let pending = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    let code = HUFFMAN_CODES[c]!;
    let length = HUFFMAN_LENGTHS[c]!;
    if (length > 24) {
      acc = (acc << (length - 8)) | (code >>> 8);
      pending += length - 8;
      while (pending >= 8) {
        pending -= 8;
        out[offset++] = acc >>> pending;
      }
      acc &= (1 << pending) - 1;
      code &= 0xff;
      length = 8;
    }
    acc = (acc << length) | code;
    pending += length;
    while (pending >= 8) {
      pending -= 8;
      out[offset++] = acc >>> pending;
    }
    acc &= (1 << pending) - 1;
  }
  if (pending > 0) out[offset++] = (acc << (8 - pending)) | (0xff >>> pending);
  return offset;
}

/**
 * Huffman-encodes an octet string.
 *
 * @param value an octet string (one char per octet)
 * @returns the encoded octets
 */
export function huffmanEncode(value: string): Uint8Array {
  const length = huffmanEncodedLength(value);
  if (length < 0) {
    throw new TypeError("Cannot Huffman-encode string: it holds a char above U+00FF");
  }
  const out = new Uint8Array(length);
  huffmanEncodeInto(value, out, 0);
  return out;
}

// Decoder state machine entries (Uint32), one per (state, 4-bit nibble): next state in bits
// 0-7, flags in bits 8-10, the completed symbol (at most one: codes are at least 5 bits) in
// bits 16-23.
const _EMIT = 1 << 8;
const _FAIL = 1 << 9;
const _ACCEPT = 1 << 10;

/** Builds the code tree, then the 256 states × 16 nibbles transition table. */
function _buildDecodeTable(): Uint32Array {
  // children[2 * node + bit]: > 0 an inner node, <= 0 the leaf of symbol -child. The root is
  // node 0 and never a child, so 0 unambiguously means "leaf of symbol 0" once assigned.
  const unset = -1000;
  const children = new Int32Array(512).fill(unset);
  let nodes = 1;
  for (let sym = 0; sym <= HUFFMAN_EOS; sym++) {
    const code = HUFFMAN_CODES[sym]!;
    const length = HUFFMAN_LENGTHS[sym]!;
    let node = 0;
    for (let bit = length - 1; bit > 0; bit--) {
      const slot = 2 * node + ((code >>> bit) & 1);
      if (children[slot] === unset) children[slot] = nodes++;
      node = children[slot]!;
    }
    children[2 * node + (code & 1)] = -sym;
  }
  // The inner nodes that may end a string: the root and the all-ones path up to depth 7.
  const accepting = new Uint8Array(256);
  for (let node = 0, depth = 0; depth <= 7; depth++, node = children[2 * node + 1]!) {
    accepting[node] = 1;
  }
  const table = new Uint32Array(256 * 16);
  for (let state = 0; state < nodes; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let entry = 0;
      for (let bit = 3; bit >= 0; bit--) {
        const child = children[2 * node + ((nibble >>> bit) & 1)]!;
        if (child > 0) {
          node = child;
        } else if (-child === HUFFMAN_EOS) {
          entry = _FAIL;
          break;
        } else {
          entry = _EMIT | (-child << 16);
          node = 0;
        }
      }
      if (entry !== _FAIL) entry |= node | (accepting[node] ? _ACCEPT : 0);
      table[(state << 4) | nibble] = entry;
    }
  }
  return table;
}

/** The decoder's transition table (16 KiB, built at import in well under a millisecond). */
const _DECODE_TABLE = _buildDecodeTable();

/**
 * Decodes the Huffman-encoded octets `src[start..end)` into `out` at `offset`. The caller made
 * room for `floor((end - start) * 8 / 5)` octets (no code is shorter than 5 bits).
 *
 * @param src encoded octets
 * @param start first encoded octet
 * @param end offset after the last encoded octet
 * @param out destination
 * @param offset where the first decoded octet goes
 * @returns the offset after the decoded octets
 * @throws {HpackError} `INVALID_HUFFMAN` if the string contains EOS, or ends with more than 7
 *   bits of padding or with padding that is not all ones
 */
export function huffmanDecodeInto(
  src: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  offset: number,
): number {
  const table = _DECODE_TABLE;
  let entry = _ACCEPT;
  for (let i = start; i < end; i++) {
    const octet = src[i]!;
    entry = table[((entry & 0xff) << 4) | (octet >>> 4)]!;
    if ((entry & _EMIT) !== 0) out[offset++] = entry >>> 16;
    else if ((entry & _FAIL) !== 0) break;
    entry = table[((entry & 0xff) << 4) | (octet & 0xf)]!;
    if ((entry & _EMIT) !== 0) out[offset++] = entry >>> 16;
    else if ((entry & _FAIL) !== 0) break;
  }
  if ((entry & _ACCEPT) === 0) {
    throw new HpackError(
      "INVALID_HUFFMAN",
      (entry & _FAIL) !== 0
        ? "Cannot decode Huffman string: it contains EOS"
        : "Cannot decode Huffman string: padding is longer than 7 bits or not all ones",
    );
  }
  return offset;
}

/**
 * Decodes a whole Huffman-encoded string.
 *
 * @param src encoded octets
 * @returns the octet string (one char per octet)
 * @throws {HpackError} `INVALID_HUFFMAN` on EOS or bad padding
 */
export function huffmanDecode(src: Uint8Array): string {
  const out = new Uint8Array(Math.floor((src.length * 8) / 5));
  const end = huffmanDecodeInto(src, 0, src.length, out, 0);
  let s = "";
  for (let i = 0; i < end; i++) s += String.fromCharCode(out[i]!);
  return s;
}
