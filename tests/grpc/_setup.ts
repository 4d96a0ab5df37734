/**
 * Shared pieces of the gRPC tests: raw-bytes methods (like the Go peer's `raw.Raw`), a
 * server implementing them, and client/server pairs over a pipe, TCP and a yamux stream.
 *
 * @module
 */

import {
  type DuplexConn,
  duplexPair,
  GrpcClient,
  type GrpcClientOptions,
  GrpcError,
  grpcMethod,
  type GrpcPeer,
  GrpcServer,
  type GrpcServerOptions,
  type Http2Connection,
  rawCodec,
  serveGrpcConnection,
  type ServeGrpcConnectionOptions,
  type Status,
  YamuxSession,
} from "../../mod.ts";
import { pseudoRandomBytes, transports, withTimeout } from "../_util.ts";

/** The raw methods: plain bytes both ways. */
export const RAW = {
  /** Unary: the reply is the request. */
  echo: grpcMethod({
    service: "raw.Raw",
    name: "Echo",
    kind: "unary",
    request: rawCodec,
    response: rawCodec,
  }),
  /** Server streaming: request = 8-byte BE length N (+ optional 4-byte chunk); reply: N PRNG bytes. */
  pull: grpcMethod({
    service: "raw.Raw",
    name: "Pull",
    kind: "server_streaming",
    request: rawCodec,
    response: rawCodec,
  }),
  /** Client streaming: reply = 8-byte BE total. */
  push: grpcMethod({
    service: "raw.Raw",
    name: "Push",
    kind: "client_streaming",
    request: rawCodec,
    response: rawCodec,
  }),
  /** Bidi: echoes each message. */
  bidi: grpcMethod({
    service: "raw.Raw",
    name: "Bidi",
    kind: "bidi_streaming",
    request: rawCodec,
    response: rawCodec,
  }),
  /** Unary: waits until the call's signal aborts, then rethrows its reason. */
  hang: grpcMethod({
    service: "raw.Raw",
    name: "Hang",
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

/** Reads an 8-byte big-endian length. */
export function readU64(bytes: Uint8Array): number {
  return Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0));
}

/** What the raw handlers saw, for assertions. */
export interface RawLog {
  /** Signals of calls that ended (aborted or not). */
  signals: AbortSignal[];
  /** Peers of calls. */
  peers: GrpcPeer[];
  /** Hang calls whose signal aborted, with the reason. */
  aborted: unknown[];
}

/** A server with the raw methods. */
export function rawServer(options: GrpcServerOptions = {}, log?: RawLog): GrpcServer {
  return new GrpcServer(options)
    .handle(RAW.echo, (request, call) => {
      log?.peers.push(call.peer);
      const initial = call.requestMetadata.filter(([k]) => k === "x-grpc-test-echo-initial");
      const trailing = call.requestMetadata.filter(([k]) => k === "x-grpc-test-echo-trailing-bin");
      call.responseHeader.push(...initial);
      call.responseTrailer.push(...trailing);
      const status = call.requestMetadata.find(([k]) => k === "x-fail-with")?.[1];
      if (typeof status === "string") {
        throw new GrpcError(Number(status) as Status, "failed on request: 100% \u2603\n", {
          metadata: [["x-detail", "yes"]],
          statusDetailsBin: new Uint8Array([8, 5, 18, 1, 0x41]),
        });
      }
      return request;
    })
    .handle(RAW.pull, async function* (request, call) {
      log?.signals.push(call.signal);
      const total = readU64(request);
      const chunk = request.byteLength >= 12
        ? new DataView(request.buffer, request.byteOffset + 8, 4).getUint32(0)
        : 65536;
      const data = pseudoRandomBytes(Math.min(total, 4 << 20), 1);
      for (let sent = 0; sent < total;) {
        const n = Math.min(chunk, total - sent);
        const offset = sent % data.byteLength;
        yield offset + n <= data.byteLength ? data.subarray(offset, offset + n) : pseudoRandomBytes(n, sent);
        sent += n;
      }
    })
    .handle(RAW.push, async (requests) => {
      let total = 0;
      for await (const message of requests) total += message.byteLength;
      return u64(total);
    })
    .handle(RAW.bidi, async function* (requests, call) {
      log?.signals.push(call.signal);
      for await (const message of requests) yield message;
    })
    .handle(RAW.hang, (_request, call) => {
      log?.signals.push(call.signal);
      return new Promise<Uint8Array>((_resolve, reject) => {
        call.signal.addEventListener("abort", () => {
          log?.aborted.push(call.signal.reason);
          reject(call.signal.reason);
        }, { once: true });
      });
    });
}

/** A connected client and server connection. */
export interface GrpcPair {
  /** The client. */
  client: GrpcClient;
  /** The server side's HTTP/2 connection. */
  connection: Http2Connection;
  /** Closes everything (gracefully, bounded). */
  close(): Promise<void>;
}

/** A way to get a connected duplex pair, named for test titles. */
export interface GrpcTransport {
  /** "pipe", "tcp" or "yamux". */
  name: string;
  /** Creates a fresh pair. */
  pair(): Promise<{ client: DuplexConn; server: DuplexConn; close(): Promise<void> }>;
}

/** gRPC over yamux stream 1, like Gitaly's backchannel. */
export const yamuxTransport: GrpcTransport = {
  name: "yamux",
  async pair() {
    const [a, b] = duplexPair();
    const muxClient = YamuxSession.client(a);
    const muxServer = YamuxSession.server(b);
    const [client, server] = await Promise.all([muxClient.open(), muxServer.accept()]);
    return {
      client,
      server,
      async close() {
        await Promise.all([muxClient.close(), muxServer.close()]);
      },
    };
  },
};

/** Pipe, TCP and yamux. */
export const grpcTransports: GrpcTransport[] = [...transports, yamuxTransport];

/** Serves `server` on one end of a fresh pair and connects a client to the other. */
export async function grpcPair(
  transport: GrpcTransport,
  server: GrpcServer,
  clientOptions: GrpcClientOptions = {},
  serveOptions: ServeGrpcConnectionOptions = {},
): Promise<GrpcPair> {
  const pair = await transport.pair();
  const connection = serveGrpcConnection(pair.server, server, serveOptions);
  const client = new GrpcClient(pair.client, clientOptions);
  return {
    client,
    connection,
    async close() {
      await withTimeout(Promise.all([client.close(), connection.close()]), 5000, "closing the gRPC pair")
        .catch(() => {
          client.abort();
          connection.abort();
        });
      await pair.close();
    },
  };
}

/** Rejection of `promise` as a GrpcError (fails if it resolves or rejects otherwise). */
export async function grpcError(promise: Promise<unknown>): Promise<GrpcError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof GrpcError) return error;
    throw new Error(`expected a GrpcError, got ${String(error)}`, { cause: error });
  }
  throw new Error("expected a GrpcError, the call succeeded");
}

/** Polls `condition` until it holds (bounded: rejects after 5 s). */
export async function until(condition: () => boolean, what: string): Promise<void> {
  await withTimeout(
    (async () => {
      while (!condition()) await new Promise((r) => setTimeout(r, 1));
    })(),
    5000,
    what,
  );
}
