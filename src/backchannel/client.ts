/**
 * The client side of Gitaly's backchannel (`internal/grpc/backchannel/client.go`): the
 * `backchannel` magic, a yamux client session, the client's gRPC on stream 1, and a
 * dispatcher for the streams the server opens.
 *
 * @module
 */

import type { GrpcPeer } from "../grpc/call.ts";
import { GrpcClient, type GrpcClientOptions } from "../grpc/client.ts";
import { serveGrpcConnection } from "../grpc/serve.ts";
import type { GrpcServer } from "../grpc/server.ts";
import { GrpcKey, GrpcValues } from "../grpc/values.ts";
import type { Http2Connection } from "../http2/connection.ts";
import { fromDenoConn } from "../streams/deno_conn.ts";
import type { DirectIo, DuplexConn } from "../streams/duplex.ts";
import type { YamuxOptions } from "../yamux/options.ts";
import { YamuxSession } from "../yamux/session.ts";
import type { YamuxStream } from "../yamux/stream.ts";
import { _asDirect, _withDeadline, _writeAll } from "./_io.ts";
import { BackchannelError } from "./errors.ts";
import { _entries, BACKCHANNEL_MAGIC, listenmux, type ListenmuxTable } from "./listenmux.ts";

/**
 * Takes a server-opened stream whose magic matched (the magic already consumed), e.g.
 * a {@linkcode SidechannelRegistry} for `sidechannel`.
 */
export interface StreamHandshaker {
  /**
   * Takes over the stream.
   *
   * @param conn the stream, positioned after the magic; owned from now on
   * @param options an abort signal
   */
  handshake(conn: DuplexConn & DirectIo, options?: { signal?: AbortSignal }): Promise<void>;
}

/**
 * The yamux settings of Gitaly's sidechannel clients (Workhorse, gitlab-shell):
 * 256-stream accept backlog, 256 KiB windows (larger ones bloat the client), a 1 s close
 * timeout (a server still writing to a client that hung up is reset within a second),
 * keepalive off (gRPC pings instead).
 */
export const BACKCHANNEL_CLIENT_YAMUX_OPTIONS: Readonly<YamuxOptions> = Object.freeze({
  acceptBacklog: 256,
  maxStreamWindow: 256 * 1024,
  streamCloseTimeout: 1000,
  keepAliveInterval: 0,
});

/**
 * The key under which a backchannel client's own gRPC server finds the client in
 * `call.peer.values`: the calls the server makes back to it (Gitaly's transaction votes
 * reach Praefect this way).
 */
export const BACKCHANNEL_CLIENT: GrpcKey<BackchannelClient> = new GrpcKey<BackchannelClient>(
  "backchannel-client",
);

/** Options for {@linkcode BackchannelClient.connect}. */
export interface BackchannelClientOptions {
  /**
   * yamux settings, over {@linkcode BACKCHANNEL_CLIENT_YAMUX_OPTIONS}. Praefect uses a
   * 5 min `streamCloseTimeout` and configurable backlog and window.
   * @default {BACKCHANNEL_CLIENT_YAMUX_OPTIONS}
   */
  yamux?: YamuxOptions;
  /**
   * Handshakers for server-opened streams, by magic: `{ sidechannel: registry }`.
   * @default {{}}
   */
  handshakers?: ListenmuxTable<StreamHandshaker>;
  /**
   * The client's own gRPC server: it serves the server-opened streams that carry no
   * magic (the backchannel gRPC connection, HTTP/2 preface first). Without one, such
   * streams are reset.
   * @default {undefined}
   */
  server?: GrpcServer;
  /**
   * Options of the gRPC client on stream 1.
   * @default {{}}
   */
  grpc?: GrpcClientOptions;
  /**
   * Bound on the handshake (magic and stream 1), and on reading the first 11 bytes of
   * each server-opened stream (grpc-go's connection timeout, 120 s). 0 waits forever.
   * @default {120000}
   */
  handshakeTimeout?: number;
  /** Aborts the handshake. */
  signal?: AbortSignal;
  /**
   * Called with failures of server-opened streams (a bad magic handshake, an unknown
   * sidechannel id); for logging.
   * @default {undefined}
   */
  onError?: (error: unknown) => void;
}

/** Options for {@linkcode BackchannelClient.dial}. */
export interface BackchannelDialOptions extends BackchannelClientOptions {
  /**
   * The server's host name or address.
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /** The server's port. */
  port: number;
}

/**
 * A multiplexed connection to a Gitaly-style server, client side.
 *
 * {@linkcode BackchannelClient.connect} writes `backchannel`, starts a yamux **client**
 * session, opens stream 1 and runs {@linkcode BackchannelClient.grpc} over it. Streams
 * the server opens are routed by their first 11 bytes: a registered magic
 * (`sidechannel`) goes to its handshaker, anything else to `server`, the client's own
 * gRPC server, with the bytes replayed (so the server can call the client back).
 *
 * {@linkcode BackchannelClient.close} is idempotent and resolves the same way every
 * time (Gitaly fixed a hang on double close).
 *
 * @example A call over a backchannel connection, in memory
 * ```ts
 * import {
 *   BackchannelClient,
 *   BackchannelServer,
 *   duplexPair,
 *   grpcMethod,
 *   GrpcServer,
 *   rawCodec,
 * } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const echo = grpcMethod({ service: "demo.Echo", name: "Echo", kind: "unary", request: rawCodec, response: rawCodec });
 * const backchannel = new BackchannelServer(new GrpcServer().handle(echo, (request) => request));
 * const [a, b] = duplexPair();
 * void backchannel.serveConnection(b);
 * await using client = await BackchannelClient.connect(a);
 * assert.deepEqual(await client.grpc.unary(echo, new Uint8Array([1, 2])), new Uint8Array([1, 2]));
 * ```
 */
export class BackchannelClient implements AsyncDisposable {
  /** The yamux session (client role). */
  readonly session: YamuxSession;
  /** The gRPC client on stream 1. */
  readonly grpc: GrpcClient;
  /** Settles when the session has ended. Never rejects. */
  readonly closed: Promise<void>;
  readonly #options: BackchannelClientOptions;
  readonly #served = new Set<Http2Connection>();
  readonly #acceptLoop: Promise<void>;
  #closing: Promise<void> | null = null;

  private constructor(session: YamuxSession, stream: YamuxStream, options: BackchannelClientOptions) {
    this.session = session;
    this.#options = options;
    this.grpc = new GrpcClient(stream, options.grpc ?? {});
    this.closed = session.closed;
    this.#acceptLoop = this.#accept();
  }

  /**
   * Runs the client handshake on a connected transport.
   *
   * @param conn the transport (TCP, TLS, a pipe); owned from now on
   * @param options yamux settings, handshakers, the client's own gRPC server
   * @returns the connected client
   * @throws {BackchannelError} `HANDSHAKE` if the magic cannot be written or stream 1 opened.
   */
  static async connect(conn: DuplexConn, options: BackchannelClientOptions = {}): Promise<BackchannelClient> {
    const timeout = options.handshakeTimeout ?? 120_000;
    if (!Number.isInteger(timeout) || timeout < 0) {
      throw new RangeError(
        `Cannot connect backchannel: handshakeTimeout must be a non-negative integer, received ${timeout}`,
      );
    }
    _entries(options.handshakers ?? {}); // a bad magic is a RangeError now, not per stream
    const yamux = { ...BACKCHANNEL_CLIENT_YAMUX_OPTIONS, ...options.yamux };
    const direct = _asDirect(conn);
    let session: YamuxSession | undefined;
    let stage = "write backchannel magic bytes";
    try {
      const stream = await _withDeadline(timeout, options.signal, (reason) => {
        session?.close().catch(() => {});
        conn.reset(reason);
      }, async () => {
        await _writeAll(direct, new TextEncoder().encode(BACKCHANNEL_MAGIC));
        stage = "open client stream";
        session = YamuxSession.client(direct, yamux);
        return await session.open(options.signal === undefined ? {} : { signal: options.signal });
      });
      return new BackchannelClient(session!, stream, options);
    } catch (error) {
      void session?.close().catch(() => {});
      conn.reset(error);
      if (error instanceof RangeError || error instanceof TypeError) throw error;
      if (options.signal?.aborted && error === options.signal.reason) throw error;
      throw new BackchannelError("HANDSHAKE", `Cannot connect backchannel: ${stage} failed`, {
        cause: error,
      });
    }
  }

  /**
   * Dials TCP and runs {@linkcode BackchannelClient.connect}.
   *
   * @param options where to dial, plus the client options
   * @returns the connected client
   * @throws {BackchannelError} `HANDSHAKE` if the connection or the handshake fails.
   */
  static async dial(options: BackchannelDialOptions): Promise<BackchannelClient> {
    const hostname = options.hostname ?? "127.0.0.1";
    let conn: Deno.Conn;
    try {
      conn = await Deno.connect({ hostname, port: options.port });
    } catch (error) {
      throw new BackchannelError("HANDSHAKE", `Cannot connect backchannel to ${hostname}:${options.port}`, {
        cause: error,
      });
    }
    const host = hostname.includes(":") ? `[${hostname}]` : hostname;
    const grpc: GrpcClientOptions = {
      authority: `${host}:${options.port}`,
      peer: {
        remoteAddr: conn.remoteAddr,
        localAddr: conn.localAddr,
        secure: false,
        values: new GrpcValues(),
      },
      ...options.grpc,
    };
    return await BackchannelClient.connect(fromDenoConn(conn), { ...options, grpc });
  }

  /**
   * Closes gracefully: the gRPC connection drains (open calls finish), then the yamux
   * session closes. Idempotent: every call returns the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.grpc.close().catch(() => {});
      await Promise.all([...this.#served].map((c) => c.close().catch(() => {})));
      await this.session.close();
      await this.#acceptLoop;
    })();
    return this.#closing;
  }

  /** Same as {@linkcode BackchannelClient.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #accept(): Promise<void> {
    const handshakers = this.#options.handshakers ?? {};
    const timeout = this.#options.handshakeTimeout ?? 120_000;
    try {
      for await (const stream of this.session) {
        void this.#route(stream, handshakers, timeout).catch((error) => this.#report(error));
      }
    } catch {
      // the session failed; `closed` tells
    }
  }

  async #route(
    stream: YamuxStream,
    handshakers: ListenmuxTable<StreamHandshaker>,
    timeout: number,
  ): Promise<void> {
    const routed = await listenmux(stream, handshakers, { timeout });
    if (routed.kind === "matched") {
      await routed.handshaker.handshake(routed.conn);
      return;
    }
    const server = this.#options.server;
    if (server === undefined) {
      routed.conn.reset();
      throw new BackchannelError(
        "HANDSHAKE",
        "Cannot serve server-opened stream: no magic matched and the client has no gRPC server",
      );
    }
    const peer: GrpcPeer = { secure: false, values: new GrpcValues().set(BACKCHANNEL_CLIENT, this) };
    const connection = serveGrpcConnection(routed.conn, server, {
      peer,
      onError: (error) => this.#report(error),
    });
    this.#served.add(connection);
    void connection.closed.then(() => this.#served.delete(connection));
  }

  #report(error: unknown): void {
    try {
      this.#options.onError?.(error);
    } catch {
      // a throwing logger must not break the client
    }
  }
}
