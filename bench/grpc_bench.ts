/**
 * gRPC throughput and call rate over loopback TCP, every server in its own process:
 *
 * - "raw server stream": 256 MiB (`GRPC_BENCH_MIB=1024` for 1 GiB) of 64 KiB raw messages,
 *   server → client on one call. Baseline: Deno's node:http2 client against a node:http2
 *   server (`_node_http2_server.ts`, the same framing by hand). Ours: GrpcClient against
 *   GrpcServer (`_grpc_bench_server.ts`). Both with 8 MiB stream / 32 MiB connection
 *   windows and 64 KiB frames.
 * - "grpc-go client": the grpc_peer client's `raw-pull -verify=false` (its own dial
 *   included), against grpc-go's server (baseline) and against ours.
 * - "unary": 10,000 calls with 20-byte messages, 64 in flight on one connection.
 *
 * Run: deno bench -A bench/grpc_bench.ts (prints MB/s and calls/s to stderr as well)
 *
 * The node:http2 *server* never runs in this process: on Deno 2.9.6 it can abort its
 * process when a client closes its session (an nghttp2 assertion); a node:http2 client
 * is safe enough here.
 */

// deno-lint-ignore-file no-console

import http2 from "node:http2";
import { GrpcClient } from "../mod.ts";
import { echo, pull } from "./_raw_methods.ts";
import { runGrpcGoClient, startGrpcGoServer } from "../tests/interop/_grpc_go.ts";

const MIB = Number(Deno.env.get("GRPC_BENCH_MIB") ?? 256);
const TOTAL = MIB << 20;
const MESSAGE = 64 << 10;
const UNARY_CALLS = 10_000;
const IN_FLIGHT = 64;
const WINDOWS = { initialWindowSize: 8 << 20, connectionWindowSize: 32 << 20, maxFrameSize: 65536 };

interface Child {
  port: number;
  stop(): Promise<void>;
}

async function spawnServer(script: string): Promise<Child> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(script, import.meta.url).pathname, String(MESSAGE)],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/LISTEN \d+\n/.test(text)) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`${script} exited before listening`);
    text += value;
  }
  void lines.cancel();
  return {
    port: Number(/LISTEN (\d+)/.exec(text)![1]),
    async stop() {
      await child.stdin.close();
      await child.status;
    },
  };
}

function u64(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

const rates: Record<string, number[]> = {};
const WARM_UP_RUNS = 2;
function record(name: string, value: number): void {
  (rates[name] ??= []).push(value);
}

const nodeServer = await spawnServer("./_node_http2_server.ts");
const ourServer = await spawnServer("./_grpc_bench_server.ts");
const goServer = await startGrpcGoServer({ window: 8 << 20, connWindow: 32 << 20 });

// ---- node:http2 client (baseline) ----
const session = http2.connect(`http://127.0.0.1:${nodeServer.port}`, {
  settings: { initialWindowSize: 8 << 20, maxFrameSize: 65536 },
});
session.on("error", () => {});
await new Promise((resolve) => session.once("connect", resolve));
session.setLocalWindowSize(32 << 20);

function nodeRequest(path: string, body: Uint8Array): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc" });
    let bytes = 0;
    req.on("data", (chunk: Uint8Array) => bytes += chunk.byteLength);
    req.on("trailers", (t) => t["grpc-status"] !== "0" && reject(new Error("bad status")));
    req.on("end", () => resolve(bytes));
    req.on("error", reject);
    req.end(body);
  });
}

const envelope = (payload: Uint8Array) => {
  const out = new Uint8Array(5 + payload.byteLength);
  new DataView(out.buffer).setUint32(1, payload.byteLength);
  out.set(payload, 5);
  return out;
};

// ---- our client ----
const client = await GrpcClient.connect({ port: ourServer.port, ...WINDOWS, maxConcurrentStreams: 1000 });

async function ourPull(): Promise<number> {
  const call = client.serverStream(pull, u64(TOTAL));
  const reader = call.responses.getReader();
  let bytes = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
  }
  return bytes;
}

async function unaryRound(call: () => Promise<unknown>): Promise<void> {
  let started = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (started++ < UNARY_CALLS) await call();
  }));
}

async function timed(
  name: string,
  unit: "MB/s" | "calls/s",
  amount: number,
  fn: () => Promise<void>,
): Promise<void> {
  const start = performance.now();
  await fn();
  record(`${name} (${unit})`, amount / ((performance.now() - start) / 1000));
}

const GROUP_STREAM = `raw server stream, ${MIB} MiB of 64 KiB messages`;
Deno.bench({
  group: GROUP_STREAM,
  name: "node:http2 client ← node:http2 server (Deno)",
  baseline: true,
  n: 3,
  warmup: 1,
}, async () => {
  await timed("node:http2 stream", "MB/s", TOTAL / 1e6, async () => {
    const got = await nodeRequest("/raw.Raw/Pull", envelope(u64(TOTAL)));
    if (got !== TOTAL + 5 * Math.ceil(TOTAL / MESSAGE)) throw new Error(`got ${got} bytes`);
  });
});
Deno.bench({ group: GROUP_STREAM, name: "GrpcClient ← GrpcServer", n: 3, warmup: 1 }, async () => {
  await timed("sidechannel gRPC stream", "MB/s", TOTAL / 1e6, async () => {
    const got = await ourPull();
    if (got !== TOTAL) throw new Error(`got ${got} bytes`);
  });
});

const GROUP_GO = `grpc-go client raw-pull, ${MIB} MiB`;
for (
  const [name, port, baseline] of [["← grpc-go server", goServer.port, true], [
    "← GrpcServer",
    ourServer.port,
    false,
  ]] as const
) {
  Deno.bench({ group: GROUP_GO, name: `grpc-go client ${name}`, baseline, n: 3, warmup: 1 }, async () => {
    const exit = await runGrpcGoClient(port, "raw-pull", {
      bytes: TOTAL,
      window: 8 << 20,
      connWindow: 32 << 20,
      args: ["-verify=false"],
      timeoutMs: 120_000,
    });
    if (!exit.result.ok) throw new Error(exit.result.error);
    record(`grpc-go client ${name} (MB/s, its own clock)`, exit.result.mbPerSec as number);
  });
}

const GROUP_UNARY = `unary, ${UNARY_CALLS} calls, ${IN_FLIGHT} in flight, 1 connection`;
const small = new Uint8Array(20).fill(7);
const smallEnvelope = envelope(small);
Deno.bench({
  group: GROUP_UNARY,
  name: "node:http2 client → node:http2 server (Deno)",
  baseline: true,
  n: 5,
  warmup: 1,
}, async () => {
  await timed(
    "node:http2 unary",
    "calls/s",
    UNARY_CALLS,
    () => unaryRound(() => nodeRequest("/raw.Raw/Echo", smallEnvelope)),
  );
});
Deno.bench({ group: GROUP_UNARY, name: "GrpcClient → GrpcServer", n: 5, warmup: 1 }, async () => {
  await timed(
    "sidechannel gRPC unary",
    "calls/s",
    UNARY_CALLS,
    () => unaryRound(() => client.unary(echo, small)),
  );
});

globalThis.addEventListener("unload", () => {
  for (const [name, values] of Object.entries(rates)) {
    // Deno.bench calls each function twice before the measured iterations; those first
    // runs are mostly JIT warm-up and are left out of the median (shown in brackets).
    const measured = values.length > WARM_UP_RUNS ? values.slice(WARM_UP_RUNS) : values;
    const sorted = measured.toSorted((a, b) => a - b);
    const shown = values.map((v, i) =>
      i < values.length - measured.length ? `[${Math.round(v)}]` : Math.round(v)
    );
    console.error(`${name}: median ${Math.round(sorted[sorted.length >> 1]!)} (runs: ${shown.join(", ")})`);
  }
  session.destroy();
  client.abort();
  void nodeServer.stop();
  void ourServer.stop();
  void goServer.stop();
});
