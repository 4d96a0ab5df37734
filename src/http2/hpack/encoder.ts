/**
 * The HPACK encoder (RFC 7541): header lists to header blocks.
 *
 * @module
 */

import { DynamicTable, entrySize } from "./dynamic_table.ts";
import { huffmanEncodedLength, huffmanEncodeInto } from "./huffman.ts";
import { encodeInteger, MAX_INTEGER, MAX_INTEGER_OCTETS } from "./integer.ts";
import { STATIC_TABLE_LENGTH, staticFieldIndex, staticNameIndex } from "./static_table.ts";

/** SETTINGS_HEADER_TABLE_SIZE before any SETTINGS arrive (RFC 9113 §6.5.2). */
const PROTOCOL_INITIAL_TABLE_SIZE = 4096;

/** Names encoded "never indexed" when `encode()` gets no `sensitive` set. */
const DEFAULT_SENSITIVE: ReadonlySet<string> = new Set(["authorization", "proxy-authorization"]);

/** Names whose values rarely repeat, by default not inserted into the dynamic table. */
const DEFAULT_UNINDEXED: ReadonlySet<string> = new Set(["content-length", "grpc-timeout"]);

/**
 * Options for {@linkcode HpackEncoder}.
 *
 * @example A small table, raw strings
 * ```ts
 * import { HpackDecoder, HpackEncoder, type HpackEncoderOptions } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const options: HpackEncoderOptions = { maxTableSize: 256, huffman: "never" };
 * const block = new HpackEncoder(options).encode([["x-a", "b"]]);
 * assert.deepEqual([...block.subarray(0, 3)], [0x3f, 0xe1, 0x01]); // table size update to 256
 * assert.deepEqual(new HpackDecoder().decode(block), [["x-a", "b"]]);
 * ```
 */
export interface HpackEncoderOptions {
  /**
   * Our own cap on the dynamic table, in octets: the encoder uses
   * `min(maxTableSize, peer's SETTINGS_HEADER_TABLE_SIZE)`. Bounds the memory the peer's
   * decoder spends on us and the encoder's own index. When it is below the protocol's initial
   * 4096, the first block starts with a dynamic table size update saying so.
   * @default {4096} the protocol's initial table size: what every peer accepts
   */
  maxTableSize?: number;
  /**
   * When to Huffman-encode string literals: `"auto"` when it is shorter than the raw octets,
   * `"always"`, or `"never"`.
   * @default {"auto"} smallest output; decoding Huffman is cheap
   */
  huffman?: "auto" | "always" | "never";
  /**
   * Names whose values rarely repeat: encoded as literals *without* indexing, so they do not
   * push useful entries out of the dynamic table. (Exact matches already in the static table
   * are still used.)
   * @default {new Set(["content-length", "grpc-timeout"])} a fresh value on nearly every message
   */
  unindexedNames?: ReadonlySet<string>;
}

/**
 * Options for one {@linkcode HpackEncoder.encode} call.
 *
 * @example Keep cookies out of the compression tables
 * ```ts
 * import { HpackEncoder, type HpackEncodeOptions } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const options: HpackEncodeOptions = { sensitive: new Set(["authorization", "cookie"]) };
 * const block = new HpackEncoder().encode([["cookie", "id=1"]], options);
 * assert.equal(block[0]! & 0xf0, 0x10); // literal never indexed
 * ```
 */
export interface HpackEncodeOptions {
  /**
   * Names whose fields are encoded as "literal never indexed" (RFC 7541 §6.2.3, §7.1.3): never
   * put in a compression table by us or any intermediary, so an attacker who can inject
   * headers on the same connection cannot guess them by watching the compressed size.
   * Replaces the default set.
   * @default {new Set(["authorization", "proxy-authorization"])} credentials
   */
  sensitive?: ReadonlySet<string>;
}

interface _ResolvedEncoderOptions {
  maxTableSize: number;
  huffman: "auto" | "always" | "never";
  unindexedNames: ReadonlySet<string>;
}

function resolveHpackEncoderOptions(options: HpackEncoderOptions): _ResolvedEncoderOptions {
  const maxTableSize = options.maxTableSize ?? PROTOCOL_INITIAL_TABLE_SIZE;
  if (!Number.isInteger(maxTableSize) || maxTableSize < 0 || maxTableSize > MAX_INTEGER) {
    throw new RangeError(
      `Cannot create HpackEncoder: maxTableSize must be an integer from 0 to ${MAX_INTEGER}, received ${maxTableSize}`,
    );
  }
  const huffman = options.huffman ?? "auto";
  if (huffman !== "auto" && huffman !== "always" && huffman !== "never") {
    throw new TypeError(
      `Cannot create HpackEncoder: huffman must be "auto", "always" or "never", received ${huffman}`,
    );
  }
  return { maxTableSize, huffman, unindexedNames: options.unindexedNames ?? DEFAULT_UNINDEXED };
}

/**
 * Encodes header lists into HPACK header blocks (RFC 7541) for one direction of one HTTP/2
 * connection. Blocks must be sent in the order they were encoded: each may add entries to the
 * dynamic table that later blocks refer to.
 *
 * Choices per field:
 *
 * - an exact static or dynamic table match becomes a one-octet-ish index;
 * - a name in the `sensitive` set becomes a "literal never indexed";
 * - a name in `unindexedNames`, or a field bigger than half the table, becomes a literal
 *   without indexing;
 * - everything else becomes a literal with incremental indexing, so its next occurrence is an
 *   index. Names are referenced by index when the static (preferred) or dynamic table has them.
 *
 * Strings are octet strings: each char of a name or value is one octet (U+0000 to U+00FF, the
 * latin1 mapping), so arbitrary bytes round-trip exactly; a char above U+00FF is a `TypeError`.
 * Names must already be lowercase (RFC 9113 §8.2.1); the encoder does not check.
 *
 * @example Encode gRPC request headers; the second block is mostly indices
 * ```ts
 * import { HpackDecoder, HpackEncoder } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const encoder = new HpackEncoder();
 * const decoder = new HpackDecoder();
 * const headers: [string, string][] = [
 *   [":method", "POST"],
 *   [":scheme", "http"],
 *   [":path", "/pkg.Service/Method"],
 *   [":authority", "localhost:50051"],
 *   ["content-type", "application/grpc"],
 *   ["te", "trailers"],
 * ];
 * const first = encoder.encode(headers);
 * const second = encoder.encode(headers);
 * assert.deepEqual(decoder.decode(first), headers);
 * assert.deepEqual(decoder.decode(second), headers);
 * assert.equal(second.length, 6); // one octet per field
 * ```
 */
export class HpackEncoder {
  readonly #cap: number;
  readonly #huffman: "auto" | "always" | "never";
  readonly #unindexed: ReadonlySet<string>;
  readonly #table: DynamicTable;
  /** name → value → sequence number of the dynamic entry holding exactly that field. */
  readonly #fields = new Map<string, Map<string, number>>();
  /** name → sequence number of the newest dynamic entry with that name. */
  readonly #names = new Map<string, number>();
  /** The table maximum the peer's decoder currently assumes (the last size we signaled). */
  #decoderMaxSize = PROTOCOL_INITIAL_TABLE_SIZE;
  /** Smallest table maximum since the last block, or -1 if it has not changed. */
  #pendingMin = -1;
  #out = new Uint8Array(512);
  #pos = 0;
  /** Bumped whenever entries may leave the table other than by insertion (size changes, a reset). */
  #generation = 0;
  /**
   * Blocks of frozen lists that inserted nothing: the same list encodes to the same bytes
   * while the table is unchanged (same generation, nothing inserted since).
   */
  #blocks = new WeakMap<object, { block: Uint8Array; generation: number; inserted: number }>();

  /**
   * Creates an encoder with an empty dynamic table.
   *
   * @param options table cap, Huffman policy and unindexed names
   * @throws {RangeError} if `maxTableSize` is not an integer from 0 to 2^31 - 1
   */
  constructor(options: HpackEncoderOptions = {}) {
    const resolved = resolveHpackEncoderOptions(options);
    this.#cap = resolved.maxTableSize;
    this.#huffman = resolved.huffman;
    this.#unindexed = resolved.unindexedNames;
    const initial = Math.min(this.#cap, PROTOCOL_INITIAL_TABLE_SIZE);
    this.#table = new DynamicTable(initial, (name, value, sequence) => this.#forget(name, value, sequence));
    if (initial !== PROTOCOL_INITIAL_TABLE_SIZE) this.#pendingMin = initial;
  }

  /**
   * Applies the peer's SETTINGS_HEADER_TABLE_SIZE. The table shrinks at once if needed; the
   * next block starts with the dynamic table size update(s) the decoder needs (RFC 7541 §4.2,
   * §6.3): the smallest size in between if the table shrank and grew again, then the final one.
   *
   * @param size the peer's setting in octets (0 to 2^32 - 1)
   * @throws {RangeError} if `size` is not an integer from 0 to 2^32 - 1
   *
   * @example
   * ```ts
   * import { HpackDecoder, HpackEncoder } from "@sidechannel/transport";
   * import assert from "node:assert/strict";
   *
   * const encoder = new HpackEncoder();
   * encoder.setPeerMaxTableSize(0);
   * const block = encoder.encode([["x-a", "b"]]);
   * assert.equal(block[0], 0x20); // dynamic table size update to 0
   * assert.deepEqual(new HpackDecoder().decode(block), [["x-a", "b"]]);
   * ```
   */
  setPeerMaxTableSize(size: number): void {
    if (!Number.isInteger(size) || size < 0 || size > 0xffffffff) {
      throw new RangeError(
        `Cannot set peer table size: expected an integer from 0 to 2^32 - 1, received ${size}`,
      );
    }
    const effective = Math.min(this.#cap, size);
    if (effective === this.#table.maxSize && this.#pendingMin === -1) return;
    this.#generation++;
    this.#pendingMin = this.#pendingMin === -1 ? effective : Math.min(this.#pendingMin, effective);
    this.#table.setMaxSize(effective);
  }

  /**
   * Encodes one header list into one header block (to be sent as HEADERS + CONTINUATION).
   *
   * @param headers `[name, value]` pairs in order; names lowercase; chars U+0000 to U+00FF
   * @param options which names are sensitive
   * @returns the header block (a fresh array the caller owns)
   * @throws {TypeError} if a name or value is not a string or holds a char above U+00FF; the
   *   encoder stays usable (its next block resets the dynamic table on both sides)
   *
   * @example Sensitive fields are never indexed
   * ```ts
   * import { HpackEncoder } from "@sidechannel/transport";
   * import assert from "node:assert/strict";
   *
   * const encoder = new HpackEncoder({ huffman: "never" });
   * const block = encoder.encode([["authorization", "Bearer x"]]);
   * assert.deepEqual([...block.subarray(0, 2)], [0x1f, 0x08]); // never indexed, name index 23
   * ```
   */
  encode(headers: Iterable<readonly [string, string]>, options?: HpackEncodeOptions): Uint8Array {
    const inserted = this.#table.inserted;
    const reusable = this.#pendingMin === -1 && options?.sensitive === undefined;
    if (reusable) {
      const cached = this.#blocks.get(headers);
      if (cached !== undefined && cached.generation === this.#generation && cached.inserted === inserted) {
        return cached.block.slice();
      }
    }
    this.#pos = 0;
    const decoderMaxSize = this.#decoderMaxSize;
    if (this.#pendingMin !== -1) this.#writeSizeUpdates();
    const sensitive = options?.sensitive ?? DEFAULT_SENSITIVE;
    try {
      if (Array.isArray(headers)) {
        const list = headers as readonly (readonly [string, string])[];
        for (let i = 0; i < list.length; i++) {
          const field = list[i]!;
          this.#encodeField(field[0], field[1], sensitive);
        }
      } else {
        for (const field of headers) this.#encodeField(field[0], field[1], sensitive);
      }
    } catch (error) {
      // This block will not be sent, yet earlier fields may have changed our table. Empty it,
      // and start the next block with size updates to 0 and back: the peer empties its table
      // too, and both agree again.
      const maxSize = this.#table.maxSize;
      this.#table.setMaxSize(0);
      this.#table.setMaxSize(maxSize);
      this.#decoderMaxSize = decoderMaxSize;
      this.#pendingMin = 0;
      this.#generation++;
      throw error;
    }
    const block = this.#out.slice(0, this.#pos);
    if (reusable && this.#table.inserted === inserted && _deepFrozen(headers)) {
      this.#blocks.set(headers, { block: block.slice(), generation: this.#generation, inserted });
    }
    // Do not keep a buffer that one unusually large block grew.
    if (this.#out.length > 65536) this.#out = new Uint8Array(512);
    return block;
  }

  #writeSizeUpdates(): void {
    const min = this.#pendingMin;
    const final = this.#table.maxSize;
    this.#pendingMin = -1;
    this.#ensure(2 * MAX_INTEGER_OCTETS);
    if (min < final && min < this.#decoderMaxSize) {
      this.#pos = encodeInteger(this.#out, this.#pos, min, 5, 0x20);
      this.#pos = encodeInteger(this.#out, this.#pos, final, 5, 0x20);
    } else if (final !== this.#decoderMaxSize) {
      this.#pos = encodeInteger(this.#out, this.#pos, final, 5, 0x20);
    }
    this.#decoderMaxSize = final;
  }

  #encodeField(name: string, value: string, sensitiveNames: ReadonlySet<string>): void {
    if (typeof name !== "string" || typeof value !== "string") {
      throw new TypeError("Cannot encode header: name and value must be strings");
    }
    const table = this.#table;
    const sensitive = sensitiveNames.has(name);
    if (!sensitive) {
      let index = staticFieldIndex(name, value);
      if (index === 0) {
        const sequence = this.#fields.get(name)?.get(value);
        if (sequence !== undefined) index = STATIC_TABLE_LENGTH + table.inserted - sequence;
      }
      if (index !== 0) {
        this.#ensure(MAX_INTEGER_OCTETS);
        this.#pos = encodeInteger(this.#out, this.#pos, index, 7, 0x80);
        return;
      }
    }
    let nameIndex = staticNameIndex(name);
    if (nameIndex === 0) {
      const sequence = this.#names.get(name);
      if (sequence !== undefined) nameIndex = STATIC_TABLE_LENGTH + table.inserted - sequence;
    }
    const indexing = !sensitive && !this.#unindexed.has(name) &&
      entrySize(name, value) <= table.maxSize / 2;
    this.#ensure(MAX_INTEGER_OCTETS);
    if (indexing) {
      this.#pos = encodeInteger(this.#out, this.#pos, nameIndex, 6, 0x40);
    } else {
      this.#pos = encodeInteger(this.#out, this.#pos, nameIndex, 4, sensitive ? 0x10 : 0x00);
    }
    if (nameIndex === 0) this.#writeString(name);
    this.#writeString(value);
    if (indexing) this.#remember(name, value, table.add(name, value));
  }

  #writeString(s: string): void {
    const length = s.length;
    if (this.#huffman !== "never") {
      const encoded = huffmanEncodedLength(s);
      if (encoded < 0) throw _notOctets(s);
      if (this.#huffman === "always" || encoded < length) {
        this.#ensure(MAX_INTEGER_OCTETS + encoded);
        this.#pos = encodeInteger(this.#out, this.#pos, encoded, 7, 0x80);
        this.#pos = huffmanEncodeInto(s, this.#out, this.#pos);
        return;
      }
    }
    this.#ensure(MAX_INTEGER_OCTETS + length);
    const out = this.#out;
    let pos = encodeInteger(out, this.#pos, length, 7, 0);
    for (let i = 0; i < length; i++) {
      const c = s.charCodeAt(i);
      if (c > 0xff) throw _notOctets(s);
      out[pos++] = c;
    }
    this.#pos = pos;
  }

  #ensure(room: number): void {
    const needed = this.#pos + room;
    if (needed <= this.#out.length) return;
    const grown = new Uint8Array(Math.max(needed, this.#out.length * 2));
    grown.set(this.#out.subarray(0, this.#pos));
    this.#out = grown;
  }

  #remember(name: string, value: string, sequence: number): void {
    if (sequence < 0) return;
    let values = this.#fields.get(name);
    if (values === undefined) this.#fields.set(name, values = new Map());
    values.set(value, sequence);
    this.#names.set(name, sequence);
  }

  #forget(name: string, value: string, sequence: number): void {
    const values = this.#fields.get(name);
    if (values !== undefined && values.get(value) === sequence) {
      values.delete(value);
      if (values.size === 0) this.#fields.delete(name);
    }
    // The evicted entry is the oldest: if it was the newest with its name, none is left.
    if (this.#names.get(name) === sequence) this.#names.delete(name);
  }
}

/** A frozen array of frozen pairs: its fields can never change. */
function _deepFrozen(headers: Iterable<readonly [string, string]>): boolean {
  if (!Array.isArray(headers) || !Object.isFrozen(headers)) return false;
  for (let i = 0; i < headers.length; i++) if (!Object.isFrozen(headers[i])) return false;
  return true;
}

function _notOctets(s: string): TypeError {
  return new TypeError(
    `Cannot encode header: ${
      JSON.stringify(s.slice(0, 40))
    } holds a char above U+00FF (strings are octets, one char per octet)`,
  );
}
