/**
 * A yamux session (hashicorp/yamux `spec.md`) over any duplex.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import { ByteReader } from "../streams/byte_reader.ts";
import { type Duplex, type DuplexConn, hasDirectIo } from "../streams/duplex.ts";
import { FairQueue } from "../streams/fair_queue.ts";
import { YamuxError, type YamuxViolation } from "./errors.ts";
import {
  encodeHeaderInto,
  FLAG_ACK,
  FLAG_FIN,
  FLAG_RST,
  FLAG_SYN,
  GO_AWAY_NORMAL,
  GO_AWAY_PROTOCOL_ERROR,
  HEADER_SIZE,
  INITIAL_STREAM_WINDOW,
  MAX_UINT32,
  TYPE_DATA,
  TYPE_GO_AWAY,
  TYPE_PING,
  TYPE_WINDOW_UPDATE,
  YAMUX_VERSION,
} from "./frame.ts";
import { type ResolvedYamuxOptions, resolveYamuxOptions, type YamuxOptions } from "./options.ts";
import { type _StreamHost, YamuxStream } from "./stream.ts";
import { _Deadlines } from "./_deadlines.ts";

/** Options for blocking session calls. */
export interface YamuxCallOptions {
  /** Aborts the wait; the call rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Counters of a {@linkcode YamuxSession}, from {@linkcode YamuxSession.stats}. */
export interface YamuxSessionStats {
  /** Streams currently tracked (not yet closed in both directions or reset). */
  openStreams: number;
  /** Streams we opened, in total. */
  streamsOpened: number;
  /** Streams the peer opened that we accepted, in total. */
  streamsAccepted: number;
  /** Inbound SYNs refused with RST (backlog, limits, after GoAway). */
  streamsRefused: number;
  /** Inbound streams waiting for `accept()`. */
  acceptBacklog: number;
  /** Frames written / read. */
  framesSent: number;
  /** Frames read. */
  framesReceived: number;
  /** Stream payload bytes written / read (headers excluded). */
  bytesSent: number;
  /** Stream payload bytes read. */
  bytesReceived: number;
  /** Transport writes (each carries one or more coalesced frames). */
  transportWrites: number;
  /** Bytes queued for the transport. */
  queuedBytes: number;
  /** Round-trip time of the last answered ping, ms. */
  lastPingRttMs: number | undefined;
  /** Whether we sent / received GoAway. */
  goAwaySent: boolean;
  /** Whether the peer sent GoAway. */
  goAwayReceived: boolean;
}

interface _Item {
  streamId: number;
  type: number;
  flags: number;
  length: number;
  data: Uint8Array | null;
  done: ((error?: YamuxError) => void) | undefined;
  /** A SYN, ACK or FIN that may wait for the end of the current event-loop turn. */
  soft?: boolean;
}

function _batchSize(items: _Item[]): number {
  let size = 0;
  for (const item of items) size += HEADER_SIZE + (item.data === null ? 0 : item.data.byteLength);
  return size;
}

interface _Waiter<T> {
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

/** Frames per transport write are coalesced up to about this many bytes. */
const _BATCH_BYTES = 256 * 1024;
/**
 * A batch with at least this many bytes is bulk data: before writing it, the writer waits
 * briefly for more (measured on loopback: 64 KiB writes reach about 0.7× the throughput of
 * 256 KiB writes).
 */
const _GATHER_MIN_BYTES = 32 * 1024;
/**
 * How many microtask hops the writer waits for a writer's next chunk (measured: 3 after a
 * direct `write()`, 4 through a Web Streams writer); a few microseconds when none comes.
 */
const _GATHER_HOPS = 64;
/**
 * Read-ahead buffer of the read loop. Large transport reads matter more than anything
 * else on the receive path (measured: 1 MiB reads beat 256 KiB reads by about 25 %).
 */
const _READ_BUFFER_BYTES = 1024 * 1024;
/**
 * Payloads at least this large are passed on as leases of a pooled read buffer, smaller
 * ones are copied. Memory pinned by leases is capped by the reader (`maxLeasedBytes`).
 */
const _LEASE_MIN_BYTES = 16 * 1024;
/** Cap on read-buffer memory pinned by leases held in stream queues. */
const _MAX_LEASED_BYTES = 16 * 1024 * 1024;
/** How long a failing session tries to flush its GoAway before closing the transport. */
const _GO_AWAY_FLUSH_MS = 1000;

/**
 * A yamux session: many independent, flow-controlled streams over one connection,
 * byte-compatible with hashicorp/yamux (Gitaly's multiplexer).
 *
 * - One writer owns the transport: control frames (ping, window update, SYN/ACK, RST,
 *   GoAway) go first; stream data is interleaved by deficit round robin with a quantum
 *   of one frame, so a bulk stream never starves the others; small frames are coalesced
 *   into one transport write.
 * - One reader parses frames and never waits on application code; each stream buffers
 *   at most its receive window, which is credited back as the application reads.
 * - A peer that violates the protocol gets GoAway(protocol error); every unfinished
 *   stream then fails with a typed {@linkcode YamuxError}. A vanished peer fails them
 *   with `CONNECTION_LOST`. Data received before either is still readable.
 *
 * The client opens odd stream ids, the server even ones; either side may open.
 *
 * @example Open, accept, ping and close over an in-memory pipe
 * ```ts
 * import { duplexPair, YamuxSession } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = duplexPair();
 * const client = YamuxSession.client(a);
 * const server = YamuxSession.server(b);
 *
 * const stream = await client.open();
 * const inbound = await server.accept();
 * assert.equal(inbound.id, stream.id);
 * assert.ok((await client.ping()) >= 0);
 *
 * await client.close();
 * await server.closed;
 * ```
 */
export class YamuxSession implements AsyncDisposable, AsyncIterable<YamuxStream> {
  /** Settles when the session has ended, for whatever reason. Never rejects. */
  readonly closed: Promise<void>;

  readonly #conn: Duplex;
  readonly #client: boolean;
  readonly #options: ResolvedYamuxOptions;
  readonly #queue: FairQueue<_Item>;
  readonly #streams = new Map<number, YamuxStream>();
  readonly #host: _StreamHost;
  readonly #openDeadlines = new _Deadlines<YamuxStream>();
  readonly #closeDeadlines = new _Deadlines<YamuxStream>();
  #nextId: number;
  #acceptQueue: YamuxStream[] = [];
  #acceptWaiters: _Waiter<YamuxStream>[] = [];
  /** Our opened streams not yet ACKed (hashicorp bounds these by acceptBacklog). */
  #unacked = new Set<number>();
  #openWaiters: (() => void)[] = [];
  #pings = new Map<number, { start: number; done: (error?: unknown) => void }>();
  #nextPingId = 0;
  #wakeWriter: (() => void) | null = null;
  /** Queued soft control frames (see `#pushControl`). */
  #softQueued = 0;
  #writerDone!: Promise<void>;
  #readerDone!: Promise<void>;
  #reader: ByteReader | null = null;
  #closingWriter = false;
  #localGoAway = false;
  #remoteGoAway = false;
  #closing = false;
  #failure: YamuxError | null = null;
  /** Set when the transport's write side failed; reading goes on until the peer's end. */
  #writeLost: YamuxError | null = null;
  #terminated = false;
  #resolveClosed!: () => void;
  #keepAliveTimer: ReturnType<typeof setTimeout> | undefined;
  #keepAliveDeadline: ReturnType<typeof setTimeout> | undefined;
  #writeWatchdog: ReturnType<typeof setTimeout> | undefined;
  #writeStartedAt = -1;
  #lastFrameAt = 0;
  #stats = {
    streamsOpened: 0,
    streamsAccepted: 0,
    streamsRefused: 0,
    framesSent: 0,
    framesReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    transportWrites: 0,
    lastPingRttMs: undefined as number | undefined,
    goAwaySent: false,
    goAwayReceived: false,
  };

  /**
   * Starts a session in the client role (odd stream ids): the side that dialed.
   *
   * @param conn the transport; the session owns it from now on
   * @param options tuning, validated at once
   * @returns the running session
   */
  static client(conn: Duplex, options?: YamuxOptions): YamuxSession {
    return new YamuxSession(conn, true, resolveYamuxOptions(options));
  }

  /**
   * Starts a session in the server role (even stream ids): the side that accepted.
   *
   * @param conn the transport; the session owns it from now on
   * @param options tuning, validated at once
   * @returns the running session
   */
  static server(conn: Duplex, options?: YamuxOptions): YamuxSession {
    return new YamuxSession(conn, false, resolveYamuxOptions(options));
  }

  private constructor(conn: Duplex, client: boolean, options: ResolvedYamuxOptions) {
    this.#conn = conn;
    this.#client = client;
    this.#options = options;
    this.#nextId = client ? 1 : 2;
    this.#queue = new FairQueue<_Item>({ quantum: options.maxFrameSize });
    this.closed = new Promise((resolve) => this.#resolveClosed = resolve);
    this.#host = {
      options,
      sendControl: (type, flags, streamId, length) => this.#pushControl(type, flags, streamId, length),
      sendOnFlow: (streamId, type, flags, data, done, soft) =>
        this.#pushFlow(streamId, type, flags, data, done, soft === true),
      dropQueued: (streamId, error) => {
        for (const item of this.#queue.remove(streamId)) {
          if (item.soft) this.#softQueued--;
          item.done?.(error);
        }
      },
      forget: (stream) => {
        if (this.#streams.get(stream.id) === stream) this.#streams.delete(stream.id);
        this.#ackedOrGone(stream);
      },
      openDeadlines: this.#openDeadlines,
      closeDeadlines: this.#closeDeadlines,
      openTimedOut: (stream) => {
        this.#fail(
          new YamuxError("TIMEOUT", `Cannot open stream ${stream.id}: no ACK within the open timeout`, {
            streamId: stream.id,
          }),
          undefined,
        );
      },
    };
    this.#lastFrameAt = performance.now();
    this.#writerDone = this.#writeLoop();
    this.#readerDone = this.#readLoop();
    this.#scheduleKeepAlive();
  }

  /** True for the client role (odd stream ids). */
  get isClient(): boolean {
    return this.#client;
  }

  /** The reason the session ended, once it has; `undefined` while running or after a clean close. */
  get error(): YamuxError | undefined {
    return this.#failure ?? undefined;
  }

  /**
   * Opens a new stream. Resolves as soon as the SYN is queued: data may follow before the
   * peer's ACK, as the spec allows. Waits while `acceptBacklog` of our opens are still
   * unacknowledged (hashicorp's bound on un-ACKed SYNs).
   *
   * @param options `signal` aborts the wait
   * @returns the stream
   * @throws {YamuxError} `GO_AWAY` after the peer's GoAway, `SESSION_CLOSED` (or the
   *   session's failure) once closed, `TOO_MANY_STREAMS`, `STREAMS_EXHAUSTED`.
   */
  async open(options: YamuxCallOptions = {}): Promise<YamuxStream> {
    const { signal } = options;
    for (;;) {
      signal?.throwIfAborted();
      this.#checkOpen();
      if (this.#unacked.size < this.#options.acceptBacklog) break;
      await this.#waitForOpenSlot(signal);
    }
    if (this.#streams.size >= this.#options.maxConcurrentStreams) {
      throw new YamuxError(
        "TOO_MANY_STREAMS",
        `Cannot open stream: ${this.#streams.size} streams are open (maxConcurrentStreams)`,
      );
    }
    const id = this.#nextId;
    if (id > MAX_UINT32 - 1) {
      throw new YamuxError("STREAMS_EXHAUSTED", "Cannot open stream: stream ids are exhausted");
    }
    this.#nextId += 2;
    const stream = new YamuxStream(this.#host, id, true);
    this.#streams.set(id, stream);
    this.#unacked.add(id);
    this.#stats.streamsOpened++;
    // Sent "soon" rather than at once: the caller nearly always writes in the same turn,
    // and SYN + data then leave in one transport write (one wakeup of the peer, not two).
    this.#pushControl(
      TYPE_WINDOW_UPDATE,
      FLAG_SYN,
      id,
      this.#options.maxStreamWindow - INITIAL_STREAM_WINDOW,
      true,
    );
    stream._opened();
    return stream;
  }

  /**
   * Waits for the next stream the peer opens.
   *
   * @param options `signal` aborts the wait
   * @returns the stream
   * @throws {YamuxError} `SESSION_CLOSED` (or the session's failure) once the session ends.
   */
  accept(options: YamuxCallOptions = {}): Promise<YamuxStream> {
    const { signal } = options;
    const queued = this.#acceptQueue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#terminated || this.#closing) return Promise.reject(this.#endError());
    return new Promise<YamuxStream>((resolve, reject) => {
      const waiter: _Waiter<YamuxStream> = {
        resolve: (s) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(s);
        },
        reject: (e) => {
          signal?.removeEventListener("abort", onAbort);
          reject(e);
        },
      };
      const onAbort = () => {
        const i = this.#acceptWaiters.indexOf(waiter);
        if (i >= 0) this.#acceptWaiters.splice(i, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#acceptWaiters.push(waiter);
    });
  }

  /**
   * Iterates inbound streams until the session closes. Ends quietly on a local close or
   * a clean shutdown; throws the session's error if it failed.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<YamuxStream> {
    for (;;) {
      let stream: YamuxStream;
      try {
        stream = await this.accept();
      } catch (error) {
        if (error instanceof YamuxError && error.code === "SESSION_CLOSED") return;
        throw error;
      }
      yield stream;
    }
  }

  /**
   * Measures the round trip to the peer. Pings travel on the control lane, ahead of
   * queued data, so the result reflects the network, not our own backlog.
   *
   * @param options `signal` aborts the wait
   * @returns round-trip time in milliseconds
   * @throws {YamuxError} `TIMEOUT` if no reply within `connectionWriteTimeout`.
   */
  ping(options: YamuxCallOptions = {}): Promise<number> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#terminated || this.#closing) return Promise.reject(this.#endError());
    const id = this.#nextPingId;
    this.#nextPingId = (this.#nextPingId + 1) >>> 0;
    return new Promise<number>((resolve, reject) => {
      const timeout = this.#options.connectionWriteTimeout;
      const timer = setTimeout(() => {
        finish(new YamuxError("TIMEOUT", `Cannot ping: no reply within ${timeout} ms`));
      }, timeout);
      const onAbort = () => finish(signal!.reason);
      const start = performance.now();
      const finish = (error?: unknown) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.#pings.delete(id);
        if (error !== undefined) {
          reject(error);
        } else {
          const rtt = performance.now() - start;
          this.#stats.lastPingRttMs = rtt;
          resolve(rtt);
        }
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#pings.set(id, { start, done: finish });
      this.#pushControl(TYPE_PING, FLAG_SYN, 0, id);
    });
  }

  /**
   * Sends GoAway: the peer may open no more streams (new SYNs are refused with RST);
   * streams already open continue. Call {@linkcode YamuxSession.close} when done.
   *
   * @param code 0 normal, 1 protocol error, 2 internal error
   */
  goAway(code: number = GO_AWAY_NORMAL): Promise<void> {
    if (!Number.isInteger(code) || code < 0 || code > MAX_UINT32) {
      throw new RangeError(`Cannot send GoAway: code must be a uint32, received ${code}`);
    }
    if (!this.#localGoAway && !this.#terminated) {
      this.#localGoAway = true;
      this.#stats.goAwaySent = true;
      this.#pushControl(TYPE_GO_AWAY, 0, 0, code);
    }
    return Promise.resolve();
  }

  /**
   * Closes the session gracefully: sends GoAway(0) unless already sent, stops new writes,
   * flushes every frame already queued (data, FINs) to the transport, then closes it.
   * Streams still open fail with `SESSION_CLOSED` after delivering what they received.
   * Idempotent.
   */
  async close(): Promise<void> {
    if (!this.#closing && !this.#terminated) {
      this.#closing = true;
      await this.goAway(GO_AWAY_NORMAL);
      const error = new YamuxError("SESSION_CLOSED", "Cannot continue: the session was closed");
      for (const stream of this.#streams.values()) stream._refuseWrites(error);
      this.#rejectWaiters(error);
      this.#closingWriter = true;
      this.#wakeWriter?.();
      const timeout = this.#options.connectionWriteTimeout;
      // Flush and half-close, then linger until the peer closes its side: closing a TCP
      // socket with unread input sends RST, which can destroy data still in flight.
      await this.#within(this.#writerDone, timeout);
      await this.#within(this.#readerDone, timeout);
      this.#terminate(error);
    }
    await this.closed;
  }

  async #within(promise: Promise<unknown>, ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([promise, new Promise<void>((resolve) => timer = setTimeout(resolve, ms))]);
    clearTimeout(timer);
  }

  /** Same as {@linkcode YamuxSession.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * A snapshot of the session's counters.
   *
   * @returns the counters
   */
  stats(): YamuxSessionStats {
    return {
      ...this.#stats,
      openStreams: this.#streams.size,
      acceptBacklog: this.#acceptQueue.length,
      queuedBytes: this.#queue.bytes,
    };
  }

  // ---- writer ----

  /**
   * Queues a control frame. A `soft` frame (SYN, ACK) may wait for the end of the current
   * turn of the event loop: the application nearly always writes right after opening or
   * accepting, and the frame then shares its transport write (one wakeup of the peer).
   */
  #pushControl(type: number, flags: number, streamId: number, length: number, soft = false): void {
    if (this.#terminated || this.#writeLost !== null) return;
    this.#queue.pushControl(
      { streamId, type, flags, length, data: null, done: undefined, soft },
      HEADER_SIZE,
    );
    if (soft) this.#softQueued++;
    this.#wakeWriter?.();
  }

  #pushFlow(
    streamId: number,
    type: number,
    flags: number,
    data: Uint8Array | null,
    done: ((error?: YamuxError) => void) | undefined,
    soft = false,
  ): void {
    if (this.#terminated || this.#writeLost !== null) {
      done?.(this.#writeLost ?? this.#endError());
      return;
    }
    const length = data === null ? 0 : data.byteLength;
    this.#queue.push(streamId, { streamId, type, flags, length, data, done, soft }, length);
    if (soft) this.#softQueued++;
    this.#wakeWriter?.();
  }

  async #writeLoop(): Promise<void> {
    await Promise.resolve(); // let the constructor finish
    const conn = this.#conn;
    // Direct I/O (Deno.Conn semantics) skips the streams machinery, and since a direct
    // write holds no reference once it resolves, one batch buffer can be reused.
    const direct = hasDirectIo(conn) ? conn : null;
    const writer = direct === null ? conn.writable.getWriter() : null;
    let reusable: Uint8Array | null = null;
    try {
      for (;;) {
        if (this.#terminated) return;
        if (this.#queue.length === 0) {
          if (this.#closingWriter) break;
          await new Promise<void>((resolve) => this.#wakeWriter = resolve);
          this.#wakeWriter = null;
          continue;
        }
        if (this.#softQueued === this.#queue.length && !this.#closingWriter) {
          // Only SYN/ACK/FIN are waiting: give the application the rest of this turn to add
          // its data (`setImmediate`: microseconds; `setTimeout(0)` costs milliseconds).
          await new Promise<void>((resolve) => setImmediate(resolve));
          if (this.#terminated) return;
        }
        let items = this.#takeBatch();
        let size = _batchSize(items);
        let batch: Uint8Array;
        let frames = items.length;
        if (direct !== null) {
          if (reusable === null || reusable.byteLength < size) {
            reusable = new Uint8Array(
              Math.max(size, _BATCH_BYTES + this.#options.maxFrameSize + HEADER_SIZE),
            );
          }
          let offset = this.#encodeInto(reusable, 0, items);
          // Bulk data: writers add their next chunk as soon as the last one is copied (a
          // few microtasks later), so a short wait gathers several into this write: a
          // transport write costs far more than the wait. Small frames never wait here.
          while (offset >= _GATHER_MIN_BYTES && offset < _BATCH_BYTES && !this.#terminated) {
            for (let hop = 0; hop < _GATHER_HOPS && this.#queue.length === 0; hop++) await null;
            if (this.#queue.length === 0 || this.#terminated) break;
            items = this.#takeBatch(offset);
            if (items.length === 0) break;
            frames += items.length;
            offset = this.#encodeInto(reusable, offset, items);
          }
          size = offset;
          batch = reusable.subarray(0, size);
        } else {
          batch = new Uint8Array(size);
          this.#encodeInto(batch, 0, items);
        }
        if (this.#terminated) return;
        this.#stats.framesSent += frames;
        this.#stats.transportWrites++;
        this.#writeStartedAt = performance.now();
        this.#armWriteWatchdog();
        try {
          if (direct !== null) {
            let written = 0;
            while (written < size) written += await direct.write(batch.subarray(written));
          } else {
            await writer!.write(batch);
          }
        } finally {
          this.#writeStartedAt = -1;
        }
      }
      // Graceful close: everything queued is written; half-close the transport.
      await (direct !== null ? direct.closeWrite() : writer!.close()).catch(() => {});
    } catch (error) {
      if (error instanceof YamuxError) {
        this.#fail(error, undefined);
      } else {
        this.#onWriteLost(
          new YamuxError("CONNECTION_LOST", "Cannot write: the connection failed", { cause: error }),
        );
      }
    } finally {
      writer?.releaseLock();
    }
  }

  /**
   * Takes queued frames for one transport write, until the write holds about
   * `_BATCH_BYTES` (`already` of them taken before). A frame is at most `maxFrameSize`
   * plus its header, so a batch never exceeds `_BATCH_BYTES + maxFrameSize + HEADER_SIZE`.
   */
  #takeBatch(already = 0): _Item[] {
    const items: _Item[] = [];
    let size = already;
    while (size < _BATCH_BYTES) {
      const item = this.#queue.pop();
      if (item === undefined) break;
      if (item.soft) this.#softQueued--;
      items.push(item);
      size += HEADER_SIZE + (item.data === null ? 0 : item.data.byteLength);
    }
    return items;
  }

  /**
   * Encodes `items` into `out` at `offset` and returns the new end. Payloads are copied,
   * so their writers are told they may reuse their buffers.
   */
  #encodeInto(out: Uint8Array, offset: number, items: _Item[]): number {
    for (const item of items) {
      encodeHeaderInto(out, offset, item.type, item.flags, item.streamId, item.length);
      offset += HEADER_SIZE;
      if (item.data !== null) {
        out.set(item.data, offset);
        offset += item.data.byteLength;
        this.#stats.bytesSent += item.data.byteLength;
      }
    }
    for (const item of items) item.done?.();
    return offset;
  }

  /**
   * One lazily re-armed timer instead of one per write: it fires at most once per
   * `connectionWriteTimeout` and fails the session if the write in progress has been
   * stuck for that long (the peer stopped reading).
   */
  #armWriteWatchdog(): void {
    if (this.#writeWatchdog !== undefined || this.#terminated) return;
    const timeout = this.#options.connectionWriteTimeout;
    const check = () => {
      this.#writeWatchdog = undefined;
      if (this.#terminated || this.#writeStartedAt < 0) return;
      const stuck = performance.now() - this.#writeStartedAt;
      if (stuck >= timeout) {
        this.#fail(
          new YamuxError("TIMEOUT", `Cannot write: the transport accepted nothing for ${timeout} ms`),
          undefined,
        );
        return;
      }
      this.#writeWatchdog = setTimeout(check, timeout - stuck);
    };
    this.#writeWatchdog = setTimeout(check, timeout);
  }

  // ---- reader ----

  async #readLoop(): Promise<void> {
    const conn = this.#conn;
    const reader = new ByteReader(hasDirectIo(conn) ? conn : conn.readable, {
      bufferSize: _READ_BUFFER_BYTES,
    });
    this.#reader = reader;
    try {
      for (;;) {
        if (!(await reader.fill(HEADER_SIZE))) {
          this.#onEof(reader.buffered);
          return;
        }
        if (this.#terminated) return;
        const h = reader.peek(HEADER_SIZE);
        const version = h[0]!;
        const type = h[1]!;
        const flags = (h[2]! << 8) | h[3]!;
        const streamId = ((h[4]! << 24) | (h[5]! << 16) | (h[6]! << 8) | h[7]!) >>> 0;
        const length = ((h[8]! << 24) | (h[9]! << 16) | (h[10]! << 8) | h[11]!) >>> 0;
        reader.skip(HEADER_SIZE);
        this.#stats.framesReceived++;
        this.#lastFrameAt = performance.now();
        if (version !== YAMUX_VERSION) {
          return this.#protocolError("INVALID_VERSION", `unsupported version ${version}`);
        }
        switch (type) {
          case TYPE_DATA:
            if (!(await this.#onData(reader, flags, streamId, length))) return;
            break;
          case TYPE_WINDOW_UPDATE:
            if (!this.#onWindowUpdate(flags, streamId, length)) return;
            break;
          case TYPE_PING:
            this.#onPing(flags, length);
            break;
          case TYPE_GO_AWAY:
            if (!this.#onGoAway(length)) return;
            break;
          default:
            return this.#protocolError("INVALID_TYPE", `unknown frame type ${type}`);
        }
      }
    } catch (error) {
      if (!this.#terminated && !this.#closing) {
        this.#fail(
          new YamuxError("CONNECTION_LOST", "Cannot read: the connection failed", { cause: error }),
          undefined,
        );
      }
    } finally {
      this.#reader = null;
      reader.release();
    }
  }

  #onEof(leftover: number): void {
    if (this.#terminated) return;
    if (leftover === 0 && (this.#closing || this.#remoteGoAway)) {
      // A clean end: we are closing, or the peer said GoAway and closed. Streams that
      // had not finished still fail (with SESSION_CLOSED), never end cleanly.
      this.#terminate(
        new YamuxError("SESSION_CLOSED", "Cannot continue: the session was closed", {
          remote: !this.#closing,
        }),
      );
      return;
    }
    const detail = leftover === 0 ? "" : ` in the middle of a frame header (${leftover} bytes)`;
    this.#fail(
      new YamuxError("CONNECTION_LOST", `Cannot continue: the peer closed the connection${detail}`),
      undefined,
    );
  }

  /** Handles SYN/ACK/RST/FIN common to Data and Window Update. Returns the stream, or null. */
  #streamFor(flags: number, streamId: number): YamuxStream | null | false {
    if ((flags & FLAG_SYN) !== 0) return this.#incoming(streamId);
    const stream = this.#streams.get(streamId) ?? null;
    if (stream !== null && (flags & FLAG_ACK) !== 0) {
      stream._onAck();
      this.#ackedOrGone(stream);
    }
    return stream;
  }

  async #onData(reader: ByteReader, flags: number, streamId: number, length: number): Promise<boolean> {
    const stream = this.#streamFor(flags, streamId);
    if (stream === false) return false;
    if (stream === null || (flags & FLAG_RST) !== 0) {
      // Unknown, refused or reset stream: drain as the spec says. No window we ever
      // granted is larger than maxStreamWindow, so a longer frame cannot be legitimate.
      if (length > this.#options.maxStreamWindow) {
        this.#protocolError("RECV_WINDOW_EXCEEDED", `${length} bytes of data for unknown stream ${streamId}`);
        return false;
      }
      if (length > 0) await reader.discard(length);
      if (stream !== null) stream._onRst();
      return true;
    }
    if (length > stream._recvWindow) {
      this.#protocolError(
        "RECV_WINDOW_EXCEEDED",
        `${length} bytes on stream ${streamId} exceed its window of ${stream._recvWindow}`,
        streamId,
      );
      return false;
    }
    if (length > 0) {
      // Payloads stay in the pooled read buffer (no allocation, no copy) until the stream's
      // reader has copied them out; small ones are copied so that a stream holding them
      // does not pin a whole read buffer.
      if (length >= _LEASE_MIN_BYTES) {
        const { bytes, release } = await reader.readLeased(length);
        stream._onData(bytes, release);
      } else {
        stream._onData(await reader.readExactly(length));
      }
      this.#stats.bytesReceived += length;
    }
    return this.#onCloseFlags(stream, flags);
  }

  #onWindowUpdate(flags: number, streamId: number, delta: number): boolean {
    const stream = this.#streamFor(flags, streamId);
    if (stream === false) return false;
    if (stream === null) return true; // late updates for finished streams are normal
    if ((flags & FLAG_RST) !== 0) {
      stream._onRst();
      return true;
    }
    if (!stream._onWindowUpdate(delta)) {
      this.#protocolError("WINDOW_OVERFLOW", `window of stream ${streamId} overflows 2^32-1`, streamId);
      return false;
    }
    return this.#onCloseFlags(stream, flags);
  }

  #onCloseFlags(stream: YamuxStream, flags: number): boolean {
    if ((flags & FLAG_FIN) !== 0 && !stream._onFin()) {
      this.#protocolError(
        "UNEXPECTED_FLAG",
        `FIN on stream ${stream.id} in state ${stream.state}`,
        stream.id,
      );
      return false;
    }
    return true;
  }

  /** A SYN: a new inbound stream. Returns the stream, null if refused, false on a protocol error. */
  #incoming(streamId: number): YamuxStream | null | false {
    if (streamId === 0 || (streamId % 2 === 1) === this.#client) {
      this.#protocolError(
        "INVALID_STREAM_ID",
        `SYN with stream id ${streamId} of the wrong parity`,
        streamId,
      );
      return false;
    }
    if (this.#streams.has(streamId)) {
      this.#protocolError("DUPLICATE_STREAM", `SYN for stream ${streamId}, which is open`, streamId);
      return false;
    }
    if (
      this.#localGoAway || this.#closing ||
      this.#acceptQueue.length >= this.#options.acceptBacklog ||
      this.#streams.size >= this.#options.maxConcurrentStreams
    ) {
      this.#stats.streamsRefused++;
      this.#pushControl(TYPE_WINDOW_UPDATE, FLAG_RST, streamId, 0);
      return null;
    }
    const stream = new YamuxStream(this.#host, streamId, false);
    this.#streams.set(streamId, stream);
    this.#stats.streamsAccepted++;
    // Acknowledge now (granting our window): the peer may be waiting on its own
    // un-ACKed-SYN bound, and refusal already happened above. "Soon" (after this turn):
    // an application answering at once shares the transport write with the ACK.
    this.#pushControl(
      TYPE_WINDOW_UPDATE,
      FLAG_ACK,
      streamId,
      this.#options.maxStreamWindow - INITIAL_STREAM_WINDOW,
      true,
    );
    stream._accepted();
    const waiter = this.#acceptWaiters.shift();
    if (waiter !== undefined) waiter.resolve(stream);
    else this.#acceptQueue.push(stream);
    return stream;
  }

  #onPing(flags: number, value: number): void {
    if ((flags & FLAG_SYN) !== 0) {
      this.#pushControl(TYPE_PING, FLAG_ACK, 0, value);
    } else if ((flags & FLAG_ACK) !== 0) {
      this.#pings.get(value)?.done(); // unknown ids are ignored (lenient, like hashicorp)
    }
  }

  #onGoAway(code: number): boolean {
    this.#remoteGoAway = true;
    this.#stats.goAwayReceived = true;
    this.#wakeOpeners();
    if (code === GO_AWAY_NORMAL) return true;
    this.#fail(
      new YamuxError("GO_AWAY", `Cannot continue: the peer went away with error code ${code}`, {
        remote: true,
        goAwayCode: code,
      }),
      undefined,
    );
    return false;
  }

  // ---- lifecycle ----

  #checkOpen(): void {
    if (this.#terminated || this.#closing) throw this.#endError();
    if (this.#writeLost !== null) throw this.#writeLost;
    if (this.#remoteGoAway) {
      throw new YamuxError("GO_AWAY", "Cannot open stream: the peer sent GoAway", {
        remote: true,
        goAwayCode: GO_AWAY_NORMAL,
      });
    }
  }

  #waitForOpenSlot(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const i = this.#openWaiters.indexOf(wake);
        if (i >= 0) this.#openWaiters.splice(i, 1);
        reject(signal!.reason);
      };
      const wake = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#openWaiters.push(wake);
    });
  }

  #ackedOrGone(stream: YamuxStream): void {
    if (this.#unacked.delete(stream.id)) this.#wakeOpeners();
  }

  #wakeOpeners(): void {
    const waiters = this.#openWaiters;
    this.#openWaiters = [];
    for (const wake of waiters) wake();
  }

  #endError(): YamuxError {
    return this.#failure ?? new YamuxError("SESSION_CLOSED", "Cannot continue: the session is closed");
  }

  #protocolError(violation: YamuxViolation, detail: string, streamId?: number): void {
    this.#fail(
      new YamuxError("PROTOCOL_ERROR", `Cannot continue: protocol error from the peer: ${detail}`, {
        violation,
        goAwayCode: GO_AWAY_PROTOCOL_ERROR,
        ...(streamId === undefined ? {} : { streamId }),
      }),
      GO_AWAY_PROTOCOL_ERROR,
    );
  }

  /** Ends the session with an error; optionally tells the peer with GoAway first. */
  #fail(error: YamuxError, goAwayCode: number | undefined): void {
    if (this.#terminated || this.#failure !== null) return;
    this.#failure = error;
    if (goAwayCode === undefined) {
      this.#terminate(error);
      return;
    }
    // Drop queued data, send only the GoAway, then close the transport.
    this.#softQueued = 0;
    for (const item of this.#queue.clear()) item.done?.(error);
    this.#stats.goAwaySent = true;
    this.#localGoAway = true;
    this.#pushControl(TYPE_GO_AWAY, 0, 0, goAwayCode);
    this.#closingWriter = true;
    this.#wakeWriter?.();
    for (const stream of [...this.#streams.values()]) stream._fail(error);
    this.#rejectWaiters(error);
    let timer: ReturnType<typeof setTimeout> | undefined;
    void Promise.race([
      this.#writerDone,
      new Promise<void>((resolve) => timer = setTimeout(resolve, _GO_AWAY_FLUSH_MS)),
    ]).then(() => {
      clearTimeout(timer);
      this.#terminate(error);
    });
  }

  /**
   * The transport's write side failed (EPIPE, reset). Nothing more can be sent, but the
   * peer may still have sent data we have not read, so reading continues until its end
   * (bounded by `connectionWriteTimeout`).
   */
  #onWriteLost(error: YamuxError): void {
    if (this.#terminated || this.#writeLost !== null) return;
    this.#writeLost = error;
    this.#softQueued = 0;
    for (const item of this.#queue.clear()) item.done?.(error);
    for (const stream of this.#streams.values()) stream._refuseWrites(error);
    for (const ping of [...this.#pings.values()]) ping.done(error);
    this.#wakeOpeners();
    void this.#within(this.#readerDone, this.#options.connectionWriteTimeout).then(() =>
      this.#fail(error, undefined)
    );
  }

  #rejectWaiters(error: YamuxError): void {
    const accepts = this.#acceptWaiters;
    this.#acceptWaiters = [];
    for (const waiter of accepts) waiter.reject(error);
    for (const ping of [...this.#pings.values()]) ping.done(error);
    this.#wakeOpeners();
  }

  /** Final teardown: fail what is left, stop timers and loops, close the transport. */
  #terminate(error: YamuxError): void {
    if (this.#terminated) return;
    this.#terminated = true;
    clearTimeout(this.#keepAliveTimer);
    clearTimeout(this.#keepAliveDeadline);
    clearTimeout(this.#writeWatchdog);
    this.#openDeadlines.close();
    this.#closeDeadlines.close();
    this.#softQueued = 0;
    for (const item of this.#queue.clear()) item.done?.(error);
    for (const stream of [...this.#streams.values()]) stream._fail(error);
    this.#streams.clear();
    this.#acceptQueue = [];
    this.#rejectWaiters(error);
    this.#wakeWriter?.();
    void this.#closeTransport().finally(() => this.#resolveClosed());
  }

  async #closeTransport(): Promise<void> {
    const conn = this.#conn as Partial<DuplexConn> & Duplex;
    void this.#reader?.cancel().catch(() => {});
    if (typeof conn.close === "function") {
      await conn.close().catch(() => {});
    } else {
      await this.#conn.readable.cancel().catch(() => {});
      await this.#conn.writable.abort().catch(() => {});
    }
    // A transport that never settles a pending write must not keep `closed` pending.
    await this.#within(Promise.allSettled([this.#writerDone, this.#readerDone]), _GO_AWAY_FLUSH_MS);
  }

  #scheduleKeepAlive(): void {
    const interval = this.#options.keepAliveInterval;
    if (interval === 0 || this.#terminated) return;
    this.#keepAliveTimer = setTimeout(() => {
      if (this.#terminated || this.#closing) return;
      const sentAt = performance.now();
      const id = this.#nextPingId;
      this.#nextPingId = (this.#nextPingId + 1) >>> 0;
      this.#pushControl(TYPE_PING, FLAG_SYN, 0, id);
      const timeout = this.#options.connectionWriteTimeout;
      this.#keepAliveDeadline = setTimeout(() => {
        if (this.#lastFrameAt >= sentAt) {
          this.#scheduleKeepAlive();
          return;
        }
        this.#fail(
          new YamuxError("KEEPALIVE_TIMEOUT", `Cannot continue: the peer sent nothing for ${timeout} ms`),
          undefined,
        );
      }, timeout);
    }, interval);
  }
}
