/**
 * Ready-made interceptors: token authentication, logging, metrics and a concurrency
 * limit. Each works on the client and on the server.
 *
 * @module
 */

import type { GrpcCall, GrpcCallStats, GrpcInterceptor } from "./call.ts";
import { GrpcError, Status, statusName } from "./status.ts";

/**
 * Options for {@linkcode tokenAuthInterceptor}.
 *
 * @example
 * ```ts
 * import { tokenAuthInterceptor, type TokenAuthOptions } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const server: TokenAuthOptions = { verify: (token) => token.startsWith("v2.") };
 * const client: TokenAuthOptions = { token: () => "v2.abc" };
 * assert.equal(typeof tokenAuthInterceptor(server), "function");
 * assert.equal(typeof tokenAuthInterceptor(client), "function");
 * ```
 */
export interface TokenAuthOptions {
  /**
   * Client side: the token to send (or a function returning it, called per call, for
   * tokens that expire). Server side without `verify`: the one token accepted
   * (compared in constant time).
   * @default {undefined}
   */
  token?: string | (() => string | Promise<string>);
  /**
   * Server side: decides whether a presented token is valid. Gitaly-style HMAC tokens
   * check their signature and time here.
   * @default {undefined}
   */
  verify?: (token: string, call: GrpcCall) => boolean | Promise<boolean>;
  /**
   * The metadata name that carries the token.
   * @default {"authorization"}
   */
  header?: string;
  /**
   * The scheme before the token (`"<scheme> <token>"`); empty for a bare token.
   * @default {"Bearer"}
   */
  scheme?: string;
}

function _constantTimeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i % (b.length || 1));
  return diff === 0;
}

/**
 * Bearer-token authentication. On the client it adds `authorization: Bearer <token>`
 * to every call; on the server it rejects calls without a valid token with
 * `UNAUTHENTICATED` before the handler runs.
 *
 * @param options the token (client, or the server's one accepted token) and/or a
 * `verify` function (server)
 * @returns the interceptor
 * @throws {TypeError} Without `token` and `verify`.
 *
 * @example
 * ```ts
 * import { duplexPair, GrpcClient, grpcMethod, GrpcServer, rawCodec, serveGrpcConnection, Status, tokenAuthInterceptor } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const echo = grpcMethod({ service: "demo.Raw", name: "Echo", kind: "unary", request: rawCodec, response: rawCodec });
 * const server = new GrpcServer({ interceptors: [tokenAuthInterceptor({ token: "s3cret" })] })
 *   .handle(echo, (request) => request);
 * const [a, b] = duplexPair();
 * serveGrpcConnection(b, server);
 * await using client = new GrpcClient(a, { interceptors: [tokenAuthInterceptor({ token: () => "s3cret" })] });
 * assert.deepEqual(await client.unary(echo, new Uint8Array([1])), new Uint8Array([1]));
 * const [c, d] = duplexPair();
 * serveGrpcConnection(d, server);
 * await using anonymous = new GrpcClient(c);
 * const denied = await anonymous.unary(echo, new Uint8Array([1])).catch((e) => e);
 * assert.equal(denied.code, Status.UNAUTHENTICATED);
 * ```
 */
export function tokenAuthInterceptor(options: TokenAuthOptions): GrpcInterceptor {
  const { token, verify } = options;
  if (token === undefined && verify === undefined) {
    throw new TypeError("Cannot create tokenAuthInterceptor: give a token, a verify function, or both");
  }
  const header = options.header ?? "authorization";
  const prefix = (options.scheme ?? "Bearer") === "" ? "" : `${options.scheme ?? "Bearer"} `;
  return (next) => async (call) => {
    if (call.side === "client") {
      if (token === undefined) throw new TypeError("Cannot authenticate call: no token to send");
      const value = typeof token === "function" ? await token() : token;
      call.requestMetadata.push([header, prefix + value]);
      return await next(call);
    }
    const presented = call.requestMetadata.findLast(([name]) => name === header)?.[1];
    if (
      typeof presented !== "string" || !presented.startsWith(prefix) || presented.length === prefix.length
    ) {
      throw new GrpcError(Status.UNAUTHENTICATED, `Cannot authenticate call: missing ${header} token`);
    }
    const candidate = presented.slice(prefix.length);
    let ok: boolean;
    if (verify !== undefined) {
      ok = await verify(candidate, call);
    } else {
      const expected = typeof token === "function" ? await token() : token!;
      ok = _constantTimeEqual(candidate, expected);
    }
    if (!ok) throw new GrpcError(Status.UNAUTHENTICATED, "Cannot authenticate call: invalid token");
    return await next(call);
  };
}

/**
 * One finished call, as {@linkcode loggingInterceptor} reports it.
 *
 * @example
 * ```ts
 * import { type GrpcLogEntry, loggingInterceptor } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const log = (e: GrpcLogEntry) => lines.push(`${e.side} ${e.method} ${e.status} ${e.durationMs.toFixed(1)}ms`);
 * assert.equal(typeof loggingInterceptor(log), "function");
 * ```
 */
export interface GrpcLogEntry {
  /** Which side logged. */
  readonly side: "client" | "server";
  /** The method path. */
  readonly method: string;
  /** The status code (0 for OK). */
  readonly code: Status;
  /** The status name, e.g. `"OK"`, `"NOT_FOUND"`. */
  readonly status: string;
  /** Milliseconds from entering the interceptor to the outcome. */
  readonly durationMs: number;
  /** The error, for non-OK calls. */
  readonly error?: GrpcError;
  /** The call's message counters at the end. */
  readonly stats: GrpcCallStats;
  /** The call itself (peer, metadata, values). */
  readonly call: GrpcCall;
}

/**
 * Reports every finished call (status, duration, message counts) to `log`.
 *
 * @param log receives one entry per call; exceptions it throws are ignored
 * @returns the interceptor
 *
 * @example
 * ```ts
 * import { duplexPair, GrpcClient, type GrpcLogEntry, grpcMethod, GrpcServer, loggingInterceptor, rawCodec, serveGrpcConnection } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const entries: GrpcLogEntry[] = [];
 * const echo = grpcMethod({ service: "demo.Raw", name: "Echo", kind: "unary", request: rawCodec, response: rawCodec });
 * const server = new GrpcServer({ interceptors: [loggingInterceptor((e) => entries.push(e))] })
 *   .handle(echo, (request) => request);
 * const [a, b] = duplexPair();
 * serveGrpcConnection(b, server);
 * await using client = new GrpcClient(a);
 * await client.unary(echo, new Uint8Array([1, 2, 3]));
 * assert.equal(entries[0]!.status, "OK");
 * assert.equal(entries[0]!.method, "/demo.Raw/Echo");
 * assert.equal(entries[0]!.stats.bytesReceived, 3);
 * ```
 */
export function loggingInterceptor(log: (entry: GrpcLogEntry) => void): GrpcInterceptor {
  const emit = (entry: GrpcLogEntry) => {
    try {
      log(entry);
    } catch {
      // a failing logger must not fail calls
    }
  };
  return (next) => async (call) => {
    const start = performance.now();
    try {
      await next(call);
    } catch (reason) {
      const error = GrpcError.from(reason);
      emit({
        side: call.side,
        method: call.method.path,
        code: error.code,
        status: statusName(error.code),
        durationMs: performance.now() - start,
        error,
        stats: { ...call.stats },
        call,
      });
      throw reason;
    }
    emit({
      side: call.side,
      method: call.method.path,
      code: Status.OK,
      status: "OK",
      durationMs: performance.now() - start,
      stats: { ...call.stats },
      call,
    });
  };
}

/**
 * Counters of one method in {@linkcode GrpcMetrics}.
 *
 * @example
 * ```ts
 * import { GrpcMetrics, type GrpcMethodMetrics } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const metrics = new GrpcMetrics();
 * const all: Record<string, GrpcMethodMetrics> = metrics.snapshot();
 * assert.deepEqual(all, {});
 * ```
 */
export interface GrpcMethodMetrics {
  /** Calls that entered the interceptor. */
  started: number;
  /** Calls not finished yet. */
  inFlight: number;
  /** Finished calls by status name (`"OK"`, `"CANCELLED"`, …). */
  finished: Record<string, number>;
  /** Sum of call durations, in milliseconds. */
  totalMs: number;
  /** Messages sent by finished calls. */
  messagesSent: number;
  /** Messages received by finished calls. */
  messagesReceived: number;
  /** Payload bytes sent by finished calls. */
  bytesSent: number;
  /** Payload bytes received by finished calls. */
  bytesReceived: number;
}

/**
 * Per-method call metrics: counts by status, in-flight calls, durations, messages and
 * bytes. Add `metrics.interceptor` to a client or server; read `snapshot()` (e.g. for
 * a Prometheus endpoint served by the fallback handler).
 *
 * @example
 * ```ts
 * import { duplexPair, GrpcClient, grpcMethod, GrpcMetrics, GrpcServer, rawCodec, serveGrpcConnection } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const metrics = new GrpcMetrics();
 * const echo = grpcMethod({ service: "demo.Raw", name: "Echo", kind: "unary", request: rawCodec, response: rawCodec });
 * const server = new GrpcServer({ interceptors: [metrics.interceptor] }).handle(echo, (request) => request);
 * const [a, b] = duplexPair();
 * serveGrpcConnection(b, server);
 * await using client = new GrpcClient(a);
 * await client.unary(echo, new Uint8Array(10));
 * const echoMetrics = metrics.snapshot()["/demo.Raw/Echo"]!;
 * assert.equal(echoMetrics.started, 1);
 * assert.equal(echoMetrics.inFlight, 0);
 * assert.deepEqual(echoMetrics.finished, { OK: 1 });
 * assert.equal(echoMetrics.bytesSent, 10);
 * ```
 */
export class GrpcMetrics {
  readonly #methods = new Map<string, GrpcMethodMetrics>();
  /** The interceptor that records into this object. */
  readonly interceptor: GrpcInterceptor;

  /** Creates empty metrics. */
  constructor() {
    this.interceptor = (next) => async (call) => {
      let entry = this.#methods.get(call.method.path);
      if (entry === undefined) {
        entry = {
          started: 0,
          inFlight: 0,
          finished: {},
          totalMs: 0,
          messagesSent: 0,
          messagesReceived: 0,
          bytesSent: 0,
          bytesReceived: 0,
        };
        this.#methods.set(call.method.path, entry);
      }
      const m = entry;
      m.started++;
      m.inFlight++;
      const start = performance.now();
      let status = "OK";
      try {
        await next(call);
      } catch (error) {
        status = statusName(GrpcError.from(error).code);
        throw error;
      } finally {
        m.inFlight--;
        m.finished[status] = (m.finished[status] ?? 0) + 1;
        m.totalMs += performance.now() - start;
        m.messagesSent += call.stats.messagesSent;
        m.messagesReceived += call.stats.messagesReceived;
        m.bytesSent += call.stats.bytesSent;
        m.bytesReceived += call.stats.bytesReceived;
      }
    };
  }

  /**
   * A copy of the counters.
   *
   * @returns counters by method path
   */
  snapshot(): Record<string, GrpcMethodMetrics> {
    const out: Record<string, GrpcMethodMetrics> = {};
    for (const [path, m] of this.#methods) out[path] = { ...m, finished: { ...m.finished } };
    return out;
  }
}

/**
 * Options for {@linkcode concurrencyLimitInterceptor}.
 *
 * @example
 * ```ts
 * import { concurrencyLimitInterceptor, type ConcurrencyLimitOptions } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const options: ConcurrencyLimitOptions = { limit: 8, maxQueued: 100 };
 * assert.equal(typeof concurrencyLimitInterceptor(options), "function");
 * assert.throws(() => concurrencyLimitInterceptor({ limit: 0 }), RangeError);
 * ```
 */
export interface ConcurrencyLimitOptions {
  /** How many calls may run at once (through this interceptor instance). */
  limit: number;
  /**
   * How many calls may wait for a slot; more fail at once with `RESOURCE_EXHAUSTED`.
   * Unbounded by default: each waiting call already holds an HTTP/2 stream, which the
   * connection's `maxConcurrentStreams` bounds.
   * @default {Infinity}
   */
  maxQueued?: number;
}

/**
 * Lets at most `limit` calls run at once; the others wait in order (their deadline or
 * cancellation still applies while they wait). Gitaly limits pack RPCs per repository
 * the same way.
 *
 * @param options the limit and the queue bound
 * @returns the interceptor
 * @throws {RangeError} For a limit below 1 or a negative queue bound.
 *
 * @example
 * ```ts
 * import { concurrencyLimitInterceptor, duplexPair, GrpcClient, grpcMethod, GrpcServer, rawCodec, serveGrpcConnection } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * let running = 0;
 * let peak = 0;
 * const work = grpcMethod({ service: "demo.Raw", name: "Work", kind: "unary", request: rawCodec, response: rawCodec });
 * const server = new GrpcServer({ interceptors: [concurrencyLimitInterceptor({ limit: 2 })] })
 *   .handle(work, async (request) => {
 *     peak = Math.max(peak, ++running);
 *     await new Promise((resolve) => setTimeout(resolve, 5));
 *     running--;
 *     return request;
 *   });
 * const [a, b] = duplexPair();
 * serveGrpcConnection(b, server);
 * await using client = new GrpcClient(a);
 * await Promise.all(Array.from({ length: 6 }, () => client.unary(work, new Uint8Array(1))));
 * assert.equal(peak, 2);
 * ```
 */
export function concurrencyLimitInterceptor(options: ConcurrencyLimitOptions): GrpcInterceptor {
  const { limit } = options;
  const maxQueued = options.maxQueued ?? Infinity;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(
      `Cannot create concurrencyLimitInterceptor: limit must be an integer >= 1, received ${limit}`,
    );
  }
  if (!(maxQueued >= 0)) {
    throw new RangeError(
      `Cannot create concurrencyLimitInterceptor: maxQueued must be >= 0, received ${maxQueued}`,
    );
  }
  let running = 0;
  const waiters: (() => void)[] = [];
  const acquire = (signal: AbortSignal): Promise<void> => {
    if (running < limit) {
      running++;
      return Promise.resolve();
    }
    if (waiters.length >= maxQueued) {
      return Promise.reject(
        new GrpcError(
          Status.RESOURCE_EXHAUSTED,
          `Cannot start call: ${limit} running and ${waiters.length} waiting`,
        ),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const wake = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        const i = waiters.indexOf(wake);
        if (i >= 0) waiters.splice(i, 1);
        reject(GrpcError.from(signal.reason, Status.CANCELLED));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      waiters.push(wake);
    });
  };
  const release = () => {
    const wake = waiters.shift();
    if (wake !== undefined) wake(); // the slot passes on
    else running--;
  };
  return (next) => async (call) => {
    call.signal.throwIfAborted();
    await acquire(call.signal);
    try {
      await next(call);
    } finally {
      release();
    }
  };
}
