/**
 * Reading and writing the messages of one call over an HTTP/2 stream's body.
 *
 * @module
 */

import type { GrpcCallStats } from "./call.ts";
import type { Codec } from "./codec.ts";
import type { Compression } from "./compression.ts";
import type { DirectIo } from "../streams/duplex.ts";
import { ENVELOPE_HEADER_SIZE, FLAG_COMPRESSED, writeEnvelopeHeader } from "./envelope.ts";
import { GrpcError, Status } from "./status.ts";

/** Messages up to this size are copied behind their header into one write. */
const _COALESCE_BYTES = 32 * 1024;
/** Messages below this size are sent uncompressed even when the call compresses. */
const _COMPRESS_MIN_BYTES = 1024;

/** Runs a codec's encode; whatever it throws, or a result that is not bytes, becomes INTERNAL. */
function _encode<T>(codec: Codec<T>, value: T): Uint8Array {
  let bytes: unknown;
  try {
    bytes = codec.encode(value);
  } catch (error) {
    if (error instanceof GrpcError) throw error;
    throw new GrpcError(Status.INTERNAL, `Cannot encode message: ${String(error)}`, { cause: error });
  }
  if (!(bytes instanceof Uint8Array)) {
    throw new GrpcError(Status.INTERNAL, `Cannot encode message: codec ${codec.name} did not return bytes`);
  }
  return bytes;
}

/** Runs a codec's decode; whatever it throws becomes INTERNAL. */
function _decode<T>(codec: Codec<T>, bytes: Uint8Array): T {
  try {
    return codec.decode(bytes);
  } catch (error) {
    if (error instanceof GrpcError) throw error;
    throw new GrpcError(Status.INTERNAL, `Cannot decode message: ${String(error)}`, { cause: error });
  }
}

/** Mutable {@linkcode GrpcCallStats}. */
export class _Stats implements GrpcCallStats {
  messagesSent = 0;
  messagesReceived = 0;
  bytesSent = 0;
  bytesReceived = 0;
}

/** Options of {@linkcode _MessageReader}. */
export interface _ReaderOptions {
  maxBytes: number;
  /** The peer's `grpc-encoding`, if not identity. */
  compression: Compression | undefined;
  stats: _Stats;
}

function _malformed(message: string): GrpcError {
  return new GrpcError(Status.INTERNAL, `Cannot decode message: ${message}`);
}

/**
 * Pulls messages out of a body through the stream's direct I/O: the 5-byte header, then
 * the payload straight into a buffer of its exact size (one allocation and one copy per
 * message, out of the connection's read buffers). The envelope is checked against the
 * limit before anything is allocated. `readInto` copies raw payload bytes into the
 * caller's buffer instead (no buffer per message).
 */
export class _MessageReader<T> {
  readonly #stream: DirectIo;
  readonly #codec: Codec<T>;
  readonly #options: _ReaderOptions;
  readonly #header = new Uint8Array(ENVELOPE_HEADER_SIZE);
  #ended = false;
  #error: GrpcError | undefined;
  /** Bytes of the current message that readInto() has not copied out yet. */
  #remaining = 0;
  /** The current message when it was decompressed (readInto() copies out of it). */
  #held: Uint8Array | undefined;

  constructor(stream: DirectIo, codec: Codec<T>, options: _ReaderOptions) {
    this.#stream = stream;
    this.#codec = codec;
    this.#options = options;
  }

  /**
   * The next message, or `undefined` at the clean end of the body.
   *
   * @throws {GrpcError} For a bad envelope (`INTERNAL`), a message over the limit
   * (`RESOURCE_EXHAUSTED`) or one the codec rejects.
   * @throws {unknown} The body's own error (a reset stream) as is.
   */
  async next(): Promise<T | undefined> {
    if (this.#error !== undefined) throw this.#error;
    let length = this.#remaining;
    if (length > 0) {
      // The rest of a message that readInto() started.
      const held = this.#held;
      this.#remaining = 0;
      this.#held = undefined;
      if (held !== undefined) return _decode(this.#codec, held.subarray(held.byteLength - length));
    } else {
      if (this.#ended) return undefined;
      const next = await this.#readHeader();
      if (next === undefined) return undefined;
      if (this.#header[0] === FLAG_COMPRESSED) return _decode(this.#codec, await this.#decompressed(next));
      length = next;
    }
    const payload = new Uint8Array(length);
    const stream = this.#stream;
    for (let filled = 0; filled < length;) {
      const n = await stream.read(payload.subarray(filled));
      if (n === null) {
        this.#ended = true;
        throw this.#fail(_malformed(`incomplete envelope (${filled} of ${length} bytes)`));
      }
      filled += n;
    }
    return _decode(this.#codec, payload);
  }

  /**
   * Copies message payloads as bytes into `view`, without a buffer per message (for the
   * raw codec, whose messages are their bytes): reads at most what is left of the
   * current message, so message boundaries are not kept. A compressed message is read
   * whole and decompressed first. Envelopes are checked as by {@linkcode next}.
   *
   * @returns the number of bytes copied (> 0 unless `view` is empty), or `null` at the
   * clean end of the body
   * @throws {GrpcError} As {@linkcode next}.
   */
  async readInto(view: Uint8Array): Promise<number | null> {
    for (;;) {
      if (this.#error !== undefined) throw this.#error;
      if (this.#remaining > 0) {
        const want = Math.min(view.byteLength, this.#remaining);
        const held = this.#held;
        if (held !== undefined) {
          const start = held.byteLength - this.#remaining;
          view.set(held.subarray(start, start + want));
          this.#remaining -= want;
          if (this.#remaining === 0) this.#held = undefined;
          return want;
        }
        const n = await this.#stream.read(view.subarray(0, want));
        if (n === null) {
          this.#ended = true;
          throw this.#fail(_malformed(`incomplete envelope (${this.#remaining} bytes missing)`));
        }
        this.#remaining -= n;
        return n;
      }
      if (this.#ended) return null;
      const length = await this.#readHeader();
      if (length === undefined) return null;
      if (this.#header[0] === FLAG_COMPRESSED) {
        const held = await this.#decompressed(length);
        this.#held = held;
        this.#remaining = held.byteLength;
      } else {
        this.#remaining = length;
      }
      if (view.byteLength === 0) return 0;
    }
  }

  /**
   * Reads and checks the next envelope header (into `#header`) and counts the message.
   * Returns its payload length, or `undefined` at the clean end of the body.
   */
  async #readHeader(): Promise<number | undefined> {
    const stream = this.#stream;
    const header = this.#header;
    let got = 0;
    while (got < ENVELOPE_HEADER_SIZE) {
      const n = await stream.read(header.subarray(got));
      if (n === null) {
        this.#ended = true;
        if (got === 0) return undefined;
        throw this.#fail(_malformed(`stream ended inside an envelope header (${got} of 5 bytes)`));
      }
      got += n;
    }
    const flag = header[0]!;
    const length = ((header[1]! << 24) | (header[2]! << 16) | (header[3]! << 8) | header[4]!) >>> 0;
    if (flag > 1) throw this.#fail(_malformed(`invalid envelope flag byte ${flag}`));
    if (flag === FLAG_COMPRESSED && this.#options.compression === undefined) {
      throw this.#fail(_malformed("compressed flag set but no grpc-encoding was negotiated"));
    }
    if (length > this.#options.maxBytes) {
      throw this.#fail(
        new GrpcError(
          Status.RESOURCE_EXHAUSTED,
          `Cannot decode message: ${length} bytes exceeds the limit of ${this.#options.maxBytes}`,
        ),
      );
    }
    const stats = this.#options.stats;
    stats.messagesReceived++;
    stats.bytesReceived += length;
    return length;
  }

  /** Reads a compressed payload of `length` bytes whole and decompresses it. */
  async #decompressed(length: number): Promise<Uint8Array> {
    const payload = new Uint8Array(length);
    for (let filled = 0; filled < length;) {
      const n = await this.#stream.read(payload.subarray(filled));
      if (n === null) {
        this.#ended = true;
        throw this.#fail(_malformed(`incomplete envelope (${filled} of ${length} bytes)`));
      }
      filled += n;
    }
    return await this.#options.compression!.decompress(payload, this.#options.maxBytes);
  }

  /** Stops reading; what is left is dropped when the stream closes. */
  cancel(): void {
    this.#ended = true;
  }

  #fail(error: GrpcError): GrpcError {
    this.#error = error;
    return error;
  }
}

/** Options of {@linkcode _MessageWriter}. */
export interface _WriterOptions {
  maxBytes: number;
  /** The `grpc-encoding` this side sends with, if not identity. */
  compression: Compression | undefined;
  stats: _Stats;
}

/** Frames and writes messages to a body (direct I/O), in order, with the body's backpressure. */
export class _MessageWriter<T> {
  readonly #stream: DirectIo;
  readonly #codec: Codec<T>;
  readonly #options: _WriterOptions;

  constructor(stream: DirectIo, codec: Codec<T>, options: _WriterOptions) {
    this.#stream = stream;
    this.#codec = codec;
    this.#options = options;
  }

  /**
   * Encodes, checks the size, compresses if the call does, and writes one message.
   * Resolves when the body accepted it; the payload may be reused afterwards.
   *
   * @throws {GrpcError} `RESOURCE_EXHAUSTED` for a message over the limit, or the
   * codec's error.
   * @throws {unknown} The body's own error as is.
   */
  async write(value: T): Promise<void> {
    let payload = _encode(this.#codec, value);
    let compressed = false;
    const compression = this.#options.compression;
    if (compression !== undefined && payload.byteLength >= _COMPRESS_MIN_BYTES) {
      payload = await compression.compress(payload);
      compressed = true;
    }
    const length = payload.byteLength;
    if (length > this.#options.maxBytes) {
      throw new GrpcError(
        Status.RESOURCE_EXHAUSTED,
        `Cannot send message: ${length} bytes exceeds the limit of ${this.#options.maxBytes}`,
      );
    }
    const stats = this.#options.stats;
    stats.messagesSent++;
    stats.bytesSent += length;
    if (length <= _COALESCE_BYTES) {
      const frame = new Uint8Array(ENVELOPE_HEADER_SIZE + length);
      writeEnvelopeHeader(frame, 0, length, compressed);
      frame.set(payload, ENVELOPE_HEADER_SIZE);
      await this.#stream.write(frame);
      return;
    }
    // A large message goes as is (no copy here): its 5-byte header is copied when queued
    // and leaves in the same transport write.
    const header = new Uint8Array(ENVELOPE_HEADER_SIZE);
    writeEnvelopeHeader(header, 0, length, compressed);
    await this.#stream.write(header);
    await this.#stream.write(payload);
  }

  /** Ends the body (END_STREAM, with the trailers set on the stream if any). */
  async close(): Promise<void> {
    await this.#stream.closeWrite();
  }
}

/** Whether `value` is a synchronous iterable. */
export function _isIterable<T>(value: unknown): value is Iterable<T> {
  return typeof value === "object" && value !== null && Symbol.iterator in value;
}

/** Iterates a sync or async iterable as an async iterator. */
export function _asyncIterator<T>(source: AsyncIterable<T> | Iterable<T>): AsyncIterator<T> | Iterator<T> {
  if (typeof source === "object" && source !== null && Symbol.asyncIterator in source) {
    return (source as AsyncIterable<T>)[Symbol.asyncIterator]();
  }
  if (_isIterable<T>(source)) return source[Symbol.iterator]();
  throw new TypeError("Cannot send messages: expected an iterable or async iterable");
}
