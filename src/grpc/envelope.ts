/**
 * gRPC's length-prefixed message frame ("envelope"): a flag byte (1 = compressed), a
 * big-endian u32 length, the message.
 *
 * @module
 */

import { GrpcError, Status } from "./status.ts";

/**
 * Size of the envelope header: flag byte + u32 length.
 *
 * @example
 * ```ts
 * import { encodeEnvelopeHeader, ENVELOPE_HEADER_SIZE } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(encodeEnvelopeHeader(10).byteLength, ENVELOPE_HEADER_SIZE);
 * ```
 */
export const ENVELOPE_HEADER_SIZE = 5;
/**
 * Flag byte of a message compressed with the call's `grpc-encoding`.
 *
 * @example
 * ```ts
 * import { encodeEnvelopeHeader, FLAG_COMPRESSED } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(encodeEnvelopeHeader(10, true)[0], FLAG_COMPRESSED);
 * ```
 */
export const FLAG_COMPRESSED = 1;
/**
 * Largest message length an envelope can declare.
 *
 * @example
 * ```ts
 * import { encodeEnvelopeHeader, MAX_ENVELOPE_LENGTH } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(encodeEnvelopeHeader(MAX_ENVELOPE_LENGTH), new Uint8Array([0, 255, 255, 255, 255]));
 * assert.throws(() => encodeEnvelopeHeader(MAX_ENVELOPE_LENGTH + 1), RangeError);
 * ```
 */
export const MAX_ENVELOPE_LENGTH = 0xffff_ffff;

/**
 * One decoded message frame.
 *
 * @example
 * ```ts
 * import { encodeEnvelope, type Envelope, EnvelopeDecoder } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const decoder = new EnvelopeDecoder();
 * for (const part of encodeEnvelope(new Uint8Array([7]))) decoder.push(part);
 * const envelope: Envelope | undefined = decoder.next();
 * assert.deepEqual(envelope, { compressed: false, payload: new Uint8Array([7]) });
 * ```
 */
export interface Envelope {
  /** Whether the payload is compressed with the call's `grpc-encoding`. */
  readonly compressed: boolean;
  /** The message bytes; may share memory with the decoder's input (see {@linkcode EnvelopeDecoder}). */
  readonly payload: Uint8Array;
}

function _checkLength(length: number): void {
  if (!Number.isInteger(length) || length < 0 || length > MAX_ENVELOPE_LENGTH) {
    throw new RangeError(
      `Cannot encode envelope: length must be an integer 0-${MAX_ENVELOPE_LENGTH}, received ${length}`,
    );
  }
}

/**
 * Writes a 5-byte envelope header into `target` at `offset`, for callers that build
 * frames in their own buffers.
 *
 * @param target the buffer to write into
 * @param offset where the header starts; `target` needs 5 bytes from there
 * @param length the message length
 * @param compressed whether the message is compressed
 * @throws {RangeError} For a length outside 0–2^32−1 or too little room.
 *
 * @example
 * ```ts
 * import { writeEnvelopeHeader } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const frame = new Uint8Array(5 + 2);
 * writeEnvelopeHeader(frame, 0, 2);
 * frame.set([0x08, 0x01], 5);
 * assert.deepEqual(frame, new Uint8Array([0, 0, 0, 0, 2, 0x08, 0x01]));
 * ```
 */
export function writeEnvelopeHeader(
  target: Uint8Array,
  offset: number,
  length: number,
  compressed = false,
): void {
  _checkLength(length);
  if (!Number.isInteger(offset) || offset < 0 || offset + ENVELOPE_HEADER_SIZE > target.byteLength) {
    throw new RangeError(`Cannot encode envelope: no room for a header at offset ${offset}`);
  }
  target[offset] = compressed ? FLAG_COMPRESSED : 0;
  new DataView(target.buffer, target.byteOffset + offset + 1, 4).setUint32(0, length);
}

/**
 * The 5-byte envelope header for a message of `length` bytes.
 *
 * @param length the message length
 * @param compressed whether the message is compressed
 * @returns a new 5-byte buffer
 * @throws {RangeError} For a length outside 0–2^32−1.
 *
 * @example
 * ```ts
 * import { encodeEnvelopeHeader } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(encodeEnvelopeHeader(0x010203, true), new Uint8Array([1, 0, 1, 2, 3]));
 * ```
 */
export function encodeEnvelopeHeader(length: number, compressed = false): Uint8Array {
  const header = new Uint8Array(ENVELOPE_HEADER_SIZE);
  writeEnvelopeHeader(header, 0, length, compressed);
  return header;
}

/**
 * Frames a message without copying it: returns the new 5-byte header and `payload`
 * itself, to be written one after the other.
 *
 * This is what keeps the raw passthrough (`application/grpc+raw`) zero-copy: a 1 MiB
 * chunk of pack data goes to the transport as is, and only the 5 header bytes are new.
 * A writer that prefers one buffer for small messages can copy both into one, or use
 * {@linkcode writeEnvelopeHeader} on its own buffer.
 *
 * @param payload the message bytes; not copied, so do not modify them until written
 * @param compressed whether `payload` is compressed
 * @returns `[header, payload]`
 * @throws {RangeError} For a payload of 4 GiB or more.
 *
 * @example
 * ```ts
 * import { encodeEnvelope } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const payload = new Uint8Array(1 << 20);
 * const [header, body] = encodeEnvelope(payload);
 * assert.deepEqual(header, new Uint8Array([0, 0, 0x10, 0, 0]));
 * assert.equal(body, payload); // the same object: nothing copied
 * ```
 */
export function encodeEnvelope(
  payload: Uint8Array,
  compressed = false,
): [header: Uint8Array, payload: Uint8Array] {
  return [encodeEnvelopeHeader(payload.byteLength, compressed), payload];
}

/**
 * Options for {@linkcode EnvelopeDecoder}.
 *
 * @example
 * ```ts
 * import { EnvelopeDecoder, type EnvelopeDecoderOptions, GrpcError, Status } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const options: EnvelopeDecoderOptions = { maxMessageBytes: 4 };
 * const decoder = new EnvelopeDecoder(options);
 * decoder.push(new Uint8Array([0, 0, 0, 0, 5]));
 * assert.throws(() => decoder.next(), (e) => e instanceof GrpcError && e.code === Status.RESOURCE_EXHAUSTED);
 * ```
 */
export interface EnvelopeDecoderOptions {
  /**
   * Largest message accepted, checked on the declared length before any buffering or
   * allocation. gRPC's usual default receive limit.
   * @default {4194304}
   */
  maxMessageBytes?: number;
  /**
   * Whether the peer declared a `grpc-encoding` other than `identity`; without it a
   * compressed flag is a protocol error.
   * @default {false}
   */
  compressed?: boolean;
}

/**
 * The options of {@linkcode EnvelopeDecoder} with defaults filled.
 *
 * @example
 * ```ts
 * import { resolveEnvelopeDecoderOptions, type ResolvedEnvelopeDecoderOptions } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const resolved: ResolvedEnvelopeDecoderOptions = resolveEnvelopeDecoderOptions({ compressed: true });
 * assert.equal(resolved.maxMessageBytes, 4 * 1024 * 1024);
 * assert.equal(resolved.compressed, true);
 * ```
 */
export interface ResolvedEnvelopeDecoderOptions {
  /** See {@linkcode EnvelopeDecoderOptions.maxMessageBytes}. */
  readonly maxMessageBytes: number;
  /** See {@linkcode EnvelopeDecoderOptions.compressed}. */
  readonly compressed: boolean;
}

/**
 * Fills the defaults of {@linkcode EnvelopeDecoderOptions} and checks them.
 *
 * @param options the options given
 * @returns the options to use
 * @throws {RangeError} For a `maxMessageBytes` that is not an integer 0–2^32−1.
 *
 * @example
 * ```ts
 * import { resolveEnvelopeDecoderOptions } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(resolveEnvelopeDecoderOptions({}), { maxMessageBytes: 4194304, compressed: false });
 * assert.throws(() => resolveEnvelopeDecoderOptions({ maxMessageBytes: -1 }), RangeError);
 * ```
 */
export function resolveEnvelopeDecoderOptions(
  options: EnvelopeDecoderOptions = {},
): ResolvedEnvelopeDecoderOptions {
  const maxMessageBytes = options.maxMessageBytes ?? 4 * 1024 * 1024;
  if (!Number.isInteger(maxMessageBytes) || maxMessageBytes < 0 || maxMessageBytes > MAX_ENVELOPE_LENGTH) {
    throw new RangeError(
      `Cannot create EnvelopeDecoder: maxMessageBytes must be an integer 0-${MAX_ENVELOPE_LENGTH}, received ${maxMessageBytes}`,
    );
  }
  return { maxMessageBytes, compressed: options.compressed ?? false };
}

/** Compact the chunk list once this many consumed entries pile up at its head. */
const _COMPACT_AFTER = 64;

/**
 * Splits a byte stream into envelopes as bytes arrive, without I/O.
 *
 * - The declared length is checked against `maxMessageBytes` as soon as the header is
 *   complete, before the body is buffered: too large → `GrpcError(RESOURCE_EXHAUSTED)`.
 * - A compressed flag without a negotiated encoding, or a flag byte other than 0 or 1
 *   → `GrpcError(INTERNAL)`.
 * - {@linkcode EnvelopeDecoder.end} with a partial envelope left →
 *   `GrpcError(INTERNAL)`.
 *
 * Errors are sticky. Pushed chunks are kept by reference: a payload inside one chunk
 * is a view of it (zero-copy), a payload spanning chunks is copied once into a buffer of
 * exactly its size. Payloads may therefore share memory with the input and each other;
 * copy one before transferring its buffer.
 *
 * @example
 * ```ts
 * import { encodeEnvelope, EnvelopeDecoder } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const decoder = new EnvelopeDecoder();
 * for (const part of encodeEnvelope(new Uint8Array([1, 2, 3]))) decoder.push(part);
 * assert.deepEqual(decoder.next(), { compressed: false, payload: new Uint8Array([1, 2, 3]) });
 * assert.equal(decoder.next(), undefined);
 * decoder.end();
 * ```
 */
export class EnvelopeDecoder {
  readonly #options: ResolvedEnvelopeDecoderOptions;
  #chunks: Uint8Array[] = [];
  #head = 0;
  #offset = 0;
  #buffered = 0;
  #error: GrpcError | null = null;
  #ended = false;
  /** Header of the envelope being assembled, once parsed. */
  #pending: { compressed: boolean; length: number } | null = null;

  /**
   * Creates a decoder.
   *
   * @param options limits and whether compression was negotiated
   * @throws {RangeError} For invalid options.
   */
  constructor(options: EnvelopeDecoderOptions = {}) {
    this.#options = resolveEnvelopeDecoderOptions(options);
  }

  /** Bytes pushed and not yet returned (headers of returned envelopes excluded). */
  get buffered(): number {
    return this.#buffered;
  }

  /**
   * Adds bytes. Keeps a reference to `chunk`: do not modify it afterwards.
   *
   * @param chunk the next bytes of the stream
   * @throws {TypeError} After {@linkcode EnvelopeDecoder.end}.
   */
  push(chunk: Uint8Array): void {
    if (this.#ended) throw new TypeError("Cannot push to EnvelopeDecoder: it has ended");
    if (chunk.byteLength === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.byteLength;
  }

  /**
   * Returns the next complete envelope, or `undefined` until more bytes are pushed.
   *
   * @returns the envelope, or `undefined`
   * @throws {GrpcError} `RESOURCE_EXHAUSTED` for a message over the limit, `INTERNAL`
   * for an invalid flag byte.
   */
  next(): Envelope | undefined {
    if (this.#error !== null) throw this.#error;
    if (this.#pending === null) {
      if (this.#buffered < ENVELOPE_HEADER_SIZE) return undefined;
      const header = this.#take(ENVELOPE_HEADER_SIZE);
      const flag = header[0]!;
      const length = new DataView(header.buffer, header.byteOffset, 5).getUint32(1);
      if (flag > 1) {
        throw this.#fail(Status.INTERNAL, `Cannot decode message: invalid envelope flag byte ${flag}`);
      }
      if (flag === FLAG_COMPRESSED && !this.#options.compressed) {
        throw this.#fail(
          Status.INTERNAL,
          "Cannot decode message: compressed flag set but no grpc-encoding was negotiated",
        );
      }
      if (length > this.#options.maxMessageBytes) {
        throw this.#fail(
          Status.RESOURCE_EXHAUSTED,
          `Cannot decode message: ${length} bytes exceeds the limit of ${this.#options.maxMessageBytes}`,
        );
      }
      this.#pending = { compressed: flag === FLAG_COMPRESSED, length };
    }
    if (this.#buffered < this.#pending.length) return undefined;
    const { compressed, length } = this.#pending;
    this.#pending = null;
    return { compressed, payload: this.#take(length) };
  }

  /**
   * Declares the end of the input and checks no partial envelope is left.
   *
   * Call it once `next()` has returned `undefined`.
   *
   * @throws {GrpcError} `INTERNAL` for an incomplete envelope.
   * @throws {TypeError} If a complete envelope is still buffered (call `next()` first).
   */
  end(): void {
    if (this.#error !== null) throw this.#error;
    this.#ended = true;
    if (this.#pending === null && this.#buffered === 0) return;
    if (
      this.#pending !== null ? this.#buffered >= this.#pending.length : this.#buffered >= ENVELOPE_HEADER_SIZE
    ) {
      throw new TypeError("Cannot end EnvelopeDecoder: a complete envelope is buffered; call next() first");
    }
    throw this.#fail(
      Status.INTERNAL,
      this.#pending === null
        ? `Cannot decode message: stream ended inside an envelope header (${this.#buffered} of 5 bytes)`
        : `Cannot decode message: incomplete envelope (${this.#buffered} of ${this.#pending.length} bytes)`,
    );
  }

  #fail(code: Status, message: string): GrpcError {
    this.#error = new GrpcError(code, message);
    return this.#error;
  }

  /** Consumes `n` buffered bytes: a view when they lie in one chunk, else a copy. */
  #take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    const first = this.#chunks[this.#head]!;
    let out: Uint8Array;
    if (first.byteLength - this.#offset >= n) {
      out = first.subarray(this.#offset, this.#offset + n);
    } else {
      out = new Uint8Array(n);
      let filled = 0;
      let offset = this.#offset;
      for (let i = this.#head; filled < n; i++) {
        const chunk = this.#chunks[i]!;
        const k = Math.min(n - filled, chunk.byteLength - offset);
        out.set(chunk.subarray(offset, offset + k), filled);
        filled += k;
        offset = 0;
      }
    }
    this.#skip(n);
    return out;
  }

  #skip(n: number): void {
    this.#buffered -= n;
    let left = n;
    while (left > 0) {
      const chunk = this.#chunks[this.#head]!;
      const available = chunk.byteLength - this.#offset;
      if (available > left) {
        this.#offset += left;
        return;
      }
      left -= available;
      this.#head++;
      this.#offset = 0;
    }
    if (this.#head === this.#chunks.length) {
      this.#chunks.length = 0;
      this.#head = 0;
    } else if (this.#head >= _COMPACT_AFTER && this.#head * 2 >= this.#chunks.length) {
      this.#chunks.splice(0, this.#head);
      this.#head = 0;
    }
  }
}
