/**
 * Running a {@linkcode GrpcServer} on connections: any duplex (a yamux stream, an
 * in-memory pipe, an accepted TCP connection), or a TCP/TLS listener.
 *
 * @module
 */

import { Http2Connection } from "../http2/connection.ts";
import type { Http2ConnectionOptions } from "../http2/options.ts";
import { type Http2Server, serveHttp2, type ServeHttp2Options } from "../http2/server.ts";
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
  const tls = options.cert !== undefined || options.key !== undefined;
  if (tls && (options.cert === undefined || options.key === undefined)) {
    throw new TypeError("Cannot serve gRPC over TLS: both cert and key are required");
  }
  // One accept loop (serveHttp2's); one GrpcPeer per connection, made on its first call.
  const peers = new WeakMap<Http2Connection, GrpcPeer>();
  return serveHttp2(options, (stream, connection, info) => {
    let peer = peers.get(connection);
    if (peer === undefined) {
      peer = {
        remoteAddr: info.remoteAddr,
        localAddr: info.localAddr,
        secure: info.secure,
        values: new GrpcValues(),
      };
      peers.set(connection, peer);
    }
    return server.handleStream(stream, peer);
  });
}
