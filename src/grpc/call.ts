/**
 * The per-call context both sides share, and interceptors: one onion mechanism,
 * `(next) => (call) => …`, for the client and the server.
 *
 * @module
 */

import type { MetadataValue } from "./metadata.ts";
import type { GrpcMethod } from "./method.ts";
import type { GrpcValues } from "./values.ts";

/**
 * Who is on the other end of a call's connection.
 *
 * The server side fills it from the accepted connection ({@linkcode serveGrpc}) or from
 * what the caller of {@linkcode serveGrpcConnection} passes; the client side describes
 * the server it dialled. `values` is the slot for transport information: a layer that
 * runs gRPC over its own duplexes (Gitaly's backchannel over yamux) puts its peer id or
 * session there, under its own {@linkcode GrpcKey}.
 *
 * @example
 * ```ts
 * import { GrpcKey, type GrpcPeer, GrpcValues } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const PEER_ID = new GrpcKey<bigint>("backchannel-peer-id");
 * const peer: GrpcPeer = { secure: false, values: new GrpcValues().set(PEER_ID, 1n) };
 * assert.equal(peer.values.get(PEER_ID), 1n);
 * ```
 */
export interface GrpcPeer {
  /** The peer's address, when the transport has one. */
  readonly remoteAddr?: Deno.Addr;
  /** This side's address, when the transport has one. */
  readonly localAddr?: Deno.Addr;
  /** Whether the connection is TLS. */
  readonly secure: boolean;
  /** Transport-specific information, by {@linkcode GrpcKey}. */
  readonly values: GrpcValues;
}

/**
 * Live message counters of one call. Bytes are message payloads as on the wire
 * (compressed if the call compresses), without the 5-byte envelope headers.
 *
 * @example
 * ```ts
 * import type { GrpcCallStats } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const stats: GrpcCallStats = { messagesSent: 1, messagesReceived: 1, bytesSent: 3, bytesReceived: 3 };
 * assert.equal(stats.bytesSent, 3);
 * ```
 */
export interface GrpcCallStats {
  /** Messages written to the peer. */
  readonly messagesSent: number;
  /** Messages read from the peer. */
  readonly messagesReceived: number;
  /** Payload bytes written. */
  readonly bytesSent: number;
  /** Payload bytes read. */
  readonly bytesReceived: number;
}

/**
 * Metadata a call collects or sends: `[name, value]` pairs, names lowercase.
 *
 * @example
 * ```ts
 * import type { GrpcMetadataList } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const trailer: GrpcMetadataList = [];
 * trailer.push(["x-served-by", "node-1"], ["trace-bin", new Uint8Array([1, 2])]);
 * assert.equal(trailer.length, 2);
 * ```
 */
export type GrpcMetadataList = [name: string, value: MetadataValue][];

/**
 * One call, as interceptors and handlers see it, on either side.
 *
 * - Client side: interceptors may add to `requestMetadata` before calling `next`;
 *   `responseHeader` and `responseTrailer` fill as they arrive.
 * - Server side: `requestMetadata` is what the client sent; handlers and interceptors
 *   add to `responseHeader` (until the headers are sent) and `responseTrailer`.
 * - `signal` aborts when the call ends early: cancelled by the client (`AbortError`,
 *   mapped to `CANCELLED`), past its deadline (`TimeoutError`, `DEADLINE_EXCEEDED`),
 *   or its connection lost.
 *
 * @example Reading the context in a handler
 * ```ts
 * import { duplexPair, GrpcClient, type GrpcCall, grpcMethod, GrpcServer, rawCodec, serveGrpcConnection } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const echo = grpcMethod({ service: "demo.Echo", name: "Echo", kind: "unary", request: rawCodec, response: rawCodec });
 * const seen: GrpcCall[] = [];
 * const server = new GrpcServer().handle(echo, (request, call) => {
 *   seen.push(call);
 *   call.responseTrailer.push(["x-served-by", "demo"]);
 *   return request;
 * });
 * const [a, b] = duplexPair();
 * serveGrpcConnection(b, server);
 * await using client = new GrpcClient(a);
 * await client.unary(echo, new Uint8Array([1]), { metadata: [["x-user", "alice"]], timeout: 5000 });
 * assert.equal(seen[0]!.side, "server");
 * assert.equal(seen[0]!.method.path, "/demo.Echo/Echo");
 * assert.deepEqual(seen[0]!.requestMetadata.find(([k]) => k === "x-user"), ["x-user", "alice"]);
 * assert.ok(seen[0]!.deadline! > Date.now());
 * ```
 */
export interface GrpcCall {
  /** Which side this is. */
  readonly side: "client" | "server";
  /** The method called. */
  readonly method: GrpcMethod<unknown, unknown>;
  /** The request metadata (custom headers). */
  readonly requestMetadata: GrpcMetadataList;
  /** The response header metadata. */
  readonly responseHeader: GrpcMetadataList;
  /** The response trailer metadata. */
  readonly responseTrailer: GrpcMetadataList;
  /** Aborts when the call ends before completing normally. */
  readonly signal: AbortSignal;
  /** The deadline as a `Date.now()` timestamp, or `undefined` without one. */
  readonly deadline: number | undefined;
  /** The other end of the connection. */
  readonly peer: GrpcPeer;
  /** Per-call values, for interceptors to hand information to handlers. */
  readonly values: GrpcValues;
  /** Live message counters. */
  readonly stats: GrpcCallStats;
}

/**
 * A server-side call: the context a handler receives.
 *
 * @example Send the response headers before the first message
 * ```ts
 * import { duplexPair, GrpcClient, grpcMethod, GrpcServer, type GrpcServerCall, rawCodec, serveGrpcConnection } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const watch = grpcMethod({ service: "demo.W", name: "Watch", kind: "server_streaming", request: rawCodec, response: rawCodec });
 * const server = new GrpcServer().handle(watch, async function* (_request, call: GrpcServerCall) {
 *   call.responseHeader.push(["x-ready", "1"]);
 *   call.sendHeader();
 *   yield new Uint8Array([1]);
 * });
 * const [a, b] = duplexPair();
 * serveGrpcConnection(b, server);
 * await using client = new GrpcClient(a);
 * const stream = client.serverStream(watch, new Uint8Array(0));
 * assert.deepEqual(await stream.header, [["x-ready", "1"]]);
 * assert.equal((await Array.fromAsync(stream.responses)).length, 1);
 * ```
 */
export interface GrpcServerCall extends GrpcCall {
  /** Always `"server"`. */
  readonly side: "server";
  /**
   * Sends the response headers (`responseHeader`) now rather than with the first
   * message. Later changes to `responseHeader` are not sent. Does nothing once sent.
   */
  sendHeader(): void;
}

/**
 * The rest of the call: runs the interceptors further in, then the call itself.
 * Resolves once the call has finished with status OK; rejects with the reason it failed
 * (normally a {@linkcode GrpcError}).
 *
 * - Server side, the call itself is the handler: the promise settles once it returned
 *   and its responses were written (the status is sent afterwards, from the outcome).
 * - Client side, the call itself is the HTTP/2 exchange: the promise settles when the
 *   status arrives.
 *
 * @example
 * ```ts
 * import type { GrpcNext } from "@sidechannel/transport";
 *
 * const done: GrpcNext = () => Promise.resolve();
 * void done;
 * ```
 */
export type GrpcNext = (call: GrpcCall) => Promise<void>;

/**
 * Wraps the rest of a call, onion-style: `(next) => async (call) => { …; await next(call); … }`.
 * The first interceptor in a list is the outermost. The same interceptor can serve the
 * client and the server (check `call.side`); see {@linkcode tokenAuthInterceptor},
 * {@linkcode loggingInterceptor}, {@linkcode GrpcMetrics} and
 * {@linkcode concurrencyLimitInterceptor}.
 *
 * An interceptor rejects a call by throwing a {@linkcode GrpcError} (without calling
 * `next`); on the server that becomes the call's status.
 *
 * @example Add a header on the client, check it on the server
 * ```ts
 * import { duplexPair, GrpcClient, GrpcError, type GrpcInterceptor, grpcMethod, GrpcServer, rawCodec, serveGrpcConnection, Status } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const tag: GrpcInterceptor = (next) => async (call) => {
 *   if (call.side === "client") call.requestMetadata.push(["x-tag", "blue"]);
 *   else if (!call.requestMetadata.some(([k, v]) => k === "x-tag" && v === "blue")) {
 *     throw new GrpcError(Status.PERMISSION_DENIED, "wrong tag");
 *   }
 *   await next(call);
 * };
 * const echo = grpcMethod({ service: "demo.Echo", name: "Echo", kind: "unary", request: rawCodec, response: rawCodec });
 * const server = new GrpcServer({ interceptors: [tag] }).handle(echo, (request) => request);
 * const [a, b] = duplexPair();
 * serveGrpcConnection(b, server);
 * await using client = new GrpcClient(a, { interceptors: [tag] });
 * assert.deepEqual(await client.unary(echo, new Uint8Array([7])), new Uint8Array([7]));
 * ```
 */
export type GrpcInterceptor = (next: GrpcNext) => GrpcNext;

/** Composes interceptors around `inner`; the first is the outermost. */
export function _applyInterceptors(interceptors: readonly GrpcInterceptor[], inner: GrpcNext): GrpcNext {
  let next = inner;
  for (let i = interceptors.length - 1; i >= 0; i--) next = interceptors[i]!(next);
  return next;
}
