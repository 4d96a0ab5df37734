/**
 * Sidechannels at the gRPC level: the handler opens the call's sidechannel, the client
 * registers a waiter around a call, and errors become gRPC statuses at the boundary.
 *
 * @module
 */

import { BACKCHANNEL_PEER } from "../backchannel/server.ts";
import { BackchannelError } from "../backchannel/errors.ts";
import type { GrpcCall, GrpcInterceptor, GrpcNext } from "../grpc/call.ts";
import type { Metadata, MetadataValue } from "../grpc/metadata.ts";
import type { SidechannelServerConn } from "./conn.ts";
import { SidechannelError } from "./errors.ts";
import { openSidechannel, type OpenSidechannelOptions } from "./open.ts";
import type { SidechannelCallback, SidechannelRegistry } from "./registry.ts";
import { parseSidechannelId, SIDECHANNEL_ID_METADATA } from "./wire.ts";

/**
 * The values of `gitaly-sidechannel-id` in a call's request metadata, in order.
 *
 * @param metadata request metadata
 * @returns the values
 */
export function _sidechannelIds(metadata: Metadata): MetadataValue[] {
  const ids: MetadataValue[] = [];
  for (const [name, value] of metadata) if (name === SIDECHANNEL_ID_METADATA) ids.push(value);
  return ids;
}

/**
 * Opens the sidechannel of a server-side call (Gitaly's `OpenSidechannel(ctx)`): the id
 * is the **last** `gitaly-sidechannel-id` value of the request metadata, the stream is
 * opened on the call's multiplexed peer session.
 *
 * The sidechannel is closed gracefully (FIN after the data written so far) if the call
 * ends early (cancelled, past its deadline, or its handler failed), so the client's
 * callback gets what was written and then its end, never hangs. A handler still closes
 * it itself when done (`closeWrite()` or `close()`).
 *
 * @param call the handler's call
 * @param options the handshake timeout (5 s) and an abort signal (default: the call's)
 * @returns the server's end of the sidechannel
 * @throws {SidechannelError} `MISSING_ID`, `INVALID_ID`, `NOT_MULTIPLEXED`, `HANDSHAKE`, `BAD_CONFIRMATION`.
 *
 * @example Echo the client's bytes back over the sidechannel
 * ```ts
 * import {
 *   BackchannelClient,
 *   BackchannelServer,
 *   callWithSidechannel,
 *   duplexPair,
 *   grpcMethod,
 *   GrpcServer,
 *   openSidechannelForCall,
 *   rawCodec,
 *   sidechannelErrorInterceptor,
 *   SidechannelRegistry,
 * } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const method = grpcMethod({ service: "demo.Pack", name: "Echo", kind: "unary", request: rawCodec, response: rawCodec });
 * const server = new GrpcServer({ interceptors: [sidechannelErrorInterceptor] }).handle(method, async (_request, call) => {
 *   const conn = await openSidechannelForCall(call);
 *   const body = await new Response(conn.readable).arrayBuffer(); // up to the client's 0000
 *   await conn.write(new Uint8Array(body));
 *   await conn.close();
 *   return new Uint8Array(0);
 * });
 * const [a, b] = duplexPair();
 * void new BackchannelServer(server).serveConnection(b);
 * const registry = new SidechannelRegistry();
 * await using client = await BackchannelClient.connect(a, { handshakers: { sidechannel: registry } });
 *
 * let echoed = "";
 * await callWithSidechannel(registry, async (conn) => {
 *   await conn.write(new TextEncoder().encode("hello"));
 *   await conn.closeWrite();
 *   echoed = await new Response(conn.readable).text();
 * }, (metadata) => client.grpc.unary(method, new Uint8Array(0), { metadata }));
 * assert.equal(echoed, "hello");
 * ```
 */
export async function openSidechannelForCall(
  call: GrpcCall,
  options: OpenSidechannelOptions = {},
): Promise<SidechannelServerConn> {
  const id = parseSidechannelId(_sidechannelIds(call.requestMetadata));
  const peer = call.peer.values.get(BACKCHANNEL_PEER);
  if (peer === undefined) {
    throw new SidechannelError(
      "NOT_MULTIPLEXED",
      "Cannot open sidechannel: fail to extract mux session: non-multiplexed connection",
    );
  }
  const signal = options.signal ?? call.signal;
  const conn = await openSidechannel(peer.session, id, { ...options, signal });
  if (call.signal.aborted) {
    void conn.close().catch(() => {});
  } else {
    const onEnd = () => void conn.close().catch(() => {});
    call.signal.addEventListener("abort", onEnd, { once: true });
    void conn.closed.then(() => call.signal.removeEventListener("abort", onEnd));
  }
  return conn;
}

/**
 * Runs a call with a sidechannel, the way Gitaly's clients do: registers `callback`,
 * runs `invoke` with the `gitaly-sidechannel-id` metadata to send, then closes the
 * waiter.
 *
 * - The call succeeded: resolves with its result once the callback succeeded; rejects
 *   with the callback's error, or `CALLBACK_DID_NOT_RUN` if the server never opened the
 *   sidechannel.
 * - The call failed: rejects with the call's error once the callback is done (so data
 *   the server wrote before failing is read); the waiter's own outcome is dropped.
 *
 * @typeParam T the call's result
 * @param registry the client's registry (the `sidechannel` handshaker of its connection)
 * @param callback what to do with the sidechannel
 * @param invoke makes the call, sending `metadata` with it
 * @returns the call's result
 *
 * @example See {@linkcode openSidechannelForCall}.
 * ```ts
 * import { callWithSidechannel, SidechannelRegistry } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const registry = new SidechannelRegistry();
 * // A server that never opens the sidechannel:
 * const error = await callWithSidechannel(registry, () => {}, (metadata) => {
 *   assert.deepEqual(metadata, [["gitaly-sidechannel-id", "0"]]);
 *   return Promise.resolve("response");
 * }).catch((e) => e);
 * assert.equal(error.code, "CALLBACK_DID_NOT_RUN");
 * ```
 */
export async function callWithSidechannel<T>(
  registry: SidechannelRegistry,
  callback: SidechannelCallback,
  invoke: (metadata: Metadata) => Promise<T>,
): Promise<T> {
  const waiter = registry.register(callback);
  let result: T;
  try {
    result = await invoke([[SIDECHANNEL_ID_METADATA, waiter.metadataValue]]);
  } catch (error) {
    await waiter.close().catch(() => {});
    throw error;
  }
  await waiter.close();
  return result;
}

/**
 * A server interceptor that turns {@linkcode SidechannelError}s and
 * {@linkcode BackchannelError}s thrown by handlers into gRPC statuses (their `status`:
 * `HANDSHAKE` → `UNAVAILABLE` so clients retry, a client hang-up → `CANCELLED`, …)
 * instead of `UNKNOWN`.
 *
 * @example
 * ```ts
 * import { GrpcServer, sidechannelErrorInterceptor } from "@sidechannel/transport";
 *
 * const server = new GrpcServer({ interceptors: [sidechannelErrorInterceptor] });
 * void server;
 * ```
 */
export const sidechannelErrorInterceptor: GrpcInterceptor =
  (next: GrpcNext): GrpcNext => async (call: GrpcCall) => {
    try {
      await next(call);
    } catch (error) {
      if (error instanceof SidechannelError) throw error.toGrpcError();
      if (error instanceof BackchannelError) throw error.toGrpcError();
      throw error;
    }
  };
