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
 *
 * On a shared or loaded machine consecutive benchmarks drift; for the ratio, run
 * `SIDECHANNEL_BENCH_ROUNDS=5 deno bench -A bench/sidechannel_bench.ts`: it first
 * alternates the three transfers round by round and prints the median of each (stderr).
 */

// deno-lint-ignore-file no-console

import { create } from "@bufbuild/protobuf";
import { cpuUsage } from "node:process";
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

const rounds = Number(Deno.env.get("SIDECHANNEL_BENCH_ROUNDS") ?? "0");
if (rounds > 0) {
  const paths = [
    ["bare yamux stream", bareStream],
    ["sidechannel", sidechannel],
    ["gRPC server stream", grpcStream],
  ] as const;
  const times = new Map<string, number[]>(paths.map(([name]) => [name, []]));
  const cpu = new Map<string, number[]>(paths.map(([name]) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of paths) {
      const start = performance.now();
      const before = cpuUsage();
      await run(TOTAL);
      const used = cpuUsage(before);
      times.get(name)!.push(performance.now() - start);
      cpu.get(name)!.push((used.user + used.system) / 1000);
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
  const base = median(times.get("bare yamux stream")!);
  const baseCpu = median(cpu.get("bare yamux stream")!);
  console.error(`interleaved, ${rounds} rounds of 1 GiB each (both ends in this process):`);
  console.error("| path | median wall | MiB/s | vs bare yamux | median CPU (user+sys) | CPU vs bare yamux |");
  console.error("| --- | --- | --- | --- | --- | --- |");
  for (const [name] of paths) {
    const ms = median(times.get(name)!);
    const cpuMs = median(cpu.get(name)!);
    console.error(
      `| ${name} | ${ms.toFixed(0)} ms | ${(1024 / (ms / 1000)).toFixed(0)} | ${(base / ms).toFixed(2)}x | ` +
        `${cpuMs.toFixed(0)} ms | ${(cpuMs / baseCpu).toFixed(2)}x |`,
    );
  }
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
