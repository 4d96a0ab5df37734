/**
 * The server side of Gitaly's backchannel (`internal/grpc/backchannel/server.go`,
 * `registry.go`): listenmux on the listener, the yamux server handshake, peer ids, and a
 * gRPC client back to each multiplexed peer.
 *
 * @module
 */

import type { GrpcCall, GrpcPeer } from "../grpc/call.ts";
import { GrpcClient, type GrpcClientOptions } from "../grpc/client.ts";
import { serveGrpcConnection } from "../grpc/serve.ts";
import type { GrpcServer } from "../grpc/server.ts";
import { GrpcKey, GrpcValues } from "../grpc/values.ts";
import type { Http2Connection } from "../http2/connection.ts";
import type { Http2ConnectionOptions } from "../http2/options.ts";
import type { Http2Server, Http2ShutdownOptions } from "../http2/server.ts";
import { _acceptEach, _tlsHandshake } from "../streams/_accept.ts";
import { fromDenoConn } from "../streams/deno_conn.ts";
import type { DirectIo, DuplexConn } from "../streams/duplex.ts";
import type { YamuxOptions } from "../yamux/options.ts";
import { YamuxSession } from "../yamux/session.ts";
import type { YamuxStream } from "../yamux/stream.ts";
import { _withDeadline } from "./_io.ts";
import { BackchannelError } from "./errors.ts";
import { BACKCHANNEL_MAGIC, listenmux } from "./listenmux.ts";

/**
 * The yamux settings of Gitaly's server: an accept backlog of 1 and a 16 MiB receive
 * window ("a lower accept backlog and higher receive buffer size than Praefect and the
 * clients"), hashicorp's 5 min close timeout, keepalive off (gRPC pings instead).
 */
export const BACKCHANNEL_SERVER_YAMUX_OPTIONS: Readonly<YamuxOptions> = Object.freeze({
  acceptBacklog: 1,
  maxStreamWindow: 16 * 1024 * 1024,
  streamCloseTimeout: 300_000,
  keepAliveInterval: 0,
});

/**
 * The key under which handlers find their multiplexed peer in `call.peer.values`; see
 * {@linkcode getBackchannelPeer}.
 */
export const BACKCHANNEL_PEER: GrpcKey<BackchannelPeer> = new GrpcKey<BackchannelPeer>("backchannel-peer");

/**
 * A multiplexed client, as the server sees it: its id, its yamux session (to open
 * sidechannels on) and a gRPC client that calls it back over a new stream.
 *
 * @example See {@linkcode BackchannelServer}.
 * ```ts
 * import { BackchannelClient, BackchannelServer, duplexPair, GrpcServer } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const backchannel = new BackchannelServer(new GrpcServer());
 * const [a, b] = duplexPair();
 * const served = backchannel.serveConnection(b);
 * await using client = await BackchannelClient.connect(a);
 * await served;
 * const peer = backchannel.registry.get(1)!;
 * assert.equal(peer.id, 1);
 * assert.equal(peer.session.isClient, false);
 * ```
 */
export class BackchannelPeer {
  /** The peer id: 1, 2, 3… per server (Gitaly's backchannel id). */
  readonly id: number;
  /** The yamux session (server role). */
  readonly session: YamuxSession;
  /** Settles when the peer's session has ended. Never rejects. */
  readonly closed: Promise<void>;
  readonly #clientOptions: GrpcClientOptions;
  #client: Promise<GrpcClient> | null = null;

  /** @internal Created by {@linkcode BackchannelServer.handshake}. */
  constructor(id: number, session: YamuxSession, clientOptions: GrpcClientOptions) {
    this.id = id;
    this.session = session;
    this.closed = session.closed;
    this.#clientOptions = clientOptions;
  }

  /**
   * The gRPC client to the peer's own server (Gitaly's backchannel `ClientConn`). The
   * first use opens a new yamux stream for it; if that connection ends, the next use
   * opens another.
   *
   * @returns the client
   * @throws {BackchannelError} `CLOSED` if the session has ended.
   */
  client(): Promise<GrpcClient> {
    if (this.#client !== null) return this.#client;
    const opening = this.session.open().then(
      (stream) => {
        const client = new GrpcClient(stream, this.#clientOptions);
        void client.closed.then(() => {
          if (this.#client === opening) this.#client = null;
        });
        return client;
      },
      (error) => {
        if (this.#client === opening) this.#client = null;
        throw new BackchannelError("CLOSED", `Cannot dial backchannel of peer ${this.id}`, { cause: error });
      },
    );
    this.#client = opening;
    return opening;
  }

  /** Closes the backchannel client and the yamux session (and so the connection). */
  async close(): Promise<void> {
    const client = this.#client;
    this.#client = null;
    if (client !== null) await client.then((c) => c.close(), () => {}).catch(() => {});
    await this.session.close();
  }
}

/**
 * Peers by id (Gitaly's `backchannel.Registry`).
 *
 * @example
 * ```ts
 * import { BackchannelRegistry } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const registry = new BackchannelRegistry();
 * assert.equal(registry.get(1), undefined);
 * await assert.rejects(registry.backchannel(1), { code: "UNKNOWN_PEER" });
 * ```
 */
export class BackchannelRegistry {
  readonly #peers = new Map<number, BackchannelPeer>();
  #lastId = 0;

  /** Peers currently connected. */
  get size(): number {
    return this.#peers.size;
  }

  /**
   * The peer with this id.
   *
   * @param id a peer id
   * @returns the peer, or `undefined`
   */
  get(id: number): BackchannelPeer | undefined {
    return this.#peers.get(id);
  }

  /**
   * The gRPC client back to the peer with this id (Gitaly's `registry.Backchannel`).
   *
   * @param id a peer id
   * @returns the client
   * @throws {BackchannelError} `UNKNOWN_PEER` (`no backchannel for peer N`), `CLOSED`.
   */
  async backchannel(id: number): Promise<GrpcClient> {
    const peer = this.#peers.get(id);
    if (peer === undefined) {
      throw new BackchannelError("UNKNOWN_PEER", `Cannot reach peer: no backchannel for peer ${id}`);
    }
    return await peer.client();
  }

  /** @internal Assigns the next id (from 1). */
  _nextId(): number {
    return ++this.#lastId;
  }

  /** @internal */
  _add(peer: BackchannelPeer): void {
    this.#peers.set(peer.id, peer);
    void peer.closed.then(() => {
      if (this.#peers.get(peer.id) === peer) this.#peers.delete(peer.id);
    });
  }
}

/** Options for {@linkcode BackchannelServer}. */
export interface BackchannelServerOptions extends Http2ConnectionOptions {
  /**
   * yamux settings for multiplexed peers, over {@linkcode BACKCHANNEL_SERVER_YAMUX_OPTIONS}.
   * @default {BACKCHANNEL_SERVER_YAMUX_OPTIONS}
   */
  yamux?: YamuxOptions;
  /**
   * Bound on the handshake: the 11-byte peek and stream 1's arrival (grpc-go's
   * connection timeout, 120 s). 0 waits forever.
   * @default {120000}
   */
  handshakeTimeout?: number;
  /**
   * Options of the gRPC clients back to peers ({@linkcode BackchannelPeer.client}), e.g.
   * their interceptors.
   * @default {{}}
   */
  backchannel?: GrpcClientOptions;
  /**
   * Called with failed handshakes and connection failures; for logging.
   * @default {undefined}
   */
  onError?: (error: unknown) => void;
}

/** Who is on the other end of an accepted connection, for `call.peer`. */
export interface BackchannelConnInfo {
  /** The peer's address. */
  remoteAddr?: Deno.Addr;
  /** This side's address. */
  localAddr?: Deno.Addr;
  /** Whether the connection is TLS. */
  secure?: boolean;
}

/**
 * Serves one gRPC server to plain and multiplexed clients on the same connections
 * (Gitaly's listener: listenmux with the `backchannel` handshaker).
 *
 * {@linkcode BackchannelServer.serveConnection} peeks at an accepted connection: a
 * plain gRPC client is served as is; a backchannel client gets a yamux **server**
 * session (accept backlog 1, 16 MiB window), stream 1 is served as its gRPC connection,
 * and the peer is registered under the next id. Handlers reach it with
 * {@linkcode getBackchannelPeer} (id, session, client back).
 *
 * @example A handler calls the client back over the backchannel
 * ```ts
 * import {
 *   BackchannelClient,
 *   BackchannelServer,
 *   duplexPair,
 *   getBackchannelPeer,
 *   grpcMethod,
 *   GrpcServer,
 *   rawCodec,
 * } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const ask = grpcMethod({ service: "demo.Peer", name: "Ask", kind: "unary", request: rawCodec, response: rawCodec });
 * const vote = grpcMethod({ service: "demo.Vote", name: "Vote", kind: "unary", request: rawCodec, response: rawCodec });
 * const server = new GrpcServer().handle(ask, async (request, call) => {
 *   const peer = getBackchannelPeer(call);
 *   const client = await peer.client();
 *   return await client.unary(vote, request); // answered by the client's own server
 * });
 * const backchannel = new BackchannelServer(server);
 * const [a, b] = duplexPair();
 * void backchannel.serveConnection(b);
 * await using client = await BackchannelClient.connect(a, {
 *   server: new GrpcServer().handle(vote, (request) => new Uint8Array([request[0]! + 1])),
 * });
 * assert.deepEqual(await client.grpc.unary(ask, new Uint8Array([41])), new Uint8Array([42]));
 * ```
 */
export class BackchannelServer {
  /** The connected multiplexed peers. */
  readonly registry: BackchannelRegistry = new BackchannelRegistry();
  readonly #grpc: GrpcServer;
  readonly #options: BackchannelServerOptions;
  readonly #timeout: number;

  /**
   * Creates the server.
   *
   * @param grpc the gRPC server for both kinds of client
   * @param options yamux settings, timeouts, the backchannel clients' options
   */
  constructor(grpc: GrpcServer, options: BackchannelServerOptions = {}) {
    this.#grpc = grpc;
    this.#options = options;
    const timeout = options.handshakeTimeout ?? 120_000;
    if (!Number.isInteger(timeout) || timeout < 0) {
      throw new RangeError(
        `Cannot create BackchannelServer: handshakeTimeout must be a non-negative integer, received ${timeout}`,
      );
    }
    this.#timeout = timeout;
  }

  /**
   * The server handshake after the `backchannel` magic: a yamux server session, stream 1
   * within the timeout, a new peer id. The listenmux handshaker for `backchannel`.
   *
   * @param conn the connection, positioned after the magic; owned from now on
   * @param options an abort signal
   * @returns the registered peer and its stream 1
   * @throws {BackchannelError} `HANDSHAKE` if stream 1 does not arrive (the connection is closed).
   */
  async handshake(
    conn: DuplexConn & DirectIo,
    options: { signal?: AbortSignal } = {},
  ): Promise<{ peer: BackchannelPeer; transport: YamuxStream }> {
    const session = YamuxSession.server(conn, {
      ...BACKCHANNEL_SERVER_YAMUX_OPTIONS,
      ...this.#options.yamux,
    });
    let transport: YamuxStream;
    try {
      transport = await _withDeadline(
        this.#timeout,
        options.signal,
        () => void session.close().catch(() => {}),
        () => session.accept(options.signal === undefined ? {} : { signal: options.signal }),
      );
    } catch (error) {
      void session.close().catch(() => {});
      conn.reset(error);
      throw new BackchannelError("HANDSHAKE", "Cannot accept backchannel: accept client's stream failed", {
        cause: error,
      });
    }
    const peer = new BackchannelPeer(this.registry._nextId(), session, this.#options.backchannel ?? {});
    this.registry._add(peer);
    return { peer, transport };
  }

  /**
   * Serves an accepted connection: routes it by its first 11 bytes, runs the backchannel
   * handshake if it starts with `backchannel`, and serves gRPC on it.
   *
   * @param conn the accepted connection; owned from now on
   * @param info addresses and TLS, for `call.peer`
   * @returns the HTTP/2 connection gRPC runs on, and the peer if multiplexed
   * @throws {BackchannelError} `HANDSHAKE` if routing or the handshake fails (the connection is closed).
   */
  async serveConnection(
    conn: DuplexConn,
    info: BackchannelConnInfo = {},
  ): Promise<{ connection: Http2Connection; peer: BackchannelPeer | undefined }> {
    const routed = await listenmux(conn, { [BACKCHANNEL_MAGIC]: true }, { timeout: this.#timeout });
    const values = new GrpcValues();
    let transport: DuplexConn = routed.conn;
    let peer: BackchannelPeer | undefined;
    if (routed.kind === "matched") {
      ({ peer, transport } = await this.handshake(routed.conn));
      values.set(BACKCHANNEL_PEER, peer);
    }
    const grpcPeer: GrpcPeer = {
      ...(info.remoteAddr === undefined ? {} : { remoteAddr: info.remoteAddr }),
      ...(info.localAddr === undefined ? {} : { localAddr: info.localAddr }),
      secure: info.secure ?? false,
      values,
    };
    const {
      yamux: _y,
      handshakeTimeout: _t,
      backchannel: _b,
      onError,
      ...http2
    } = this.#options;
    const connection = serveGrpcConnection(transport, this.#grpc, {
      ...http2,
      peer: grpcPeer,
      ...(onError === undefined ? {} : { onError }),
    });
    if (peer !== undefined) {
      // Closing the gRPC connection ends the peer (Gitaly: the conn's Close closes the session).
      const session = peer.session;
      void connection.closed.then(() => session.close());
    }
    return { connection, peer };
  }
}

/**
 * The multiplexed peer of a server-side call (Gitaly's `GetPeerID` / `GetMuxSession`).
 *
 * @param call the handler's call
 * @returns the peer
 * @throws {BackchannelError} `NOT_MULTIPLEXED` if the call came over a plain connection.
 *
 * @example A plain connection has no peer
 * ```ts
 * import { getBackchannelPeer, type GrpcCall, GrpcValues } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const call = { peer: { secure: false, values: new GrpcValues() } } as GrpcCall;
 * assert.throws(() => getBackchannelPeer(call), { code: "NOT_MULTIPLEXED" });
 * ```
 */
export function getBackchannelPeer(call: GrpcCall): BackchannelPeer {
  const peer = call.peer.values.get(BACKCHANNEL_PEER);
  if (peer === undefined) {
    throw new BackchannelError("NOT_MULTIPLEXED", "Cannot reach the peer: non-multiplexed connection");
  }
  return peer;
}

/** Options for {@linkcode serveBackchannel}. */
export interface ServeBackchannelOptions extends BackchannelServerOptions {
  /**
   * Interface to listen on.
   * @default {"0.0.0.0"}
   */
  hostname?: string;
  /**
   * Port to listen on; 0 picks a free one (see `addr`).
   * @default {8075}
   */
  port?: number;
  /** PEM certificate chain: with `key`, serve TLS (ALPN is not enforced, like Gitaly). */
  cert?: string;
  /** PEM private key for `cert`. */
  key?: string;
  /** Aborting starts a graceful shutdown. */
  signal?: AbortSignal;
}

/** A running server from {@linkcode serveBackchannel}. */
export interface BackchannelListener extends Http2Server {
  /** The backchannel server (its `registry` of peers). */
  readonly backchannel: BackchannelServer;
}

class _Listener implements BackchannelListener {
  readonly addr: Deno.NetAddr;
  readonly finished: Promise<void>;
  readonly backchannel: BackchannelServer;
  readonly #listener: Deno.Listener;
  readonly #tls: boolean;
  readonly #onError: (error: unknown) => void;
  readonly #open = new Set<Http2Connection>();
  readonly #pending = new Set<Promise<void>>();
  /** Settle when a connection (and its peer session) is fully closed. */
  readonly #ended = new Set<Promise<void>>();
  readonly #acceptLoop: Promise<void>;
  #shutdown: Promise<void> | undefined;
  #finished!: () => void;

  constructor(
    listener: Deno.Listener,
    tls: boolean,
    backchannel: BackchannelServer,
    options: ServeBackchannelOptions,
  ) {
    this.#listener = listener;
    this.#tls = tls;
    this.backchannel = backchannel;
    this.addr = listener.addr as Deno.NetAddr;
    const onError = options.onError;
    this.#onError = (error) => {
      try {
        onError?.(error);
      } catch {
        // ignored
      }
    };
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
    await Promise.all([...this.#pending]);
    const abortAll = () => {
      for (const connection of this.#open) connection.abort(signal?.reason);
    };
    if (signal?.aborted) abortAll();
    signal?.addEventListener("abort", abortAll, { once: true });
    try {
      await Promise.all([...this.#open].map((connection) => connection.close()));
      await Promise.all([...this.#ended]);
    } finally {
      signal?.removeEventListener("abort", abortAll);
    }
    this.#finished();
  }

  #accept(): Promise<void> {
    return _acceptEach(this.#listener, (conn) => this.#start(conn), this.#pending, this.#onError);
  }

  async #start(conn: Deno.Conn): Promise<void> {
    if (this.#tls) await _tlsHandshake(conn);
    const { connection, peer } = await this.backchannel.serveConnection(fromDenoConn(conn), {
      remoteAddr: conn.remoteAddr,
      localAddr: conn.localAddr,
      secure: this.#tls,
    });
    this.#open.add(connection);
    if (this.#shutdown !== undefined) connection.goAway();
    const done = connection.closed.then(async () => {
      if (peer !== undefined) await peer.closed;
      this.#open.delete(connection);
    });
    this.#ended.add(done);
    void done.then(() => this.#ended.delete(done));
  }
}

/**
 * Listens on TCP (or TLS) and serves `server` to plain and backchannel clients alike,
 * like a Gitaly listener.
 *
 * @param options where to listen, plus {@linkcode BackchannelServerOptions}
 * @param server the gRPC server
 * @returns the running listener
 *
 * @example
 * ```ts
 * import { BackchannelClient, grpcMethod, GrpcServer, rawCodec, serveBackchannel } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const echo = grpcMethod({ service: "demo.Echo", name: "Echo", kind: "unary", request: rawCodec, response: rawCodec });
 * await using listener = serveBackchannel({ hostname: "127.0.0.1", port: 0 }, new GrpcServer().handle(echo, (r) => r));
 * await using client = await BackchannelClient.dial({ port: listener.addr.port });
 * assert.deepEqual(await client.grpc.unary(echo, new Uint8Array([9])), new Uint8Array([9]));
 * assert.equal(listener.backchannel.registry.size, 1);
 * ```
 */
export function serveBackchannel(options: ServeBackchannelOptions, server: GrpcServer): BackchannelListener {
  const hostname = options.hostname ?? "0.0.0.0";
  const port = options.port ?? 8075;
  const tls = options.cert !== undefined || options.key !== undefined;
  if (tls && (options.cert === undefined || options.key === undefined)) {
    throw new TypeError("Cannot serve backchannel over TLS: both cert and key are required");
  }
  const { hostname: _h, port: _p, cert: _c, key: _k, signal, ...rest } = options;
  const backchannel = new BackchannelServer(server, rest);
  const listener = tls
    ? Deno.listenTls({ hostname, port, cert: options.cert!, key: options.key! })
    : Deno.listen({ hostname, port });
  const running = new _Listener(listener, tls, backchannel, options);
  if (signal !== undefined) {
    if (signal.aborted) void running.shutdown();
    else signal.addEventListener("abort", () => void running.shutdown(), { once: true });
  }
  return running;
}
