/**
 * Percent-encoding of the `grpc-message` trailer.
 *
 * The status message is UTF-8 text; on the wire every byte outside 0x20–0x7E, and `%`
 * itself, is written as `%XX` (upper-case hex).
 *
 * @module
 */

const _HEX = "0123456789ABCDEF";
const _encoder = new TextEncoder();
const _decoder = new TextDecoder(); // non-fatal: bad UTF-8 becomes U+FFFD

/**
 * Percent-encodes a status message for `grpc-message`.
 *
 * @param message the status message
 * @returns the header value
 *
 * @example
 * ```ts
 * import { encodeGrpcMessage } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(encodeGrpcMessage("not found: 100%"), "not found: 100%25");
 * assert.equal(encodeGrpcMessage("caf\u00e9\n"), "caf%C3%A9%0A");
 * ```
 */
export function encodeGrpcMessage(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  let out = "";
  for (const byte of _encoder.encode(message)) {
    if (byte < 0x20 || byte > 0x7e || byte === 0x25) {
      out += "%" + _HEX[byte >> 4]! + _HEX[byte & 15]!;
    } else {
      out += String.fromCharCode(byte);
    }
  }
  return out;
}

function _hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Decodes a `grpc-message` value, tolerantly, as gRPC requires: a `%` not followed by
 * two hex digits stays as is, lower-case hex is accepted, and bytes that are not valid
 * UTF-8 become U+FFFD. Never throws. Non-ASCII characters (from a peer that sent
 * raw text) are kept as they are.
 *
 * @param value the header value
 * @returns the status message
 *
 * @example
 * ```ts
 * import { decodeGrpcMessage } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decodeGrpcMessage("caf%C3%A9%0A"), "caf\u00e9\n");
 * assert.equal(decodeGrpcMessage("100%"), "100%");
 * assert.equal(decodeGrpcMessage("%zz%4"), "%zz%4");
 * ```
 */
export function decodeGrpcMessage(value: string): string {
  if (!value.includes("%")) return value;
  const bytes: number[] = [];
  let out = "";
  const flush = () => {
    if (bytes.length > 0) {
      out += _decoder.decode(new Uint8Array(bytes));
      bytes.length = 0;
    }
  };
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x25 && i + 2 < value.length) {
      const hi = _hexValue(value.charCodeAt(i + 1));
      const lo = _hexValue(value.charCodeAt(i + 2));
      if (hi >= 0 && lo >= 0) {
        bytes.push((hi << 4) | lo);
        i += 2;
        continue;
      }
    }
    if (c < 0x80) {
      bytes.push(c);
    } else {
      flush();
      out += value[i];
    }
  }
  flush();
  return out;
}
