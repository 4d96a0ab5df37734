/**
 * In-memory connected duplexes with backpressure, for tests and in-process wiring.
 *
 * @module
 */

import type { DirectIo, DuplexConn } from "./duplex.ts";

/** Options for {@linkcode duplexPair}. */
export interface DuplexPairOptions {
  /**
   * Bytes each direction buffers before `write()` waits for the reader. Like a socket
   * buffer: a writer never gets far ahead of a slow reader.
   * @default {65536}
   */
  highWaterMark?: number;
}

/** Error a duplexPair end observes when its peer was reset. */
function _resetError(reason: unknown): Error {
  return new Deno.errors.ConnectionReset("Connection reset by peer", { cause: reason });
}

/**
 * One direction of a pair: a byte queue with a writable face and a byte-stream face.
 */
class _Pipe {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  readonly #highWaterMark: number;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #ended = false;
  #error: unknown = undefined;
  #failed = false;
  #cancelled = false;
  #wakeReader: (() => void) | null = null;
  #wakeWriters: (() => void)[] = [];
  #writeController: WritableStreamDefaultController | null = null;
  #readDone!: () => void;
  #writeDone!: () => void;
  /** Settles when the reading side is finished (EOF delivered, cancelled or errored). */
  readonly readDone: Promise<void>;
  /** Settles when the writing side is finished (closed or errored). */
  readonly writeDone: Promise<void>;

  constructor(highWaterMark: number) {
    this.#highWaterMark = highWaterMark;
    this.readDone = new Promise((resolve) => this.#readDone = resolve);
    this.writeDone = new Promise((resolve) => this.#writeDone = resolve);
    this.readable = new ReadableStream({
      type: "bytes",
      pull: (controller) => this.#pull(controller),
      cancel: () => this.cancelRead(),
    });
    this.writable = new WritableStream<Uint8Array>({
      start: (controller) => {
        this.#writeController = controller;
      },
      write: (chunk) => this.#write(chunk),
      close: () => this.end(),
      abort: (reason) => this.destroy(reason),
    });
  }

  /** Graceful end: the reader sees EOF after the queued bytes. */
  end(): void {
    if (this.#ended || this.#failed) return;
    this.#ended = true;
    this.#writeDone();
    this.#wake();
  }

  /** Abrupt end: the reader errors at once, queued bytes are dropped. */
  destroy(reason: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#error = reason;
    this.#queue = [];
    this.#queued = 0;
    this.#writeController?.error(reason);
    this.#writeDone();
    this.#wake();
  }

  /** The reader stops: queued bytes are dropped and later writes fail. */
  cancelRead(): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#queue = [];
    this.#queued = 0;
    this.#writeController?.error(new Deno.errors.BrokenPipe("Cannot write: the reader has gone"));
    this.#writeDone();
    this.#readDone();
    this.#wake();
  }

  /** Direct read: waits for bytes, copies up to `p.length`; `null` at the end. */
  async readInto(p: Uint8Array): Promise<number | null> {
    while (this.#queue.length === 0 && !this.#ended && !this.#failed && !this.#cancelled) {
      await new Promise<void>((resolve) => this.#wakeReader = resolve);
      this.#wakeReader = null;
    }
    if (this.#failed) throw _resetError(this.#error);
    if (this.#queue.length === 0) {
      this.#readDone();
      return null;
    }
    let taken = 0;
    while (taken < p.byteLength && this.#queue.length > 0) {
      const head = this.#queue[0]!;
      const n = Math.min(head.byteLength, p.byteLength - taken);
      p.set(head.subarray(0, n), taken);
      taken += n;
      if (n === head.byteLength) this.#queue.shift();
      else this.#queue[0] = head.subarray(n);
    }
    this.#queued -= taken;
    if (this.#queued <= this.#highWaterMark) this.#releaseWriters();
    return taken;
  }

  /** Direct write: same as writing to `writable`. */
  async writeDirect(p: Uint8Array): Promise<number> {
    await this.#write(p);
    return p.byteLength;
  }

  async #write(chunk: Uint8Array): Promise<void> {
    if (this.#cancelled) throw new Deno.errors.BrokenPipe("Cannot write: the reader has gone");
    if (this.#failed) throw this.#error;
    if (this.#ended) throw new TypeError("Cannot write: the stream is closed");
    if (chunk.byteLength === 0) return;
    this.#queue.push(chunk.slice());
    this.#queued += chunk.byteLength;
    this.#wakeReader?.();
    while (this.#queued > this.#highWaterMark && !this.#cancelled && !this.#failed && !this.#ended) {
      await new Promise<void>((resolve) => this.#wakeWriters.push(resolve));
    }
    if (this.#cancelled) throw new Deno.errors.BrokenPipe("Cannot write: the reader has gone");
  }

  async #pull(controller: ReadableByteStreamController): Promise<void> {
    while (this.#queue.length === 0 && !this.#ended && !this.#failed && !this.#cancelled) {
      await new Promise<void>((resolve) => this.#wakeReader = resolve);
      this.#wakeReader = null;
    }
    if (this.#cancelled) return;
    if (this.#failed) {
      controller.error(_resetError(this.#error));
      this.#readDone();
      return;
    }
    const head = this.#queue[0];
    if (head === undefined) {
      controller.close();
      controller.byobRequest?.respond(0);
      this.#readDone();
      return;
    }
    const request = controller.byobRequest;
    const byob = request !== null && request.view !== null;
    let taken: number;
    if (byob) {
      const view = new Uint8Array(request.view.buffer, request.view.byteOffset, request.view.byteLength);
      taken = Math.min(view.byteLength, head.byteLength);
      view.set(head.subarray(0, taken));
      request.respond(taken);
    } else {
      taken = head.byteLength;
    }
    if (taken === head.byteLength) this.#queue.shift();
    else this.#queue[0] = head.subarray(taken);
    if (!byob) controller.enqueue(head);
    this.#queued -= taken;
    if (this.#queued <= this.#highWaterMark) this.#releaseWriters();
  }

  #wake(): void {
    this.#wakeReader?.();
    this.#releaseWriters();
  }

  #releaseWriters(): void {
    const waiting = this.#wakeWriters;
    this.#wakeWriters = [];
    for (const wake of waiting) wake();
  }
}

/** One end of a {@linkcode duplexPair}. */
class _PairEnd implements DuplexConn, DirectIo {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  readonly closed: Promise<void>;
  readonly #in: _Pipe;
  readonly #out: _Pipe;

  constructor(incoming: _Pipe, outgoing: _Pipe) {
    this.#in = incoming;
    this.#out = outgoing;
    this.readable = incoming.readable;
    this.writable = outgoing.writable;
    this.closed = Promise.all([incoming.readDone, outgoing.writeDone]).then(() => {});
  }

  read(p: Uint8Array): Promise<number | null> {
    return this.#in.readInto(p);
  }

  write(p: Uint8Array): Promise<number> {
    return this.#out.writeDirect(p);
  }

  closeWrite(): Promise<void> {
    this.#out.end();
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#out.end();
    this.#in.cancelRead();
    return this.closed;
  }

  reset(reason?: unknown): void {
    const error = reason ?? new Deno.errors.ConnectionReset("Connection reset");
    this.#out.destroy(error);
    this.#in.cancelRead();
  }
}

/**
 * Two connected in-memory duplexes: bytes written to one end are read from the other.
 *
 * Both directions are byte streams (BYOB reads work), also readable and writable through
 * {@linkcode DirectIo}, with socket-like backpressure:
 * `write()` waits while more than `highWaterMark` bytes are unread. Written chunks are
 * copied, so a writer may reuse its buffer once `write()` resolves. `reset()` makes the
 * peer's reads reject with `Deno.errors.ConnectionReset`, like a TCP RST.
 *
 * @param options buffer sizing
 * @returns the two ends
 *
 * @example Echo through a pair
 * ```ts
 * import { duplexPair } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const [client, server] = duplexPair();
 * const echo = server.readable.pipeTo(server.writable);
 * const writer = client.writable.getWriter();
 * await writer.write(new TextEncoder().encode("ping"));
 * await writer.close();
 * const chunks = await Array.fromAsync(client.readable);
 * assert.equal(new TextDecoder().decode(chunks[0]), "ping");
 * await echo;
 * ```
 */
export function duplexPair(options: DuplexPairOptions = {}): [DuplexConn & DirectIo, DuplexConn & DirectIo] {
  const highWaterMark = options.highWaterMark ?? 64 * 1024;
  if (!Number.isInteger(highWaterMark) || highWaterMark < 0) {
    throw new RangeError(
      `Cannot create duplex pair: highWaterMark must be a non-negative integer, received ${highWaterMark}`,
    );
  }
  const ab = new _Pipe(highWaterMark);
  const ba = new _Pipe(highWaterMark);
  return [new _PairEnd(ba, ab), new _PairEnd(ab, ba)];
}
