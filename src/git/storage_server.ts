/**
 * The storage server: Gitaly's upload-pack services on one gRPC port that plain and
 * multiplexed (backchannel) clients share, plus an optional separate h2c port for
 * PostUploadPackV3, with token auth, one log entry per RPC and a graceful drain.
 *
 * @module
 */

import { type BackchannelListener, serveBackchannel } from "../backchannel/server.ts";
import type { GrpcCall, GrpcInterceptor } from "../grpc/call.ts";
import { tokenAuthInterceptor } from "../grpc/interceptors.ts";
import { serveGrpc } from "../grpc/serve.ts";
import { GrpcServer } from "../grpc/server.ts";
import { GrpcError, Status, statusName } from "../grpc/status.ts";
import type { Http2Server } from "../http2/server.ts";
import { sidechannelErrorInterceptor } from "../sidechannel/call.ts";
import type { GitalyTransport } from "./client.ts";
import { _resolveServiceOptions, _RPC_INFO, type GitalyServiceOptions } from "./service_options.ts";
import { _registerSmartHttp } from "./smarthttp_service.ts";
import { _registerSsh } from "./ssh_service.ts";

/**
 * One finished RPC, as {@linkcode StorageServerOptions.onLog} receives it.
 *
 * @example
 * ```ts
 * import { Status, type StorageLogEntry } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const entry: StorageLogEntry = {
 *   method: "/gitaly.SmartHTTPService/PostUploadPackWithSidechannel",
 *   repository: { storageName: "default", relativePath: "group/project.git" },
 *   transport: "sidechannel",
 *   bytesOut: 227_000_000,
 *   bytesIn: 139,
 *   durationMs: 1850,
 *   code: Status.OK,
 *   status: "OK",
 * };
 * assert.equal(`${entry.transport} ${entry.status}`, "sidechannel OK");
 * ```
 */
export interface StorageLogEntry {
  /** The method path, e.g. `/gitaly.SmartHTTPService/PostUploadPackWithSidechannel`. */
  readonly method: string;
  /** The repository of the request, once it was parsed. */
  readonly repository?: { readonly storageName: string; readonly relativePath: string };
  /** How git's bytes travelled: by method (`SSHUploadPackWithSidechannel` is `sidechannel`). */
  readonly transport: GitalyTransport;
  /** Bytes of git's output sent to the client. */
  readonly bytesOut: number;
  /** Bytes of request given to git. */
  readonly bytesIn: number;
  /** Milliseconds from the call's arrival to its outcome. */
  readonly durationMs: number;
  /** The status code (`0` for OK). */
  readonly code: Status;
  /** The status name (`"OK"`, `"INVALID_ARGUMENT"`, …). */
  readonly status: string;
  /** The error, for calls that failed. */
  readonly error?: GrpcError;
  /** The client's address, when known. */
  readonly remoteAddr?: Deno.Addr;
}

/**
 * Options for {@linkcode StorageServer.start}.
 *
 * @example
 * ```ts
 * import type { StorageServerOptions } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const options: StorageServerOptions = {
 *   storages: { default: "/var/opt/gitaly/repositories" },
 *   hostname: "0.0.0.0",
 *   port: 8075,
 *   v3Port: 8076,
 *   token: "secret",
 *   negotiationTimeout: 10 * 60_000,
 *   onLog: (entry) => void entry,
 * };
 * assert.equal(options.port, 8075);
 * ```
 */
export interface StorageServerOptions extends
  Pick<
    GitalyServiceOptions,
    "config" | "killGrace" | "gitBinary" | "env" | "onWarning" | "flushInterval" | "sidechannelWriteBuffer"
  > {
  /** Storage names and their directories. */
  storages: Record<string, string> | ReadonlyMap<string, string>;
  /**
   * The interface to listen on.
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * The port of the main listener: gRPC (h2c, or TLS with `cert`/`key`) for plain and
   * backchannel clients alike (listenmux); it serves every RPC, V3 included. 0 picks a
   * free port (see `addr`).
   * @default {0}
   */
  port?: number;
  /**
   * A separate h2c port that serves the same RPCs without the backchannel (for
   * PostUploadPackV3, as in Gitaly's proof of concept). Unset: no second listener.
   * @default {undefined}
   */
  v3Port?: number;
  /** PEM certificate chain for the main port (with `key`: TLS, ALPN not enforced, like Gitaly). */
  cert?: string;
  /** PEM private key for `cert`. */
  key?: string;
  /**
   * Require `authorization: Bearer <token>` on every call (`UNAUTHENTICATED` otherwise),
   * on both ports.
   * @default {undefined}
   */
  token?: string;
  /**
   * SSH negotiation timeout in milliseconds (see `registerSshService`); 0 disables it.
   * @default {600000}
   */
  negotiationTimeout?: number;
  /**
   * Receives one entry per finished RPC. Must not throw (exceptions are ignored).
   * @default {undefined}
   */
  onLog?: (entry: StorageLogEntry) => void;
  /**
   * Receives connection-level errors (failed handshakes, lost connections) and handler
   * errors that are not statuses.
   * @default {undefined}
   */
  onError?: (error: unknown) => void;
  /** Aborting starts a graceful shutdown ({@linkcode StorageServer.shutdown}). */
  signal?: AbortSignal;
}

function _transport(method: string): GitalyTransport {
  if (method.endsWith("/PostUploadPackV3")) return "v3";
  if (method.endsWith("WithSidechannel")) return "sidechannel";
  return "grpc";
}

function _port(name: string, value: number | undefined): number | undefined {
  if (value !== undefined && (!Number.isInteger(value) || value < 0 || value > 65535)) {
    throw new RangeError(`Cannot start StorageServer: ${name} must be an integer 0-65535, received ${value}`);
  }
  return value;
}

/**
 * A storage server with Gitaly's upload-pack RPCs (see `registerSmartHttpService` and
 * `registerSshService`):
 *
 * - the main port serves gRPC to plain clients and to multiplexed (backchannel)
 *   clients on the same port (Gitaly's listenmux), so `PostUploadPackWithSidechannel`
 *   and `SSHUploadPackWithSidechannel` can open sidechannels back; h2c, or TLS with
 *   `cert` and `key`;
 * - the optional `v3Port` serves the same RPCs over plain h2c (no backchannel), for
 *   `PostUploadPackV3`, which the main port serves too;
 * - `token` requires a bearer token on every call; `onLog` gets one entry per RPC;
 * - {@linkcode StorageServer.shutdown} (or aborting `signal`) stops accepting, lets
 *   in-flight RPCs and their git processes finish, then closes every connection.
 *
 * @example Start, fetch an advertisement, shut down
 * ```ts
 * import { GitalyClient, GrpcClient, type StorageLogEntry, StorageServer } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await new Deno.Command("git", { args: ["init", "-q", "--bare", `${root}/a.git`] }).output();
 * const log: StorageLogEntry[] = [];
 * const server = await StorageServer.start({ storages: { default: root }, token: "secret", onLog: (e) => log.push(e) });
 * const grpc = await GrpcClient.connect({ port: server.addr.port });
 * const client = new GitalyClient({ grpc });
 * const repo = { storageName: "default", relativePath: "a.git" };
 *
 * const denied = await new Response(client.infoRefsUploadPack(repo)).text().catch((e) => e);
 * assert.equal(denied.code, 16); // UNAUTHENTICATED
 * const text = await new Response(client.infoRefsUploadPack(repo, { metadata: [["authorization", "Bearer secret"]] })).text();
 * assert.equal(text, "001e# service=git-upload-pack\n00000000");
 *
 * await grpc.close();
 * await server.shutdown();
 * assert.deepEqual(log.map((e) => e.status), ["UNAUTHENTICATED", "OK"]);
 * assert.equal(log[1]!.repository?.relativePath, "a.git");
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export class StorageServer implements AsyncDisposable {
  /** The main port's address. */
  readonly addr: Deno.NetAddr;
  /** The V3 port's address, when `v3Port` was given. */
  readonly v3Addr: Deno.NetAddr | undefined;
  readonly #listener: BackchannelListener;
  readonly #v3: Http2Server | undefined;
  readonly #inFlight: Set<Promise<unknown>>;
  readonly #processes: Set<Promise<unknown>>;
  #shutdown: Promise<void> | undefined;

  private constructor(
    listener: BackchannelListener,
    v3: Http2Server | undefined,
    inFlight: Set<Promise<unknown>>,
    processes: Set<Promise<unknown>>,
  ) {
    this.#listener = listener;
    this.#v3 = v3;
    this.#inFlight = inFlight;
    this.#processes = processes;
    this.addr = listener.addr;
    this.v3Addr = v3?.addr;
  }

  /**
   * Starts listening.
   *
   * @param options storages, addresses, TLS, token, timeouts, logging, signal
   * @returns the running server
   * @throws {TypeError} Without storages, or with only one of `cert` and `key`.
   * @throws {RangeError} For invalid ports or times.
   * @throws {Deno.errors.AddrInUse} When a port is taken.
   */
  static start(options: StorageServerOptions): Promise<StorageServer> {
    try {
      return Promise.resolve(StorageServer.#start(options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  static #start(options: StorageServerOptions): StorageServer {
    if (typeof options !== "object" || options === null || typeof options.storages !== "object") {
      throw new TypeError("Cannot start StorageServer: storages are required");
    }
    const port = _port("port", options.port) ?? 0;
    const v3Port = _port("v3Port", options.v3Port);
    const hostname = options.hostname ?? "127.0.0.1";
    const inFlight = new Set<Promise<unknown>>();
    const onLog = options.onLog;
    const logging: GrpcInterceptor = (next) => (call: GrpcCall) => {
      const started = performance.now();
      const running = next(call);
      inFlight.add(running);
      const finish = (error: GrpcError | undefined) => {
        inFlight.delete(running);
        if (onLog === undefined) return;
        const info = call.values.get(_RPC_INFO);
        const code = error?.code ?? Status.OK;
        const entry: StorageLogEntry = {
          method: call.method.path,
          ...(info?.repository === undefined ? {} : { repository: info.repository }),
          transport: _transport(call.method.path),
          bytesOut: info?.bytesOut ?? 0,
          bytesIn: info?.bytesIn ?? 0,
          durationMs: performance.now() - started,
          code,
          status: statusName(code),
          ...(error === undefined ? {} : { error }),
          ...(call.peer.remoteAddr === undefined ? {} : { remoteAddr: call.peer.remoteAddr }),
        };
        try {
          onLog(entry);
        } catch {
          // A failing logger must not fail calls.
        }
      };
      return running.then(() => finish(undefined), (reason) => {
        finish(GrpcError.from(reason));
        throw reason;
      });
    };
    const interceptors: GrpcInterceptor[] = [logging];
    if (options.token !== undefined) interceptors.push(tokenAuthInterceptor({ token: options.token }));
    interceptors.push(sidechannelErrorInterceptor);
    const grpc = new GrpcServer({
      interceptors,
      ...(options.onError === undefined ? {} : { onError: options.onError }),
    });
    const service: GitalyServiceOptions = {
      storages: options.storages,
      ...(options.negotiationTimeout === undefined ? {} : { negotiationTimeout: options.negotiationTimeout }),
      ...(options.config === undefined ? {} : { config: options.config }),
      ...(options.killGrace === undefined ? {} : { killGrace: options.killGrace }),
      ...(options.gitBinary === undefined ? {} : { gitBinary: options.gitBinary }),
      ...(options.env === undefined ? {} : { env: options.env }),
      ...(options.onWarning === undefined ? {} : { onWarning: options.onWarning }),
      ...(options.flushInterval === undefined ? {} : { flushInterval: options.flushInterval }),
      ...(options.sidechannelWriteBuffer === undefined
        ? {}
        : { sidechannelWriteBuffer: options.sidechannelWriteBuffer }),
    };
    // Git processes are tracked apart from the calls: a call whose client went away may
    // end before its git process is reaped, and shutdown waits for both.
    const processes = new Set<Promise<unknown>>();
    const resolved = _resolveServiceOptions(service, (reaped) => {
      processes.add(reaped);
      void reaped.finally(() => processes.delete(reaped));
    });
    _registerSmartHttp(grpc, resolved);
    _registerSsh(grpc, resolved);
    const listener = serveBackchannel({
      hostname,
      port,
      ...(options.cert === undefined ? {} : { cert: options.cert }),
      ...(options.key === undefined ? {} : { key: options.key }),
      ...(options.onError === undefined ? {} : { onError: options.onError }),
    }, grpc);
    let v3: Http2Server | undefined;
    if (v3Port !== undefined) {
      try {
        v3 = serveGrpc({
          hostname,
          port: v3Port,
          ...(options.onError === undefined ? {} : { onError: options.onError }),
        }, grpc);
      } catch (error) {
        void listener.shutdown();
        throw error;
      }
    }
    const server = new StorageServer(listener, v3, inFlight, processes);
    const signal = options.signal;
    if (signal !== undefined) {
      if (signal.aborted) void server.shutdown();
      else signal.addEventListener("abort", () => void server.shutdown(), { once: true });
    }
    return server;
  }

  /** RPCs currently running. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /**
   * git processes not reaped yet. Usually those of running RPCs; a call whose client
   * went away can end a moment before its git process is gone.
   */
  get gitProcesses(): number {
    return this.#processes.size;
  }

  /**
   * Shuts down gracefully: stops accepting connections, tells clients (GOAWAY) to open
   * no more calls, waits for the running RPCs (and so their git processes), then closes
   * every connection. Aborting `signal` cuts the wait short: connections are closed at
   * once, running RPCs fail (`CANCELLED`), their git processes are stopped, and the
   * shutdown still waits until those are reaped. Idempotent.
   *
   * @param options a signal that bounds the drain
   * @returns resolves when everything is closed
   */
  shutdown(options: { signal?: AbortSignal } = {}): Promise<void> {
    this.#shutdown ??= (async () => {
      const drain = options.signal === undefined ? {} : { signal: options.signal };
      await Promise.all([this.#listener.shutdown(drain), this.#v3?.shutdown(drain)]);
      while (this.#inFlight.size > 0 || this.#processes.size > 0) {
        await Promise.allSettled([...this.#inFlight, ...this.#processes]);
      }
    })();
    return this.#shutdown;
  }

  /** Same as {@linkcode StorageServer.shutdown}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }
}
