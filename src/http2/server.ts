/**
 * Listening for HTTP/2 connections: h2c with prior knowledge on TCP, or TLS with ALPN `h2`.
 *
 * @module
 */

import { _acceptEach, _tlsHandshake } from "../streams/_accept.ts";
import { fromDenoConn } from "../streams/deno_conn.ts";
import { Http2Connection } from "./connection.ts";
import { type Http2ConnectionOptions, resolveHttp2Options } from "./options.ts";
import type { Http2Stream } from "./stream.ts";

/**
 * Where a connection accepted by {@linkcode serveHttp2} comes from.
 *
 * @example
 * ```ts
 * import type { Http2ConnectionInfo } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const info: Http2ConnectionInfo = {
 *   remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 50000 },
 *   localAddr: { transport: "tcp", hostname: "127.0.0.1", port: 8000 },
 *   secure: false,
 * };
 * assert.equal(info.secure, false);
 * ```
 */
export interface Http2ConnectionInfo {
  /** The client's address. */
  readonly remoteAddr: Deno.Addr;
  /** The address it connected to. */
  readonly localAddr: Deno.Addr;
  /** Whether the connection is TLS. */
  readonly secure: boolean;
}

/**
 * Handles one stream (one request); a rejection resets the stream with INTERNAL_ERROR.
 * `info` is the same object for every stream of a connection.
 *
 * @example A handler that answers 404
 * ```ts
 * import { type Http2Handler, serveHttp2 } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const notFound: Http2Handler = (stream) => stream.respond({ ":status": "404" }, { endStream: true });
 * await using server = serveHttp2({ hostname: "127.0.0.1", port: 0 }, notFound);
 * assert.ok(server.addr.port > 0);
 * ```
 */
export type Http2Handler = (
  stream: Http2Stream,
  connection: Http2Connection,
  info: Http2ConnectionInfo,
) => void | Promise<void>;

/**
 * Options for {@linkcode serveHttp2}: where to listen, plus every connection option.
 *
 * @example
 * ```ts
 * import { serveHttp2, type ServeHttp2Options } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const controller = new AbortController();
 * const options: ServeHttp2Options = { hostname: "127.0.0.1", port: 0, maxConcurrentStreams: 1000, signal: controller.signal };
 * const server = serveHttp2(options, (stream) => stream.respond({ ":status": "200" }, { endStream: true }));
 * controller.abort(); // graceful shutdown
 * await server.finished;
 * assert.equal(server.connections, 0);
 * ```
 */
export interface ServeHttp2Options extends Http2ConnectionOptions {
  /**
   * Interface to listen on.
   * @default {"0.0.0.0"}
   */
  hostname?: string;
  /**
   * Port to listen on; 0 picks a free one (see `addr`).
   * @default {8000}
   */
  port?: number;
  /** PEM certificate chain: with `key`, serve TLS and negotiate `h2` by ALPN. */
  cert?: string;
  /** PEM private key for `cert`. */
  key?: string;
  /** Aborting starts a graceful shutdown, like {@linkcode Http2Server.shutdown}. */
  signal?: AbortSignal;
  /** Called with errors of handlers, TLS handshakes and failed connections. */
  onError?: (error: unknown) => void;
}

/**
 * Options for {@linkcode Http2Server.shutdown}.
 *
 * @example Drain for at most one second
 * ```ts
 * import { type Http2ShutdownOptions, serveHttp2 } from "@sidechannel/transport";
 *
 * const server = serveHttp2({ hostname: "127.0.0.1", port: 0 }, () => {});
 * const options: Http2ShutdownOptions = { signal: AbortSignal.timeout(1000) };
 * await server.shutdown(options);
 * ```
 */
export interface Http2ShutdownOptions {
  /** Aborting ends the graceful drain: remaining connections are aborted at once. */
  signal?: AbortSignal;
}

/**
 * A running server from {@linkcode serveHttp2}.
 *
 * @example
 * ```ts
 * import { fromDenoConn, Http2Connection, type Http2Server, serveHttp2 } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const server: Http2Server = serveHttp2({ hostname: "127.0.0.1", port: 0 }, (stream) => {
 *   stream.respond({ ":status": "204" }, { endStream: true });
 * });
 * const client = Http2Connection.client(fromDenoConn(await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port })));
 * const stream = await client.request(
 *   { ":method": "GET", ":scheme": "http", ":authority": "x", ":path": "/" },
 *   { endStream: true },
 * );
 * assert.equal((await stream.response)[0]![1], "204");
 * assert.equal(server.connections, 1);
 * await server.shutdown(); // GOAWAY; the client closes once its streams are done
 * await client.closed;
 * ```
 */
export interface Http2Server extends AsyncDisposable {
  /** The address it listens on. */
  readonly addr: Deno.NetAddr;
  /** Settles when the server has shut down and every connection is closed. */
  readonly finished: Promise<void>;
  /** Connections currently open. */
  readonly connections: number;
  /**
   * Stops accepting, sends GOAWAY on every connection, waits for their streams to finish
   * and closes them.
   *
   * @param options a signal that bounds the drain
   * @returns resolves when every connection is closed
   */
  shutdown(options?: Http2ShutdownOptions): Promise<void>;
}

class _Server implements Http2Server {
  readonly addr: Deno.NetAddr;
  readonly finished: Promise<void>;
  readonly #listener: Deno.Listener;
  readonly #tls: boolean;
  readonly #options: Http2ConnectionOptions;
  readonly #handler: Http2Handler;
  readonly #onError: (error: unknown) => void;
  readonly #open = new Set<Http2Connection>();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #acceptLoop: Promise<void>;
  #shutdown: Promise<void> | undefined;
  #finished!: () => void;

  constructor(listener: Deno.Listener, tls: boolean, options: ServeHttp2Options, handler: Http2Handler) {
    this.#listener = listener;
    this.#tls = tls;
    this.addr = listener.addr as Deno.NetAddr;
    this.#handler = handler;
    const onError = options.onError;
    // A throwing onError must not become an unhandled rejection.
    this.#onError = (error) => {
      try {
        onError?.(error);
      } catch {
        // ignored
      }
    };
    const {
      hostname: _h,
      port: _p,
      cert: _c,
      key: _k,
      signal: _s,
      onError: _e,
      ...connectionOptions
    } = options;
    this.#options = connectionOptions;
    this.finished = new Promise((resolve) => this.#finished = resolve);
    this.#acceptLoop = this.#accept();
  }

  get connections(): number {
    return this.#open.size;
  }

  shutdown(options: Http2ShutdownOptions = {}): Promise<void> {
    this.#shutdown ??= this.#drain(options.signal);
    return this.#shutdown;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  async #drain(signal: AbortSignal | undefined): Promise<void> {
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    await this.#acceptLoop;
    const abortAll = () => {
      for (const conn of this.#open) conn.abort(signal?.reason);
    };
    if (signal?.aborted) abortAll();
    signal?.addEventListener("abort", abortAll, { once: true });
    try {
      const closing = [...this.#open].map((conn) => conn.close());
      // Per-connection loops end once their connection stops taking streams; a handshake in
      // progress either fails or yields a connection that starts with GOAWAY.
      await Promise.all([...this.#pending]);
      await Promise.all([...closing, ...[...this.#open].map((conn) => conn.close())]);
    } finally {
      signal?.removeEventListener("abort", abortAll);
    }
    this.#finished();
  }

  #accept(): Promise<void> {
    return _acceptEach(this.#listener, (raw) => this.#serve(raw), this.#pending, this.#onError);
  }

  async #serve(raw: Deno.Conn): Promise<void> {
    if (this.#tls) {
      const alpn = await _tlsHandshake(raw);
      if (alpn !== null && alpn !== "h2") {
        raw.close();
        return;
      }
    }
    const info: Http2ConnectionInfo = {
      remoteAddr: raw.remoteAddr,
      localAddr: raw.localAddr,
      secure: this.#tls,
    };
    const conn = Http2Connection.server(fromDenoConn(raw), this.#options);
    this.#open.add(conn);
    if (this.#shutdown !== undefined) conn.goAway();
    void conn.closed.then(() => {
      this.#open.delete(conn);
      if (conn.error !== undefined && conn.error.code !== "NO_ERROR") this.#onError(conn.error);
    });
    for (;;) {
      let stream: Http2Stream;
      try {
        stream = await conn.accept();
      } catch {
        return; // the connection takes no more streams
      }
      void this.#run(stream, conn, info);
    }
  }

  async #run(stream: Http2Stream, conn: Http2Connection, info: Http2ConnectionInfo): Promise<void> {
    try {
      await this.#handler(stream, conn, info);
    } catch (error) {
      this.#onError(error);
      stream.reset("INTERNAL_ERROR");
    }
  }
}

/**
 * Listens for HTTP/2 and calls `handler` for every stream (request).
 *
 * Without `cert`/`key` it serves h2c with prior knowledge (`curl --http2-prior-knowledge`,
 * gRPC clients with plaintext); with them, TLS with ALPN `h2`. Each connection is an
 * {@linkcode Http2Connection}; `shutdown()` (or aborting `signal`) sends GOAWAY on all
 * of them, lets open streams finish and then closes them.
 *
 * @param options address, TLS and connection options
 * @param handler called once per stream; respond with `stream.respond()`
 * @returns the running server
 *
 * @example Serve h2c and call it with our client
 * ```ts
 * import { fromDenoConn, Http2Connection, serveHttp2 } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * await using server = serveHttp2({ hostname: "127.0.0.1", port: 0 }, async (stream) => {
 *   stream.respond({ ":status": "200" });
 *   const writer = stream.writable.getWriter();
 *   await writer.write(new TextEncoder().encode("hello"));
 *   await writer.close();
 * });
 * const tcp = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
 * await using client = Http2Connection.client(fromDenoConn(tcp));
 * const stream = await client.request(
 *   { ":method": "GET", ":scheme": "http", ":authority": "localhost", ":path": "/" },
 *   { endStream: true },
 * );
 * assert.equal(await new Response(stream.readable).text(), "hello");
 * ```
 */
export function serveHttp2(options: ServeHttp2Options, handler: Http2Handler): Http2Server {
  const hostname = options.hostname ?? "0.0.0.0";
  const port = options.port ?? 8000;
  const tls = options.cert !== undefined || options.key !== undefined;
  if (tls && (options.cert === undefined || options.key === undefined)) {
    throw new TypeError("Cannot serve HTTP/2 over TLS: both cert and key are required");
  }
  if (typeof handler !== "function") throw new TypeError("Cannot serve HTTP/2: handler must be a function");
  resolveHttp2Options(options); // throws on bad connection options now, not per connection
  const listener = tls
    ? Deno.listenTls({ hostname, port, cert: options.cert!, key: options.key!, alpnProtocols: ["h2"] })
    : Deno.listen({ hostname, port });
  const server = new _Server(listener, tls, options, handler);
  if (options.signal !== undefined) {
    const signal = options.signal;
    if (signal.aborted) void server.shutdown();
    else signal.addEventListener("abort", () => void server.shutdown(), { once: true });
  }
  return server;
}
