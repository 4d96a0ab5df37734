/**
 * 1 GiB server → client on one backchannel connection over loopback TCP, three ways:
 *
 * - a bare yamux stream opened by the server (baseline: what a sidechannel rides on);
 * - a sidechannel of a unary call (`openSidechannelForCall`, raw writes, raw reads);
 * - a gRPC server stream of 64 KiB protobuf `bytes` messages (`PostUploadPackResponse`)
 *   on stream 1 of the same connection.
 *
 * Gitaly's yamux settings on both sides (client: 256 KiB windows, 1 s close timeout;
 * server: 16 MiB windows, backlog 1). Writes are 1 MiB buffers, reads go into a reused
 * 1 MiB buffer through direct I/O (`read(p)`).
 *
 * Run: deno bench -A bench/sidechannel_bench.ts
 */

import { create } from "@bufbuild/protobuf";
import {
  BackchannelClient,
  BackchannelServer,
  callWithSidechannel,
  type DirectIo,
  type DuplexConn,
  fromDenoConn,
  grpcMethod,
  GrpcServer,
  openSidechannelForCall,
  protobufCodec,
  rawCodec,
  SidechannelRegistry,
} from "../mod.ts";
import { PostUploadPackResponseSchema } from "../src/git/gen/smarthttp_pb.ts";

const TOTAL = 1 << 30;
const CHUNK = 1 << 20;
const MESSAGE = 64 << 10;
const chunk = new Uint8Array(CHUNK).map((_, i) => i & 0xff);
const BENCH_MAGIC = "benchstream";

const pull = grpcMethod({
  service: "bench.Side",
  name: "Pull",
  kind: "unary",
  request: rawCodec,
  response: rawCodec,
});
const responseCodec = protobufCodec(PostUploadPackResponseSchema);
const stream = grpcMethod({
  service: "bench.Side",
  name: "Stream",
  kind: "server_streaming",
  request: rawCodec,
  response: responseCodec,
});

async function writeTotal(conn: DirectIo, total: number): Promise<void> {
  for (let sent = 0; sent < total; sent += CHUNK) {
    let written = 0;
    while (written < CHUNK) written += await conn.write(written === 0 ? chunk : chunk.subarray(written));
  }
}

const readBuffer = new Uint8Array(CHUNK);
async function drain(conn: DirectIo): Promise<number> {
  let got = 0;
  for (;;) {
    const n = await conn.read(readBuffer);
    if (n === null) return got;
    got += n;
  }
}

function check(got: number, total = TOTAL): void {
  if (got !== total) throw new Error(`received ${got} bytes, expected ${total}`);
}

/** The request of both methods: how many bytes to send, 8-byte big-endian. */
function sizeOf(request: Uint8Array): number {
  return Number(new DataView(request.buffer, request.byteOffset, 8).getBigUint64(0));
}
function sizeRequest(total: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(total));
  return out;
}

const server = new GrpcServer()
  .handle(pull, async (request, call) => {
    const conn = await openSidechannelForCall(call);
    await writeTotal(conn, sizeOf(request));
    await conn.close();
    return new Uint8Array(0);
  })
  .handle(stream, async function* (request) {
    const data = chunk.subarray(0, MESSAGE);
    const total = sizeOf(request);
    for (let sent = 0; sent < total; sent += MESSAGE) {
      yield create(PostUploadPackResponseSchema, { data });
    }
  });

const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const [rawServer, rawClient] = await Promise.all([
  listener.accept(),
  Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
]);
listener.close();
const backchannel = new BackchannelServer(server);
const served = backchannel.serveConnection(fromDenoConn(rawServer));

// The baseline: server-opened streams with our own magic, drained by a handshaker.
let baselineDone: ((n: number) => void) | undefined;
const baselineHandshaker = {
  async handshake(conn: DuplexConn & DirectIo) {
    const n = await drain(conn);
    await conn.close();
    baselineDone?.(n);
  },
};
const registry = new SidechannelRegistry();
const client = await BackchannelClient.connect(fromDenoConn(rawClient), {
  handshakers: { sidechannel: registry, [BENCH_MAGIC]: baselineHandshaker },
});
const { peer } = await served;

async function bareStream(total: number): Promise<void> {
  const received = new Promise<number>((resolve) => baselineDone = resolve);
  const s = await peer!.session.open();
  await s.write(new TextEncoder().encode(BENCH_MAGIC));
  await writeTotal(s, total);
  await s.closeWrite();
  check(await received, total);
  await s.closed;
}

async function sidechannel(total: number): Promise<void> {
  let got = 0;
  await callWithSidechannel(registry, async (conn) => {
    await conn.closeWrite();
    got = await drain(conn);
  }, (metadata) => client.grpc.unary(pull, sizeRequest(total), { metadata }));
  check(got, total);
}

async function grpcStream(total: number): Promise<void> {
  const call = client.grpc.serverStream(stream, sizeRequest(total));
  let got = 0;
  for await (const message of call.responses) got += message.data.byteLength;
  await call.done;
  check(got, total);
}

// Warm every path up before measuring (JIT, TCP autotuning): otherwise whichever
// benchmark runs first pays for it. (Deno.bench awaits `fn` only if it is an async
// function, hence the `async fn() { await … }` wrappers below.)
for (let i = 0; i < 2; i++) {
  await bareStream(256 << 20);
  await sidechannel(256 << 20);
  await grpcStream(64 << 20);
}

Deno.bench({
  group: "1 GiB server → client, one loopback connection",
  name: "bare yamux stream (server-opened)",
  baseline: true,
  n: 3,
  warmup: 1,
  async fn() {
    await bareStream(TOTAL);
  },
});

Deno.bench({
  group: "1 GiB server → client, one loopback connection",
  name: "sidechannel (unary call, raw bytes)",
  n: 3,
  warmup: 1,
  async fn() {
    await sidechannel(TOTAL);
  },
});

Deno.bench({
  group: "1 GiB server → client, one loopback connection",
  name: "gRPC server stream, 64 KiB protobuf bytes messages",
  n: 3,
  warmup: 1,
  async fn() {
    await grpcStream(TOTAL);
  },
});
