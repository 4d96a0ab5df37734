/**
 * Proxying sidechannels through a middle tier (Gitaly's `sidechannel/proxy.go`, the
 * Praefect role): a sidechannel server toward the client, a sidechannel client toward
 * the upstream server, and the bytes spliced between the two.
 *
 * @module
 */

import { BACKCHANNEL_PEER } from "../backchannel/server.ts";
import type { GrpcCall, GrpcInterceptor } from "../grpc/call.ts";
import { GrpcError, Status } from "../grpc/status.ts";
import { GrpcKey } from "../grpc/values.ts";
import { _sidechannelIds } from "./call.ts";
import type { SidechannelClientConn, SidechannelServerConn } from "./conn.ts";
import { SidechannelError } from "./errors.ts";
import { openSidechannel } from "./open.ts";
import type { SidechannelRegistry } from "./registry.ts";
import { parseSidechannelId, SIDECHANNEL_ID_METADATA } from "./wire.ts";

/** Copy buffer of each splice direction. */
const _SPLICE_BUFFER = 64 * 1024;

/**
 * The key under which a proxy passes the downstream (server-side) call in the upstream
 * call's `values`: the proxy interceptor opens the client's sidechannel on that call's
 * peer session.
 */
export const SIDECHANNEL_DOWNSTREAM: GrpcKey<GrpcCall> = new GrpcKey<GrpcCall>("sidechannel-downstream");

/** Options for {@linkcode spliceSidechannels}. */
export interface SpliceSidechannelsOptions {
  /** Aborting stops the splice; both sidechannels are reset. */
  signal?: AbortSignal;
}

/**
 * Splices a client's sidechannel (`downstream`, our server end) with the upstream
 * server's (`upstream`, our client end), as Gitaly's proxy does:
 *
 * - downstream → upstream: the client's de-framed bytes are re-framed; the client's
 *   `0000` becomes our `closeWrite()` upstream;
 * - upstream → downstream: raw bytes, until the upstream server's end;
 * - done when the upstream side is fully copied (the upstream may answer before the
 *   client finished sending), then `downstream` is closed (FIN).
 *
 * On failure both are reset, so the client sees an error rather than a clean end.
 *
 * @param downstream the client's sidechannel (server end)
 * @param upstream the upstream server's sidechannel (client end)
 * @param options an abort signal
 * @throws {SidechannelError} From either side.
 *
 * @example Splice two in-memory sidechannels
 * ```ts
 * import {
 *   duplexPair,
 *   SidechannelClientConn,
 *   SidechannelServerConn,
 *   spliceSidechannels,
 * } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const [clientEnd, proxyDown] = duplexPair();
 * const [proxyUp, serverEnd] = duplexPair();
 * const client = new SidechannelClientConn(clientEnd);
 * const server = new SidechannelServerConn(serverEnd);
 * const splice = spliceSidechannels(new SidechannelServerConn(proxyDown), new SidechannelClientConn(proxyUp));
 *
 * await client.write(new TextEncoder().encode("hello"));
 * await client.closeWrite();
 * assert.equal(await new Response(server.readable).text(), "hello");
 * await server.write(new TextEncoder().encode("world"));
 * await server.closeWrite();
 * await splice;
 * assert.equal(await new Response(client.readable).text(), "world");
 * ```
 */
export async function spliceSidechannels(
  downstream: SidechannelServerConn,
  upstream: SidechannelClientConn,
  options: SpliceSidechannelsOptions = {},
): Promise<void> {
  const { signal } = options;
  signal?.throwIfAborted();
  let finished = false;
  const fromDownstream = (async () => {
    const buffer = new Uint8Array(_SPLICE_BUFFER);
    for (;;) {
      const n = await downstream.read(buffer);
      if (n === null) break;
      await upstream.write(buffer.subarray(0, n));
    }
    if (!finished) await upstream.closeWrite();
  })();
  const fromUpstream = (async () => {
    const buffer = new Uint8Array(_SPLICE_BUFFER);
    for (;;) {
      const n = await upstream.read(buffer);
      if (n === null) return;
      await downstream.write(buffer.subarray(0, n));
    }
  })();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal!.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  try {
    // The downstream direction may end (or fail) first; only its failure matters then.
    await Promise.race([
      fromUpstream,
      fromDownstream.then(() => fromUpstream),
      aborted,
    ]);
    finished = true;
    await downstream.close();
  } catch (error) {
    finished = true;
    downstream.reset(error);
    upstream.reset(error);
    throw error;
  } finally {
    signal?.removeEventListener("abort", onAbort!);
    fromDownstream.catch(() => {});
    fromUpstream.catch(() => {});
    aborted.catch(() => {});
  }
}

/** Options for {@linkcode sidechannelProxyInterceptor}. */
export interface SidechannelProxyOptions {
  /**
   * Bound on opening the client's sidechannel (see {@linkcode openSidechannel}).
   * @default {5000}
   */
  timeout?: number;
  /**
   * Called with a proxying failure that is not reported because the upstream call
   * failed too (its status wins); for logging.
   * @default {undefined}
   */
  onError?: (error: unknown) => void;
}

function _toGrpc(error: unknown): GrpcError {
  if (error instanceof GrpcError) return error;
  if (error instanceof SidechannelError) {
    return new GrpcError(error.status, `sidechannel: proxy callback: ${error.message}`, { cause: error });
  }
  return GrpcError.from(error, Status.UNKNOWN);
}

/**
 * A client interceptor for a proxy's upstream {@linkcode GrpcClient} (Gitaly's
 * `NewUnaryProxy`/`NewStreamProxy`, the Praefect role), for calls of every kind.
 *
 * A call carrying `gitaly-sidechannel-id` (forwarded from the client) must have the
 * downstream server call in its values under {@linkcode SIDECHANNEL_DOWNSTREAM}. The
 * interceptor registers its own waiter in `registry` (the `sidechannel` handshaker of
 * the upstream connection) and **appends** its id, so the upstream server uses it (the
 * last value). When the upstream server opens that sidechannel, the interceptor opens
 * the client's sidechannel (the client's id, on the downstream peer's session) and
 * splices the two. The call completes only once the splice is done, so data the
 * upstream wrote before an error reaches the client, and the upstream status wins over
 * a proxying failure (which then goes to `onError`).
 *
 * @param registry the registry of the upstream connection's sidechannels
 * @param options open timeout and error logger
 * @returns the interceptor
 *
 * @example Wire a proxy: forward calls with their metadata and the downstream call
 * ```ts
 * import {
 *   type GrpcClient,
 *   grpcMethod,
 *   GrpcServer,
 *   GrpcValues,
 *   rawCodec,
 *   SIDECHANNEL_DOWNSTREAM,
 *   sidechannelProxyInterceptor,
 *   SidechannelRegistry,
 * } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const method = grpcMethod({ service: "demo.Pack", name: "Get", kind: "unary", request: rawCodec, response: rawCodec });
 * // The upstream connection: BackchannelClient.connect(conn, { handshakers: { sidechannel: registry },
 * //   grpc: { interceptors: [sidechannelProxyInterceptor(registry)] } }).grpc
 * const registry = new SidechannelRegistry();
 * const interceptor = sidechannelProxyInterceptor(registry);
 * function proxyServer(upstream: GrpcClient): GrpcServer {
 *   return new GrpcServer().handle(method, (request, call) =>
 *     upstream.unary(method, request, {
 *       metadata: call.requestMetadata,
 *       values: new GrpcValues().set(SIDECHANNEL_DOWNSTREAM, call),
 *     }));
 * }
 * assert.equal(typeof interceptor, "function");
 * assert.equal(typeof proxyServer, "function");
 * ```
 */
export function sidechannelProxyInterceptor(
  registry: SidechannelRegistry,
  options: SidechannelProxyOptions = {},
): GrpcInterceptor {
  const report = (error: unknown) => {
    try {
      options.onError?.(error);
    } catch {
      // a throwing logger must not break the call
    }
  };
  return (next) => async (call) => {
    if (call.side !== "client") return await next(call);
    const ids = _sidechannelIds(call.requestMetadata);
    if (ids.length === 0) return await next(call);
    const downstream = call.values.get(SIDECHANNEL_DOWNSTREAM);
    if (downstream === undefined) {
      throw new GrpcError(
        Status.INTERNAL,
        "Cannot proxy sidechannel: the call carries a sidechannel id but no SIDECHANNEL_DOWNSTREAM call",
      );
    }
    let downstreamId: bigint;
    try {
      downstreamId = parseSidechannelId(ids);
    } catch (error) {
      throw _toGrpc(error);
    }
    const peer = downstream.peer.values.get(BACKCHANNEL_PEER);
    if (peer === undefined) {
      throw new SidechannelError(
        "NOT_MULTIPLEXED",
        "Cannot proxy sidechannel: the downstream call came over a non-multiplexed connection",
      ).toGrpcError();
    }
    const signal = AbortSignal.any([call.signal, downstream.signal]);
    const waiter = registry.register(async (upstreamConn) => {
      const downstreamConn = await openSidechannel(peer.session, downstreamId, {
        signal,
        ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
      });
      await spliceSidechannels(downstreamConn, upstreamConn, { signal });
    });
    call.requestMetadata.push([SIDECHANNEL_ID_METADATA, waiter.metadataValue]);
    let failure: unknown = undefined;
    let failed = false;
    try {
      await next(call);
    } catch (error) {
      failed = true;
      failure = error;
    }
    let waiterError: unknown = undefined;
    try {
      await waiter.close();
    } catch (error) {
      if (!(error instanceof SidechannelError && error.code === "CALLBACK_DID_NOT_RUN")) waiterError = error;
    }
    if (failed) {
      if (waiterError !== undefined) report(waiterError);
      throw failure;
    }
    if (waiterError !== undefined) throw _toGrpc(waiterError);
  };
}
