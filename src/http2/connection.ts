/**
 * An HTTP/2 connection (RFC 9113) over any duplex, in either role.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import { ByteReader } from "../streams/byte_reader.ts";
import { type Duplex, hasDirectIo } from "../streams/duplex.ts";
import { FairQueue } from "../streams/fair_queue.ts";
import { _RateLimit } from "./_rate_limit.ts";
import { errorCodeName, Http2Error, type Http2ErrorCode } from "./errors.ts";
import {
  CONNECTION_PREFACE,
  decodeFrame,
  decodeFrameHeader,
  DEFAULT_HEADER_TABLE_SIZE,
  DEFAULT_INITIAL_WINDOW_SIZE,
  DEFAULT_MAX_FRAME_SIZE,
  encodeGoAway,
  encodePing,
  encodeRstStream,
  encodeSettings,
  encodeWindowUpdate,
  type Frame,
  FRAME_HEADER_SIZE,
  FrameFlag,
  type FrameHeader,
  FrameType,
  MAX_STREAM_ID,
  MAX_WINDOW_SIZE,
  SettingId,
} from "./frame.ts";
import { _checkHeaders, _normalizeHeaders, type Http2Headers, type Http2HeadersInit } from "./headers.ts";
import { HpackDecoder } from "./hpack/decoder.ts";
import { HpackEncoder } from "./hpack/encoder.ts";
import { HpackError } from "./hpack/errors.ts";
import { type Http2ConnectionOptions, type ResolvedHttp2Options, resolveHttp2Options } from "./options.ts";
import { type _Out, _Stream, type _StreamHost, type Http2Stream } from "./stream.ts";

/**
 * The peer's SETTINGS as currently in force (RFC 9113 §6.5.2).
 *
 * @example
 * ```ts
 * import { duplexPair, Http2Connection, type Http2Settings } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = duplexPair();
 * const client = Http2Connection.client(a);
 * const server = Http2Connection.server(b);
 * await client.ping(); // the server's SETTINGS have arrived
 * const settings: Http2Settings = client.remoteSettings;
 * assert.equal(settings.maxConcurrentStreams, 256);
 * assert.equal(settings.enablePush, false);
 * await client.close();
 * await server.closed;
 * ```
 */
export interface Http2Settings {
  /** SETTINGS_HEADER_TABLE_SIZE. */
  headerTableSize: number;
  /** SETTINGS_ENABLE_PUSH. */
  enablePush: boolean;
  /** SETTINGS_MAX_CONCURRENT_STREAMS (`Infinity` until set). */
  maxConcurrentStreams: number;
  /** SETTINGS_INITIAL_WINDOW_SIZE. */
  initialWindowSize: number;
  /** SETTINGS_MAX_FRAME_SIZE. */
  maxFrameSize: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE (`Infinity` until set). */
  maxHeaderListSize: number;
}

/**
 * Counters from {@linkcode Http2Connection.stats}.
 *
 * @example
 * ```ts
 * import { duplexPair, Http2Connection, type Http2ConnectionStats } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = duplexPair();
 * const client = Http2Connection.client(a);
 * const server = Http2Connection.server(b);
 * await client.ping();
 * const stats: Http2ConnectionStats = client.stats();
 * assert.equal(stats.activeStreams, 0);
 * assert.ok(stats.framesSent >= 3); // SETTINGS, WINDOW_UPDATE, PING, ...
 * await client.close();
 * await server.closed;
 * ```
 */
export interface Http2ConnectionStats {
  /** Streams opened by either side since the start. */
  streamsOpened: number;
  /** Streams not yet closed. */
  activeStreams: number;
  /** Frames written. */
  framesSent: number;
  /** Frames read. */
  framesReceived: number;
  /** Transport writes (each carries one or more coalesced frames). */
  transportWrites: number;
  /** DATA payload bytes written. */
  bytesSent: number;
  /** DATA payload bytes read. */
  bytesReceived: number;
  /** Received DATA bytes waiting for the application to read them. */
  bufferedBytes: number;
  /** The largest `bufferedBytes` seen. */
  peakBufferedBytes: number;
  /** Connection-level send credit the peer gave us. */
  sendWindow: number;
  /** Connection-level credit we gave the peer and it has not used. */
  receiveWindow: number;
  /** Frames waiting for the writer. */
  queuedFrames: number;
  /** The last measured PING round trip in milliseconds, if any. */
  rtt: number | undefined;
}

/**
 * Options for {@linkcode Http2Connection.request}.
 *
 * @example Abort a request
 * ```ts
 * import { duplexPair, Http2Connection, type Http2RequestOptions } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = duplexPair();
 * const client = Http2Connection.client(a);
 * const server = Http2Connection.server(b);
 * const controller = new AbortController();
 * const options: Http2RequestOptions = { endStream: true, signal: controller.signal };
 * const stream = await client.request(
 *   { ":method": "GET", ":scheme": "http", ":authority": "x", ":path": "/" },
 *   options,
 * );
 * controller.abort();
 * assert.equal((await stream.response.catch((e) => e)).code, "CANCEL");
 * await client.close();
 * await server.closed;
 * ```
 */
export interface Http2RequestOptions {
  /**
   * Send END_STREAM with the headers (a request without body).
   * @default {false}
   */
  endStream?: boolean;
  /** Aborting resets the stream with CANCEL (and cancels a wait for a stream slot). */
  signal?: AbortSignal;
  /** Names encoded "never indexed" by HPACK (credentials). */
  sensitive?: ReadonlySet<string>;
}

/**
 * Options for {@linkcode Http2Connection.accept} and {@linkcode Http2Connection.ping}.
 *
 * @example Stop waiting for a stream
 * ```ts
 * import { duplexPair, Http2Connection, type Http2WaitOptions } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = duplexPair();
 * const client = Http2Connection.client(a);
 * const server = Http2Connection.server(b);
 * const options: Http2WaitOptions = { signal: AbortSignal.timeout(10) };
 * await assert.rejects(server.accept(options));
 * await client.close();
 * await server.closed;
 * ```
 */
export interface Http2WaitOptions {
  /** Aborting rejects the wait with the signal's reason. */
  signal?: AbortSignal;
}

/** How much a writer loop coalesces into one transport write. */
const _BATCH_BYTES = 256 * 1024;
/** DATA payloads at least this large end a batch and are copied aligned. */
const _LARGE_PAYLOAD = 4096;
/** Copies run fast when source and destination agree modulo this. */
const _ALIGN = 32;
/** How many closed stream ids we remember to tell late frames from bogus ones. */
const _CLOSED_MEMORY = 1024;
/**
 * Read-ahead buffer of the read loop: large transport reads matter most on the receive
 * path, and DATA payloads up to half of it stay in it as leases (no allocation per frame).
 */
const _READ_BUFFER_BYTES = 256 * 1024;
/** Non-DATA payloads up to this size are parsed in place in the read buffer. */
const _VIEW_MAX_BYTES = 16 * 1024;
/** DATA payloads at least this large are leased from the read buffer, smaller ones copied. */
const _LEASE_MIN_BYTES = 16 * 1024;
const _EMPTY = new Uint8Array(0);

interface _Block {
  streamId: number;
  endStream: boolean;
  selfDependent: boolean;
  fragments: Uint8Array[];
  size: number;
  frames: number;
}

interface _Ping {
  start: number;
  resolve: (rtt: number) => void;
  reject: (error: unknown) => void;
  cleanup: () => void;
}

function _abortable<T>(
  signal: AbortSignal | undefined,
  register: (settle: {
    resolve: (value: T) => void;
    reject: (error: unknown) => void;
  }) => () => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let unregister = () => {};
    const onAbort = () => {
      unregister();
      reject(signal!.reason);
    };
    unregister = register({
      resolve: (value) => {
        signal?.removeEventListener("abort", onAbort);
        resolve(value);
      },
      reject: (error) => {
        signal?.removeEventListener("abort", onAbort);
        reject(error);
      },
    });
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * An HTTP/2 connection over any {@linkcode Duplex}: TCP, TLS, a yamux stream or an
 * in-memory pipe. One implementation serves both roles.
 *
 * - One read loop parses frames and never awaits application code: DATA goes into
 *   per-stream buffers bounded by the stream window, and credit is returned (WINDOW_UPDATE)
 *   as the application reads, once half a window is consumed.
 * - One writer loop owns the transport: control frames (SETTINGS, PING, WINDOW_UPDATE,
 *   RST_STREAM, GOAWAY, HEADERS) go first, DATA is shared between streams by deficit round
 *   robin, and frames are coalesced into one transport write (up to 256 KiB). When only
 *   stream frames (HEADERS, DATA, trailers) wake it, the writer waits for the end of the
 *   current event-loop turn (`setImmediate`, microseconds), so a response's HEADERS, DATA
 *   and trailers, or a request's HEADERS and body, leave in one write and wake the peer
 *   once; PING answers, SETTINGS ACKs and WINDOW_UPDATEs leave at once. Header blocks are
 *   HPACK-encoded as they are written, so they reach the wire in encoding order.
 * - Bad input is answered as RFC 9113 says: stream errors reset that stream only,
 *   connection errors send GOAWAY with the right code and last-stream-id. Floods (rapid
 *   reset, CONTINUATION, PING/SETTINGS, empty DATA) end with GOAWAY(ENHANCE_YOUR_CALM).
 * - If the transport is lost, every pending read, write and wait rejects with an
 *   {@linkcode Http2Error}; nothing is ever left unhandled.
 *
 * @example Client and server over an in-memory pipe
 * ```ts
 * import { duplexPair, Http2Connection } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = duplexPair();
 * await using client = Http2Connection.client(a);
 * const server = Http2Connection.server(b);
 * const serving = (async () => {
 *   for await (const stream of server) {
 *     stream.respond({ ":status": "200", "content-type": "text/plain" });
 *     const writer = stream.writable.getWriter();
 *     await writer.write(new TextEncoder().encode(`you asked for ${stream.headers[3]![1]}`));
 *     await writer.close();
 *   }
 * })();
 * const stream = await client.request(
 *   { ":method": "GET", ":scheme": "http", ":authority": "example", ":path": "/hello" },
 *   { endStream: true },
 * );
 * assert.equal((await stream.response)[0]![1], "200");
 * assert.equal(await new Response(stream.readable).text(), "you asked for /hello");
 * assert.ok((await client.ping()) >= 0);
 * await client.close();
 * await serving;
 * ```
 */
export class Http2Connection implements AsyncIterable<Http2Stream>, AsyncDisposable {
  readonly #role: "client" | "server";
  readonly #options: ResolvedHttp2Options;
  readonly #duplex: Duplex;
  readonly #queue: FairQueue<_Out>;
  readonly #encoder: HpackEncoder;
  readonly #batchParts: Uint8Array[] = [];
  readonly #batchHeads: number[] = [];
  readonly #batchIds: number[] = [];
  readonly #batchSettles: ((error?: Http2Error) => void)[] = [];
  /** The last batch held control frames only (see the writer). */
  #controlOnly = false;
  readonly #decoder: HpackDecoder;
  readonly #streams = new Map<number, _Stream>();
  readonly #closedIds = new Map<number, "reset" | "closed">();
  /** The ids in `#closedIds`, oldest overwritten first. */
  readonly #closedRing: number[] = [];
  #closedCount = 0;
  readonly #remote: Http2Settings = {
    headerTableSize: DEFAULT_HEADER_TABLE_SIZE,
    enablePush: true,
    maxConcurrentStreams: Infinity,
    initialWindowSize: DEFAULT_INITIAL_WINDOW_SIZE,
    maxFrameSize: DEFAULT_MAX_FRAME_SIZE,
    maxHeaderListSize: Infinity,
  };
  readonly #host: _StreamHost;
  readonly #resetLimit: _RateLimit;
  readonly #emptyLimit: _RateLimit;
  /** Settles when the connection and its transport are closed. Never rejects; see `error`. */
  readonly closed: Promise<void>;
  #closedResolve!: () => void;

  #nextLocalId: number;
  #lastPeerId = 0;
  #localActive = 0;
  #peerActive = 0;
  #connSendWindow = DEFAULT_INITIAL_WINDOW_SIZE;
  #connRecvWindow: number;
  #connUnacked = 0;
  #settingsAcked = false;
  #gotSettings = false;
  #block: _Block | undefined;
  #controlCount = 0;

  #error: Http2Error | undefined;
  #goAwaySent: number | undefined;
  /** A server's first GOAWAY (2^31-1) is out; the final one follows a PING round trip. */
  #draining = false;
  #goAwayReceived: { lastStreamId: number; code: Http2ErrorCode } | undefined;
  #finishing = false;
  #writerClosing = false;
  #writerWake: (() => void) | null = null;
  #writerDone: Promise<void>;
  #readerDone: Promise<void>;
  #reader: ByteReader | undefined;

  #acceptQueue: _Stream[] = [];
  #acceptWaiters = new Set<{ resolve: (s: _Stream) => void; reject: (e: unknown) => void }>();
  #slotWaiters = new Set<() => void>();
  #creditWaiters = new Set<_Stream>();
  #pings = new Map<string, _Ping>();
  #pingCounter = 0;
  #rtt: number | undefined;
  /** Something arrived since the last keep-alive tick (a flag: no clock read per frame). */
  #receivedSinceTick = true;
  #keepAlivePending = false;

  #settingsTimer: ReturnType<typeof setTimeout> | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #keepAliveTimer: ReturnType<typeof setInterval> | undefined;

  #streamsOpened = 0;
  #framesSent = 0;
  #framesReceived = 0;
  #transportWrites = 0;
  #bytesSent = 0;
  #bytesReceived = 0;
  #buffered = 0;
  #peakBuffered = 0;

  /**
   * Starts the client side: sends the preface and SETTINGS at once.
   *
   * @param duplex the transport; the connection owns it from now on
   * @param options settings, limits and timeouts
   * @returns the connection
   * @throws {RangeError} If an option is out of range.
   */
  static client(duplex: Duplex, options: Http2ConnectionOptions = {}): Http2Connection {
    return new Http2Connection("client", duplex, resolveHttp2Options(options));
  }

  /**
   * Starts the server side: sends SETTINGS and expects the client preface.
   *
   * @param duplex the transport; the connection owns it from now on
   * @param options settings, limits and timeouts
   * @returns the connection
   * @throws {RangeError} If an option is out of range.
   */
  static server(duplex: Duplex, options: Http2ConnectionOptions = {}): Http2Connection {
    return new Http2Connection("server", duplex, resolveHttp2Options(options));
  }

  private constructor(role: "client" | "server", duplex: Duplex, options: ResolvedHttp2Options) {
    this.#role = role;
    this.#duplex = duplex;
    this.#options = options;
    this.#nextLocalId = role === "client" ? 1 : 2;
    this.#queue = new FairQueue<_Out>({ quantum: options.maxSendFrameSize });
    this.#encoder = new HpackEncoder({
      maxTableSize: options.maxEncoderTableSize,
      huffman: options.huffman ? "auto" : "never",
    });
    this.#decoder = new HpackDecoder({
      // Until our SETTINGS are acknowledged the peer may use the protocol's 4096.
      maxTableSize: Math.max(options.headerTableSize, DEFAULT_HEADER_TABLE_SIZE),
      maxHeaderListSize: options.maxHeaderListSize,
      // A string cannot be longer than its block (Huffman expands at most 8/5); bounding it by the
      // block keeps an oversized list a recoverable stream error (HEADER_LIST_TOO_LARGE).
      maxStringLength: 2 * options.maxHeaderBlockSize,
    });
    this.#resetLimit = new _RateLimit(options.resetRateLimit);
    this.#emptyLimit = new _RateLimit(options.emptyFrameRateLimit);
    this.#connRecvWindow = options.connectionWindowSize;
    this.closed = new Promise((resolve) => this.#closedResolve = resolve);
    this.#host = this.#makeHost();

    // Preface, SETTINGS and the connection window grant leave in the first write.
    const settings: [number, number][] = [
      [SettingId.ENABLE_PUSH, 0],
      [SettingId.MAX_CONCURRENT_STREAMS, options.maxConcurrentStreams],
      [SettingId.INITIAL_WINDOW_SIZE, options.initialWindowSize],
      [SettingId.MAX_HEADER_LIST_SIZE, options.maxHeaderListSize],
    ];
    if (options.headerTableSize !== DEFAULT_HEADER_TABLE_SIZE) {
      settings.unshift([SettingId.HEADER_TABLE_SIZE, options.headerTableSize]);
    }
    if (options.maxFrameSize !== DEFAULT_MAX_FRAME_SIZE) {
      settings.push([SettingId.MAX_FRAME_SIZE, options.maxFrameSize]);
    }
    if (role === "client") this.#queueFrame(CONNECTION_PREFACE);
    this.#queueFrame(encodeSettings(settings));
    const grant = options.connectionWindowSize - DEFAULT_INITIAL_WINDOW_SIZE;
    if (grant > 0) this.#queueFrame(encodeWindowUpdate(0, grant));

    this.#settingsTimer = setTimeout(() => {
      this.#settingsTimer = undefined;
      this.#connectionError(
        new Http2Error("SETTINGS_TIMEOUT", "Cannot continue: SETTINGS not acknowledged in time"),
      );
    }, options.settingsTimeout);
    if (options.keepAliveInterval > 0) {
      this.#keepAliveTimer = setInterval(() => this.#keepAlive(), options.keepAliveInterval);
    }
    this.#armIdle();
    this.#writerDone = this.#writeLoop();
    this.#readerDone = this.#readLoop();
  }

  /** "client" or "server". */
  get role(): "client" | "server" {
    return this.#role;
  }

  /** The peer's settings in force. */
  get remoteSettings(): Readonly<Http2Settings> {
    return { ...this.#remote };
  }

  /** Why the connection ended, if it failed (`undefined` while open or after a clean close). */
  get error(): Http2Error | undefined {
    return this.#error;
  }

  /**
   * Opens a stream and sends the request headers (client only). Waits while the peer's
   * SETTINGS_MAX_CONCURRENT_STREAMS are in use.
   *
   * @param headers `:method`, `:scheme`, `:authority` (or `host`), `:path` and fields
   * @param options END_STREAM, abort signal, HPACK options
   * @returns the stream; its `response` resolves when the peer answers
   * @throws {TypeError} On the server side or with invalid headers.
   * @throws {Http2Error} If the connection is closing or failed (`REFUSED_STREAM` after a
   * GOAWAY: safe to retry on a new connection).
   */
  async request(headers: Http2HeadersInit, options: Http2RequestOptions = {}): Promise<Http2Stream> {
    if (this.#role !== "client") throw new TypeError("Cannot open a request: this is the server side");
    const list = _normalizeHeaders(headers, "request");
    const { signal } = options;
    signal?.throwIfAborted();
    while (this.#localActive >= this.#remote.maxConcurrentStreams && this.#canOpen() === undefined) {
      await _abortable<void>(signal, ({ resolve }) => {
        const wake = () => resolve();
        this.#slotWaiters.add(wake);
        return () => this.#slotWaiters.delete(wake);
      });
    }
    const refusal = this.#canOpen();
    if (refusal !== undefined) throw refusal;
    const id = this.#nextLocalId;
    this.#nextLocalId += 2;
    const stream = new _Stream(
      this.#host,
      id,
      true,
      list,
      this.#remote.initialWindowSize,
      this.#initialRecvWindow(),
    );
    this.#streams.set(id, stream);
    this.#localActive++;
    this.#streamsOpened++;
    this.#disarmIdle();
    const endStream = options.endStream ?? false;
    this.#pushControl({
      t: "headers",
      stream,
      headers: list,
      endStream,
      sensitive: options.sensitive,
      settle: undefined,
    });
    if (endStream) stream.endWithHeaders();
    stream.bindSignal(signal);
    return stream;
  }

  /**
   * Waits for the next stream the peer opens (server only).
   *
   * @param options abort signal
   * @returns the stream, with its request `headers`
   * @throws {Http2Error} Once no more streams will come (code `NO_ERROR` after a graceful
   * close, else the connection's error).
   */
  accept(options: Http2WaitOptions = {}): Promise<Http2Stream> {
    if (this.#role !== "server") {
      return Promise.reject(new TypeError("Cannot accept: this is the client side"));
    }
    const next = this.#acceptQueue.shift();
    if (next !== undefined) return Promise.resolve(next);
    const ended = this.#acceptEnded();
    if (ended !== undefined) return Promise.reject(ended);
    try {
      options.signal?.throwIfAborted();
    } catch (error) {
      return Promise.reject(error);
    }
    return _abortable<_Stream>(options.signal, (waiter) => {
      this.#acceptWaiters.add(waiter);
      return () => this.#acceptWaiters.delete(waiter);
    });
  }

  /**
   * Streams the peer opens (server only), until the connection stops taking new ones.
   *
   * @returns an async iterator of streams
   */
  async *[Symbol.asyncIterator](): AsyncIterator<Http2Stream> {
    for (;;) {
      let stream: Http2Stream;
      try {
        stream = await this.accept();
      } catch {
        return;
      }
      yield stream;
    }
  }

  /**
   * Sends a PING and measures the round trip.
   *
   * @param options abort signal
   * @returns the round-trip time in milliseconds
   * @throws {DOMException} `TimeoutError` if no answer comes within `pingTimeout`.
   * @throws {Http2Error} If the connection fails first.
   */
  ping(options: Http2WaitOptions = {}): Promise<number> {
    if (this.#error || this.#finishing) {
      return Promise.reject(
        this.#error ?? new Http2Error("NO_ERROR", "Cannot ping: the connection is closed"),
      );
    }
    try {
      options.signal?.throwIfAborted();
    } catch (error) {
      return Promise.reject(error);
    }
    const data = new Uint8Array(8);
    const n = ++this.#pingCounter;
    new DataView(data.buffer).setUint32(4, n);
    const key = String(n);
    return _abortable<number>(options.signal, ({ resolve, reject }) => {
      const timer = setTimeout(() => {
        this.#pings.delete(key);
        reject(new DOMException("Cannot ping: no acknowledgement in time", "TimeoutError"));
      }, this.#options.pingTimeout);
      const entry: _Ping = {
        start: performance.now(),
        resolve,
        reject,
        cleanup: () => clearTimeout(timer),
      };
      this.#pings.set(key, entry);
      this.#pushFrame(encodePing(data));
      return () => {
        clearTimeout(timer);
        this.#pings.delete(key);
      };
    });
  }

  /**
   * Sends GOAWAY: no new streams are accepted or opened; open streams finish. A server
   * first sends GOAWAY with the largest stream id and a PING, then the final GOAWAY with
   * the last stream it received, so requests already in flight are still served. With a
   * code other than `NO_ERROR`, the connection fails at once with that code. Once no
   * streams remain, the connection closes its transport.
   *
   * @param code the error code to send
   */
  goAway(code: Http2ErrorCode = "NO_ERROR"): void {
    if (code !== "NO_ERROR") {
      this.#connectionError(new Http2Error(code, "Cannot continue: the connection was shut down locally"));
      return;
    }
    if (this.#goAwaySent !== undefined || this.#draining || this.#finishing) return;
    if (this.#role === "client" || this.#error) {
      this.#finalGoAway();
      return;
    }
    // Server: two phases (RFC 9113 §6.8). GOAWAY(2^31-1) stops the client opening streams;
    // one round trip later every stream it opened before seeing it has arrived, and the
    // final GOAWAY names the last of them, so none is refused by the race.
    this.#draining = true;
    this.#pushFrame(encodeGoAway(MAX_STREAM_ID, "NO_ERROR"));
    const final = () => this.#finalGoAway();
    this.ping().then(final, final);
  }

  #finalGoAway(): void {
    if (this.#goAwaySent !== undefined || this.#finishing || this.#error) return;
    this.#goAwaySent = this.#lastPeerId;
    this.#pushFrame(encodeGoAway(this.#lastPeerId, "NO_ERROR"));
    this.#wakeSlots();
    this.#endAccepts();
    this.#maybeFinish();
  }

  /**
   * Closes gracefully: GOAWAY, wait for open streams to finish, then close the transport.
   *
   * @returns resolves when the connection is closed
   */
  async close(): Promise<void> {
    this.goAway("NO_ERROR");
    this.#maybeFinish();
    await this.closed;
  }

  /**
   * Ends the connection at once: GOAWAY(CANCEL), every stream fails with CANCEL, the
   * transport is closed.
   *
   * @param reason recorded as the error's `cause`
   */
  abort(reason?: unknown): void {
    this.#connectionError(
      new Http2Error("CANCEL", "Cannot continue: the connection was aborted", { cause: reason }),
    );
  }

  /** Same as {@linkcode Http2Connection.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Counters and windows, for monitoring and tests.
   *
   * @returns a snapshot
   */
  stats(): Http2ConnectionStats {
    return {
      streamsOpened: this.#streamsOpened,
      activeStreams: this.#streams.size,
      framesSent: this.#framesSent,
      framesReceived: this.#framesReceived,
      transportWrites: this.#transportWrites,
      bytesSent: this.#bytesSent,
      bytesReceived: this.#bytesReceived,
      bufferedBytes: this.#buffered,
      peakBufferedBytes: this.#peakBuffered,
      sendWindow: this.#connSendWindow,
      receiveWindow: this.#connRecvWindow,
      queuedFrames: this.#queue.length,
      rtt: this.#rtt,
    };
  }

  // ------------------------------------------------------------------ stream host

  #makeHost(): _StreamHost {
    return {
      role: this.#role,
      options: this.#options,
      maxSendFrame: () => Math.min(this.#remote.maxFrameSize, this.#options.maxSendFrameSize),
      takeConnectionCredit: (max) => {
        const n = Math.min(max, this.#connSendWindow);
        if (n <= 0) return 0;
        this.#connSendWindow -= n;
        return n;
      },
      waitConnectionCredit: (stream) => {
        this.#creditWaiters.add(stream);
      },
      pushControl: (item) => this.#pushControl(item),
      pushData: (stream, item, size) => {
        if (this.#error || stream.done && item.t !== "frame") {
          if (item.t === "headers" || item.t === "data") item.settle?.(stream.error ?? this.#error);
          return;
        }
        this.#queue.push(stream.id, item, size);
        this.#wakeWriter();
      },
      queuedBytes: (stream) => this.#queue.bytesOf(stream.id),
      consumed: (stream, n) => this.#consumed(stream, n),
      sendReset: (stream, code, afterQueued) => this.#sendReset(stream.id, code, afterQueued),
      streamClosed: (stream) => this.#streamClosed(stream),
      buffered: (delta) => {
        this.#buffered += delta;
        if (this.#buffered > this.#peakBuffered) this.#peakBuffered = this.#buffered;
      },
    };
  }

  #initialRecvWindow(): number {
    // Before our SETTINGS are acknowledged the peer may still assume 65535.
    return this.#settingsAcked
      ? this.#options.initialWindowSize
      : Math.max(this.#options.initialWindowSize, DEFAULT_INITIAL_WINDOW_SIZE);
  }

  #canOpen(): Http2Error | undefined {
    if (this.#error) return this.#error;
    if (this.#goAwayReceived !== undefined) {
      return new Http2Error("REFUSED_STREAM", "Cannot open stream: the peer sent GOAWAY", { remote: true });
    }
    if (this.#goAwaySent !== undefined || this.#finishing) {
      return new Http2Error("REFUSED_STREAM", "Cannot open stream: the connection is closing");
    }
    if (this.#nextLocalId > MAX_STREAM_ID) {
      return new Http2Error("REFUSED_STREAM", "Cannot open stream: stream identifiers are exhausted");
    }
    return undefined;
  }

  #acceptEnded(): Http2Error | undefined {
    if (this.#error) return this.#error;
    if (this.#goAwaySent !== undefined || this.#finishing) {
      return new Http2Error("NO_ERROR", "Cannot accept: the connection is closing");
    }
    return undefined;
  }

  #pushControl(item: _Out): void {
    if (this.#error) {
      if (item.t === "headers" || item.t === "data") item.settle?.(this.#error);
      return;
    }
    if (item.t === "frame" && ++this.#controlCount > this.#options.maxQueuedControlFrames) {
      this.#connectionError(
        new Http2Error(
          "ENHANCE_YOUR_CALM",
          "Cannot continue: too many control frames queued (peer not reading)",
        ),
      );
      return;
    }
    this.#queue.pushControl(item);
    this.#wakeWriter();
  }

  #pushFrame(bytes: Uint8Array): void {
    this.#pushControl({ t: "frame", bytes });
  }

  /** Queues a control frame without the flood check (our own SETTINGS, GOAWAY). */
  #queueFrame(bytes: Uint8Array): void {
    this.#controlCount++;
    this.#queue.pushControl({ t: "frame", bytes });
  }

  #consumed(stream: _Stream | undefined, n: number): void {
    if (n <= 0 || this.#error || this.#finishing) return;
    this.#connUnacked += n;
    if (this.#connUnacked >= this.#options.connectionWindowSize / 2) {
      this.#pushFrame(encodeWindowUpdate(0, this.#connUnacked));
      this.#connRecvWindow += this.#connUnacked;
      this.#connUnacked = 0;
    }
    if (stream === undefined || stream.remoteEnded || stream.done) return;
    stream.unacked += n;
    if (stream.unacked >= this.#options.initialWindowSize / 2) {
      this.#pushFrame(encodeWindowUpdate(stream.id, stream.unacked));
      stream.recvWindow += stream.unacked;
      stream.unacked = 0;
    }
  }

  #sendReset(id: number, code: Http2ErrorCode, afterQueued = false): void {
    this.#rememberClosed(id, "reset");
    const stream = this.#streams.get(id);
    if (afterQueued && stream !== undefined && !this.#error) {
      // After the frames already queued (the end of a complete response, RFC 9113 §8.1):
      // on the stream's own flow, which the writer drains in order.
      stream.resetSent = true;
      this.#queue.push(id, { t: "rst", stream, code }, 0);
      this.#wakeWriter();
      return;
    }
    this.#dropQueued(id, new Http2Error(code, "Cannot send: the stream was reset", { streamId: id }));
    if (stream !== undefined) {
      stream.resetSent = true;
      // Never written: its HEADERS will be skipped, so no RST for a stream the peer never saw.
      if (this.#isLocal(id) && !stream.opened) return;
    }
    this.#pushFrame(encodeRstStream(id, code));
  }

  /** Drops the queued frames of a stream, failing their writers. */
  #dropQueued(id: number, error: Http2Error): void {
    for (const item of this.#queue.remove(id)) {
      if (item.t === "frame") continue;
      if (item.t !== "rst") {
        if (item.stream.tail === item) item.stream.tail = undefined;
        item.settle?.(error);
      }
    }
  }

  #streamClosed(stream: _Stream): void {
    if (this.#streams.get(stream.id) !== stream) return;
    this.#streams.delete(stream.id);
    this.#creditWaiters.delete(stream);
    if (!this.#closedIds.has(stream.id)) {
      this.#rememberClosed(stream.id, stream.resetSent ? "reset" : "closed");
    }
    if (this.#isLocal(stream.id)) {
      this.#localActive--;
      this.#wakeSlots();
    } else {
      this.#peerActive--;
      const index = this.#acceptQueue.indexOf(stream);
      if (index >= 0) this.#acceptQueue.splice(index, 1);
    }
    if (this.#streams.size === 0) this.#armIdle();
    this.#maybeFinish();
  }

  #rememberClosed(id: number, how: "reset" | "closed"): void {
    const known = this.#closedIds.has(id);
    this.#closedIds.set(id, how);
    if (known) return;
    // Forget the oldest once full (a ring of ids: no iterator per closed stream).
    const slot = this.#closedCount++ % _CLOSED_MEMORY;
    const oldest = this.#closedRing[slot];
    if (oldest !== undefined) this.#closedIds.delete(oldest);
    this.#closedRing[slot] = id;
  }

  #isLocal(id: number): boolean {
    return (id % 2 === 1) === (this.#role === "client");
  }

  #isIdle(id: number): boolean {
    return this.#isLocal(id) ? id >= this.#nextLocalId : id > this.#lastPeerId;
  }

  #wakeSlots(): void {
    const waiters = [...this.#slotWaiters];
    this.#slotWaiters.clear();
    for (const wake of waiters) wake();
  }

  #endAccepts(): void {
    if (this.#acceptQueue.length > 0) return;
    const ended = this.#acceptEnded();
    if (ended === undefined) return;
    const waiters = [...this.#acceptWaiters];
    this.#acceptWaiters.clear();
    for (const waiter of waiters) waiter.reject(ended);
  }

  #wakeWriter(): void {
    const wake = this.#writerWake;
    this.#writerWake = null;
    wake?.();
  }

  // ------------------------------------------------------------------ timers

  #armIdle(): void {
    if (this.#options.idleTimeout === 0 || this.#idleTimer !== undefined || this.#finishing) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#streams.size === 0) this.goAway("NO_ERROR");
    }, this.#options.idleTimeout);
  }

  #disarmIdle(): void {
    if (this.#idleTimer !== undefined) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = undefined;
    }
  }

  #keepAlive(): void {
    if (this.#keepAlivePending || this.#finishing) return;
    if (this.#receivedSinceTick) {
      this.#receivedSinceTick = false;
      return;
    }
    this.#keepAlivePending = true;
    this.ping().then(
      () => this.#keepAlivePending = false,
      (cause) => {
        this.#keepAlivePending = false;
        if (!this.#finishing) {
          this.#lost(
            new Http2Error("INTERNAL_ERROR", "Cannot keep the connection alive: PING not answered", {
              cause,
            }),
          );
        }
      },
    );
  }

  #clearTimers(): void {
    if (this.#settingsTimer !== undefined) clearTimeout(this.#settingsTimer);
    this.#settingsTimer = undefined;
    this.#disarmIdle();
    if (this.#keepAliveTimer !== undefined) clearInterval(this.#keepAliveTimer);
    this.#keepAliveTimer = undefined;
  }

  // ------------------------------------------------------------------ writer

  async #writeLoop(): Promise<void> {
    // Direct I/O (Deno.Conn semantics) skips the Web Streams machinery per write, and the
    // batch buffer can be reused once write() resolves.
    const direct = hasDirectIo(this.#duplex) ? this.#duplex : undefined;
    let writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
    if (direct === undefined) {
      try {
        writer = this.#duplex.writable.getWriter();
      } catch (cause) {
        this.#lost(
          new Http2Error("INTERNAL_ERROR", "Cannot write: the transport is not writable", { cause }),
        );
        return;
      }
    }
    let scratch = new Uint8Array(0);
    try {
      for (;;) {
        if (this.#queue.length === 0 || this.#controlOnly && this.#controlCount === 0) {
          if (this.#queue.length === 0) {
            if (this.#writerClosing) break;
            await new Promise<void>((resolve) => this.#writerWake = resolve);
          }
          // The last write carried control frames only: stream frames queued meanwhile
          // get the same grace as if they had woken the writer.
          this.#controlOnly = false;
          if (this.#controlCount === 0 && !this.#writerClosing) {
            // Woken by stream frames only (HEADERS, DATA, trailers, a reset after a
            // response): the rest of them is usually produced a few microtasks later (the
            // response body after its headers, the trailers after the body). Give the
            // application the rest of this turn of the event loop, so they share one
            // transport write and wake the peer once (`setImmediate`: microseconds;
            // `setTimeout(0)` costs milliseconds in Deno). PING answers, SETTINGS ACKs and
            // WINDOW_UPDATEs are control frames and leave at once.
            await new Promise<void>((resolve) => setImmediate(resolve));
          }
          continue;
        }
        let batch: Uint8Array | undefined;
        if (direct !== undefined) {
          this.#buildBatch((n, shift) => {
            if (scratch.byteLength < n + _ALIGN) {
              scratch = new Uint8Array(Math.max(n, 2 * _BATCH_BYTES) + _ALIGN);
            }
            return batch = scratch.subarray(shift, shift + n);
          });
          if (batch !== undefined) this.#transportWrites++;
          let offset = 0;
          while (batch !== undefined && offset < batch.byteLength) {
            offset += await direct.write(batch.subarray(offset));
          }
        } else {
          this.#buildBatch((n, shift) => batch = new Uint8Array(n + _ALIGN).subarray(shift, shift + n));
          if (batch !== undefined) {
            this.#transportWrites++;
            await writer!.write(batch);
          }
        }
      }
      if (direct !== undefined) await direct.closeWrite();
      else await writer!.close();
    } catch (cause) {
      if (!this.#finishing) {
        this.#lost(new Http2Error("INTERNAL_ERROR", "Cannot write: the connection was lost", { cause }));
      }
      writer?.abort(cause).catch(() => {});
    } finally {
      try {
        writer?.releaseLock();
      } catch {
        // released already
      }
    }
  }

  /**
   * Pops frames (up to about `_BATCH_BYTES`) into one buffer from `allocate(size, shift)`,
   * which must start `shift` bytes (mod 32) into its ArrayBuffer: the first large DATA
   * payload lands at the same offset mod 32 as its source, where copies run at memcpy
   * speed. Several DATA frames share a transport write: one system call per 256 KiB
   * instead of one per frame.
   */
  #buildBatch(allocate: (size: number, shift: number) => Uint8Array): number {
    // Pieces of the batch, reused across batches: a payload, and the frame header to write
    // before it (type | flags << 8, or -1 for a control frame encoded whole).
    const parts = this.#batchParts;
    const heads = this.#batchHeads;
    const ids = this.#batchIds;
    const settles = this.#batchSettles;
    let size = 0;
    let shift = -1;
    this.#controlOnly = true;
    while (size < _BATCH_BYTES) {
      const item = this.#queue.pop();
      if (item === undefined) break;
      this.#framesSent++;
      switch (item.t) {
        case "frame":
          this.#controlCount--;
          parts.push(item.bytes);
          heads.push(-1);
          ids.push(0);
          size += item.bytes.byteLength;
          break;
        case "headers": {
          if (item.stream.aborted) {
            item.settle?.(item.stream.error);
            break;
          }
          item.stream.opened = true;
          this.#controlOnly = false;
          size += this.#addHeaderBlock(item.stream.id, item.headers, item.endStream, item.sensitive);
          if (item.endStream) item.stream.onLocalEnd();
          if (item.settle) settles.push(item.settle);
          break;
        }
        case "data": {
          if (item.stream.tail === item) item.stream.tail = undefined;
          if (item.stream.aborted) {
            item.settle?.(item.stream.error);
            break;
          }
          this.#controlOnly = false;
          parts.push(item.data);
          heads.push(FrameType.DATA | (item.endStream ? FrameFlag.END_STREAM : 0) << 8);
          ids.push(item.stream.id);
          size += FRAME_HEADER_SIZE;
          if (shift < 0 && item.data.byteLength >= _LARGE_PAYLOAD) {
            shift = (item.data.byteOffset - size) & (_ALIGN - 1);
          }
          size += item.data.byteLength;
          this.#bytesSent += item.data.byteLength;
          if (item.endStream) item.stream.onLocalEnd();
          if (item.settle) settles.push(item.settle);
          break;
        }
        case "rst": {
          // A reset after a complete response (RFC 9113 §8.1), in order behind it.
          const frame = encodeRstStream(item.stream.id, item.code);
          this.#controlOnly = false;
          parts.push(frame);
          heads.push(-1);
          ids.push(0);
          size += frame.byteLength;
          break;
        }
      }
    }
    if (parts.length === 0) {
      this.#settleBatch(settles);
      return 0;
    }
    const batch = allocate(size, shift < 0 ? 0 : shift);
    let at = 0;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      const head = heads[i]!;
      const length = part.byteLength;
      if (head >= 0) {
        const id = ids[i]!;
        batch[at] = length >>> 16;
        batch[at + 1] = (length >>> 8) & 0xff;
        batch[at + 2] = length & 0xff;
        batch[at + 3] = head & 0xff;
        batch[at + 4] = head >>> 8;
        batch[at + 5] = (id >>> 24) & 0x7f;
        batch[at + 6] = (id >>> 16) & 0xff;
        batch[at + 7] = (id >>> 8) & 0xff;
        batch[at + 8] = id & 0xff;
        at += FRAME_HEADER_SIZE;
      }
      if (length <= 16) {
        for (let j = 0; j < length; j++) batch[at + j] = part[j]!;
      } else {
        batch.set(part, at);
      }
      at += length;
    }
    parts.length = 0;
    heads.length = 0;
    ids.length = 0;
    // The bytes are copied: writers may reuse their buffers.
    this.#settleBatch(settles);
    return size;
  }

  #settleBatch(settles: ((error?: Http2Error) => void)[]): void {
    if (settles.length === 0) return;
    const list = settles.slice();
    settles.length = 0;
    for (const settle of list) settle();
  }

  /** Adds a header block as HEADERS (+ CONTINUATION) to the batch; returns its size in bytes. */
  #addHeaderBlock(
    streamId: number,
    headers: Http2Headers,
    endStream: boolean,
    sensitive: ReadonlySet<string> | undefined,
  ): number {
    const block = this.#encoder.encode(headers, sensitive === undefined ? undefined : { sensitive });
    const max = this.#remote.maxFrameSize;
    let offset = 0;
    let frames = 0;
    do {
      const n = Math.min(max, block.byteLength - offset);
      const first = offset === 0;
      const last = offset + n === block.byteLength;
      let flags = last ? FrameFlag.END_HEADERS : 0;
      if (first && endStream) flags |= FrameFlag.END_STREAM;
      this.#batchParts.push(n === block.byteLength ? block : block.subarray(offset, offset + n));
      this.#batchHeads.push((first ? FrameType.HEADERS : FrameType.CONTINUATION) | flags << 8);
      this.#batchIds.push(streamId);
      offset += n;
      frames++;
    } while (offset < block.byteLength);
    this.#framesSent += frames - 1;
    return block.byteLength + frames * FRAME_HEADER_SIZE;
  }

  // ------------------------------------------------------------------ reader

  async #readLoop(): Promise<void> {
    let reader: ByteReader;
    try {
      reader = this.#reader = new ByteReader(
        hasDirectIo(this.#duplex) ? this.#duplex : this.#duplex.readable,
        { bufferSize: _READ_BUFFER_BYTES },
      );
    } catch (cause) {
      this.#lost(new Http2Error("INTERNAL_ERROR", "Cannot read: the transport is not readable", { cause }));
      return;
    }
    try {
      if (this.#role === "server") {
        if (!(await reader.fill(CONNECTION_PREFACE.byteLength))) {
          this.#onEof(reader.buffered > 0);
          return;
        }
        const preface = reader.peek(CONNECTION_PREFACE.byteLength);
        if (!preface.every((b, i) => b === CONNECTION_PREFACE[i])) {
          this.#connectionError(new Http2Error("PROTOCOL_ERROR", "Cannot start: invalid connection preface"));
        }
        reader.skip(CONNECTION_PREFACE.byteLength);
      }
      for (;;) {
        // Frames already buffered are taken without an await each: one read of many small
        // frames (a batch of calls) is handled in one go.
        if (reader.buffered < FRAME_HEADER_SIZE && !(await reader.fill(FRAME_HEADER_SIZE))) {
          this.#onEof(reader.buffered > 0);
          return;
        }
        const header = decodeFrameHeader(reader.peek(FRAME_HEADER_SIZE));
        reader.skip(FRAME_HEADER_SIZE);
        if (this.#error !== undefined || this.#finishing && this.#writerClosing && this.#streams.size === 0) {
          // Draining after GOAWAY: read until the peer closes, ignore what it says.
          await reader.discard(header.length);
          continue;
        }
        if (header.length > this.#options.maxFrameSize) {
          this.#connectionError(
            new Http2Error(
              "FRAME_SIZE_ERROR",
              `Cannot accept frame: ${header.length} bytes exceed SETTINGS_MAX_FRAME_SIZE`,
            ),
          );
          await reader.discard(header.length);
          continue;
        }
        let payload: Uint8Array;
        let release: (() => void) | undefined;
        let view = false;
        if (header.type === FrameType.DATA) {
          if (header.length >= _LEASE_MIN_BYTES) {
            // Stays in the read buffer until the application copied it out: no allocation.
            ({ bytes: payload, release } = await reader.readLeased(header.length));
          } else if (header.length === 0) {
            payload = _EMPTY;
          } else if (reader.buffered >= header.length) {
            payload = reader.peek(header.length).slice();
            reader.skip(header.length);
          } else {
            payload = await reader.readExactly(header.length);
          }
        } else if (header.length <= _VIEW_MAX_BYTES) {
          // Other frames are done with before the next read (fragments kept across frames
          // are copied): a view of the read buffer, skipped afterwards.
          if (reader.buffered < header.length && !(await reader.fill(header.length))) {
            this.#onEof(true);
            return;
          }
          payload = reader.peek(header.length);
          view = true;
        } else {
          payload = await reader.readExactly(header.length);
        }
        this.#framesReceived++;
        this.#receivedSinceTick = true;
        try {
          this.#onFrame(header, payload, release);
        } catch (error) {
          this.#onError(error);
        } finally {
          if (view) reader.skip(header.length);
        }
      }
    } catch (cause) {
      if (!this.#finishing) {
        this.#lost(new Http2Error("INTERNAL_ERROR", "Cannot read: the connection was lost", { cause }));
      }
    }
  }

  #onEof(truncated: boolean): void {
    if (this.#finishing || this.#error) return;
    if (truncated || this.#streams.size > 0) {
      this.#lost(
        new Http2Error(
          "INTERNAL_ERROR",
          truncated
            ? "Cannot read: the connection ended inside a frame"
            : "Cannot read: the peer closed the connection",
        ),
      );
      return;
    }
    this.#finish();
  }

  #onError(error: unknown): void {
    if (error instanceof Http2Error) {
      if (error.streamId !== undefined && error.streamId !== 0) this.#streamError(error);
      else this.#connectionError(error);
      return;
    }
    this.#connectionError(
      new Http2Error("INTERNAL_ERROR", "Cannot process frame: internal failure", { cause: error }),
    );
  }

  #onFrame(header: FrameHeader, payload: Uint8Array, release: (() => void) | undefined): void {
    if (this.#block !== undefined && header.type !== FrameType.CONTINUATION) {
      throw new Http2Error(
        "PROTOCOL_ERROR",
        "Cannot accept frame: a field block is waiting for CONTINUATION",
      );
    }
    if (!this.#gotSettings && (header.type !== FrameType.SETTINGS || (header.flags & FrameFlag.ACK) !== 0)) {
      throw new Http2Error("PROTOCOL_ERROR", "Cannot start: the first frame must be SETTINGS");
    }
    let frame: Frame;
    try {
      frame = decodeFrame(header, payload);
    } catch (error) {
      release?.();
      throw error;
    }
    switch (frame.kind) {
      case "data":
        return this.#onData(frame, header.length, release);
      case "headers": {
        const selfDependent = frame.priority?.dependency === frame.streamId;
        if (frame.endHeaders) {
          return this.#onHeaderBlock(frame.streamId, frame.fragment, frame.endStream, selfDependent);
        }
        this.#block = {
          streamId: frame.streamId,
          endStream: frame.endStream,
          selfDependent,
          fragments: [frame.fragment.slice()], // the payload may be a view of the read buffer
          size: frame.fragment.byteLength,
          frames: 0,
        };
        this.#checkBlock(this.#block);
        return;
      }
      case "continuation": {
        const block = this.#block;
        if (block === undefined || block.streamId !== frame.streamId) {
          throw new Http2Error(
            "PROTOCOL_ERROR",
            "Cannot accept CONTINUATION: no field block in progress on it",
          );
        }
        block.fragments.push(frame.fragment.slice());
        block.size += frame.fragment.byteLength;
        block.frames++;
        this.#checkBlock(block);
        if (!frame.endHeaders) return;
        this.#block = undefined;
        const all = new Uint8Array(block.size);
        let at = 0;
        for (const f of block.fragments) {
          all.set(f, at);
          at += f.byteLength;
        }
        return this.#onHeaderBlock(block.streamId, all, block.endStream, block.selfDependent);
      }
      case "priority":
        return; // RFC 9113 §5.3.2: parsed and ignored
      case "rst_stream":
        return this.#onRstStream(frame.streamId, frame.errorCode);
      case "settings":
        return this.#onSettings(frame.ack, frame.settings);
      case "push_promise":
        throw new Http2Error("PROTOCOL_ERROR", "Cannot accept PUSH_PROMISE: push is disabled");
      case "ping":
        if (frame.ack) return this.#onPingAck(frame.data);
        this.#pushFrame(encodePing(frame.data, true));
        return;
      case "goaway":
        return this.#onGoAway(frame.lastStreamId, frame.errorCode);
      case "window_update":
        return this.#onWindowUpdate(frame.streamId, frame.increment);
      case "unknown":
        return; // §4.1: unknown types are ignored
    }
  }

  #checkBlock(block: _Block): void {
    if (block.size > this.#options.maxHeaderBlockSize) {
      throw new Http2Error(
        "ENHANCE_YOUR_CALM",
        `Cannot accept field block: more than ${this.#options.maxHeaderBlockSize} bytes`,
      );
    }
    if (block.frames > this.#options.maxContinuationFrames) {
      throw new Http2Error(
        "ENHANCE_YOUR_CALM",
        `Cannot accept field block: more than ${this.#options.maxContinuationFrames} CONTINUATION frames`,
      );
    }
  }

  #onData(
    frame: Extract<Frame, { kind: "data" }>,
    flowLength: number,
    release: (() => void) | undefined,
  ): void {
    let handed = false;
    try {
      this.#acceptData(frame, flowLength, release);
      handed = true;
    } finally {
      // Leased memory that no stream took (or that it took and then failed on: the
      // stream error drops it at once) goes back to the read buffer.
      if (!handed) release?.();
    }
  }

  #acceptData(
    frame: Extract<Frame, { kind: "data" }>,
    flowLength: number,
    release: (() => void) | undefined,
  ): void {
    const id = frame.streamId;
    if (this.#isIdle(id)) throw new Http2Error("PROTOCOL_ERROR", `Cannot accept DATA: stream ${id} is idle`);
    this.#connRecvWindow -= flowLength;
    if (this.#connRecvWindow < 0) {
      throw new Http2Error("FLOW_CONTROL_ERROR", "Cannot accept DATA: connection window exceeded");
    }
    this.#bytesReceived += frame.data.byteLength;
    if (frame.data.byteLength === 0 && !frame.endStream && !this.#emptyLimit.hit(performance.now())) {
      throw new Http2Error("ENHANCE_YOUR_CALM", "Cannot accept DATA: too many empty frames");
    }
    const stream = this.#streams.get(id);
    if (stream === undefined || stream.remoteEnded) {
      this.#consumed(undefined, flowLength);
      if (stream === undefined && this.#closedIds.get(id) === "reset") {
        release?.();
        return;
      }
      throw new Http2Error("STREAM_CLOSED", `Cannot accept DATA: stream ${id} is closed`, { streamId: id });
    }
    stream.recvWindow -= flowLength;
    if (stream.recvWindow < 0) {
      throw new Http2Error("FLOW_CONTROL_ERROR", `Cannot accept DATA: stream ${id} window exceeded`);
    }
    if (frame.padding > 0) this.#consumed(stream, frame.padding);
    stream.onData(frame.data, frame.endStream, release);
  }

  #onHeaderBlock(id: number, block: Uint8Array, endStream: boolean, selfDependent: boolean): void {
    let list: Http2Headers | undefined;
    try {
      list = this.#decoder.decode(block);
    } catch (cause) {
      // Too large / too many fields: the table is still in sync, so only the stream fails.
      if (
        !(cause instanceof HpackError) ||
        (cause.code !== "HEADER_LIST_TOO_LARGE" && cause.code !== "TOO_MANY_FIELDS")
      ) {
        throw new Http2Error("COMPRESSION_ERROR", "Cannot decode field block", { cause });
      }
    }
    const stream = this.#streams.get(id);
    const streamError = (code: Http2ErrorCode, why: string) =>
      new Http2Error(code, `Cannot accept headers: ${why}`, { streamId: id });
    if (stream !== undefined) {
      if (stream.remoteEnded) throw streamError("STREAM_CLOSED", `stream ${id} is half-closed (remote)`);
      if (list === undefined) throw streamError("PROTOCOL_ERROR", "header list too large");
      if (selfDependent) throw streamError("PROTOCOL_ERROR", "stream depends on itself");
      stream.onHeaders(list, endStream);
      return;
    }
    if (!this.#isIdle(id)) {
      const how = this.#closedIds.get(id);
      if (how === "reset") return; // in flight when we reset it
      if (how === "closed") {
        throw new Http2Error("STREAM_CLOSED", `Cannot accept HEADERS: stream ${id} is closed`);
      }
      throw new Http2Error(
        "PROTOCOL_ERROR",
        `Cannot accept HEADERS: stream ${id} is lower than a stream already opened`,
      );
    }
    if (this.#isLocal(id) || this.#role === "client") {
      throw new Http2Error(
        "PROTOCOL_ERROR",
        `Cannot accept HEADERS: stream ${id} was not opened by the peer`,
      );
    }
    this.#lastPeerId = id;
    const refuse = (code: Http2ErrorCode) => this.#sendReset(id, code);
    if (this.#goAwaySent !== undefined || this.#finishing) return refuse("REFUSED_STREAM");
    if (list === undefined || selfDependent) return refuse("PROTOCOL_ERROR");
    if (this.#peerActive >= this.#options.maxConcurrentStreams) return refuse("REFUSED_STREAM");
    if (_checkHeaders(list, "request") !== undefined) return refuse("PROTOCOL_ERROR");
    const stream2 = new _Stream(
      this.#host,
      id,
      false,
      list,
      this.#remote.initialWindowSize,
      this.#initialRecvWindow(),
    );
    this.#streams.set(id, stream2);
    this.#peerActive++;
    this.#streamsOpened++;
    this.#disarmIdle();
    if (endStream) stream2.onData(_EMPTY, true);
    const waiter = this.#acceptWaiters.values().next().value;
    if (waiter !== undefined) {
      this.#acceptWaiters.delete(waiter);
      waiter.resolve(stream2);
    } else {
      this.#acceptQueue.push(stream2);
    }
  }

  #onRstStream(id: number, code: number): void {
    if (this.#isIdle(id)) {
      throw new Http2Error("PROTOCOL_ERROR", `Cannot accept RST_STREAM: stream ${id} is idle`);
    }
    if (this.#role === "server" && !this.#resetLimit.hit(performance.now())) {
      throw new Http2Error("ENHANCE_YOUR_CALM", "Cannot accept RST_STREAM: too many resets (rapid reset)");
    }
    const stream = this.#streams.get(id);
    if (stream === undefined) return;
    this.#rememberClosed(id, "reset");
    stream.resetSent = true; // closed by reset: late frames are ignored
    this.#dropQueued(
      id,
      new Http2Error(errorCodeName(code), "Cannot send: the peer reset the stream", {
        streamId: id,
        remote: true,
      }),
    );
    stream.fail(
      new Http2Error(errorCodeName(code), `Cannot continue: the peer reset stream ${id}`, {
        streamId: id,
        remote: true,
        errorCode: code,
      }),
    );
  }

  #onSettings(ack: boolean, settings: [number, number][]): void {
    if (ack) {
      if (!this.#settingsAcked) {
        this.#settingsAcked = true;
        if (this.#settingsTimer !== undefined) clearTimeout(this.#settingsTimer);
        this.#settingsTimer = undefined;
        if (this.#options.headerTableSize < DEFAULT_HEADER_TABLE_SIZE) {
          this.#decoder.setMaxTableSize(this.#options.headerTableSize);
        }
      }
      return;
    }
    this.#gotSettings = true;
    for (const [id, value] of settings) {
      switch (id) {
        case SettingId.HEADER_TABLE_SIZE:
          this.#remote.headerTableSize = value;
          this.#encoder.setPeerMaxTableSize(value);
          break;
        case SettingId.ENABLE_PUSH:
          if (this.#role === "client" && value === 1) {
            throw new Http2Error("PROTOCOL_ERROR", "Cannot apply SETTINGS: a server set ENABLE_PUSH");
          }
          this.#remote.enablePush = value === 1;
          break;
        case SettingId.MAX_CONCURRENT_STREAMS:
          this.#remote.maxConcurrentStreams = value;
          this.#wakeSlots();
          break;
        case SettingId.INITIAL_WINDOW_SIZE: {
          const delta = value - this.#remote.initialWindowSize;
          this.#remote.initialWindowSize = value;
          for (const stream of this.#streams.values()) {
            if (stream.sendWindow + delta > MAX_WINDOW_SIZE) {
              throw new Http2Error(
                "FLOW_CONTROL_ERROR",
                "Cannot apply SETTINGS: a stream window exceeds 2^31-1",
              );
            }
            stream.addSendWindow(delta);
          }
          break;
        }
        case SettingId.MAX_FRAME_SIZE:
          this.#remote.maxFrameSize = value;
          break;
        case SettingId.MAX_HEADER_LIST_SIZE:
          this.#remote.maxHeaderListSize = value;
          break;
      }
    }
    this.#pushFrame(encodeSettings([], true));
  }

  #onPingAck(data: Uint8Array): void {
    const key = String(new DataView(data.buffer, data.byteOffset, 8).getUint32(4));
    const entry = this.#pings.get(key);
    if (entry === undefined) return;
    this.#pings.delete(key);
    entry.cleanup();
    this.#rtt = performance.now() - entry.start;
    entry.resolve(this.#rtt);
  }

  #onGoAway(lastStreamId: number, code: number): void {
    const name = errorCodeName(code);
    if (this.#goAwayReceived === undefined || lastStreamId < this.#goAwayReceived.lastStreamId) {
      this.#goAwayReceived = { lastStreamId, code: name };
    }
    for (const stream of [...this.#streams.values()]) {
      if (this.#isLocal(stream.id) && stream.id > lastStreamId) {
        stream.fail(
          new Http2Error(
            "REFUSED_STREAM",
            `Cannot continue: the peer's GOAWAY did not include stream ${stream.id}`,
            {
              streamId: stream.id,
              remote: true,
            },
          ),
        );
      }
    }
    this.#wakeSlots();
    this.#maybeFinish();
  }

  #onWindowUpdate(id: number, increment: number): void {
    if (id === 0) {
      this.#connSendWindow += increment;
      if (this.#connSendWindow > MAX_WINDOW_SIZE) {
        throw new Http2Error(
          "FLOW_CONTROL_ERROR",
          "Cannot accept WINDOW_UPDATE: connection window exceeds 2^31-1",
        );
      }
      const waiting = [...this.#creditWaiters];
      this.#creditWaiters.clear();
      for (const stream of waiting) stream.wakeCredit();
      return;
    }
    if (this.#isIdle(id)) {
      throw new Http2Error("PROTOCOL_ERROR", `Cannot accept WINDOW_UPDATE: stream ${id} is idle`);
    }
    const stream = this.#streams.get(id);
    if (stream === undefined) return;
    if (stream.sendWindow + increment > MAX_WINDOW_SIZE) {
      throw new Http2Error(
        "FLOW_CONTROL_ERROR",
        `Cannot accept WINDOW_UPDATE: stream ${id} window exceeds 2^31-1`,
        {
          streamId: id,
        },
      );
    }
    stream.addSendWindow(increment);
  }

  // ------------------------------------------------------------------ errors and shutdown

  #streamError(error: Http2Error): void {
    const id = error.streamId!;
    if (this.#isIdle(id)) {
      this.#connectionError(new Http2Error(error.code, error.message, { cause: error }));
      return;
    }
    const stream = this.#streams.get(id);
    if (stream === undefined && this.#closedIds.get(id) === "reset") return;
    this.#sendReset(id, error.code);
    stream?.fail(error, true);
  }

  #connectionError(error: Http2Error): void {
    if (this.#error !== undefined) return;
    this.#fail(error, true);
  }

  #lost(error: Http2Error): void {
    if (this.#error !== undefined) return;
    this.#fail(error, false);
  }

  #fail(error: Http2Error, sendGoAway: boolean): void {
    this.#error = error;
    for (const item of this.#queue.clear()) {
      if (item.t === "headers" || item.t === "data") item.settle?.(error);
    }
    this.#controlCount = 0;
    this.#block = undefined;
    if (sendGoAway && !this.#finishing) {
      const debug = new TextEncoder().encode(error.message.slice(0, 256));
      this.#queueFrame(encodeGoAway(this.#lastPeerId, error.code, debug));
      this.#wakeWriter();
    }
    for (const stream of [...this.#streams.values()]) stream.fail(error);
    for (const waiter of [...this.#acceptWaiters]) waiter.reject(error);
    this.#acceptWaiters.clear();
    this.#acceptQueue = [];
    for (const [key, ping] of this.#pings) {
      ping.cleanup();
      ping.reject(error);
      this.#pings.delete(key);
    }
    this.#wakeSlots();
    this.#finish(!sendGoAway);
  }

  #maybeFinish(): void {
    if (this.#finishing || this.#streams.size > 0) return;
    if (this.#goAwaySent !== undefined || this.#goAwayReceived !== undefined) this.#finish();
  }

  /** Flushes, half-closes, waits (bounded) for the peer to close, then closes the transport. */
  #finish(abrupt = false): void {
    if (this.#finishing) return;
    this.#finishing = true;
    this.#clearTimers();
    if (!this.#error && this.#goAwaySent === undefined) {
      this.#goAwaySent = this.#lastPeerId;
      this.#queueFrame(encodeGoAway(this.#lastPeerId, "NO_ERROR"));
    }
    this.#endAccepts();
    for (const waiter of [...this.#acceptWaiters]) {
      waiter.reject(this.#error ?? new Http2Error("NO_ERROR", "Cannot accept: the connection is closed"));
    }
    this.#acceptWaiters.clear();
    for (const [key, ping] of this.#pings) {
      ping.cleanup();
      ping.reject(this.#error ?? new Http2Error("NO_ERROR", "Cannot ping: the connection is closed"));
      this.#pings.delete(key);
    }
    this.#wakeSlots();
    this.#writerClosing = true;
    this.#wakeWriter();
    void this.#shutdown(abrupt);
  }

  async #shutdown(abrupt: boolean): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => timer = setTimeout(resolve, this.#options.closeTimeout));
    try {
      if (!abrupt) {
        await Promise.race([this.#writerDone, deadline]);
        await Promise.race([this.#readerDone, deadline]);
      }
    } finally {
      clearTimeout(timer);
    }
    const duplex = this.#duplex as
      & Partial<{ close(): Promise<void>; reset(reason?: unknown): void }>
      & Duplex;
    try {
      if (abrupt && typeof duplex.reset === "function") duplex.reset(this.#error);
      else if (typeof duplex.close === "function") await duplex.close();
    } catch {
      // the transport is gone either way
    }
    await this.#reader?.cancel().catch(() => {});
    await Promise.race([Promise.all([this.#writerDone, this.#readerDone]), Promise.resolve()]);
    // Release every stream that is still open (a lost transport, or close() during a drain).
    const error = this.#error ??
      new Http2Error("INTERNAL_ERROR", "Cannot continue: the connection is closed");
    for (const stream of [...this.#streams.values()]) stream.fail(error);
    this.#closedResolve();
  }
}
