/**
 * The HPACK decoder (RFC 7541): header blocks to header lists, with limits against hostile
 * peers.
 *
 * @module
 */

import { DynamicTable, ENTRY_OVERHEAD } from "./dynamic_table.ts";
import { HpackError, type HpackErrorCode } from "./errors.ts";
import { huffmanDecodeInto } from "./huffman.ts";
import { decodeInteger, type HpackCursor, MAX_INTEGER } from "./integer.ts";
import { STATIC_TABLE, STATIC_TABLE_LENGTH } from "./static_table.ts";

/**
 * Options for {@linkcode HpackDecoder}.
 *
 * @example Tight limits for a server that expects small gRPC metadata
 * ```ts
 * import { HpackDecoder, type HpackDecoderOptions, HpackError } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const options: HpackDecoderOptions = { maxHeaderListSize: 8192, maxStringLength: 4096, maxFields: 2 };
 * const decoder = new HpackDecoder(options);
 * assert.throws(
 *   () => decoder.decode(new Uint8Array([0x83, 0x86, 0x84])), // three static fields
 *   (e) => e instanceof HpackError && e.code === "TOO_MANY_FIELDS",
 * );
 * ```
 */
export interface HpackDecoderOptions {
  /**
   * The SETTINGS_HEADER_TABLE_SIZE we advertise, in octets: the largest dynamic table the
   * peer's encoder may use, and the most a dynamic table size update may ask for. The table
   * starts at this size.
   *
   * Until the peer has seen our SETTINGS it may assume the protocol's initial 4096. If you
   * advertise less, create the decoder with 4096 and call
   * {@linkcode HpackDecoder.setMaxTableSize} when the SETTINGS are acknowledged.
   * @default {4096} the protocol's initial value, so no SETTINGS race
   */
  maxTableSize?: number;
  /**
   * Largest decoded header list, counted as RFC 9113 §6.5.2 does: octets of name and value
   * plus 32 per field. Counts every field, including repeated references to one table entry,
   * so a small block cannot expand into a huge list ("HPACK bomb").
   * @default {65536} generous for gRPC metadata, small enough to bound memory per stream
   */
  maxHeaderListSize?: number;
  /**
   * Longest string literal, in octets, both as sent and after Huffman decoding.
   * @default {65536} no single name or value legitimately needs more than the whole list
   */
  maxStringLength?: number;
  /**
   * Most fields in one header list.
   * @default {1000} far above real requests; bounds per-field work and allocations
   */
  maxFields?: number;
}

interface _ResolvedDecoderOptions {
  maxTableSize: number;
  maxHeaderListSize: number;
  maxStringLength: number;
  maxFields: number;
}

function _checkLimit(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > MAX_INTEGER) {
    throw new RangeError(
      `Cannot create HpackDecoder: ${name} must be an integer from 0 to ${MAX_INTEGER}, received ${value}`,
    );
  }
  return value;
}

function resolveHpackDecoderOptions(options: HpackDecoderOptions): _ResolvedDecoderOptions {
  return {
    maxTableSize: _checkLimit("maxTableSize", options.maxTableSize ?? 4096),
    maxHeaderListSize: _checkLimit("maxHeaderListSize", options.maxHeaderListSize ?? 65536),
    maxStringLength: _checkLimit("maxStringLength", options.maxStringLength ?? 65536),
    maxFields: _checkLimit("maxFields", options.maxFields ?? 1000),
  };
}

/** Longest run passed to one `String.fromCharCode.apply` (stays far below argument limits). */
const _CHUNK = 4096;

/**
 * Decodes HPACK header blocks (RFC 7541) for one direction of one HTTP/2 connection. Blocks
 * must be decoded in the order they arrive, each complete (HEADERS plus CONTINUATION fragments
 * joined): they share the dynamic table.
 *
 * Strings are octet strings: each octet becomes one char (U+0000 to U+00FF, the latin1
 * mapping), so binary values round-trip exactly. Whether a field was sent "never indexed" is
 * not reported; an endpoint has no use for it (an intermediary that re-encodes would).
 *
 * **Limits and errors.** Every failure is an {@linkcode HpackError}. A block whose list exceeds
 * `maxHeaderListSize` or `maxFields` is still processed to its end, so the dynamic table stays
 * in sync with the peer (RFC 9113 §4.3), then `decode()` throws `HEADER_LIST_TOO_LARGE` or
 * `TOO_MANY_FIELDS`; the fields beyond the limit are never kept, so memory stays bounded, and
 * the connection can go on (refuse the stream with RST_STREAM or a 431). Any other code means
 * the table can no longer be trusted: the decoder refuses all later blocks and the connection
 * must close with COMPRESSION_ERROR. The decoder's work is linear in the block length; the
 * connection bounds that (frame size, CONTINUATION count).
 *
 * @example Decode RFC 7541 C.3.1 and C.3.2: the second request refers to the first
 * ```ts
 * import { HpackDecoder } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const hex = (s: string) => new Uint8Array(s.match(/../g)!.map((h) => parseInt(h, 16)));
 * const decoder = new HpackDecoder();
 * decoder.decode(hex("828684410f7777772e6578616d706c652e636f6d"));
 * assert.deepEqual(decoder.decode(hex("828684be58086e6f2d6361636865")), [
 *   [":method", "GET"],
 *   [":scheme", "http"],
 *   [":path", "/"],
 *   [":authority", "www.example.com"],
 *   ["cache-control", "no-cache"],
 * ]);
 * ```
 *
 * @example A small block that references a big entry many times is refused
 * ```ts
 * import { HpackDecoder, HpackError } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const decoder = new HpackDecoder({ maxHeaderListSize: 8192 });
 * const big = "x".repeat(2000);
 * // Literal with incremental indexing, new name "a", 2000-octet raw value; then 100 × index 62.
 * const block = new Uint8Array([0x40, 0x01, 0x61, 0x7f, 0xd1, 0x0e, ...new TextEncoder().encode(big)]);
 * const bomb = new Uint8Array([...block, ...new Array(100).fill(0xbe)]);
 * assert.throws(() => decoder.decode(bomb), (e) => e instanceof HpackError && e.code === "HEADER_LIST_TOO_LARGE");
 * // The table stayed in sync: index 62 still works.
 * assert.deepEqual(decoder.decode(new Uint8Array([0xbe])), [["a", big]]);
 * ```
 */
export class HpackDecoder {
  readonly #maxHeaderListSize: number;
  readonly #maxStringLength: number;
  readonly #maxFields: number;
  /** Largest size a dynamic table size update may set. */
  #limit: number;
  /** Set when the limit dropped below the table's size: the next block must start with an update. */
  #updateRequired = false;
  readonly #table: DynamicTable;
  readonly #cursor: HpackCursor = { offset: 0 };
  /** Huffman output buffer, grown on demand. */
  #scratch = new Uint8Array(256);
  /** Char codes of the string being built (reused: cheaper than a typed-array view per string). */
  readonly #codes: number[] = [];
  /** The error that desynchronised the table, if any. */
  #failure: HpackError | undefined;

  /**
   * Creates a decoder with an empty dynamic table.
   *
   * @param options table size and limits
   * @throws {RangeError} if a limit is not an integer from 0 to 2^31 - 1
   */
  constructor(options: HpackDecoderOptions = {}) {
    const resolved = resolveHpackDecoderOptions(options);
    this.#limit = resolved.maxTableSize;
    this.#maxHeaderListSize = resolved.maxHeaderListSize;
    this.#maxStringLength = resolved.maxStringLength;
    this.#maxFields = resolved.maxFields;
    this.#table = new DynamicTable(resolved.maxTableSize);
  }

  /**
   * Changes the SETTINGS_HEADER_TABLE_SIZE in force; call it when the peer acknowledges a
   * SETTINGS frame that changed it. If the new value is below the table's current maximum, the
   * peer must start its next block with a dynamic table size update at most this large
   * (RFC 7541 §4.2), or `decode()` throws `TABLE_SIZE_UPDATE`.
   *
   * @param size the new setting in octets
   * @throws {RangeError} if `size` is not an integer from 0 to 2^31 - 1
   *
   * @example
   * ```ts
   * import { HpackDecoder, HpackEncoder } from "@sidechannel/transport";
   * import assert from "node:assert/strict";
   *
   * const decoder = new HpackDecoder();
   * const encoder = new HpackEncoder();
   * decoder.setMaxTableSize(256);
   * encoder.setPeerMaxTableSize(256);
   * assert.deepEqual(decoder.decode(encoder.encode([["a", "b"]])), [["a", "b"]]);
   * ```
   */
  setMaxTableSize(size: number): void {
    if (!Number.isInteger(size) || size < 0 || size > MAX_INTEGER) {
      throw new RangeError(
        `Cannot set table size: expected an integer from 0 to ${MAX_INTEGER}, received ${size}`,
      );
    }
    this.#limit = size;
    if (size < this.#table.maxSize) this.#updateRequired = true;
  }

  /**
   * Decodes one complete header block.
   *
   * @param block the joined HEADERS/PUSH_PROMISE and CONTINUATION fragments
   * @returns the header list, `[name, value]` pairs in order
   * @throws {HpackError} see {@linkcode HpackErrorCode} for which codes leave the decoder usable
   *
   * @example Octets round-trip as chars U+0000 to U+00FF
   * ```ts
   * import { HpackDecoder } from "@sidechannel/transport";
   * import assert from "node:assert/strict";
   *
   * // Literal without indexing, new name "x-bin", raw value 00 ff.
   * const block = new Uint8Array([0x00, 0x05, 0x78, 0x2d, 0x62, 0x69, 0x6e, 0x02, 0x00, 0xff]);
   * assert.deepEqual(new HpackDecoder().decode(block), [["x-bin", "\x00\xff"]]);
   * ```
   */
  decode(block: Uint8Array): [string, string][] {
    if (!(block instanceof Uint8Array)) {
      throw new TypeError("Cannot decode header block: expected a Uint8Array");
    }
    if (this.#failure !== undefined) {
      throw new HpackError(
        this.#failure.code,
        "Cannot decode header block: an earlier block failed, the dynamic table is out of sync",
        { cause: this.#failure },
      );
    }
    try {
      return this.#decode(block);
    } catch (error) {
      if (
        !(error instanceof HpackError) ||
        (error.code !== "HEADER_LIST_TOO_LARGE" && error.code !== "TOO_MANY_FIELDS")
      ) {
        this.#failure = error instanceof HpackError
          ? error
          : new HpackError("TRUNCATED", "Cannot decode header block: internal error", { cause: error });
      }
      throw error;
    }
  }

  #decode(block: Uint8Array): [string, string][] {
    const table = this.#table;
    const cursor = this.#cursor;
    const end = block.length;
    cursor.offset = 0;
    if (this.#updateRequired && (end === 0 || (block[0]! & 0xe0) !== 0x20)) {
      throw new HpackError(
        "TABLE_SIZE_UPDATE",
        "Cannot decode header block: expected a dynamic table size update after SETTINGS lowered it",
      );
    }
    const fields: [string, string][] = [];
    let listSize = 0;
    let count = 0;
    let exceeded: HpackErrorCode | undefined;
    while (cursor.offset < end) {
      const first = block[cursor.offset]!;
      let name: string;
      let value: string;
      if (first >= 0x80) {
        // Indexed field (§6.1).
        const index = decodeInteger(block, cursor, 7);
        if (index === 0) throw _badIndex(0);
        if (index <= STATIC_TABLE_LENGTH) {
          const entry = STATIC_TABLE[index - 1]!;
          name = entry[0];
          value = entry[1];
        } else {
          const position = index - STATIC_TABLE_LENGTH - 1;
          if (position >= table.length) throw _badIndex(index);
          name = table.name(position);
          value = table.value(position);
        }
      } else if (first >= 0x40) {
        // Literal with incremental indexing (§6.2.1).
        name = this.#readName(block, 6);
        value = this.#readString(block);
        table.add(name, value);
      } else if (first >= 0x20) {
        // Dynamic table size update (§6.3): only before the first field.
        if (count !== 0) {
          throw new HpackError(
            "TABLE_SIZE_UPDATE",
            "Cannot decode header block: dynamic table size update after a field",
          );
        }
        const size = decodeInteger(block, cursor, 5);
        if (size > this.#limit) {
          throw new HpackError(
            "TABLE_SIZE_UPDATE",
            `Cannot decode header block: table size update to ${size} exceeds the advertised ${this.#limit}`,
          );
        }
        table.setMaxSize(size);
        this.#updateRequired = false;
        continue;
      } else {
        // Literal without indexing (0000) or never indexed (0001) (§6.2.2, §6.2.3).
        name = this.#readName(block, 4);
        value = this.#readString(block);
      }
      count++;
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (exceeded === undefined) {
        if (count > this.#maxFields) exceeded = "TOO_MANY_FIELDS";
        else if (listSize > this.#maxHeaderListSize) exceeded = "HEADER_LIST_TOO_LARGE";
        else fields.push([name, value]);
      }
    }
    if (exceeded === "TOO_MANY_FIELDS") {
      throw new HpackError(
        exceeded,
        `Cannot decode header block: ${count} fields exceed maxFields (${this.#maxFields})`,
      );
    }
    if (exceeded === "HEADER_LIST_TOO_LARGE") {
      throw new HpackError(
        exceeded,
        `Cannot decode header block: header list of ${listSize} octets exceeds maxHeaderListSize (${this.#maxHeaderListSize})`,
      );
    }
    return fields;
  }

  /** Reads a literal's name: an index with the given prefix, or 0 and a string literal. */
  #readName(block: Uint8Array, prefixBits: number): string {
    const index = decodeInteger(block, this.#cursor, prefixBits);
    if (index === 0) return this.#readString(block);
    if (index <= STATIC_TABLE_LENGTH) return STATIC_TABLE[index - 1]![0];
    const position = index - STATIC_TABLE_LENGTH - 1;
    if (position >= this.#table.length) throw _badIndex(index);
    return this.#table.name(position);
  }

  /** Reads a string literal (§5.2). */
  #readString(block: Uint8Array): string {
    const cursor = this.#cursor;
    const first = block[cursor.offset];
    if (first === undefined) {
      throw new HpackError("TRUNCATED", "Cannot decode header block: it ends before a string literal");
    }
    const length = decodeInteger(block, cursor, 7);
    if (length > this.#maxStringLength) throw this.#tooLong(length);
    const start = cursor.offset;
    const end = start + length;
    if (end > block.length) {
      throw new HpackError(
        "TRUNCATED",
        `Cannot decode header block: string literal of ${length} octets runs past its end`,
      );
    }
    cursor.offset = end;
    if (first < 0x80) return this.#latin1(block, start, end);
    const room = Math.floor((length * 8) / 5);
    if (this.#scratch.length < room) this.#scratch = new Uint8Array(Math.max(room, this.#scratch.length * 2));
    const decoded = huffmanDecodeInto(block, start, end, this.#scratch, 0);
    if (decoded > this.#maxStringLength) throw this.#tooLong(decoded);
    return this.#latin1(this.#scratch, 0, decoded);
  }

  /** The octets `bytes[start..end)` as a string, one char per octet (latin1). */
  #latin1(bytes: Uint8Array, start: number, end: number): string {
    const codes = this.#codes;
    let s = "";
    for (let chunk = start; chunk < end; chunk += _CHUNK) {
      const stop = Math.min(chunk + _CHUNK, end);
      codes.length = stop - chunk;
      for (let i = chunk; i < stop; i++) codes[i - chunk] = bytes[i]!;
      s += String.fromCharCode.apply(null, codes);
    }
    return s;
  }

  #tooLong(length: number): HpackError {
    return new HpackError(
      "STRING_TOO_LONG",
      `Cannot decode header block: string literal of ${length} octets exceeds maxStringLength (${this.#maxStringLength})`,
    );
  }
}

function _badIndex(index: number): HpackError {
  return new HpackError("INVALID_INDEX", `Cannot decode header block: no table entry at index ${index}`);
}
