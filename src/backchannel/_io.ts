/**
 * Private I/O helpers shared by the backchannel and sidechannel modules: a read cursor
 * that never reads past what it is asked for when the source allows it, a duplex that
 * replays peeked bytes, and Web Streams faces over `read(p)`/`write(p)` functions.
 *
 * @module
 */

import { type DirectIo, type Duplex, type DuplexConn, hasDirectIo } from "../streams/duplex.ts";

/** Size of a chunk the Web Streams faces allocate for a default (non-BYOB) reader. */
export const _CHUNK_SIZE = 64 * 1024;
const _EMPTY = new Uint8Array(0);

/**
 * The reading side of a duplex, as `read(p)`.
 *
 * - Direct I/O: `read(p)` goes straight to the duplex (nothing is read ahead), so the
 *   duplex can be handed on untouched once pushed-back bytes are served.
 * - Streams: a default reader; what does not fit in `p` is kept for the next read. The
 *   cursor then owns the stream: every later read must go through it.
 *
 * Bytes pushed back with {@linkcode _Cursor.unread} are served first.
 */
export class _Cursor {
  readonly #duplex: Duplex;
  readonly #direct: DirectIo | null;
  #reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  #pending: Uint8Array = _EMPTY;
  #eof = false;

  constructor(duplex: Duplex) {
    this.#duplex = duplex;
    this.#direct = hasDirectIo(duplex) ? duplex : null;
  }

  /** True if reads go straight to the duplex and nothing is pending. */
  get passthrough(): boolean {
    return this.#direct !== null && this.#pending.byteLength === 0;
  }

  /** Serves `bytes` before anything else (they are not copied). */
  unread(bytes: Uint8Array): void {
    if (bytes.byteLength === 0) return;
    if (this.#pending.byteLength === 0) {
      this.#pending = bytes;
      return;
    }
    const joined = new Uint8Array(bytes.byteLength + this.#pending.byteLength);
    joined.set(bytes);
    joined.set(this.#pending, bytes.byteLength);
    this.#pending = joined;
  }

  /**
   * Reads up to `p.length` bytes into `p`.
   *
   * @returns the count, or `null` at end-of-stream
   */
  async read(p: Uint8Array): Promise<number | null> {
    if (p.byteLength === 0) return 0;
    if (this.#pending.byteLength > 0) {
      const n = Math.min(p.byteLength, this.#pending.byteLength);
      p.set(this.#pending.subarray(0, n));
      this.#pending = this.#pending.subarray(n);
      return n;
    }
    if (this.#direct !== null) return await this.#direct.read(p);
    if (this.#eof) return null;
    this.#reader ??= this.#duplex.readable.getReader();
    for (;;) {
      const { value, done } = await this.#reader.read();
      if (done) {
        this.#eof = true;
        return null;
      }
      if (value.byteLength === 0) continue;
      const n = Math.min(p.byteLength, value.byteLength);
      p.set(n === value.byteLength ? value : value.subarray(0, n));
      if (n < value.byteLength) this.#pending = value.subarray(n);
      return n;
    }
  }

  /**
   * Fills `p` unless the stream ends first.
   *
   * @returns how many bytes were read: `p.length`, or fewer at end-of-stream
   */
  async readFull(p: Uint8Array): Promise<number> {
    let filled = 0;
    while (filled < p.byteLength) {
      const n = await this.read(p.subarray(filled));
      if (n === null) break;
      filled += n;
    }
    return filled;
  }

  /** Stops reading: the stream (or the duplex's readable) is cancelled. */
  async cancel(reason?: unknown): Promise<void> {
    this.#pending = _EMPTY;
    this.#eof = true;
    if (this.#reader !== null) {
      await this.#reader.cancel(reason).catch(() => {});
    } else if (!this.#duplex.readable.locked) {
      await this.#duplex.readable.cancel(reason).catch(() => {});
    }
  }
}

/**
 * A byte `ReadableStream` over a `read(p)` function: pull-driven (nothing is read until
 * the consumer asks), BYOB-capable, and copy-free for BYOB readers.
 *
 * @param read fills a view; `null` at end-of-stream
 * @param cancel called when the consumer cancels
 */
export function _byteReadable(
  read: (p: Uint8Array) => Promise<number | null>,
  cancel: (reason: unknown) => Promise<void> | void,
): ReadableStream<Uint8Array> {
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: _CHUNK_SIZE,
    async pull(controller) {
      const request = controller.byobRequest!;
      const view = request.view!;
      const n = await read(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
      if (n === null) {
        controller.close();
        controller.byobRequest?.respond(0);
        return;
      }
      request.respond(n);
    },
    cancel,
  }, { highWaterMark: 0 });
}

/**
 * A `WritableStream` over a `write(p)` function that writes all of `p`.
 *
 * @param write writes everything
 * @param close half-closes
 * @param abort aborts
 */
export function _byteWritable(
  write: (p: Uint8Array) => Promise<unknown>,
  close: () => Promise<void>,
  abort: (reason: unknown) => void,
): WritableStream<Uint8Array> {
  return new WritableStream<Uint8Array>({
    write: async (chunk) => {
      await write(chunk);
    },
    close,
    abort,
  }, { highWaterMark: 1 });
}

/**
 * A duplex that reads through a {@linkcode _Cursor} (so peeked bytes are replayed first)
 * and writes to the wrapped duplex. Direct I/O is kept: with a direct-I/O inner duplex,
 * `read`/`write`/`closeWrite` go straight through once the replayed bytes are served.
 * Backpressure is the inner duplex's: nothing is read ahead.
 */
export class _ReplayConn implements DuplexConn, DirectIo {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  readonly closed: Promise<void>;
  readonly #inner: DuplexConn;
  readonly #cursor: _Cursor;
  readonly #direct: DirectIo | null;
  #writer: WritableStreamDefaultWriter<Uint8Array> | null = null;

  constructor(inner: DuplexConn, cursor: _Cursor) {
    this.#inner = inner;
    this.#cursor = cursor;
    this.#direct = hasDirectIo(inner) ? inner : null;
    this.closed = inner.closed;
    this.readable = _byteReadable((p) => cursor.read(p), (reason) => cursor.cancel(reason));
    this.writable = this.#direct !== null
      ? inner.writable
      : _byteWritable((p) => this.write(p), () => this.closeWrite(), (reason) => this.reset(reason));
  }

  read(p: Uint8Array): Promise<number | null> {
    return this.#cursor.read(p);
  }

  async write(p: Uint8Array): Promise<number> {
    if (this.#direct !== null) return await this.#direct.write(p);
    this.#writer ??= this.#inner.writable.getWriter();
    await this.#writer.write(p);
    return p.byteLength;
  }

  async closeWrite(): Promise<void> {
    if (this.#direct !== null) return await this.#direct.closeWrite();
    this.#writer ??= this.#inner.writable.getWriter();
    await this.#writer.close();
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  reset(reason?: unknown): void {
    this.#inner.reset(reason);
  }
}

/**
 * The duplex itself if it offers direct I/O, else a wrapper that does.
 *
 * @param conn any duplex connection
 * @returns a duplex with `read`/`write`/`closeWrite`
 */
export function _asDirect(conn: DuplexConn): DuplexConn & DirectIo {
  return hasDirectIo(conn) ? conn : new _ReplayConn(conn, new _Cursor(conn));
}

/**
 * Writes all of `p` through direct I/O.
 *
 * @param conn the duplex
 * @param p bytes
 */
export async function _writeAll(conn: DirectIo, p: Uint8Array): Promise<void> {
  let written = 0;
  while (written < p.byteLength) written += await conn.write(p.subarray(written));
}

/**
 * Runs `work` with a deadline: when it expires (or `signal` aborts), `onExpire` runs
 * (typically resetting the connection, which fails pending I/O) and the result rejects
 * with the timeout or abort reason instead of the I/O error.
 *
 * @param ms deadline in milliseconds; 0 disables it
 * @param signal optional abort signal
 * @param onExpire cleanup to unblock `work`
 * @param work the operation
 */
export async function _withDeadline<T>(
  ms: number,
  signal: AbortSignal | undefined,
  onExpire: (reason: unknown) => void,
  work: () => Promise<T>,
): Promise<T> {
  signal?.throwIfAborted();
  let expired: unknown = undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expire = (reason: unknown) => {
    if (expired !== undefined) return;
    expired = reason;
    onExpire(reason);
  };
  const onAbort = () => expire(signal!.reason);
  if (ms > 0) {
    timer = setTimeout(
      () => expire(new DOMException(`Timed out after ${ms} ms`, "TimeoutError")),
      ms,
    );
  }
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const result = await work();
    if (expired !== undefined) throw expired;
    return result;
  } catch (error) {
    if (expired !== undefined) throw expired;
    throw error;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * Fills `p` through direct I/O unless the stream ends first.
 *
 * @param conn the duplex
 * @param p destination
 * @returns how many bytes were read: `p.length`, or fewer at end-of-stream
 */
export async function _readFull(conn: DirectIo, p: Uint8Array): Promise<number> {
  let filled = 0;
  while (filled < p.byteLength) {
    const n = await conn.read(p.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return filled;
}
