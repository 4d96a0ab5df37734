/**
 * Exact-length and buffered reads over any `ReadableStream<Uint8Array>`.
 *
 * @module
 */

/** Default size of the internal read-ahead buffer. */
const DEFAULT_BUFFER_SIZE = 64 * 1024;
/** Reads at least this large skip the internal buffer and land in the caller's bytes. */
const DIRECT_READ_THRESHOLD = 16 * 1024;

/**
 * Thrown when a stream ends before the bytes a reader needed arrived.
 *
 * A truncated transfer must never look like a clean end-of-stream, so exact reads
 * reject with this error rather than returning short data.
 *
 * @example
 * ```ts
 * import { ByteReader, UnexpectedEofError } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const reader = new ByteReader(ReadableStream.from([new Uint8Array([1, 2])]));
 * const error = await reader.readExactly(4).catch((e) => e);
 * assert.ok(error instanceof UnexpectedEofError);
 * assert.equal(error.code, "UNEXPECTED_EOF");
 * assert.equal(error.received, 2);
 * ```
 */
export class UnexpectedEofError extends Error {
  /** Always `"UNEXPECTED_EOF"`. */
  readonly code = "UNEXPECTED_EOF" as const;
  /** How many of the wanted bytes arrived before the end. */
  readonly received: number;
  /** How many bytes were wanted. */
  readonly expected: number;

  /**
   * Creates the error.
   *
   * @param expected bytes wanted
   * @param received bytes that arrived before the end
   */
  constructor(expected: number, received: number) {
    super(`Cannot read ${expected} bytes: stream ended after ${received}`);
    this.name = "UnexpectedEofError";
    this.expected = expected;
    this.received = received;
  }
}

/** Options for {@linkcode ByteReader}. */
export interface ByteReaderOptions {
  /**
   * Size of the read-ahead buffer in bytes. Small reads (headers) are served from it, so
   * one transport read can serve many frames.
   * @default {65536}
   */
  bufferSize?: number;
}

/**
 * Buffered, exact-length reads over a byte stream.
 *
 * Uses a BYOB reader with `read(view, { min })` when the stream is a byte stream (TCP
 * connections, yamux streams, {@linkcode duplexPair}), and a default reader otherwise.
 * Large exact reads go straight into the returned buffer without an intermediate copy.
 *
 * Every `Uint8Array` it returns owns its `ArrayBuffer` exclusively, so it may be
 * transferred (enqueued into a byte stream) without affecting other data.
 *
 * @example Parse a length-prefixed message
 * ```ts
 * import { ByteReader } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const source = ReadableStream.from([new Uint8Array([0, 3, 0x61]), new Uint8Array([0x62, 0x63])]);
 * const reader = new ByteReader(source);
 * const header = await reader.readExactly(2);
 * const length = (header[0]! << 8) | header[1]!;
 * const body = await reader.readExactly(length);
 * assert.equal(new TextDecoder().decode(body), "abc");
 * assert.equal(await reader.readSome(10), null);
 * ```
 */
export class ByteReader {
  #byob: ReadableStreamBYOBReader | null = null;
  #default: ReadableStreamDefaultReader<Uint8Array> | null = null;
  #buf: Uint8Array;
  #start = 0;
  #end = 0;
  #eof = false;

  /**
   * Wraps a stream; prefers a BYOB reader when the stream supports one.
   *
   * @param readable the stream to read; it is locked until {@linkcode ByteReader.release}.
   * @param options buffer sizing
   */
  constructor(readable: ReadableStream<Uint8Array>, options: ByteReaderOptions = {}) {
    const size = options.bufferSize ?? DEFAULT_BUFFER_SIZE;
    if (!Number.isInteger(size) || size < 16) {
      throw new RangeError(`Cannot create ByteReader: bufferSize must be an integer >= 16, received ${size}`);
    }
    this.#buf = new Uint8Array(size);
    try {
      this.#byob = readable.getReader({ mode: "byob" });
    } catch (error) {
      if (!(error instanceof TypeError)) throw error;
      this.#default = readable.getReader();
    }
  }

  /** Number of bytes read from the stream but not yet consumed. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** True once the underlying stream has ended (buffered bytes may remain). */
  get ended(): boolean {
    return this.#eof;
  }

  /**
   * Ensures at least `min` bytes are buffered.
   *
   * @param min bytes wanted; at most the buffer size
   * @returns `false` if the stream ended first (fewer bytes are buffered), else `true`
   */
  async fill(min: number): Promise<boolean> {
    if (min > this.#buf.length) this.#grow(min);
    while (this.#end - this.#start < min) {
      if (this.#eof) return false;
      if (this.#buf.length - this.#start < min) this.#compact();
      await this.#readIntoBuffer(min - (this.#end - this.#start));
    }
    return true;
  }

  /**
   * A view of the next `n` buffered bytes. Valid only until the next read call; copy
   * what you keep. Call {@linkcode ByteReader.fill} first.
   *
   * @param n number of bytes, at most {@linkcode ByteReader.buffered}
   * @returns a view into the internal buffer
   */
  peek(n: number): Uint8Array {
    if (n > this.#end - this.#start) {
      throw new RangeError(`Cannot peek ${n} bytes: only ${this.#end - this.#start} buffered`);
    }
    return this.#buf.subarray(this.#start, this.#start + n);
  }

  /**
   * Consumes `n` buffered bytes.
   *
   * @param n number of bytes, at most {@linkcode ByteReader.buffered}
   */
  skip(n: number): void {
    if (n > this.#end - this.#start) {
      throw new RangeError(`Cannot skip ${n} bytes: only ${this.#end - this.#start} buffered`);
    }
    this.#start += n;
    if (this.#start === this.#end) this.#start = this.#end = 0;
  }

  /**
   * Reads exactly `n` bytes into a new buffer that the caller owns.
   *
   * @param n number of bytes
   * @returns `n` bytes
   * @throws {UnexpectedEofError} If the stream ends first.
   */
  async readExactly(n: number): Promise<Uint8Array> {
    const have = this.#end - this.#start;
    if (have >= n) {
      const out = this.#buf.slice(this.#start, this.#start + n);
      this.skip(n);
      return out;
    }
    if (this.#byob === null || n - have < DIRECT_READ_THRESHOLD) {
      if (!(await this.fill(n))) throw new UnexpectedEofError(n, this.buffered);
      const out = this.#buf.slice(this.#start, this.#start + n);
      this.skip(n);
      return out;
    }
    // Large read: copy what is buffered, then read the rest straight into the result.
    let out = new Uint8Array(n);
    out.set(this.#buf.subarray(this.#start, this.#end));
    this.#start = this.#end = 0;
    let filled = have;
    while (filled < n) {
      if (this.#eof) throw new UnexpectedEofError(n, filled);
      const { value, done } = await this.#byob.read(new Uint8Array(out.buffer, filled, n - filled), {
        min: n - filled,
      });
      if (value) {
        out = new Uint8Array(value.buffer, 0, n);
        filled += value.byteLength;
      }
      if (done) this.#eof = true;
    }
    return out;
  }

  /**
   * Reads whatever is available, up to `max` bytes, into a new buffer the caller owns.
   *
   * @param max upper bound on the returned length
   * @returns the bytes, or `null` at the end of the stream
   */
  async readSome(max: number): Promise<Uint8Array | null> {
    if (this.#end === this.#start) {
      if (this.#eof) return null;
      if (this.#byob !== null && max >= DIRECT_READ_THRESHOLD) {
        const { value, done } = await this.#byob.read(new Uint8Array(max), { min: 1 });
        if (done) this.#eof = true;
        if (value && value.byteLength > 0) return value;
        return null;
      }
      if (!(await this.fill(1))) return null;
    }
    const n = Math.min(max, this.#end - this.#start);
    const out = this.#buf.slice(this.#start, this.#start + n);
    this.skip(n);
    return out;
  }

  /**
   * Discards exactly `n` bytes.
   *
   * @param n number of bytes
   * @throws {UnexpectedEofError} If the stream ends first.
   */
  async discard(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0 && !(await this.fill(1))) throw new UnexpectedEofError(n, n - left);
      const k = Math.min(left, this.buffered);
      this.skip(k);
      left -= k;
    }
  }

  /**
   * Cancels the underlying stream.
   *
   * @param reason passed to the stream's `cancel`
   */
  async cancel(reason?: unknown): Promise<void> {
    this.#eof = true;
    await (this.#byob ?? this.#default)!.cancel(reason).catch(() => {});
  }

  /** Releases the lock on the underlying stream. Buffered bytes are dropped. */
  release(): void {
    (this.#byob ?? this.#default)!.releaseLock();
  }

  #grow(size: number): void {
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(this.#start, this.#end));
    this.#end -= this.#start;
    this.#start = 0;
    this.#buf = next;
  }

  #compact(): void {
    if (this.#start === 0) return;
    this.#buf.copyWithin(0, this.#start, this.#end);
    this.#end -= this.#start;
    this.#start = 0;
  }

  async #readIntoBuffer(min: number): Promise<void> {
    if (this.#byob !== null) {
      // The read transfers (detaches) the buffer; the result views the same memory.
      const capacity = this.#buf.length;
      const view = new Uint8Array(this.#buf.buffer, this.#buf.byteOffset + this.#end, capacity - this.#end);
      const { value, done } = await this.#byob.read(view, { min: Math.min(min, view.length) });
      if (value) {
        this.#buf = new Uint8Array(value.buffer, value.byteOffset - this.#end, capacity);
        this.#end += value.byteLength;
      } else {
        // Cancelled or errored: the buffer went with the read.
        this.#buf = new Uint8Array(capacity);
        this.#start = this.#end = 0;
      }
      if (done) this.#eof = true;
      return;
    }
    const { value, done } = await this.#default!.read();
    if (done) {
      this.#eof = true;
      return;
    }
    if (this.#buf.length - this.#end < value.byteLength) {
      this.#compact();
      if (this.#buf.length - this.#end < value.byteLength) this.#grow(this.#end + value.byteLength);
    }
    this.#buf.set(value, this.#end);
    this.#end += value.byteLength;
  }
}
