/**
 * Shared pieces of the sidechannel tests: raw methods, handlers in Gitaly's test style,
 * and a backchannel client/server pair over a pipe or loopback TCP.
 *
 * @module
 */

import {
  BackchannelClient,
  type BackchannelClientOptions,
  type BackchannelPeer,
  BackchannelServer,
  type BackchannelServerOptions,
  type GrpcInterceptor,
  grpcMethod,
  GrpcServer,
  type GrpcServerCall,
  type Http2Connection,
  openSidechannelForCall,
  rawCodec,
  sidechannelErrorInterceptor,
  SidechannelRegistry,
  type SidechannelRegistryOptions,
  type SidechannelServerConn,
} from "../../mod.ts";
import type { Transport } from "../_util.ts";

/** Raw-bytes methods used by the sidechannel tests. */
export const SC = {
  /** Unary: request = 8-byte BE N; the handler echoes exactly N bytes of its sidechannel. */
  echoN: grpcMethod({
    service: "sc.Test",
    name: "EchoN",
    kind: "unary",
    request: rawCodec,
    response: rawCodec,
  }),
  /** Unary: any handler a test installs. */
  custom: grpcMethod({
    service: "sc.Test",
    name: "Custom",
    kind: "unary",
    request: rawCodec,
    response: rawCodec,
  }),
  /** Server streaming: any handler a test installs. */
  stream: grpcMethod({
    service: "sc.Test",
    name: "Stream",
    kind: "server_streaming",
    request: rawCodec,
    response: rawCodec,
  }),
  /** Unary without sidechannel: echoes the request (to check other calls keep working). */
  plain: grpcMethod({
    service: "sc.Test",
    name: "Plain",
    kind: "unary",
    request: rawCodec,
    response: rawCodec,
  }),
} as const;

/** An 8-byte big-endian length. */
export function u64(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

function _readU64(bytes: Uint8Array): number {
  return Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0));
}

/** Copies exactly `n` bytes from `conn` back to it (Go's `io.CopyN(conn, conn, n)`). */
export async function copyN(conn: SidechannelServerConn, n: number): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  let left = n;
  while (left > 0) {
    const got = await conn.read(buffer.subarray(0, Math.min(left, buffer.byteLength)));
    if (got === null) throw new Error(`copyN: end of stream with ${left} bytes left`);
    await conn.write(buffer.subarray(0, got));
    left -= got;
  }
}

/** Handlers installed by a test for `SC.custom` / `SC.stream`. */
export interface Handlers {
  custom?: (request: Uint8Array, call: GrpcServerCall) => Promise<Uint8Array>;
  stream?: (request: Uint8Array, call: GrpcServerCall) => AsyncIterable<Uint8Array>;
}

/**
 * A gRPC server with the SC methods, the sidechannel error interceptor first. Errors
 * handlers throw (before the interceptor maps them) are pushed to `errors`.
 */
export function sidechannelServer(handlers: Handlers = {}, errors: unknown[] = []): GrpcServer {
  const record: GrpcInterceptor = (next) => async (call) => {
    try {
      await next(call);
    } catch (error) {
      errors.push(error);
      throw error;
    }
  };
  return new GrpcServer({ interceptors: [sidechannelErrorInterceptor, record] })
    .handle(SC.echoN, async (request, call) => {
      const conn = await openSidechannelForCall(call);
      try {
        await copyN(conn, _readU64(request));
      } finally {
        await conn.close();
      }
      return new Uint8Array(0);
    })
    .handle(SC.custom, (request, call) => {
      if (handlers.custom === undefined) throw new Error("no custom handler");
      return handlers.custom(request, call);
    })
    .handle(SC.stream, (request, call) => {
      if (handlers.stream === undefined) throw new Error("no stream handler");
      return handlers.stream(request, call);
    })
    .handle(SC.plain, (request) => request);
}

/** A connected backchannel pair. */
export interface Pair {
  client: BackchannelClient;
  registry: SidechannelRegistry;
  backchannel: BackchannelServer;
  /** The server's gRPC connection (stream 1). */
  connection: Http2Connection;
  /** The server's view of the client. */
  peer: BackchannelPeer;
  /** Closes both sides and the transport. */
  close(): Promise<void>;
}

/** Options for {@linkcode connectPair}. */
export interface PairOptions {
  client?: Omit<BackchannelClientOptions, "handshakers">;
  server?: BackchannelServerOptions;
  registry?: SidechannelRegistryOptions;
  /** Replace the client's handshaker table (default: `{ sidechannel: registry }`). */
  handshakers?: BackchannelClientOptions["handshakers"];
}

/** Connects a backchannel client (with a sidechannel registry) to `grpc` over `transport`. */
export async function connectPair(
  transport: Transport,
  grpc: GrpcServer,
  options: PairOptions = {},
): Promise<Pair> {
  const pair = await transport.pair();
  const backchannel = new BackchannelServer(grpc, options.server);
  const served = backchannel.serveConnection(pair.server);
  const registry = new SidechannelRegistry(options.registry);
  const client = await BackchannelClient.connect(pair.client, {
    ...options.client,
    handshakers: options.handshakers ?? { sidechannel: registry },
  });
  const { connection, peer } = await served;
  return {
    client,
    registry,
    backchannel,
    connection,
    peer: peer!,
    async close() {
      await client.close();
      await connection.closed;
      await peer!.closed;
      await pair.close();
    },
  };
}
