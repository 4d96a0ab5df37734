/**
 * Exact-length and buffered reads over a byte stream or a direct reader.
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
  /**
   * Upper bound on memory pinned by unreleased leases in buffers the reader has moved
   * past ({@linkcode ByteReader.readLeased}). Beyond it, reads are copied instead, so a
   * holder of many small leases cannot pin many whole buffers.
   * @default {16777216}
   */
  maxLeasedBytes?: number;
}

/** A source with `Deno.Reader` semantics: fills `p`, resolves with the count or `null` at end. */
export interface DirectReader {
  /** Reads up to `p.length` bytes into `p`; `null` at end-of-stream. */
  read(p: Uint8Array): Promise<number | null>;
}

type _Mode = "direct" | "byob" | "default";

/** Bytes on loan from a {@linkcode ByteReader}'s pooled read buffer. */
export interface LeasedBytes {
  /** The bytes; valid until `release()`. */
  readonly bytes: Uint8Array;
  /** Gives the memory back for reuse. Idempotent. */
  release(): void;
}

interface _Lease {
  refs: number;
  retired: boolean;
  buf: Uint8Array | null;
  size: number;
}

const _noop = (): void => {};
/** Free read buffers kept for reuse. */
const _POOL_MAX = 2;

/**
 * Buffered, exact-length reads over a byte source.
 *
 * The source may be a `ReadableStream<Uint8Array>` (a BYOB reader with
 * `read(view, { min })` is used when it is a byte stream, a default reader otherwise) or a
 * {@linkcode DirectReader} such as a `Deno.Conn` (fastest: no Web Streams machinery per
 * chunk). Large exact reads go straight into the returned buffer without an
 * intermediate copy.
 *
 * {@linkcode ByteReader.readExactly} returns arrays that own their `ArrayBuffer`, so
 * they may be transferred. {@linkcode ByteReader.readLeased} returns a view into a pooled
 * read buffer (no copy, no allocation): the reader reuses that memory once every lease
 * on it was released.
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
  readonly #mode: _Mode;
  #direct: DirectReader | null = null;
  #byob: ReadableStreamBYOBReader | null = null;
  #default: ReadableStreamDefaultReader<Uint8Array> | null = null;
  readonly #size: number;
  #buf: Uint8Array;
  #start = 0;
  #end = 0;
  #eof = false;
  /** Leases handed out on `#buf`; while positive, never write into it again. */
  #lease: _Lease = { refs: 0, retired: false, buf: null, size: 0 };
  /** Free read buffers, reused instead of allocating (allocation costs more than copying). */
  readonly #pool: Uint8Array[] = [];
  /** Bytes of retired buffers still pinned by leases. */
  #pinned = 0;
  readonly #maxPinned: number;

  /**
   * Wraps a source; prefers direct reads, then a BYOB reader.
   *
   * @param source a stream (locked until {@linkcode ByteReader.release}) or a direct reader
   * @param options buffer sizing
   */
  constructor(source: ReadableStream<Uint8Array> | DirectReader, options: ByteReaderOptions = {}) {
    const size = options.bufferSize ?? DEFAULT_BUFFER_SIZE;
    if (!Number.isInteger(size) || size < 16) {
      throw new RangeError(`Cannot create ByteReader: bufferSize must be an integer >= 16, received ${size}`);
    }
    this.#size = size;
    this.#maxPinned = options.maxLeasedBytes ?? 16 * 1024 * 1024;
    this.#buf = new Uint8Array(size);
    if (!(source instanceof ReadableStream)) {
      this.#direct = source;
      this.#mode = "direct";
      return;
    }
    try {
      this.#byob = source.getReader({ mode: "byob" });
      this.#mode = "byob";
    } catch (error) {
      if (!(error instanceof TypeError)) throw error;
      this.#default = source.getReader();
      this.#mode = "default";
    }
  }

  /** Number of bytes read from the source but not yet consumed. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** True once the source has ended (buffered bytes may remain). */
  get ended(): boolean {
    return this.#eof;
  }

  /**
   * Ensures at least `min` bytes are buffered.
   *
   * @param min bytes wanted
   * @returns `false` if the source ended first (fewer bytes are buffered), else `true`
   */
  async fill(min: number): Promise<boolean> {
    while (this.#end - this.#start < min) {
      if (this.#eof) return false;
      this.#makeRoom(min);
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
    if (this.#start === this.#end && this.#lease.refs === 0) this.#start = this.#end = 0;
  }

  /**
   * Reads exactly `n` bytes into a new buffer that the caller owns.
   *
   * @param n number of bytes
   * @returns `n` bytes in their own `ArrayBuffer`
   * @throws {UnexpectedEofError} If the source ends first.
   */
  async readExactly(n: number): Promise<Uint8Array> {
    const have = this.#end - this.#start;
    if (have >= n) {
      const out = this.#buf.slice(this.#start, this.#start + n);
      this.skip(n);
      return out;
    }
    if (this.#mode === "default" || n - have < DIRECT_READ_THRESHOLD || n <= this.#size >> 1) {
      // Through the read-ahead buffer: one large read serves several frames.
      if (!(await this.fill(n))) throw new UnexpectedEofError(n, this.buffered);
      const out = this.#buf.slice(this.#start, this.#start + n);
      this.skip(n);
      return out;
    }
    return await this.#readLarge(n);
  }

  /**
   * Reads exactly `n` bytes without copying or allocating when possible: the bytes may be
   * a view into a pooled read buffer, which the reader reuses once `release()` was called
   * for every lease on it. Use the bytes only until `release()`, and never hand the view
   * to code that might keep it. Large reads (over half the buffer) get their own memory.
   *
   * @param n number of bytes
   * @returns the bytes and their release function (idempotent)
   * @throws {UnexpectedEofError} If the source ends first.
   */
  async readLeased(n: number): Promise<LeasedBytes> {
    if (this.#mode !== "direct" || n > this.#size >> 1 || this.#pinned > this.#maxPinned) {
      return { bytes: await this.readExactly(n), release: _noop };
    }
    if (!(await this.fill(n))) throw new UnexpectedEofError(n, this.buffered);
    const bytes = this.#buf.subarray(this.#start, this.#start + n);
    const lease = this.#lease;
    lease.refs++;
    this.skip(n);
    let released = false;
    return {
      bytes,
      release: () => {
        if (released) return;
        released = true;
        if (--lease.refs === 0 && lease.retired) {
          this.#pinned -= lease.size;
          if (lease.buf !== null && this.#pool.length < _POOL_MAX) this.#pool.push(lease.buf);
        }
      },
    };
  }

  /**
   * Reads whatever is available, up to `max` bytes, into a new buffer the caller owns.
   *
   * @param max upper bound on the returned length
   * @returns the bytes, or `null` at the end of the source
   */
  async readSome(max: number): Promise<Uint8Array | null> {
    if (this.#end === this.#start) {
      if (this.#eof) return null;
      if (this.#mode !== "default" && max >= DIRECT_READ_THRESHOLD) {
        const out = await this.#readOnce(new Uint8Array(max), 1);
        return out.byteLength > 0 ? out : null;
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
   * @throws {UnexpectedEofError} If the source ends first.
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
   * Cancels the underlying stream (a no-op for direct readers: close their owner).
   *
   * @param reason passed to the stream's `cancel`
   */
  async cancel(reason?: unknown): Promise<void> {
    this.#eof = true;
    await (this.#byob ?? this.#default)?.cancel(reason).catch(() => {});
  }

  /** Releases the lock on the underlying stream. Buffered bytes are dropped. */
  release(): void {
    (this.#byob ?? this.#default)?.releaseLock();
  }

  /** Makes room for `min` contiguous bytes from `#start`, moving to a fresh buffer if shared. */
  #makeRoom(min: number): void {
    const have = this.#end - this.#start;
    if (this.#lease.refs > 0 || min > this.#buf.length) {
      // Leased memory must not be overwritten: move to a pooled (or new) buffer. The old
      // one returns to the pool when its last lease is released.
      const pooled = min <= this.#size ? this.#pool.pop() : undefined;
      const next = pooled ?? new Uint8Array(Math.max(this.#size, min));
      next.set(this.#buf.subarray(this.#start, this.#end));
      if (this.#lease.refs > 0) {
        this.#lease.retired = true;
        this.#lease.size = this.#buf.length;
        this.#lease.buf = this.#buf.length === this.#size ? this.#buf : null;
        this.#pinned += this.#buf.length;
      }
      this.#lease = { refs: 0, retired: false, buf: null, size: 0 };
      this.#buf = next;
      this.#start = 0;
      this.#end = have;
    } else if (this.#buf.length - this.#start < min || this.#buf.length - this.#end < this.#buf.length >> 2) {
      // Compact when the free tail is small: reads should stay large (fewer syscalls).
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#start = 0;
      this.#end = have;
    }
  }

  /** Reads `n` bytes into a fresh buffer: the buffered part is copied, the rest read in place. */
  async #readLarge(n: number): Promise<Uint8Array> {
    let out: Uint8Array = new Uint8Array(n);
    const have = this.#end - this.#start;
    out.set(this.#buf.subarray(this.#start, this.#end));
    this.skip(have);
    let filled = have;
    while (filled < n) {
      if (this.#eof) throw new UnexpectedEofError(n, filled);
      const part = await this.#readOnce(out.subarray(filled), n - filled);
      out = new Uint8Array(part.buffer, 0, n);
      filled += part.byteLength;
    }
    return out;
  }

  /**
   * One read into `view` (which may be transferred by a BYOB read). Returns the filled
   * part; sets `#eof` at the end.
   */
  async #readOnce(view: Uint8Array, min: number): Promise<Uint8Array> {
    if (this.#direct !== null) {
      let filled = 0;
      while (filled < min) {
        const n = await this.#direct.read(view.subarray(filled));
        if (n === null) {
          this.#eof = true;
          break;
        }
        filled += n;
      }
      return view.subarray(0, filled);
    }
    const { value, done } = await this.#byob!.read(view, { min: Math.min(min, view.byteLength) });
    if (done) this.#eof = true;
    return value ?? new Uint8Array(0);
  }

  async #readIntoBuffer(min: number): Promise<void> {
    if (this.#mode === "default") {
      const { value, done } = await this.#default!.read();
      if (done) {
        this.#eof = true;
        return;
      }
      if (this.#buf.length - this.#end < value.byteLength) {
        this.#makeRoom(this.#end - this.#start + value.byteLength);
      }
      this.#buf.set(value, this.#end);
      this.#end += value.byteLength;
      return;
    }
    const offset = this.#end;
    if (this.#mode === "direct") {
      const part = await this.#readOnce(this.#buf.subarray(offset), min);
      this.#end += part.byteLength;
      return;
    }
    // A BYOB read transfers (detaches) the buffer; the result views the same memory.
    const capacity = this.#buf.length;
    const view = this.#buf.subarray(offset);
    const { value, done } = await this.#byob!.read(view, { min: Math.min(min, view.byteLength) });
    if (done) this.#eof = true;
    if (value === undefined) {
      // Cancelled: the memory went with the read.
      this.#buf = new Uint8Array(capacity);
      this.#start = this.#end = 0;
      return;
    }
    this.#buf = new Uint8Array(value.buffer, value.byteOffset - offset, capacity);
    const part = value;
    this.#end += part.byteLength;
  }
}
