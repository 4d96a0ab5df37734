/**
 * One HTTP/2 stream: headers, a body (Web Streams or direct I/O) with flow control, and
 * trailers.
 *
 * @module
 */

import type { DirectIo, DuplexConn } from "../streams/duplex.ts";
import { _copyOutChunks } from "../streams/_chunks.ts";
import { _Lazy } from "../streams/_lazy.ts";
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
 * Options for {@linkcode Http2Stream.setTrailers} and {@linkcode Http2Stream.sendTrailers}.
 *
 * @example
 * ```ts
 * import type { Http2TrailersOptions } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const options: Http2TrailersOptions = { sensitive: new Set(["x-token"]) };
 * assert.ok(options.sensitive?.has("x-token"));
 * ```
 */
export interface Http2TrailersOptions {
  /** Names encoded "never indexed" by HPACK (credentials). */
  sensitive?: ReadonlySet<string>;
}

/**
 * One HTTP/2 stream, on either side of a connection.
 *
 * - `headers` are the request headers: received ones on the server, sent ones on the
 *   client. `response` resolves with the response headers (received on the client, the
 *   ones passed to `respond()` on the server); informational 1xx responses are skipped.
 * - The body goes two ways, use one of them per direction:
 *   - Web Streams: `readable` delivers the peer's DATA (a byte stream: BYOB reads work);
 *     `writable` sends DATA, and closing it ends the stream (END_STREAM). Both are
 *     created on first access.
 *   - {@linkcode DirectIo}: `read(p)`, `write(p)` and `closeWrite()`, without the Web
 *     Streams machinery per chunk (what the gRPC layer uses).
 * - Flow-control credit goes back to the peer as the body is read, so a slow reader
 *   slows the sender and at most one stream window is buffered. Reads fail with an
 *   {@linkcode Http2Error} if the stream is reset or the connection fails before the peer
 *   ended it: a truncated body never looks like a clean end.
 * - Writes wait for credit; on the server they also wait for `respond()`. A write
 *   resolves once its bytes are handed to the connection's writer (small writes are
 *   copied and resolve at once), so the stream window and the writer pace a fast
 *   producer.
 * - `setTrailers()` makes the end of the stream a trailing HEADERS frame (gRPC status)
 *   instead of an empty DATA frame, even while a writer holds `writable`;
 *   `sendTrailers()` sets them and ends the stream at once.
 * - `trailers` resolves when the peer ends the stream: with its trailers, or `undefined`.
 * - `close()` ends the stream gracefully: everything queued is still sent. `reset(code)`
 *   sends RST_STREAM and drops what is queued, except after a complete response:
 *   `reset("NO_ERROR")` (RFC 9113 §8.1: "stop sending, the response is complete") first
 *   sends what is queued, END_STREAM included. `closed` settles when both directions are
 *   finished (never rejects).
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
 *
 * @example Direct I/O with trailers
 * ```ts
 * import { duplexPair, Http2Connection } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = duplexPair();
 * const client = Http2Connection.client(a);
 * const server = Http2Connection.server(b);
 * const serving = (async () => {
 *   const stream = await server.accept();
 *   const buffer = new Uint8Array(64);
 *   let length = 0;
 *   for (let n; (n = await stream.read(buffer.subarray(length))) !== null;) length += n;
 *   stream.respond({ ":status": "200" });
 *   stream.setTrailers({ "x-length": String(length) });
 *   await stream.write(buffer.subarray(0, length));
 *   await stream.closeWrite(); // the trailers carry END_STREAM
 * })();
 * const stream = await client.request({ ":method": "POST", ":scheme": "http", ":authority": "x", ":path": "/" });
 * await stream.write(new TextEncoder().encode("ping"));
 * await stream.closeWrite();
 * assert.equal(await new Response(stream.readable).text(), "ping");
 * assert.deepEqual(await stream.trailers, [["x-length", "4"]]);
 * await serving;
 * await client.close();
 * await server.closed;
 * ```
 */
export interface Http2Stream extends DuplexConn, DirectIo {
  /** The stream identifier (odd: opened by the client). */
  readonly id: number;
  /** The request headers. Read-only: lists sent again and again are shared and frozen. */
  readonly headers: Http2Headers;
  /** The final response headers (with `:status`). Read-only, like `headers`. */
  readonly response: Promise<Http2Headers>;
  /** The peer's trailers once it ends the stream, or `undefined` if it sent none. */
  readonly trailers: Promise<Http2Headers | undefined>;
  /** The lifecycle state. */
  readonly state: Http2StreamState;
  /** DATA from the peer (created on first access). */
  readonly readable: ReadableStream<Uint8Array>;
  /** DATA to the peer; closing it sends END_STREAM (created on first access). */
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
   * Reads up to `p.length` bytes of the peer's DATA into `p` (direct I/O).
   *
   * @param p destination
   * @returns bytes read, or `null` once the peer ended the stream and all was read
   * @throws {Http2Error} If the stream was reset or the connection failed first.
   */
  read(p: Uint8Array): Promise<number | null>;
  /**
   * Writes all of `p` as DATA (direct I/O); resolves once it is handed to the
   * connection, after which `p` may be reused. On the server, waits for `respond()`.
   *
   * @param p bytes to send
   * @returns `p.length`
   * @throws {Http2Error} If the stream was reset or the connection failed.
   * @throws {TypeError} If the stream already ended.
   */
  write(p: Uint8Array): Promise<number>;
  /**
   * Ends our side (END_STREAM) after everything written before: with the trailers from
   * `setTrailers()` if any, else on the last DATA frame. Idempotent.
   *
   * @returns resolves once END_STREAM is handed to the connection
   * @throws {Http2Error} If the stream was reset or the connection failed.
   */
  closeWrite(): Promise<void>;
  /**
   * Sets the trailers that end the stream, whoever ends it: closing `writable` (also
   * while another part of the program holds its writer), `closeWrite()` or `close()`.
   *
   * @param trailers the trailing fields (no pseudo-headers)
   * @param options HPACK options
   * @throws {TypeError} If the stream already ended or the trailers are invalid.
   */
  setTrailers(trailers: Http2HeadersInit, options?: Http2TrailersOptions): void;
  /**
   * Ends the stream with trailers, after the writes already accepted.
   * `writable` must not be locked (release its writer first, or use `setTrailers()`).
   *
   * @param trailers the trailing fields (no pseudo-headers)
   * @param options HPACK options
   * @returns resolves when the trailers are handed to the connection
   * @throws {TypeError} If the writable is locked, the stream already ended, a server
   * has not responded, or the trailers are invalid.
   */
  sendTrailers(trailers: Http2HeadersInit, options?: Http2TrailersOptions): Promise<void>;
  /**
   * Resets the stream with RST_STREAM: both directions fail at once and queued frames
   * are dropped, with one exception (RFC 9113 §8.1): `"NO_ERROR"` once our side is
   * complete (END_STREAM queued: a full response) sends what is queued first, so the
   * peer gets the whole response and is only told to stop sending.
   *
   * @param code the error code to send
   * @default code `"CANCEL"`
   */
  reset(code?: Http2ErrorCode): void;
  /**
   * Ends the stream gracefully: ends our side (END_STREAM, after everything queued)
   * unless a writer holds `writable` (then the stream is reset), and stops reading
   * (RST_STREAM if the peer has not ended yet: NO_ERROR from a server that has
   * responded, sent after the response, else CANCEL). A server stream that was never
   * answered is reset with CANCEL.
   *
   * @returns resolves when the stream is closed
   */
  close(): Promise<void>;
}

/** A writer item that settles once it is copied for the transport (or dropped). */
type _Settle = ((error?: Http2Error) => void) | undefined;

/** An item for the connection's writer. */
export type _Out =
  | { t: "frame"; bytes: Uint8Array }
  | {
    t: "headers";
    stream: _Stream;
    headers: Http2Headers;
    endStream: boolean;
    sensitive: ReadonlySet<string> | undefined;
    settle: _Settle;
  }
  | {
    t: "data";
    stream: _Stream;
    data: Uint8Array;
    endStream: boolean;
    settle: _Settle;
  }
  | { t: "rst"; stream: _Stream; code: Http2ErrorCode };

/** A data item (the tail of a stream's queue, which END_STREAM may join). */
export type _DataOut = Extract<_Out, { t: "data" }>;

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
  /** Bytes of the stream waiting in the writer's queue. */
  queuedBytes(stream: _Stream): number;
  /** The application consumed `n` received bytes (or they were discarded). */
  consumed(stream: _Stream, n: number): void;
  /**
   * Sends RST_STREAM and drops queued frames of the stream; with `afterQueued`, sends it
   * after them instead (a graceful NO_ERROR reset once the response is complete).
   */
  sendReset(stream: _Stream, code: Http2ErrorCode, afterQueued: boolean): void;
  /** The stream reached "closed" at the protocol level. */
  streamClosed(stream: _Stream): void;
  /** Bytes buffered for the application grew (+) or shrank (-). */
  buffered(delta: number): void;
}

/** Writes up to this size are copied when queued and resolve at once... */
const _EAGER_BYTES = 16 * 1024;
/** ...while no more than this is queued for the stream (above it, writes wait for the writer). */
const _EAGER_QUEUED = 64 * 1024;
const _EMPTY = new Uint8Array(0);
const _noop = () => {};

/** The implementation of {@linkcode Http2Stream}; the connection drives it. */
export class _Stream implements Http2Stream {
  readonly id: number;
  readonly closed: Promise<void>;
  readonly #host: _StreamHost;
  readonly #local: boolean;
  #headers: Http2Headers;
  readonly #response = new _Lazy<Http2Headers>();
  readonly #trailers = new _Lazy<Http2Headers | undefined>();
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
  /** Queued frames of this stream must not be written any more (reset, failure). */
  aborted = false;
  /** Our last queued DATA item while it waits in the writer's queue (END_STREAM may join it). */
  tail: _DataOut | undefined;
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

  // Receive side.
  #chunks: Uint8Array[] = [];
  /** Release functions of `#chunks` leased from the connection's read buffers. */
  #releases: ((() => void) | undefined)[] = [];
  #queued = 0;
  #readState: "open" | "closed" | "errored" = "open";
  #readError: Http2Error | undefined;
  #wakeReader: (() => void) | null = null;
  // Send side.
  #readyWaiters: PromiseWithResolvers<void>[] | undefined;
  #creditWaiter: (() => void) | null = null;
  #inflight: Promise<unknown> | undefined;
  #closeWrite: Promise<void> | undefined;
  #stallTimer: ReturnType<typeof setTimeout> | undefined;
  #signalCleanup: (() => void) | undefined;
  // Web Streams, created on first use: users of direct I/O never pay for them.
  #readable: ReadableStream<Uint8Array> | undefined;
  #readController: ReadableByteStreamController | undefined;
  #writable: WritableStream<Uint8Array> | undefined;
  #writeController: WritableStreamDefaultController | undefined;

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
      this.#noBody = _headerValue(headers, ":method") === "HEAD";
    } else {
      this.#setExpectedLength(headers);
    }
    this.closed = new Promise((resolve) => this.#closedResolve = resolve);
  }

  get readable(): ReadableStream<Uint8Array> {
    this.#readable ??= new ReadableStream({
      type: "bytes",
      start: (controller) => {
        this.#readController = controller;
      },
      pull: (controller) => this.#pull(controller),
      cancel: () => this.#cancelRead(),
    });
    return this.#readable;
  }

  get writable(): WritableStream<Uint8Array> {
    this.#writable ??= new WritableStream<Uint8Array>({
      start: (controller) => {
        this.#writeController = controller;
        if (this.aborted && this.#error !== undefined) controller.error(this.#error);
      },
      write: (chunk) => this.#write(chunk),
      close: () => this.closeWrite(),
      abort: () => this.reset("CANCEL"),
    });
    return this.#writable;
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
    const waiters = this.#readyWaiters;
    this.#readyWaiters = undefined;
    if (waiters !== undefined) { for (const waiter of waiters) waiter.resolve(); }
  }

  setTrailers(init: Http2HeadersInit, options: Http2TrailersOptions = {}): void {
    if (this.#endQueued || this.#closeWrite !== undefined) {
      throw new TypeError("Cannot set trailers: the stream already ended");
    }
    this.#trailersToSend = _normalizeHeaders(init, "trailers");
    this.#trailersSensitive = options.sensitive;
  }

  async sendTrailers(init: Http2HeadersInit, options: Http2TrailersOptions = {}): Promise<void> {
    if (this.#writable?.locked) throw new TypeError("Cannot send trailers: the writable is locked");
    if (this.#endQueued || this.#closeWrite !== undefined) {
      throw new TypeError("Cannot send trailers: the stream already ended");
    }
    if (!this.#responded) throw new TypeError("Cannot send trailers: respond() first");
    this.setTrailers(init, options);
    // Through the writable if it exists: its pending writes go first.
    await (this.#writable !== undefined ? this.#writable.close() : this.closeWrite());
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#readState === "errored") throw this.#readError!;
      if (this.#readState === "closed") return null;
      if (this.remoteEnded) {
        this.#readState = "closed";
        return null;
      }
      if (p.byteLength === 0) return 0;
      await new Promise<void>((resolve) => this.#wakeReader = resolve);
      this.#wakeReader = null;
    }
    return this.#copyOut(p);
  }

  async write(p: Uint8Array): Promise<number> {
    const pending = this.#write(p);
    this.#inflight = pending;
    try {
      await pending;
    } finally {
      if (this.#inflight === pending) this.#inflight = undefined;
    }
    return p.byteLength;
  }

  closeWrite(): Promise<void> {
    this.#closeWrite ??= this.#end();
    return this.#closeWrite;
  }

  reset(code: Http2ErrorCode = "CANCEL"): void {
    const error = new Http2Error(code, "Cannot continue: the stream was reset locally", {
      streamId: this.id,
    });
    if (this.done) {
      this.#fail(error, true, false);
      return;
    }
    // RFC 9113 §8.1: a complete response may be followed by RST_STREAM(NO_ERROR), which
    // asks the client to stop sending; the response itself must still arrive.
    const graceful = code === "NO_ERROR" && this.#endQueued && this.#error === undefined;
    this.#host.sendReset(this, code, graceful);
    this.#fail(error, true, graceful);
  }

  async close(): Promise<void> {
    // A server cannot end a stream it never answered: refuse it instead.
    if (!this.#local && !this.#responded && !this.#error) this.reset("CANCEL");
    if (!this.#endQueued && !this.#error) {
      if (this.#writable?.locked) {
        this.reset("CANCEL");
      } else {
        await this.closeWrite().catch(_noop);
      }
    }
    if (!this.remoteEnded && !this.done) {
      this.reset(!this.#local && this.#endQueued ? "NO_ERROR" : "CANCEL");
    } else if (!this.#readable?.locked) {
      this.#cancelRead();
    }
    if (this.done) await this.closed;
  }

  // ---- called by the connection ----

  /**
   * DATA arrived (already checked against windows). Throws a stream error if malformed.
   * `release` gives back the memory of `data` if it is leased from a read buffer.
   */
  onData(data: Uint8Array, endStream: boolean, release?: () => void): void {
    this.#receivedLength += data.byteLength;
    if (this.#local && !this.#gotResponse) {
      release?.();
      throw new Http2Error("PROTOCOL_ERROR", "Cannot accept DATA: no response headers yet", {
        streamId: this.id,
      });
    }
    if (this.#expectedLength >= 0 && this.#receivedLength > this.#expectedLength) {
      release?.();
      throw new Http2Error("PROTOCOL_ERROR", "Cannot accept DATA: more than content-length", {
        streamId: this.id,
      });
    }
    if (data.byteLength > 0) {
      if (this.#readState === "open") {
        this.#chunks.push(data);
        this.#releases.push(release);
        this.#queued += data.byteLength;
        this.#host.buffered(data.byteLength);
      } else {
        // Nobody reads any more (cancelled): return the credit at once.
        release?.();
        this.#host.consumed(this, data.byteLength);
      }
    } else {
      release?.();
    }
    if (endStream) this.#remoteEnd(undefined);
    this.#wake();
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
      this.#wake();
      return;
    }
    if (!endStream) throw malformed("trailers without END_STREAM");
    const problem = _checkHeaders(list, "trailers");
    if (problem !== undefined) throw malformed(problem);
    this.#gotTrailers = true;
    this.#remoteEnd(list);
    this.#wake();
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
    this.#fail(error, force, false);
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

  /**
   * `graceful`: a NO_ERROR reset after our complete response; what is queued is still
   * written (the writer does not drop frames of a stream that is not `aborted`).
   */
  #fail(error: Http2Error, force: boolean, graceful: boolean): void {
    if (this.#error === undefined) this.#error = error;
    if (!graceful) this.aborted = true;
    this.#clearStall();
    this.#response.reject(error);
    if (!this.remoteEnded || force) {
      this.#trailers.reject(error);
      if (this.#readState === "open") {
        this.#readState = "errored";
        this.#readError = error;
        this.#dropChunks();
        try {
          this.#readController?.error(error);
        } catch {
          // already closed by the stream machinery
        }
      }
    }
    const waiters = this.#readyWaiters;
    this.#readyWaiters = undefined;
    if (waiters !== undefined) { for (const waiter of waiters) waiter.reject(error); }
    if (!graceful && (!this.#endQueued || !this.localEnded)) {
      try {
        this.#writeController?.error(error);
      } catch {
        // already errored
      }
    }
    this.#endQueued = true;
    this.wakeCredit();
    this.#wake();
    this.markDone();
  }

  #dropChunks(): void {
    const n = this.#queued;
    const releases = this.#releases;
    this.#chunks = [];
    this.#releases = [];
    this.#queued = 0;
    for (const release of releases) release?.();
    if (n > 0) {
      this.#host.buffered(-n);
      this.#host.consumed(this, n);
    }
  }

  #wake(): void {
    const wake = this.#wakeReader;
    this.#wakeReader = null;
    wake?.();
  }

  /** Copies buffered bytes into `view`, releasing what is used up, and credits the peer. */
  #copyOut(view: Uint8Array): number {
    const taken = _copyOutChunks(this.#chunks, this.#releases, view);
    this.#consume(taken);
    return taken;
  }

  #consume(n: number): void {
    this.#queued -= n;
    this.#host.buffered(-n);
    this.#host.consumed(this, n);
  }

  async #pull(controller: ReadableByteStreamController): Promise<void> {
    while (this.#chunks.length === 0) {
      if (this.#readState === "errored") {
        controller.error(this.#readError);
        return;
      }
      if (this.#readState === "closed" || this.remoteEnded) {
        this.#readState = "closed";
        controller.close();
        controller.byobRequest?.respond(0);
        return;
      }
      await new Promise<void>((resolve) => this.#wakeReader = resolve);
      this.#wakeReader = null;
    }
    const request = controller.byobRequest;
    if (request !== null && request.view !== null) {
      request.respond(
        this.#copyOut(new Uint8Array(request.view.buffer, request.view.byteOffset, request.view.byteLength)),
      );
      return;
    }
    const head = this.#chunks.shift()!;
    const release = this.#releases.shift();
    const n = head.byteLength; // read before enqueue() detaches it
    // Enqueueing transfers the ArrayBuffer: leased or shared memory goes as a copy.
    const owned = release === undefined && head.byteOffset === 0 && n === head.buffer.byteLength;
    controller.enqueue(owned ? head : head.slice());
    release?.();
    this.#consume(n);
  }

  #cancelRead(): void {
    if (this.#readState !== "open") return;
    this.#readState = "closed";
    this.#dropChunks();
    this.#wake();
    if (!this.remoteEnded && !this.done) {
      this.reset(!this.#local && this.localEnded ? "NO_ERROR" : "CANCEL");
    }
  }

  #checkWritable(): void {
    if (this.#error !== undefined) throw this.#error;
    if (this.#endQueued || this.#closeWrite !== undefined) {
      throw new TypeError("Cannot write: the stream already ended");
    }
  }

  #waitReady(): Promise<void> {
    const waiter = Promise.withResolvers<void>();
    (this.#readyWaiters ??= []).push(waiter);
    return waiter.promise;
  }

  async #write(chunk: Uint8Array): Promise<void> {
    if (!this.#responded && this.#error === undefined) await this.#waitReady();
    this.#checkWritable();
    const total = chunk.byteLength;
    let offset = 0;
    while (offset < total) {
      const n = this.#takeCredit(total - offset);
      if (n === 0) {
        await this.#waitCredit();
        if (this.#error !== undefined) throw this.#error;
        continue;
      }
      if (n === total && n <= _EAGER_BYTES && this.#host.queuedBytes(this) + n <= _EAGER_QUEUED) {
        // Small: copy now and let the caller go on; its next frames (more data, the
        // trailers) then share the transport write.
        this.#pushData(chunk.slice(), undefined, n);
        return;
      }
      const data = chunk.subarray(offset, offset + n);
      offset += n;
      if (offset < total) {
        this.#pushData(data, undefined, n);
      } else {
        await new Promise<void>((resolve, reject) => {
          this.#pushData(data, (error) => error ? reject(error) : resolve(), n);
        });
      }
    }
  }

  #pushData(data: Uint8Array, settle: _Settle, size: number): void {
    const item: _DataOut = { t: "data", stream: this, data, endStream: false, settle };
    this.tail = item;
    this.#host.pushData(this, item, size);
  }

  #takeCredit(want: number): number {
    if (this.sendWindow <= 0) return 0;
    const n = this.#host.takeConnectionCredit(Math.min(want, this.sendWindow, this.#host.maxSendFrame()));
    if (n > 0) {
      this.sendWindow -= n;
      this.#clearStall();
    }
    return n;
  }

  #waitCredit(): Promise<void> {
    this.#startStall();
    return new Promise<void>((resolve) => {
      this.#creditWaiter = resolve;
      if (this.sendWindow > 0) this.#host.waitConnectionCredit(this);
    });
  }

  #startStall(): void {
    const timeout = this.#host.options.sendStallTimeout;
    if (timeout === 0 || this.#stallTimer !== undefined) return;
    this.#stallTimer = setTimeout(() => {
      this.#stallTimer = undefined;
      if (this.done) return;
      this.#host.sendReset(this, "CANCEL", false);
      this.#fail(
        new Http2Error("CANCEL", `Cannot write: the peer kept the send window at zero for ${timeout} ms`, {
          streamId: this.id,
        }),
        true,
        false,
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
    // A direct write may be in flight (closeWrite() without awaiting it): END_STREAM goes after it.
    if (this.#inflight !== undefined) await this.#inflight.catch(_noop);
    if (!this.#responded && this.#error === undefined) await this.#waitReady();
    if (this.#error !== undefined) throw this.#error;
    if (this.#endQueued) return; // ended with the headers
    this.#endQueued = true;
    const trailers = this.#trailersToSend;
    await new Promise<void>((resolve, reject) => {
      const settle = (error?: Http2Error) => error ? reject(error) : resolve();
      const tail = this.tail;
      if (trailers !== undefined) {
        this.#host.pushData(this, {
          t: "headers",
          stream: this,
          headers: trailers,
          endStream: true,
          sensitive: this.#trailersSensitive,
          settle,
        }, 0);
      } else if (tail !== undefined) {
        // The last DATA frame is still queued: END_STREAM rides on it.
        tail.endStream = true;
        const previous = tail.settle;
        tail.settle = previous === undefined ? settle : (error) => {
          previous(error);
          settle(error);
        };
      } else {
        this.#host.pushData(this, { t: "data", stream: this, data: _EMPTY, endStream: true, settle }, 0);
      }
    });
  }
}
