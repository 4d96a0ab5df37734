/**
 * Running a {@linkcode GrpcServer} on connections: any duplex (a yamux stream, an
 * in-memory pipe, an accepted TCP connection), or a TCP/TLS listener.
 *
 * @module
 */

import { Http2Connection } from "../http2/connection.ts";
import { type Http2ConnectionOptions, resolveHttp2Options } from "../http2/options.ts";
import type { Http2Server, Http2ShutdownOptions, ServeHttp2Options } from "../http2/server.ts";
import { fromDenoConn } from "../streams/deno_conn.ts";
import type { Duplex } from "../streams/duplex.ts";
import type { GrpcPeer } from "./call.ts";
import type { GrpcServer } from "./server.ts";
import { GrpcValues } from "./values.ts";

/**
 * Options for {@linkcode serveGrpcConnection}: the peer, plus every HTTP/2 connection option.
 *
 * @example
 * ```ts
 * import { duplexPair, GrpcServer, GrpcValues, serveGrpcConnection, type ServeGrpcConnectionOptions } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const options: ServeGrpcConnectionOptions = {
 *   peer: { secure: false, values: new GrpcValues() },
 *   initialWindowSize: 256 * 1024,
 * };
 * const [a, b] = duplexPair();
 * const connection = serveGrpcConnection(b, new GrpcServer(), options);
 * assert.equal(connection.role, "server");
 * connection.abort();
 * await a.close();
 * await connection.closed;
 * ```
 */
export interface ServeGrpcConnectionOptions extends Http2ConnectionOptions {
  /**
   * Who is on the other end, as handlers see it in `call.peer`: put transport
   * information (a backchannel peer id, the yamux session) in its `values`.
   * @default {{ secure: false, values: new GrpcValues() }}
   */
  peer?: GrpcPeer;
  /**
   * Called when the connection fails (not for a clean close) and with handler errors
   * the server's own `onError` does not see.
   * @default {undefined}
   */
  onError?: (error: unknown) => void;
}

/**
 * Serves gRPC (and the server's fallback) on one connection, in the HTTP/2 server role:
 * the same code for an accepted TCP connection and for a yamux stream. Gitaly's
 * backchannel runs exactly this on yamux stream 1, and the other side runs it on streams
 * it accepts, so both roles of a backchannel work over any duplex.
 *
 * @param duplex the transport; the connection owns it from now on
 * @param server the server whose methods to serve
 * @param options the peer, error callback and HTTP/2 options
 * @returns the HTTP/2 connection: `close()` drains it gracefully (GOAWAY, open calls
 * finish), `abort()` ends it at once, `closed` settles when it is gone
 * @throws {RangeError} If an HTTP/2 option is out of range.
 *
 * @example Over an in-memory pipe
 * ```ts
 * import { duplexPair, GrpcClient, grpcMethod, GrpcServer, rawCodec, serveGrpcConnection } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const echo = grpcMethod({ service: "demo.Raw", name: "Echo", kind: "unary", request: rawCodec, response: rawCodec });
 * const server = new GrpcServer().handle(echo, (request) => request);
 * const [a, b] = duplexPair();
 * const connection = serveGrpcConnection(b, server);
 * const client = new GrpcClient(a);
 * assert.deepEqual(await client.unary(echo, new Uint8Array([5])), new Uint8Array([5]));
 * await client.close();
 * await connection.closed;
 * ```
 */
export function serveGrpcConnection(
  duplex: Duplex,
  server: GrpcServer,
  options: ServeGrpcConnectionOptions = {},
): Http2Connection {
  const { peer: peerOption, onError: onErrorOption, ...http2 } = options;
  const peer = peerOption ?? { secure: false, values: new GrpcValues() };
  const onError = (error: unknown) => {
    try {
      onErrorOption?.(error);
    } catch {
      // ignored
    }
  };
  const connection = Http2Connection.server(duplex, http2);
  void (async () => {
    for await (const stream of connection) void server.handleStream(stream, peer);
  })().catch(onError);
  void connection.closed.then(() => {
    const error = connection.error;
    if (error !== undefined && error.code !== "NO_ERROR") onError(error);
  });
  return connection;
}

class _GrpcListener implements Http2Server {
  readonly addr: Deno.NetAddr;
  readonly finished: Promise<void>;
  readonly #listener: Deno.Listener;
  readonly #tls: boolean;
  readonly #server: GrpcServer;
  readonly #options: ServeGrpcConnectionOptions;
  readonly #onError: (error: unknown) => void;
  readonly #open = new Set<Http2Connection>();
  readonly #handshakes = new Set<Promise<void>>();
  readonly #acceptLoop: Promise<void>;
  #shutdown: Promise<void> | undefined;
  #finished!: () => void;

  constructor(listener: Deno.Listener, tls: boolean, server: GrpcServer, options: ServeHttp2Options) {
    this.#listener = listener;
    this.#tls = tls;
    this.#server = server;
    this.addr = listener.addr as Deno.NetAddr;
    const onError = options.onError;
    this.#onError = (error) => {
      try {
        onError?.(error);
      } catch {
        // ignored
      }
    };
    const { hostname: _h, port: _p, cert: _c, key: _k, signal: _s, onError: _e, ...http2 } = options;
    this.#options = { ...http2, onError: this.#onError };
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
      // closed already
    }
    await this.#acceptLoop;
    await Promise.all([...this.#handshakes]);
    const abortAll = () => {
      for (const connection of this.#open) connection.abort(signal?.reason);
    };
    if (signal?.aborted) abortAll();
    signal?.addEventListener("abort", abortAll, { once: true });
    try {
      await Promise.all([...this.#open].map((connection) => connection.close()));
    } finally {
      signal?.removeEventListener("abort", abortAll);
    }
    this.#finished();
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return; // closed by shutdown()
      }
      const task = this.#start(conn).catch(this.#onError);
      this.#handshakes.add(task);
      void task.finally(() => this.#handshakes.delete(task));
    }
  }

  async #start(conn: Deno.Conn): Promise<void> {
    if (this.#tls) {
      let alpn: string | null;
      try {
        ({ alpnProtocol: alpn } = await (conn as Deno.TlsConn).handshake());
      } catch (error) {
        try {
          conn.close();
        } catch {
          // gone
        }
        throw error;
      }
      if (alpn !== null && alpn !== "h2") {
        conn.close();
        return;
      }
    }
    const peer: GrpcPeer = {
      remoteAddr: conn.remoteAddr,
      localAddr: conn.localAddr,
      secure: this.#tls,
      values: new GrpcValues(),
    };
    const connection = serveGrpcConnection(fromDenoConn(conn), this.#server, { ...this.#options, peer });
    this.#open.add(connection);
    if (this.#shutdown !== undefined) connection.goAway();
    void connection.closed.then(() => this.#open.delete(connection));
  }
}

/**
 * Listens on TCP and serves a {@linkcode GrpcServer}: h2c with prior knowledge, or TLS
 * with ALPN `h2` when `cert` and `key` are given. gRPC and non-gRPC requests share the
 * port: the server routes by `content-type` to its handlers or its fallback.
 * `shutdown()` (or aborting `signal`) stops accepting, sends GOAWAY and lets open calls
 * finish.
 *
 * @param options address, TLS, shutdown signal, error callback and HTTP/2 options
 * @param server the server
 * @returns the running listener
 * @throws {TypeError} If only one of `cert` and `key` is given.
 * @throws {RangeError} If an HTTP/2 option is out of range.
 *
 * @example
 * ```ts
 * import { GrpcClient, grpcMethod, GrpcServer, rawCodec, serveGrpc } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const echo = grpcMethod({ service: "demo.Raw", name: "Echo", kind: "unary", request: rawCodec, response: rawCodec });
 * const server = new GrpcServer({ fallback: () => new Response("not gRPC") }).handle(echo, (request) => request);
 * await using listener = serveGrpc({ hostname: "127.0.0.1", port: 0 }, server);
 * await using client = await GrpcClient.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * assert.deepEqual(await client.unary(echo, new Uint8Array([1])), new Uint8Array([1]));
 * ```
 */
export function serveGrpc(options: ServeHttp2Options, server: GrpcServer): Http2Server {
  const hostname = options.hostname ?? "0.0.0.0";
  const port = options.port ?? 8000;
  const tls = options.cert !== undefined || options.key !== undefined;
  if (tls && (options.cert === undefined || options.key === undefined)) {
    throw new TypeError("Cannot serve gRPC over TLS: both cert and key are required");
  }
  resolveHttp2Options(options);
  const listener = tls
    ? Deno.listenTls({ hostname, port, cert: options.cert!, key: options.key!, alpnProtocols: ["h2"] })
    : Deno.listen({ hostname, port });
  const running = new _GrpcListener(listener, tls, server, options);
  const signal = options.signal;
  if (signal !== undefined) {
    if (signal.aborted) void running.shutdown();
    else signal.addEventListener("abort", () => void running.shutdown(), { once: true });
  }
  return running;
}
