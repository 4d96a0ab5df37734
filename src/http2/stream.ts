/**
 * One HTTP/2 stream: headers, a body as Web Streams with flow control, and trailers.
 *
 * @module
 */

import type { DuplexConn } from "../streams/duplex.ts";
import { Http2Error, type Http2ErrorCode } from "./errors.ts";
import {
  _checkHeaders,
  _headerValue,
  _normalizeHeaders,
  type Http2Headers,
  type Http2HeadersInit,
} from "./headers.ts";
import type { ResolvedHttp2Options } from "./options.ts";

/**
 * Where a stream is in its lifecycle (RFC 9113 §5.1, seen from this endpoint).
 *
 * @example A request sent with END_STREAM is half-closed (local)
 * ```ts
 * import { duplexPair, Http2Connection, type Http2StreamState } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = duplexPair();
 * const client = Http2Connection.client(a);
 * const server = Http2Connection.server(b);
 * const stream = await client.request(
 *   { ":method": "GET", ":scheme": "http", ":authority": "x", ":path": "/" },
 *   { endStream: true },
 * );
 * await client.ping(); // the HEADERS frame has been written
 * const state: Http2StreamState = stream.state;
 * assert.equal(state, "half-closed-local");
 * (await server.accept()).respond({ ":status": "204" }, { endStream: true });
 * await stream.closed;
 * assert.equal(stream.state, "closed");
 * await client.close();
 * await server.closed;
 * ```
 */
export type Http2StreamState = "open" | "half-closed-local" | "half-closed-remote" | "closed";

/**
 * Options for {@linkcode Http2Stream.respond}.
 *
 * @example A response without body
 * ```ts
 * import { duplexPair, Http2Connection, type Http2RespondOptions } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = duplexPair();
 * const client = Http2Connection.client(a);
 * const server = Http2Connection.server(b);
 * const stream = await client.request(
 *   { ":method": "GET", ":scheme": "http", ":authority": "x", ":path": "/" },
 *   { endStream: true },
 * );
 * const options: Http2RespondOptions = { endStream: true };
 * (await server.accept()).respond({ ":status": "204" }, options);
 * assert.deepEqual(await stream.response, [[":status", "204"]]);
 * assert.equal(await stream.trailers, undefined);
 * await client.close();
 * await server.closed;
 * ```
 */
export interface Http2RespondOptions {
  /**
   * End the stream with the headers (a response without body or trailers).
   * @default {false}
   */
  endStream?: boolean;
  /** Names encoded "never indexed" by HPACK (credentials). */
  sensitive?: ReadonlySet<string>;
}

/**
 * One HTTP/2 stream, on either side of a connection.
 *
 * - `headers` are the request headers: received ones on the server, sent ones on the
 *   client. `response` resolves with the response headers (received on the client, the
 *   ones passed to `respond()` on the server); informational 1xx responses are skipped.
 * - `readable` delivers the peer's DATA (a byte stream: BYOB reads work). Flow-control
 *   credit goes back to the peer as it is read, so a slow reader slows the sender and at
 *   most one stream window is buffered. It errors with an {@linkcode Http2Error} if the
 *   stream is reset or the connection fails before the peer ended it: a truncated body
 *   never looks like a clean end.
 * - `writable` sends DATA; `close()` on it ends the stream (END_STREAM). On the server,
 *   writes wait for `respond()`. `write()` resolves once the bytes are handed to the
 *   connection's writer, so the stream window and the writer pace a fast producer.
 * - `sendTrailers()` ends the stream with a trailing HEADERS frame instead (gRPC status).
 * - `trailers` resolves when the peer ends the stream: with its trailers, or `undefined`.
 * - `reset(code)` sends RST_STREAM; `closed` settles when both directions are finished
 *   (never rejects).
 *
 * @example A request and its response over an in-memory pipe
 * ```ts
 * import { duplexPair, Http2Connection } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = duplexPair();
 * const client = Http2Connection.client(a);
 * const server = Http2Connection.server(b);
 * const serving = (async () => {
 *   const stream = await server.accept();
 *   const body = await new Response(stream.readable).text();
 *   stream.respond({ ":status": "200" });
 *   const writer = stream.writable.getWriter();
 *   await writer.write(new TextEncoder().encode(body.toUpperCase()));
 *   writer.releaseLock();
 *   await stream.sendTrailers({ "grpc-status": "0" });
 * })();
 * const stream = await client.request({
 *   ":method": "POST",
 *   ":scheme": "http",
 *   ":authority": "example",
 *   ":path": "/echo",
 * });
 * const writer = stream.writable.getWriter();
 * await writer.write(new TextEncoder().encode("hello"));
 * await writer.close();
 * const response = await stream.response;
 * assert.deepEqual(response, [[":status", "200"]]);
 * assert.equal(await new Response(stream.readable).text(), "HELLO");
 * assert.deepEqual(await stream.trailers, [["grpc-status", "0"]]);
 * await serving;
 * await client.close();
 * await server.closed;
 * ```
 */
export interface Http2Stream extends DuplexConn {
  /** The stream identifier (odd: opened by the client). */
  readonly id: number;
  /** The request headers. */
  readonly headers: Http2Headers;
  /** The final response headers (with `:status`). */
  readonly response: Promise<Http2Headers>;
  /** The peer's trailers once it ends the stream, or `undefined` if it sent none. */
  readonly trailers: Promise<Http2Headers | undefined>;
  /** The lifecycle state. */
  readonly state: Http2StreamState;
  /** DATA from the peer. */
  readonly readable: ReadableStream<Uint8Array>;
  /** DATA to the peer; closing it sends END_STREAM. */
  readonly writable: WritableStream<Uint8Array>;
  /** Settles when the stream is closed in both directions. Never rejects. */
  readonly closed: Promise<void>;
  /**
   * Sends the response headers (server only, once).
   *
   * Does nothing if the stream was already reset (a race the application cannot avoid);
   * writes then reject with the stream's error.
   *
   * @param headers must include `:status`
   * @param options END_STREAM and HPACK options
   * @throws {TypeError} If called on a client stream, twice, or with invalid headers.
   */
  respond(headers: Http2HeadersInit, options?: Http2RespondOptions): void;
  /**
   * Ends the stream with trailers, after the writes already accepted by `writable`.
   * `writable` must not be locked (release its writer first) nor closed.
   *
   * @param trailers the trailing fields (no pseudo-headers)
   * @returns resolves when the trailers are queued for sending
   * @throws {TypeError} If the writable is locked or closed or the trailers are invalid.
   */
  sendTrailers(trailers: Http2HeadersInit): Promise<void>;
  /**
   * Resets the stream with RST_STREAM: both directions fail at once.
   *
   * @param code the error code to send
   * @default code `"CANCEL"`
   */
  reset(code?: Http2ErrorCode): void;
  /**
   * Ends the stream gracefully: closes `writable` (END_STREAM) unless a writer holds it
   * (then the stream is reset), and stops reading (RST_STREAM if the peer has not ended
   * yet: NO_ERROR from a server that has responded, else CANCEL). A server stream that
   * was never answered is reset with CANCEL.
   *
   * @returns resolves when the stream is closed
   */
  close(): Promise<void>;
}

/** An item for the connection's writer. */
export type _Out =
  | { t: "frame"; bytes: Uint8Array }
  | {
    t: "headers";
    stream: _Stream;
    headers: Http2Headers;
    endStream: boolean;
    sensitive: ReadonlySet<string> | undefined;
    settle: ((error?: Http2Error) => void) | undefined;
  }
  | {
    t: "data";
    stream: _Stream;
    data: Uint8Array;
    endStream: boolean;
    settle: ((error?: Http2Error) => void) | undefined;
  };

/** What a stream needs from its connection. */
export interface _StreamHost {
  readonly role: "client" | "server";
  readonly options: ResolvedHttp2Options;
  /** Largest DATA payload to send now. */
  maxSendFrame(): number;
  /** Takes up to `max` bytes of connection send credit; 0 if none (then waits via `waitCredit`). */
  takeConnectionCredit(max: number): number;
  /** Wakes `stream` when connection credit appears. */
  waitConnectionCredit(stream: _Stream): void;
  pushControl(item: _Out): void;
  pushData(stream: _Stream, item: _Out, size: number): void;
  /** The application consumed `n` received bytes (or they were discarded). */
  consumed(stream: _Stream, n: number): void;
  /** Sends RST_STREAM and drops queued frames of the stream. */
  sendReset(stream: _Stream, code: Http2ErrorCode): void;
  /** The stream reached "closed" at the protocol level. */
  streamClosed(stream: _Stream): void;
  /** Bytes buffered for the application grew (+) or shrank (-). */
  buffered(delta: number): void;
}

function _settled<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  const { promise, resolve, reject } = Promise.withResolvers<T>();
  promise.catch(() => {}); // callers may never look; never an unhandled rejection
  return { promise, resolve, reject };
}

/** The implementation of {@linkcode Http2Stream}; the connection drives it. */
export class _Stream implements Http2Stream {
  readonly id: number;
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  readonly closed: Promise<void>;
  readonly #host: _StreamHost;
  readonly #local: boolean;
  #headers: Http2Headers;
  readonly #response = _settled<Http2Headers>();
  readonly #trailers = _settled<Http2Headers | undefined>();
  readonly #ready = _settled<void>();
  #closedResolve!: () => void;

  /** Credit the peer gave us (may go negative after a SETTINGS change). */
  sendWindow: number;
  /** Credit we gave the peer and it has not used. */
  recvWindow: number;
  /** Bytes consumed since our last stream WINDOW_UPDATE. */
  unacked = 0;
  /** Peer sent END_STREAM (or we stopped caring after a reset). */
  remoteEnded = false;
  /** Our END_STREAM was handed to the transport. */
  localEnded = false;
  /** True once closed at the protocol level (both ended, or reset). */
  done = false;
  /** Whether our HEADERS opening the stream were written (client streams). */
  opened = false;
  /** Whether we sent RST_STREAM (so late frames are ignored). */
  resetSent = false;
  #endQueued = false;
  #responded: boolean;
  #error: Http2Error | undefined;
  #trailersToSend: Http2Headers | undefined;
  #trailersSensitive: ReadonlySet<string> | undefined;
  #gotResponse = false;
  #gotTrailers = false;
  #expectedLength = -1;
  #receivedLength = 0;
  #noBody = false;

  #queue: Uint8Array[] = [];
  #queued = 0;
  #readController!: ReadableByteStreamController;
  #readState: "open" | "closed" | "errored" = "open";
  #pullWaiter: (() => void) | null = null;
  #writeController!: WritableStreamDefaultController;
  #creditWaiter: (() => void) | null = null;
  #stallTimer: ReturnType<typeof setTimeout> | undefined;
  #signalCleanup: (() => void) | undefined;

  /**
   * @param host the connection
   * @param id stream id
   * @param local whether this side opened the stream (client)
   * @param headers request headers
   * @param sendWindow the peer's initial window
   * @param recvWindow our initial window
   */
  constructor(
    host: _StreamHost,
    id: number,
    local: boolean,
    headers: Http2Headers,
    sendWindow: number,
    recvWindow: number,
  ) {
    this.#host = host;
    this.id = id;
    this.#local = local;
    this.#headers = headers;
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
    this.#responded = local;
    if (local) {
      this.#ready.resolve();
      this.#noBody = _headerValue(headers, ":method") === "HEAD";
    } else {
      this.#setExpectedLength(headers);
    }
    this.closed = new Promise((resolve) => this.#closedResolve = resolve);
    this.readable = new ReadableStream({
      type: "bytes",
      start: (controller) => {
        this.#readController = controller;
      },
      pull: (controller) => this.#pull(controller),
      cancel: () => this.#cancelRead(),
    });
    this.writable = new WritableStream<Uint8Array>({
      start: (controller) => {
        this.#writeController = controller;
      },
      write: (chunk) => this.#write(chunk),
      close: () => this.#end(),
      abort: () => this.reset("CANCEL"),
    });
  }

  get headers(): Http2Headers {
    return this.#headers;
  }

  get response(): Promise<Http2Headers> {
    return this.#response.promise;
  }

  get trailers(): Promise<Http2Headers | undefined> {
    return this.#trailers.promise;
  }

  get state(): Http2StreamState {
    if (this.done) return "closed";
    if (this.localEnded) return "half-closed-local";
    if (this.remoteEnded) return "half-closed-remote";
    return "open";
  }

  /** Bytes received and not yet read by the application. */
  get buffered(): number {
    return this.#queued;
  }

  /** The error that ended the stream, if any. */
  get error(): Http2Error | undefined {
    return this.#error;
  }

  /** Ties the stream to an AbortSignal: abort resets it with CANCEL. */
  bindSignal(signal: AbortSignal | undefined): void {
    if (signal === undefined) return;
    const onAbort = () => this.reset("CANCEL");
    signal.addEventListener("abort", onAbort, { once: true });
    this.#signalCleanup = () => signal.removeEventListener("abort", onAbort);
  }

  /** Marks the stream as created with END_STREAM on its headers (client `endStream`). */
  endWithHeaders(): void {
    this.#endQueued = true;
    this.writable.close().catch(() => {});
  }

  respond(init: Http2HeadersInit, options: Http2RespondOptions = {}): void {
    if (this.#local) throw new TypeError("Cannot respond: this is a client stream");
    if (this.#responded) throw new TypeError("Cannot respond: headers already sent");
    const headers = _normalizeHeaders(init, "response");
    const status = Number(_headerValue(headers, ":status"));
    if (status < 200) throw new TypeError("Cannot respond: informational responses are not supported");
    this.#responded = true;
    // The peer may reset a stream at any moment; answering it anyway is not a bug.
    if (this.#error) return;
    const endStream = options.endStream ?? false;
    if (endStream) this.#endQueued = true;
    this.#response.resolve(headers);
    this.#host.pushControl({
      t: "headers",
      stream: this,
      headers,
      endStream,
      sensitive: options.sensitive,
      settle: undefined,
    });
    this.#ready.resolve();
    if (endStream) this.writable.close().catch(() => {});
  }

  async sendTrailers(
    init: Http2HeadersInit,
    options: { sensitive?: ReadonlySet<string> } = {},
  ): Promise<void> {
    if (this.writable.locked) throw new TypeError("Cannot send trailers: the writable is locked");
    if (this.#endQueued) throw new TypeError("Cannot send trailers: the stream already ended");
    if (!this.#responded) throw new TypeError("Cannot send trailers: respond() first");
    this.#trailersToSend = _normalizeHeaders(init, "trailers");
    this.#trailersSensitive = options.sensitive;
    await this.writable.close();
  }

  reset(code: Http2ErrorCode = "CANCEL"): void {
    if (this.done) {
      this.#fail(
        new Http2Error(code, "Cannot continue: the stream was reset locally", { streamId: this.id }),
        true,
      );
      return;
    }
    this.#host.sendReset(this, code);
    this.#fail(
      new Http2Error(code, "Cannot continue: the stream was reset locally", { streamId: this.id }),
      true,
    );
  }

  async close(): Promise<void> {
    // A server cannot end a stream it never answered: refuse it instead.
    if (!this.#local && !this.#responded && !this.#error) this.reset("CANCEL");
    if (!this.#endQueued && !this.#error) {
      if (this.writable.locked) {
        this.reset("CANCEL");
      } else {
        await this.writable.close().catch(() => {});
      }
    }
    if (!this.remoteEnded && !this.done) {
      this.reset(!this.#local && this.#endQueued ? "NO_ERROR" : "CANCEL");
    } else if (this.#readState === "open" && !this.readable.locked) {
      await this.readable.cancel().catch(() => {});
    }
    if (this.done) await this.closed;
  }

  // ---- called by the connection ----

  /** DATA arrived (already checked against windows). Throws a stream error if malformed. */
  onData(data: Uint8Array, endStream: boolean): void {
    this.#receivedLength += data.byteLength;
    if (this.#local && !this.#gotResponse) {
      throw new Http2Error("PROTOCOL_ERROR", "Cannot accept DATA: no response headers yet", {
        streamId: this.id,
      });
    }
    if (this.#expectedLength >= 0 && this.#receivedLength > this.#expectedLength) {
      throw new Http2Error("PROTOCOL_ERROR", "Cannot accept DATA: more than content-length", {
        streamId: this.id,
      });
    }
    if (data.byteLength > 0) {
      if (this.#readState === "open") {
        this.#queue.push(data);
        this.#queued += data.byteLength;
        this.#host.buffered(data.byteLength);
      } else {
        // Nobody reads any more (cancelled): return the credit at once.
        this.#host.consumed(this, data.byteLength);
      }
    }
    if (endStream) this.#remoteEnd(undefined);
    this.#wakeReader();
  }

  /** A complete, decoded header block arrived on this stream. Throws a stream error if malformed. */
  onHeaders(list: Http2Headers, endStream: boolean): void {
    const malformed = (why: string) =>
      new Http2Error("PROTOCOL_ERROR", `Cannot accept headers: ${why}`, { streamId: this.id });
    if (this.#local && !this.#gotResponse) {
      const problem = _checkHeaders(list, "response");
      if (problem !== undefined) throw malformed(problem);
      const status = Number(_headerValue(list, ":status"));
      if (status < 200) {
        if (endStream || status === 101) throw malformed(`informational status ${status}`);
        return; // 1xx: skip, the final response follows
      }
      this.#gotResponse = true;
      if (this.#noBody || status === 204 || status === 304) this.#noBody = true;
      else this.#setExpectedLength(list);
      this.#response.resolve(list);
      if (endStream) this.#remoteEnd(undefined);
      this.#wakeReader();
      return;
    }
    if (!endStream) throw malformed("trailers without END_STREAM");
    const problem = _checkHeaders(list, "trailers");
    if (problem !== undefined) throw malformed(problem);
    this.#gotTrailers = true;
    this.#remoteEnd(list);
    this.#wakeReader();
  }

  /** Our END_STREAM went out. */
  onLocalEnd(): void {
    this.localEnded = true;
    this.#checkDone();
  }

  /** Stream-level WINDOW_UPDATE or a SETTINGS delta. */
  addSendWindow(delta: number): void {
    this.sendWindow += delta;
    if (this.sendWindow > 0) this.wakeCredit();
  }

  /** Wakes a write waiting for credit. */
  wakeCredit(): void {
    const wake = this.#creditWaiter;
    this.#creditWaiter = null;
    wake?.();
  }

  /**
   * Fails the stream. With `force`, even a body the peer finished is dropped (local
   * reset); otherwise a completely received body stays readable.
   */
  fail(error: Http2Error, force = false): void {
    this.#fail(error, force);
  }

  /** Closes the stream at the protocol level without a reset (connection-level cleanup). */
  markDone(): void {
    if (this.done) return;
    this.done = true;
    this.#clearStall();
    this.#signalCleanup?.();
    this.#host.streamClosed(this);
    this.#closedResolve();
  }

  // ---- internals ----

  #setExpectedLength(list: Http2Headers): void {
    const value = _headerValue(list, "content-length");
    if (value !== undefined && /^[0-9]{1,15}$/.test(value)) this.#expectedLength = Number(value);
  }

  #remoteEnd(trailers: Http2Headers | undefined): void {
    if (this.#expectedLength >= 0 && this.#receivedLength !== this.#expectedLength && !this.#noBody) {
      throw new Http2Error(
        "PROTOCOL_ERROR",
        "Cannot accept END_STREAM: body length differs from content-length",
        {
          streamId: this.id,
        },
      );
    }
    this.remoteEnded = true;
    if (!this.#gotTrailers) this.#gotTrailers = trailers !== undefined;
    this.#trailers.resolve(trailers);
    this.#checkDone();
  }

  #checkDone(): void {
    if (this.localEnded && this.remoteEnded) this.markDone();
  }

  #fail(error: Http2Error, force: boolean): void {
    const first = this.#error === undefined;
    if (first) this.#error = error;
    this.#clearStall();
    this.#response.reject(error);
    if (!this.remoteEnded || force) {
      this.#trailers.reject(error);
      if (this.#readState === "open") {
        this.#readState = "errored";
        this.#dropQueue();
        try {
          this.#readController.error(error);
        } catch {
          // already closed by the stream machinery
        }
      }
    }
    this.#ready.reject(error);
    if (!this.#endQueued || !this.localEnded) {
      try {
        this.#writeController.error(error);
      } catch {
        // already errored
      }
    }
    this.#endQueued = true;
    this.wakeCredit();
    const pull = this.#pullWaiter;
    this.#pullWaiter = null;
    pull?.();
    this.markDone();
  }

  #dropQueue(): void {
    if (this.#queued > 0) {
      const n = this.#queued;
      this.#queue = [];
      this.#queued = 0;
      this.#host.buffered(-n);
      this.#host.consumed(this, n);
    }
  }

  #wakeReader(): void {
    const wake = this.#pullWaiter;
    if (wake === null) return;
    if (this.#deliver(this.#readController)) {
      this.#pullWaiter = null;
      wake();
    }
  }

  #pull(controller: ReadableByteStreamController): Promise<void> | void {
    if (this.#deliver(controller)) return;
    return new Promise((resolve) => this.#pullWaiter = resolve);
  }

  /** Serves one pending read; false if there is nothing to give yet. */
  #deliver(controller: ReadableByteStreamController): boolean {
    if (this.#readState !== "open") return true;
    const head = this.#queue[0];
    if (head !== undefined) {
      const request = controller.byobRequest;
      let n: number;
      if (request !== null && request.view !== null) {
        const view = new Uint8Array(request.view.buffer, request.view.byteOffset, request.view.byteLength);
        n = Math.min(view.byteLength, head.byteLength);
        view.set(head.subarray(0, n));
        if (n === head.byteLength) this.#queue.shift();
        else this.#queue[0] = head.subarray(n);
        request.respond(n);
      } else {
        n = head.byteLength;
        this.#queue.shift();
        controller.enqueue(head);
      }
      this.#queued -= n;
      this.#host.buffered(-n);
      this.#host.consumed(this, n);
      return true;
    }
    if (this.remoteEnded) {
      this.#readState = "closed";
      controller.close();
      controller.byobRequest?.respond(0);
      return true;
    }
    return false;
  }

  #cancelRead(): void {
    if (this.#readState !== "open") return;
    this.#readState = "closed";
    this.#dropQueue();
    if (!this.remoteEnded && !this.done) {
      this.reset(!this.#local && this.localEnded ? "NO_ERROR" : "CANCEL");
    }
  }

  async #write(chunk: Uint8Array): Promise<void> {
    await this.#ready.promise;
    if (this.#error) throw this.#error;
    const total = chunk.byteLength;
    let offset = 0;
    while (offset < total) {
      const n = await this.#credit(total - offset);
      const data = chunk.subarray(offset, offset + n);
      offset += n;
      if (offset < total) {
        this.#host.pushData(this, { t: "data", stream: this, data, endStream: false, settle: undefined }, n);
      } else {
        await new Promise<void>((resolve, reject) => {
          this.#host.pushData(this, {
            t: "data",
            stream: this,
            data,
            endStream: false,
            settle: (error) => error ? reject(error) : resolve(),
          }, n);
        });
      }
    }
  }

  async #credit(want: number): Promise<number> {
    for (;;) {
      if (this.#error) throw this.#error;
      if (this.sendWindow > 0) {
        const n = this.#host.takeConnectionCredit(Math.min(want, this.sendWindow, this.#host.maxSendFrame()));
        if (n > 0) {
          this.sendWindow -= n;
          this.#clearStall();
          return n;
        }
      }
      this.#startStall();
      await new Promise<void>((resolve) => {
        this.#creditWaiter = resolve;
        if (this.sendWindow > 0) this.#host.waitConnectionCredit(this);
      });
    }
  }

  #startStall(): void {
    const timeout = this.#host.options.sendStallTimeout;
    if (timeout === 0 || this.#stallTimer !== undefined) return;
    this.#stallTimer = setTimeout(() => {
      this.#stallTimer = undefined;
      if (this.done) return;
      this.#host.sendReset(this, "CANCEL");
      this.#fail(
        new Http2Error("CANCEL", `Cannot write: the peer kept the send window at zero for ${timeout} ms`, {
          streamId: this.id,
        }),
        true,
      );
    }, timeout);
  }

  #clearStall(): void {
    if (this.#stallTimer !== undefined) {
      clearTimeout(this.#stallTimer);
      this.#stallTimer = undefined;
    }
  }

  async #end(): Promise<void> {
    await this.#ready.promise;
    if (this.#error) throw this.#error;
    if (this.#endQueued && this.#trailersToSend === undefined) return; // ended with the headers
    this.#endQueued = true;
    const trailers = this.#trailersToSend;
    await new Promise<void>((resolve, reject) => {
      const settle = (error?: Http2Error) => error ? reject(error) : resolve();
      if (trailers !== undefined) {
        this.#host.pushData(this, {
          t: "headers",
          stream: this,
          headers: trailers,
          endStream: true,
          sensitive: this.#trailersSensitive,
          settle,
        }, 0);
      } else {
        this.#host.pushData(this, {
          t: "data",
          stream: this,
          data: new Uint8Array(0),
          endStream: true,
          settle,
        }, 0);
      }
    });
  }
}
