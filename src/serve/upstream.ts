/**
 * The front's connections to one storage server: one multiplexed (backchannel)
 * connection and one HTTP/2 connection, made when first needed and made again when
 * they die.
 *
 * @module
 */

import { BackchannelClient } from "../backchannel/client.ts";
import { GitalyClient, type GitalyConnections, type GitalyTransport } from "../git/client.ts";
import type { GrpcInterceptor } from "../grpc/call.ts";
import { GrpcClient, type GrpcClientOptions } from "../grpc/client.ts";
import { tokenAuthInterceptor } from "../grpc/interceptors.ts";
import { GrpcError, Status } from "../grpc/status.ts";
import { GrpcValues } from "../grpc/values.ts";
import type { Http2ConnectionOptions } from "../http2/options.ts";
import { SidechannelRegistry } from "../sidechannel/registry.ts";
import { fromDenoConn } from "../streams/deno_conn.ts";
import type { GitUpstream } from "./upstream_types.ts";

/** A storage server address. */
export interface UpstreamAddress {
  /**
   * Host name or address.
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /** Port. */
  port: number;
}

/** Options for {@linkcode GitalyUpstream}. */
export interface GitalyUpstreamOptions extends UpstreamAddress {
  /**
   * Where `PostUploadPackV3` (and, for the `v3` transport, the advertisement) goes: the
   * storage server's separate h2c port, or a proxy in front of it. Unset: the main port.
   * @default {undefined}
   */
  v3?: UpstreamAddress;
  /**
   * Dial the main port with TLS; `caCerts` adds PEM certificates to trust. The
   * multiplexed connection does not negotiate ALPN (like Gitaly), the HTTP/2 one
   * negotiates `h2`. The V3 address is always h2c.
   * @default {false}
   */
  tls?: boolean | { caCerts?: string[] };
  /**
   * Sent as `authorization: Bearer <token>` on every call.
   * @default {undefined}
   */
  token?: string;
  /**
   * HTTP/2 settings of the plain HTTP/2 connections (windows, frame sizes).
   * @default {{}}
   */
  http2?: Http2ConnectionOptions;
  /**
   * Bound on connecting (TCP, TLS and the backchannel handshake), in milliseconds.
   * @default {10000}
   */
  connectTimeout?: number;
  /**
   * Receives connection errors (handshake failures, lost connections) for logging.
   * @default {undefined}
   */
  onError?: (error: unknown) => void;
}

/** How many connections a {@linkcode GitalyUpstream} made, by kind. */
export interface GitalyUpstreamStats {
  /** Multiplexed (backchannel + yamux) connections made to the main port. */
  backchannelConnects: number;
  /** Plain HTTP/2 connections made to the main port. */
  http2Connects: number;
  /** Plain HTTP/2 connections made to the V3 address (when it is separate). */
  v3Connects: number;
}

interface _Closable {
  readonly closed: Promise<void>;
  close(): Promise<void>;
}

/** One pooled connection: connected once, shared, replaced when it has closed. */
class _Slot<T extends _Closable> {
  readonly #connect: () => Promise<T>;
  readonly #healthy: (value: T) => boolean;
  #current: Promise<T> | null = null;
  #value: T | null = null;
  #closed = false;
  connects = 0;

  constructor(connect: () => Promise<T>, healthy: (value: T) => boolean) {
    this.#connect = connect;
    this.#healthy = healthy;
  }

  get(): Promise<T> {
    if (this.#closed) {
      return Promise.reject(new GrpcError(Status.UNAVAILABLE, "Cannot connect: the pool is closed"));
    }
    if (this.#current !== null && (this.#value === null || this.#healthy(this.#value))) return this.#current;
    if (this.#value !== null) this.#retire(this.#value);
    this.connects++;
    const attempt = this.#connect();
    this.#current = attempt;
    attempt.then((value) => {
      if (this.#current !== attempt || this.#closed) {
        void value.close().catch(() => {});
        return;
      }
      this.#value = value;
      void value.closed.then(() => {
        if (this.#value === value) {
          this.#value = null;
          this.#current = null;
        }
      });
    }, () => {
      if (this.#current === attempt) this.#current = null;
    });
    return attempt;
  }

  /** Stops handing out `value`; it closes once its calls are done. */
  #retire(value: T): void {
    if (this.#value === value) {
      this.#value = null;
      this.#current = null;
    }
    void value.close().catch(() => {});
  }

  async close(): Promise<void> {
    this.#closed = true;
    const current = this.#current;
    this.#current = null;
    this.#value = null;
    const value = await current?.catch(() => null);
    await value?.close().catch(() => {});
  }
}

function _unavailable(what: string, error: unknown): GrpcError {
  if (error instanceof GrpcError) return error;
  return new GrpcError(
    Status.UNAVAILABLE,
    `Cannot connect to the storage server (${what}): ${String(error)}`,
    {
      cause: error,
    },
  );
}

async function _withTimeout<T extends _Closable>(
  ms: number,
  what: string,
  connect: () => Promise<T>,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const attempt = connect();
  try {
    return await Promise.race([
      attempt,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          void attempt.then((late) => late.close().catch(() => {}), () => {});
          reject(
            new GrpcError(Status.UNAVAILABLE, `Cannot connect to the storage server (${what}): timed out`),
          );
        }, ms);
      }),
    ]);
  } catch (error) {
    throw _unavailable(what, error);
  } finally {
    clearTimeout(timer);
  }
}

function _authority(address: Required<UpstreamAddress>): string {
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  return `${host}:${address.port}`;
}

/**
 * The front's connections to one storage server (Workhorse keeps one per Gitaly
 * address): a multiplexed connection (backchannel magic, yamux, gRPC on stream 1, with
 * a sidechannel registry) for the `sidechannel` transport and SSH, and a plain HTTP/2
 * connection for `grpc` (and one to the V3 address for `v3`, which is the main port
 * unless {@linkcode GitalyUpstreamOptions.v3} names another). Each is dialled on first
 * use, shared by all calls, and dialled again once it has closed (or the storage server
 * sent GOAWAY); a failure to connect is `UNAVAILABLE`, which the front retries.
 *
 * @example A pool that cannot reach its server fails with UNAVAILABLE
 * ```ts
 * import { GitalyUpstream, GrpcError, Status } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const port = listener.addr.port;
 * listener.close(); // nothing listens there now
 * await using upstream = new GitalyUpstream({ port, connectTimeout: 2000 });
 * const error = await upstream.client("grpc").catch((e) => e);
 * assert.ok(error instanceof GrpcError);
 * assert.equal(error.code, Status.UNAVAILABLE);
 * assert.equal(upstream.stats().http2Connects, 1);
 * ```
 */
export class GitalyUpstream implements GitUpstream, AsyncDisposable {
  readonly #main: Required<UpstreamAddress>;
  readonly #v3: Required<UpstreamAddress> | null;
  readonly #options: GitalyUpstreamOptions;
  readonly #interceptors: GrpcInterceptor[];
  readonly #timeout: number;
  readonly #backchannel: _Slot<{
    client: BackchannelClient;
    registry: SidechannelRegistry;
    closed: Promise<void>;
    close(): Promise<void>;
  }>;
  readonly #http2: _Slot<GrpcClient>;
  readonly #v3Slot: _Slot<GrpcClient> | null;

  /**
   * Creates the pool; nothing is dialled yet.
   *
   * @param options the storage server's addresses, TLS, token, timeouts
   * @throws {RangeError} For an invalid port or timeout.
   */
  constructor(options: GitalyUpstreamOptions) {
    const check = (address: UpstreamAddress): Required<UpstreamAddress> => {
      if (!Number.isInteger(address.port) || address.port < 1 || address.port > 65535) {
        throw new RangeError(`Cannot create GitalyUpstream: port must be 1-65535, received ${address.port}`);
      }
      return { hostname: address.hostname ?? "127.0.0.1", port: address.port };
    };
    this.#main = check(options);
    this.#v3 = options.v3 === undefined ? null : check(options.v3);
    this.#options = options;
    this.#timeout = options.connectTimeout ?? 10_000;
    if (!Number.isInteger(this.#timeout) || this.#timeout <= 0) {
      throw new RangeError(
        `Cannot create GitalyUpstream: connectTimeout must be an integer > 0, received ${this.#timeout}`,
      );
    }
    this.#interceptors = options.token === undefined ? [] : [tokenAuthInterceptor({ token: options.token })];
    this.#backchannel = new _Slot(
      () => _withTimeout(this.#timeout, "backchannel", () => this.#dialBackchannel()),
      (
        value,
      ) => !value.client.session.stats().goAwayReceived,
    );
    this.#http2 = new _Slot(
      () => _withTimeout(this.#timeout, "HTTP/2", () => this.#dialHttp2(this.#main, options.tls ?? false)),
      (client) => client.connection.error === undefined,
    );
    this.#v3Slot = this.#v3 === null ? null : new _Slot(
      () => _withTimeout(this.#timeout, "V3", () => this.#dialHttp2(this.#v3!, false)),
      (client) => client.connection.error === undefined,
    );
  }

  /** Connections made so far, by kind. */
  stats(): GitalyUpstreamStats {
    return {
      backchannelConnects: this.#backchannel.connects,
      http2Connects: this.#http2.connects,
      v3Connects: this.#v3Slot?.connects ?? 0,
    };
  }

  /**
   * A client with the connections `transport` needs: the multiplexed one for
   * `sidechannel` (and SSH), the main HTTP/2 one for `grpc`, the V3 one for `v3`.
   *
   * @param transport the transport of the calls to make
   * @param options aborts waiting for the connection
   * @returns the client (cheap; make one per request)
   * @throws {GrpcError} `UNAVAILABLE` if the connection cannot be made.
   */
  async client(transport: GitalyTransport, options: { signal?: AbortSignal } = {}): Promise<GitalyClient> {
    options.signal?.throwIfAborted();
    let connections: GitalyConnections;
    switch (transport) {
      case "sidechannel": {
        const { client, registry } = await this.#backchannel.get();
        connections = { backchannel: { client, registry } };
        break;
      }
      case "grpc":
        connections = { grpc: await this.#http2.get() };
        break;
      case "v3": {
        const v3 = await (this.#v3Slot ?? this.#http2).get();
        connections = { grpc: v3, v3 };
        break;
      }
      default:
        throw new TypeError(`Cannot get client: unknown transport ${JSON.stringify(transport)}`);
    }
    options.signal?.throwIfAborted();
    return new GitalyClient(connections);
  }

  /** Closes every connection gracefully (calls in flight finish first). */
  async close(): Promise<void> {
    await Promise.all([this.#backchannel.close(), this.#http2.close(), this.#v3Slot?.close()]);
  }

  /** Same as {@linkcode GitalyUpstream.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #grpcOptions(address: Required<UpstreamAddress>, secure: boolean, conn: Deno.Conn): GrpcClientOptions {
    return {
      ...this.#options.http2,
      authority: _authority(address),
      scheme: secure ? "https" : "http",
      interceptors: this.#interceptors,
      peer: { remoteAddr: conn.remoteAddr, localAddr: conn.localAddr, secure, values: new GrpcValues() },
    };
  }

  async #dialBackchannel() {
    const tls = this.#options.tls ?? false;
    const { hostname, port } = this.#main;
    let conn: Deno.Conn;
    if (tls) {
      const caCerts = typeof tls === "object" ? tls.caCerts : undefined;
      const tlsConn = await Deno.connectTls({
        hostname,
        port,
        ...(caCerts === undefined ? {} : { caCerts }),
      });
      await tlsConn.handshake();
      conn = tlsConn;
    } else {
      conn = await Deno.connect({ hostname, port });
    }
    const registry = new SidechannelRegistry();
    const onError = this.#options.onError;
    const client = await BackchannelClient.connect(fromDenoConn(conn), {
      handshakers: { sidechannel: registry },
      grpc: this.#grpcOptions(this.#main, Boolean(tls), conn),
      handshakeTimeout: this.#timeout,
      ...(onError === undefined ? {} : { onError }),
    });
    return { client, registry, closed: client.closed, close: () => client.close() };
  }

  async #dialHttp2(
    address: Required<UpstreamAddress>,
    tls: boolean | { caCerts?: string[] },
  ): Promise<GrpcClient> {
    const client = await GrpcClient.connect({
      hostname: address.hostname,
      port: address.port,
      tls,
      ...this.#options.http2,
      interceptors: this.#interceptors,
    });
    const onError = this.#options.onError;
    if (onError !== undefined) {
      void client.closed.then(() => {
        const error = client.connection.error;
        if (error !== undefined) onError(error);
      });
    }
    return client;
  }
}
