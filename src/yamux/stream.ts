/**
 * One yamux stream: a {@linkcode DuplexConn} with per-stream flow control.
 *
 * @module
 */

import { _copyOutChunks } from "../streams/_chunks.ts";
import type { DirectIo, DuplexConn } from "../streams/duplex.ts";
import { YamuxError } from "./errors.ts";
import { FLAG_FIN, FLAG_RST, INITIAL_STREAM_WINDOW, TYPE_WINDOW_UPDATE } from "./frame.ts";
import type { ResolvedYamuxOptions } from "./options.ts";
import type { _Deadlines } from "./_deadlines.ts";

/**
 * Lifecycle of a stream (hashicorp's states):
 * `synSent`/`synReceived` → `established` → `localClose` (we sent FIN) or `remoteClose`
 * (peer sent FIN) → `closed` (both); `reset` from anywhere.
 */
export type YamuxStreamState =
  | "synSent"
  | "synReceived"
  | "established"
  | "localClose"
  | "remoteClose"
  | "closed"
  | "reset";

/**
 * What a stream needs from its session. Private to the yamux module.
 * @internal
 */
export interface _StreamHost {
  readonly options: ResolvedYamuxOptions;
  /** Queues a control frame (strict priority). */
  sendControl(type: number, flags: number, streamId: number, length: number): void;
  /**
   * Queues a frame on the stream's fair-queue flow, in order with its data. `done` runs
   * once the payload has been copied for the transport, or with an error if it never will.
   * A `soft` frame may wait for the end of the event-loop turn to share a transport write.
   */
  sendOnFlow(
    streamId: number,
    type: number,
    flags: number,
    data: Uint8Array | null,
    done: ((error?: YamuxError) => void) | undefined,
    soft?: boolean,
  ): void;
  /** Drops the stream's queued frames, failing their callbacks. */
  dropQueued(streamId: number, error: YamuxError): void;
  /** The stream is finished (closed or reset): forget its id. */
  forget(stream: YamuxStream): void;
  /** An opened stream was not acknowledged in time. */
  openTimedOut(stream: YamuxStream): void;
  /** Open (no ACK yet) deadlines of the session's streams. */
  readonly openDeadlines: _Deadlines<YamuxStream>;
  /** Close (our FIN sent, theirs pending) deadlines of the session's streams. */
  readonly closeDeadlines: _Deadlines<YamuxStream>;
}

/**
 * A bidirectional stream of a {@linkcode YamuxSession}, shaped like a `Deno.Conn`.
 *
 * - `readable` is a byte stream (BYOB reads work). Data is credited back to the peer as
 *   it is read, so a slow reader throttles the sender and buffers at most one window.
 * - `writable`: each write resolves once its bytes are handed to the connection; closing
 *   it sends FIN (half-close) after everything written before; `abort()` resets.
 * - `close()` ends both directions gracefully; `reset()` aborts both at once (RST).
 *
 * It also offers {@linkcode DirectIo} (`read(p)`, `write(p)`, `closeWrite()`), the
 * fastest path for protocols layered on a stream (HTTP/2 in Gitaly's backchannel); use
 * either those methods or the streams, not both.
 *
 * A stream that ends without the peer's FIN (reset, session failure, lost connection)
 * errors its `readable` with a {@linkcode YamuxError}: truncation never looks like a clean
 * end-of-stream. Data that arrived before the failure is still delivered first.
 *
 * @example Echo over a stream
 * ```ts
 * import { duplexPair, YamuxSession } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = duplexPair();
 * await using client = YamuxSession.client(a);
 * await using server = YamuxSession.server(b);
 * const echoed = server.accept().then((s) => s.readable.pipeTo(s.writable));
 *
 * const stream = await client.open();
 * const writer = stream.writable.getWriter();
 * await writer.write(new TextEncoder().encode("hello"));
 * await writer.close(); // FIN: the server's pipe ends after echoing
 * const reply = await new Response(stream.readable).text();
 * assert.equal(reply, "hello");
 * await echoed;
 * ```
 */
export class YamuxStream implements DuplexConn, DirectIo {
  /** Stream id: odd if the client opened it, even if the server did. */
  readonly id: number;
  /** Settles once the stream is finished in both directions, or reset. Never rejects. */
  readonly closed: Promise<void>;

  readonly #host: _StreamHost;
  #state: YamuxStreamState;
  // Receive side.
  #recvWindow = INITIAL_STREAM_WINDOW;
  #chunks: Uint8Array[] = [];
  /** Release functions of `#chunks` that are leased from the session's read buffers. */
  #releases: ((() => void) | undefined)[] = [];
  #buffered = 0;
  #remoteFin = false;
  #readCancelled = false;
  #readError: YamuxError | null = null;
  #wakeReader: (() => void) | null = null;
  // Send side.
  #sendWindow = INITIAL_STREAM_WINDOW;
  #localFin = false;
  #writeError: YamuxError | null = null;
  #windowWaiters: (() => void)[] = [];
  #inflightWrite: Promise<void> | null = null;
  #writeController: WritableStreamDefaultController | null = null;
  #closeWritePromise: Promise<void> | null = null;
  // Web Streams, created on first use: users of direct I/O never pay for them.
  #readable: ReadableStream<Uint8Array> | null = null;
  #writable: WritableStream<Uint8Array> | null = null;
  // Lifecycle.
  #resolveClosed!: () => void;
  #finished = false;

  /**
   * Streams are created by {@linkcode YamuxSession.open} and
   * {@linkcode YamuxSession.accept}; this constructor is internal.
   *
   * @param host the owning session's internals
   * @param id stream id
   * @param outbound true if we opened it
   */
  constructor(host: _StreamHost, id: number, outbound: boolean) {
    this.#host = host;
    this.id = id;
    this.#state = outbound ? "synSent" : "synReceived";
    this.closed = new Promise((resolve) => this.#resolveClosed = resolve);
  }

  /** Bytes from the peer (a byte stream: BYOB reads work). */
  get readable(): ReadableStream<Uint8Array> {
    this.#readable ??= new ReadableStream({
      type: "bytes",
      pull: (controller) => this.#pull(controller),
      cancel: () => this.#cancelRead(),
    }, { highWaterMark: 0 });
    return this.#readable;
  }

  /** Bytes to the peer; closing it sends FIN, aborting it resets the stream. */
  get writable(): WritableStream<Uint8Array> {
    if (this.#writable === null) {
      this.#writable = new WritableStream<Uint8Array>({
        start: (controller) => {
          this.#writeController = controller;
          // Created after the stream already failed or half-closed: refuse writes at once.
          if (this.#writeError !== null) controller.error(this.#writeError);
        },
        write: (chunk) => {
          const p = this.#write(chunk);
          this.#inflightWrite = p.then(() => {}, () => {});
          return p;
        },
        close: () => this.#closeWrite(),
        abort: (reason) => this.reset(reason),
      });
    }
    return this.#writable;
  }

  /** Current lifecycle state. */
  get state(): YamuxStreamState {
    return this.#state;
  }

  /** Bytes received and not yet read by the application. */
  get buffered(): number {
    return this.#buffered;
  }

  /** Bytes we may still send before the peer grants more window. */
  get sendWindow(): number {
    return this.#sendWindow;
  }

  /**
   * Reads up to `p.length` bytes into `p` (direct I/O, no Web Streams machinery).
   *
   * @param p destination
   * @returns bytes read, or `null` once the peer has half-closed and all data was read
   * @throws {YamuxError} If the stream was reset or the session failed before the peer's FIN.
   */
  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#readError !== null) throw this.#readError;
      if (this.#remoteFin || this.#readCancelled) return null;
      await new Promise<void>((resolve) => this.#wakeReader = resolve);
      this.#wakeReader = null;
    }
    const taken = this.#copyOut(p);
    this.#buffered -= taken;
    this.#creditWindow();
    return taken;
  }

  /**
   * Writes all of `p` (direct I/O); resolves once it is handed to the connection, after
   * which `p` may be reused.
   *
   * @param p bytes to send
   * @returns `p.length`
   * @throws {YamuxError} `STREAM_CLOSED` after a half-close, or the reset/session error.
   */
  async write(p: Uint8Array): Promise<number> {
    const pending = this.#write(p);
    this.#inflightWrite = pending.then(() => {}, () => {});
    await pending;
    return p.byteLength;
  }

  /**
   * Half-closes: sends FIN after everything written before. Idempotent. Settles once the
   * FIN is queued, so that it shares a transport write with what the application sends
   * next (on this session); rejects if the session can no longer write.
   */
  closeWrite(): Promise<void> {
    return this.#closeWrite();
  }

  /**
   * Ends both directions gracefully: sends FIN after everything already written, and
   * stops reading (later data from the peer is discarded). Resolves once our FIN is
   * handed to the connection. If the peer never sends its FIN, the stream is reset after
   * `streamCloseTimeout`.
   */
  async close(): Promise<void> {
    this.#cancelRead();
    if (!this.#localFin && this.#writeError === null) {
      await this.#closeWrite().catch(() => {});
      // Fail later writes through the WritableStream too (it may be locked by a writer).
      this.#writeController?.error(
        new YamuxError("STREAM_CLOSED", `Cannot write: stream ${this.id} is closed`, { streamId: this.id }),
      );
    }
  }

  /**
   * Aborts both directions at once: queued data is dropped, RST is sent, and pending
   * reads and writes reject with `STREAM_RESET`.
   *
   * @param reason kept as the error's `cause`
   */
  reset(reason?: unknown): void {
    if (this.#finished) return;
    const error = new YamuxError("STREAM_RESET", `Cannot continue: stream ${this.id} was reset locally`, {
      streamId: this.id,
      cause: reason,
    });
    this.#host.dropQueued(this.id, error);
    this.#host.sendControl(TYPE_WINDOW_UPDATE, FLAG_RST, this.id, 0);
    this.#terminate("reset", error, true);
  }

  // ---- called by the session's read loop (never awaits) ----

  /** @internal The peer acknowledged our SYN. */
  _onAck(): void {
    this.#host.openDeadlines.disarm(this);
    if (this.#state === "synSent") this.#state = "established";
  }

  /** @internal We acknowledged the peer's SYN. */
  _accepted(): void {
    this.#recvWindow = this.#host.options.maxStreamWindow;
    if (this.#state === "synReceived") this.#state = "established";
  }

  /** @internal We sent SYN; start the open timer. */
  _opened(): void {
    this.#recvWindow = this.#host.options.maxStreamWindow;
    const timeout = this.#host.options.streamOpenTimeout;
    if (timeout > 0) {
      this.#host.openDeadlines.arm(this, timeout, () => {
        if (this.#state === "synSent") this.#host.openTimedOut(this);
      });
    }
  }

  /** @internal Remaining receive window the peer may use. */
  get _recvWindow(): number {
    return this.#recvWindow;
  }

  /**
   * @internal Data arrived (its length already checked against the window).
   */
  _onData(chunk: Uint8Array, release?: () => void): void {
    this.#recvWindow -= chunk.byteLength;
    if (this.#remoteFin || this.#readCancelled || this.#readError !== null) {
      // Nobody will read it: drop, but keep crediting so the peer's writes never stall.
      release?.();
      this.#creditWindow();
      return;
    }
    this.#chunks.push(chunk);
    this.#releases.push(release);
    this.#buffered += chunk.byteLength;
    this.#wakeReader?.();
  }

  /** @internal The peer granted more send window. Returns false on overflow. */
  _onWindowUpdate(delta: number): boolean {
    if (delta === 0) return true;
    if (this.#sendWindow + delta > 0xffff_ffff) return false;
    this.#sendWindow += delta;
    const waiters = this.#windowWaiters;
    this.#windowWaiters = [];
    for (const wake of waiters) wake();
    return true;
  }

  /**
   * @internal The peer half-closed. Returns false if FIN was unexpected in our state
   * (a protocol error).
   */
  _onFin(): boolean {
    switch (this.#state) {
      case "synSent":
      case "synReceived":
      case "established":
        this.#state = "remoteClose";
        break;
      case "localClose":
        this.#state = "closed";
        break;
      default:
        return false;
    }
    this.#remoteFin = true;
    this.#wakeReader?.();
    if (this.#state === "closed") this.#terminate("closed", null, false);
    return true;
  }

  /** @internal The peer reset the stream. */
  _onRst(): void {
    if (this.#finished) return;
    const error = new YamuxError("STREAM_RESET", `Cannot continue: stream ${this.id} was reset by the peer`, {
      streamId: this.id,
      remote: true,
    });
    this.#host.dropQueued(this.id, error);
    this.#terminate("reset", error, true);
  }

  /** @internal The session ended; fail whatever is unfinished. */
  _fail(error: YamuxError): void {
    if (this.#finished) return;
    this.#terminate("reset", error, false);
  }

  /** @internal Stop accepting writes (session closing); queued data still flushes. */
  _refuseWrites(error: YamuxError): void {
    if (this.#writeError === null) this.#writeError = error;
    this.#wakeWriters();
  }

  // ---- read side ----

  async #pull(controller: ReadableByteStreamController): Promise<void> {
    while (this.#chunks.length === 0) {
      if (this.#readError !== null) {
        controller.error(this.#readError);
        return;
      }
      if (this.#remoteFin || this.#readCancelled) {
        controller.close();
        controller.byobRequest?.respond(0);
        return;
      }
      await new Promise<void>((resolve) => this.#wakeReader = resolve);
      this.#wakeReader = null;
    }
    const request = controller.byobRequest;
    let taken = 0;
    if (request !== null && request.view !== null) {
      taken = this.#copyOut(
        new Uint8Array(request.view.buffer, request.view.byteOffset, request.view.byteLength),
      );
      request.respond(taken);
    } else {
      const head = this.#chunks.shift()!;
      const release = this.#releases.shift();
      taken = head.byteLength;
      // Enqueueing transfers the ArrayBuffer: leased or shared memory is handed out as a
      // copy; a chunk that owns its memory alone goes as is.
      const owned = release === undefined && head.byteOffset === 0 &&
        head.byteLength === head.buffer.byteLength;
      controller.enqueue(owned ? head : head.slice());
      release?.();
    }
    this.#buffered -= taken;
    this.#creditWindow();
  }

  #copyOut(view: Uint8Array): number {
    return _copyOutChunks(this.#chunks, this.#releases, view);
  }

  #dropChunks(): void {
    const releases = this.#releases;
    this.#chunks = [];
    this.#releases = [];
    this.#buffered = 0;
    for (const release of releases) release?.();
  }

  #cancelRead(): void {
    if (this.#readCancelled) return;
    this.#readCancelled = true;
    this.#dropChunks();
    this.#wakeReader?.();
    this.#creditWindow();
  }

  /**
   * Grants the peer window for what was consumed, once at least half a window is due
   * (hashicorp's rule; one update per half window keeps the frame count low).
   */
  #creditWindow(): void {
    if (this.#remoteFin || this.#finished) return;
    const max = this.#host.options.maxStreamWindow;
    const delta = max - this.#buffered - this.#recvWindow;
    if (delta < max / 2) return;
    this.#recvWindow += delta;
    this.#host.sendControl(TYPE_WINDOW_UPDATE, 0, this.id, delta);
  }

  // ---- write side ----

  #checkWritable(): void {
    if (this.#writeError !== null) throw this.#writeError;
    if (this.#localFin) {
      throw new YamuxError("STREAM_CLOSED", `Cannot write: stream ${this.id} is closed for writing`, {
        streamId: this.id,
      });
    }
  }

  async #write(chunk: Uint8Array): Promise<void> {
    this.#checkWritable();
    const total = chunk.byteLength;
    const maxFrame = this.#host.options.maxFrameSize;
    let offset = 0;
    while (offset < total) {
      while (this.#sendWindow === 0) {
        await new Promise<void>((resolve) => this.#windowWaiters.push(resolve));
        this.#checkWritable();
      }
      const n = Math.min(this.#sendWindow, maxFrame, total - offset);
      this.#sendWindow -= n;
      const frame = chunk.subarray(offset, offset + n);
      offset += n;
      if (offset < total) {
        this.#host.sendOnFlow(this.id, 0, 0, frame, undefined);
      } else {
        await new Promise<void>((resolve, reject) => {
          this.#host.sendOnFlow(this.id, 0, 0, frame, (error) => error ? reject(error) : resolve());
        });
      }
    }
  }

  #closeWrite(): Promise<void> {
    if (this.#closeWritePromise !== null) return this.#closeWritePromise;
    this.#closeWritePromise = (async () => {
      // A write may be mid-flight (stream.close() while a writer writes): FIN goes after it.
      if (this.#inflightWrite !== null) await this.#inflightWrite;
      if (this.#writeError !== null) throw this.#writeError;
      if (this.#localFin) return;
      this.#localFin = true;
      this.#wakeWriters();
      // The FIN is soft and the promise settles once it is queued (in order after the
      // data): an application that opens the next stream or writes elsewhere right away
      // shares one transport write with it. A session that can no longer write rejects now.
      let refused: YamuxError | null = null;
      this.#host.sendOnFlow(this.id, TYPE_WINDOW_UPDATE, FLAG_FIN, null, (e) => {
        if (e !== undefined) refused ??= e;
      }, true);
      switch (this.#state) {
        case "synSent":
        case "synReceived":
        case "established":
          this.#state = "localClose";
          this.#startCloseTimer();
          break;
        case "remoteClose":
          this.#state = "closed";
          this.#terminate("closed", null, false);
          break;
      }
      if (refused !== null) throw refused;
    })();
    return this.#closeWritePromise;
  }

  #startCloseTimer(): void {
    const timeout = this.#host.options.streamCloseTimeout;
    if (timeout === 0) return;
    this.#host.closeDeadlines.arm(this, timeout, () => {
      if (this.#finished) return;
      const error = new YamuxError(
        "TIMEOUT",
        `Cannot close stream ${this.id}: the peer did not close its side within ${timeout} ms`,
        { streamId: this.id },
      );
      this.#host.dropQueued(this.id, error);
      this.#host.sendControl(TYPE_WINDOW_UPDATE, FLAG_RST, this.id, 0);
      this.#terminate("reset", error, true);
    });
  }

  #wakeWriters(): void {
    const waiters = this.#windowWaiters;
    this.#windowWaiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * Moves to a final state. `dropBuffered` discards unread data (reset); otherwise the
   * reader still gets it before `error` (if any) surfaces.
   */
  #terminate(state: YamuxStreamState, error: YamuxError | null, dropBuffered: boolean): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#state = state;
    this.#host.openDeadlines.disarm(this);
    this.#host.closeDeadlines.disarm(this);
    if (error !== null) {
      if (dropBuffered) {
        this.#dropChunks();
        this.#readError = error;
      } else if (!this.#remoteFin) {
        this.#readError = error;
      }
      if (this.#writeError === null) this.#writeError = error;
      if (!this.#localFin) this.#writeController?.error(error);
    }
    this.#wakeReader?.();
    this.#wakeWriters();
    this.#host.forget(this);
    this.#resolveClosed();
  }
}
