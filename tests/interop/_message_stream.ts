/**
 * A minimal libp2p v3 `MessageStream` over a `Deno.Conn`, enough for
 * `@chainsafe/libp2p-yamux` 8's muxer to run in-process under Deno without
 * `@libp2p/tcp`.
 *
 * What the muxer (`AbstractStreamMuxer` in `@libp2p/utils` 7) uses of its
 * connection: `direction` ("outbound" makes it the yamux client), `log.newScope()`,
 * `send(bytes | Uint8ArrayList) → boolean` (false = wait for a `drain` event),
 * `abort(err)`, and the events `message` (`evt.data`), `drain` and `close`.
 *
 * @module
 */

/** The logger shape libp2p passes around: callable, with `trace`/`error`/`newScope`. */
export interface QuietLogger {
  (formatter: unknown, ...args: unknown[]): void;
  enabled: boolean;
  trace: ((formatter: unknown, ...args: unknown[]) => void) & { enabled: boolean };
  error: ((formatter: unknown, ...args: unknown[]) => void) & { enabled: boolean };
  newScope(name: string): QuietLogger;
}

/** A logger that drops everything. */
export function quietLogger(): QuietLogger {
  const off = () => {};
  return Object.assign(off, {
    enabled: false,
    trace: Object.assign(() => {}, { enabled: false }),
    error: Object.assign(() => {}, { enabled: false }),
    newScope: () => quietLogger(),
  });
}

class _DataEvent extends Event {
  constructor(type: string, readonly data: Uint8Array) {
    super(type);
  }
}

class _CloseEvent extends Event {
  readonly local: boolean;
  readonly error: Error | undefined;
  constructor(local: boolean, error?: Error) {
    super("close");
    this.local = local;
    this.error = error;
  }
}

/** Bytes from a `Uint8Array` or a `Uint8ArrayList` (which has `subarray()`). */
export function toBytes(data: Uint8Array | { subarray(): Uint8Array }): Uint8Array {
  return data instanceof Uint8Array ? data : data.subarray();
}

/** Options for {@linkcode DenoMessageStream}. */
export interface DenoMessageStreamOptions {
  /** `send()` returns false once this many bytes are queued. @default {4194304} */
  highWaterMark?: number;
  /** Read buffer size. @default {65536} */
  readSize?: number;
}

/** A `Deno.Conn` with the event/`send()` surface of a libp2p v3 `MessageStream`. */
export class DenoMessageStream extends EventTarget {
  /** "outbound" makes the chainsafe muxer the yamux client. */
  readonly direction: "inbound" | "outbound";
  /** Quiet libp2p-style logger. */
  readonly log: QuietLogger = quietLogger();
  /** "open" until the connection ends. */
  status: "open" | "closing" | "closed" = "open";
  /** Whether `send()` last returned false and no `drain` followed yet. */
  writableNeedsDrain = false;
  /** Settles when the connection is closed and both loops have stopped. */
  readonly closed: Promise<void>;

  readonly #conn: Deno.Conn;
  readonly #highWaterMark: number;
  readonly #readSize: number;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #writing: Promise<void> | null = null;
  #connClosed = false;

  constructor(conn: Deno.Conn, direction: "inbound" | "outbound", options: DenoMessageStreamOptions = {}) {
    super();
    this.#conn = conn;
    this.direction = direction;
    this.#highWaterMark = options.highWaterMark ?? 4 * 1024 * 1024;
    this.#readSize = options.readSize ?? 64 * 1024;
    // Small frames (pings, window updates) must not wait for Nagle + delayed ACK.
    (conn as Partial<Deno.TcpConn>).setNoDelay?.(true);
    this.closed = this.#readLoop();
  }

  /** Bytes queued for the socket. */
  get writeBufferLength(): number {
    return this.#queued;
  }

  async #readLoop(): Promise<void> {
    let error: Error | undefined;
    try {
      for (;;) {
        const buf = new Uint8Array(this.#readSize);
        const n = await this.#conn.read(buf);
        if (n === null) break;
        this.dispatchEvent(new _DataEvent("message", buf.subarray(0, n)));
      }
    } catch (e) {
      if (!this.#connClosed) error = e instanceof Error ? e : new Error(String(e));
    }
    await this.#writing?.catch(() => {});
    this.#closeConn();
    this.status = "closed";
    this.dispatchEvent(new _CloseEvent(false, error));
  }

  /** Queues bytes; returns false when the caller should wait for `drain`. */
  send(data: Uint8Array | { subarray(): Uint8Array }): boolean {
    if (this.status !== "open") return false;
    const bytes = toBytes(data);
    this.#queue.push(bytes);
    this.#queued += bytes.byteLength;
    this.#writing ??= this.#writeLoop();
    if (this.#queued >= this.#highWaterMark) {
      this.writableNeedsDrain = true;
      return false;
    }
    return true;
  }

  async #writeLoop(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const chunks = this.#queue;
        this.#queue = [];
        let total = 0;
        for (const c of chunks) total += c.byteLength;
        let batch: Uint8Array;
        if (chunks.length === 1) {
          batch = chunks[0]!;
        } else {
          batch = new Uint8Array(total);
          let offset = 0;
          for (const c of chunks) {
            batch.set(c, offset);
            offset += c.byteLength;
          }
        }
        for (let offset = 0; offset < batch.byteLength;) {
          offset += await this.#conn.write(batch.subarray(offset));
        }
        this.#queued -= total;
        if (this.writableNeedsDrain && this.#queued < this.#highWaterMark) {
          this.writableNeedsDrain = false;
          this.dispatchEvent(new Event("drain"));
        }
      }
    } catch {
      this.#closeConn();
    } finally {
      this.#writing = null;
    }
  }

  /** Waits until everything queued reached the socket. */
  async flush(): Promise<void> {
    while (this.#writing !== null) await this.#writing;
  }

  /** Flushes, then closes the connection. */
  async close(): Promise<void> {
    if (this.status === "open") this.status = "closing";
    await this.flush();
    this.#closeConn();
    await this.closed;
  }

  /** Closes the connection at once. */
  abort(_error?: Error): void {
    this.status = "closing";
    this.#closeConn();
  }

  #closeConn(): void {
    if (this.#connClosed) return;
    this.#connClosed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}
