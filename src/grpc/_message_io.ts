/**
 * Reading and writing the messages of one call over an HTTP/2 stream's body.
 *
 * @module
 */

import type { GrpcCallStats } from "./call.ts";
import type { Codec } from "./codec.ts";
import type { Compression } from "./compression.ts";
import { ENVELOPE_HEADER_SIZE, EnvelopeDecoder, writeEnvelopeHeader } from "./envelope.ts";
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

/**
 * Pulls messages out of a body: envelopes are checked against the limit before their
 * bytes are buffered, payloads inside one received chunk are views (no copy).
 */
export class _MessageReader<T> {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder: EnvelopeDecoder;
  readonly #codec: Codec<T>;
  readonly #options: _ReaderOptions;
  #ended = false;

  constructor(readable: ReadableStream<Uint8Array>, codec: Codec<T>, options: _ReaderOptions) {
    this.#reader = readable.getReader();
    this.#decoder = new EnvelopeDecoder({
      maxMessageBytes: options.maxBytes,
      compressed: options.compression !== undefined,
    });
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
    for (;;) {
      const envelope = this.#decoder.next();
      if (envelope !== undefined) {
        const stats = this.#options.stats;
        stats.messagesReceived++;
        stats.bytesReceived += envelope.payload.byteLength;
        let payload = envelope.payload;
        if (envelope.compressed) {
          payload = await this.#options.compression!.decompress(payload, this.#options.maxBytes);
        }
        return _decode(this.#codec, payload);
      }
      if (this.#ended) return undefined;
      const { value, done } = await this.#reader.read();
      if (done) {
        this.#ended = true;
        this.#decoder.end();
        return undefined;
      }
      this.#decoder.push(value);
    }
  }

  /** Stops reading: cancels the body. */
  cancel(reason?: unknown): void {
    this.#ended = true;
    this.#reader.cancel(reason).catch(() => {});
  }
}

/** Options of {@linkcode _MessageWriter}. */
export interface _WriterOptions {
  maxBytes: number;
  /** The `grpc-encoding` this side sends with, if not identity. */
  compression: Compression | undefined;
  stats: _Stats;
}

/** Frames and writes messages to a body, in order, with the body's backpressure. */
export class _MessageWriter<T> {
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #codec: Codec<T>;
  readonly #options: _WriterOptions;

  constructor(writable: WritableStream<Uint8Array>, codec: Codec<T>, options: _WriterOptions) {
    this.#writer = writable.getWriter();
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
      await this.#writer.write(frame);
      return;
    }
    const header = new Uint8Array(ENVELOPE_HEADER_SIZE);
    writeEnvelopeHeader(header, 0, length, compressed);
    // Both writes are queued at once; the second settles after the first.
    this.#writer.write(header).catch(() => {});
    await this.#writer.write(payload);
  }

  /** Ends the body (END_STREAM). */
  async close(): Promise<void> {
    await this.#writer.close();
  }

  /** Releases the body for `sendTrailers()`. */
  release(): void {
    this.#writer.releaseLock();
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
