/**
 * Yamux benchmarks, two processes over loopback: this process is the client, the peer
 * (`_yamux_peer.ts`) the server. Every group has a baseline; compare ratios within one
 * run (the machines are noisy).
 *
 *     deno bench -A bench/yamux_bench.ts
 *     YAMUX_BENCH_ROUNDS=7 deno bench -A bench/yamux_bench.ts   # also: bulk ratios, interleaved
 *
 * Derived numbers (MiB/s, fairness spread, memory growth) are printed to stderr as
 * `yamux-bench:` lines.
 *
 * @module
 */

// deno-lint-ignore-file no-console
import { yamux } from "@chainsafe/libp2p-yamux";
import { fromDenoConn, YamuxSession, type YamuxStream } from "../mod.ts";
import { DenoMessageStream, toBytes } from "../tests/interop/_message_stream.ts";
import { readFull, writeAll } from "./_io.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const BULK = 256 * MiB;
const CHUNK = 64 * KiB;

// ---- the peer process ----

const peer = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", new URL("./_yamux_peer.ts", import.meta.url).pathname],
  stdout: "piped",
  stderr: "inherit",
}).spawn();
const PORT = await (async () => {
  const reader = peer.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) text += (await reader.read()).value ?? "";
  reader.releaseLock();
  return Number(text.trim());
})();
globalThis.addEventListener("unload", () => {
  try {
    peer.kill("SIGKILL");
  } catch {
    // already gone
  }
});

function report(line: string): void {
  console.error(`yamux-bench: ${line}`);
}

async function dial(prefix: Uint8Array): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: PORT });
  conn.setNoDelay(true);
  await writeAll(conn, prefix);
  return conn;
}

function u64(bytes: Uint8Array): number {
  return Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0));
}

function yamuxPrefix(windowKiB: number): Uint8Array {
  const out = new Uint8Array(5);
  out[0] = 0x79;
  new DataView(out.buffer).setUint32(1, windowKiB);
  return out;
}

async function yamuxClient(windowKiB: number): Promise<YamuxSession> {
  return YamuxSession.client(fromDenoConn(await dial(yamuxPrefix(windowKiB))), {
    maxStreamWindow: windowKiB * KiB,
    keepAliveInterval: 0,
  });
}

const payload = new Uint8Array(CHUNK).fill(0x5a);
const throughput = new Map<string, number[]>();

function record(name: string, bytes: number, ms: number): void {
  const list = throughput.get(name) ?? [];
  list.push(bytes / MiB / (ms / 1000));
  throughput.set(name, list);
}

globalThis.addEventListener("unload", () => {
  for (const [name, list] of throughput) {
    const sorted = [...list].sort((a, b) => a - b);
    report(`${name}: median ${sorted[sorted.length >> 1]!.toFixed(0)} MiB/s over ${list.length} runs`);
  }
});

// ---- 1. one stream, bulk ----

/** A timed transfer: resolves with the bytes the peer counted and the milliseconds taken. */
type Transfer = (b?: Deno.BenchContext) => Promise<{ bytes: number; ms: number }>;

async function rawTransfer(b?: Deno.BenchContext): Promise<{ bytes: number; ms: number }> {
  const conn = await dial(new Uint8Array([0x72]));
  b?.start();
  const t0 = performance.now();
  for (let sent = 0; sent < BULK; sent += CHUNK) await writeAll(conn, payload);
  await conn.closeWrite();
  const bytes = u64(await readFull(conn, 8));
  b?.end();
  const ms = performance.now() - t0;
  conn.close();
  return { bytes, ms };
}

function yamuxTransfer(windowKiB: number): Transfer {
  return async (b) => {
    const session = await yamuxClient(windowKiB);
    const stream = await session.open();
    await stream.write(new Uint8Array([0x73]));
    b?.start();
    const t0 = performance.now();
    for (let sent = 0; sent < BULK; sent += CHUNK) await stream.write(payload);
    await stream.closeWrite();
    const bytes = u64(await readFull(stream, 8));
    b?.end();
    const ms = performance.now() - t0;
    await session.close();
    return { bytes, ms };
  };
}

async function yamuxWebStreamsTransfer(b?: Deno.BenchContext): Promise<{ bytes: number; ms: number }> {
  const session = await yamuxClient(16 * 1024);
  const stream = await session.open();
  const writer = stream.writable.getWriter();
  await writer.write(new Uint8Array([0x73]));
  const reply = stream.readable.getReader({ mode: "byob" });
  b?.start();
  const t0 = performance.now();
  for (let sent = 0; sent < BULK; sent += CHUNK) await writer.write(payload);
  await writer.close();
  const { value } = await reply.read(new Uint8Array(8), { min: 8 });
  b?.end();
  const ms = performance.now() - t0;
  await session.close();
  return { bytes: u64(value!), ms };
}

type CsFactory = ReturnType<ReturnType<typeof yamux>>;

async function chainsafeClient(): Promise<
  { muxer: ReturnType<CsFactory["createStreamMuxer"]>; close(): Promise<void> }
> {
  const conn = await dial(new Uint8Array([0x63]));
  const transport = new DenoMessageStream(conn, "outbound");
  const factory: CsFactory = yamux()();
  const muxer = factory.createStreamMuxer(
    transport as unknown as Parameters<CsFactory["createStreamMuxer"]>[0],
  );
  return {
    muxer,
    async close() {
      await muxer.close().catch(() => {});
      await transport.close();
    },
  };
}

async function chainsafeTransfer(b?: Deno.BenchContext): Promise<{ bytes: number; ms: number }> {
  const { muxer, close } = await chainsafeClient();
  const stream = await muxer.createStream();
  stream.send(new Uint8Array([0x73]));
  b?.start();
  const t0 = performance.now();
  for (let sent = 0; sent < BULK; sent += CHUNK) {
    // chainsafe keeps a reference until sent: give it its own copy, as its users must.
    if (!stream.send(payload.slice())) await stream.onDrain();
  }
  await stream.close();
  let bytes = 0;
  for await (const chunk of stream) {
    bytes = u64(toBytes(chunk));
    break;
  }
  b?.end();
  const ms = performance.now() - t0;
  await close();
  return { bytes, ms };
}

const BULK_GROUP = "bulk 256 MiB, one stream";
const transfers: { name: string; label: string; run: Transfer; baseline?: boolean }[] = [
  { name: "raw TCP (conn.write → conn.read)", label: "raw TCP", run: rawTransfer, baseline: true },
  { name: "yamux, 256 KiB window", label: "yamux 256 KiB window", run: yamuxTransfer(256) },
  { name: "yamux, 16 MiB window", label: "yamux 16 MiB window", run: yamuxTransfer(16 * 1024) },
  {
    name: "yamux, 16 MiB window, via Web Streams",
    label: "yamux 16 MiB window, Web Streams",
    run: yamuxWebStreamsTransfer,
  },
  { name: "@chainsafe/libp2p-yamux 8.0.1 in Deno", label: "chainsafe", run: chainsafeTransfer },
];

for (const { name, label, run, baseline } of transfers) {
  Deno.bench({ group: BULK_GROUP, name, baseline: baseline ?? false, n: 8, warmup: 1 }, async (b) => {
    const { bytes, ms } = await run(b);
    record(label, bytes, ms);
  });
}

// Consecutive benchmarks drift on a shared machine; for the ratios, interleave the
// transfers round by round: YAMUX_BENCH_ROUNDS=7 deno bench -A bench/yamux_bench.ts
const ROUNDS = Number(Deno.env.get("YAMUX_BENCH_ROUNDS") ?? 0);
if (ROUNDS > 0) {
  const rates = new Map<string, number[]>(transfers.map((t) => [t.label, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const { label, run } of transfers) {
      const { bytes, ms } = await run();
      rates.get(label)!.push(bytes / MiB / (ms / 1000));
    }
  }
  const median = (list: number[]) => list.toSorted((a, b) => a - b)[list.length >> 1]!;
  const raw = median(rates.get("raw TCP")!);
  console.error(`interleaved, ${ROUNDS} rounds of 256 MiB each:`);
  console.error("| path | median MiB/s | vs raw TCP | rounds (MiB/s) |\n| --- | ---: | ---: | --- |");
  for (const [label, list] of rates) {
    const m = median(list);
    console.error(
      `| ${label} | ${m.toFixed(0)} | ${(m / raw).toFixed(2)}× | ${
        list.map((v) => v.toFixed(0)).join(", ")
      } |`,
    );
  }
}

// ---- 2. ping RTT, idle and under bulk load ----

const PINGS = 3000;
let loadSession: YamuxSession | null = null;
let loadStop = false;
let loadDone: Promise<void> = Promise.resolve();
let pingCount = 0;

async function startLoad(): Promise<void> {
  // Default (hashicorp) window: at most 256 KiB of this stream is in flight, so a ping
  // waits behind little in the kernel's socket buffers.
  loadSession = await yamuxClient(256);
  const stream = await loadSession.open();
  await stream.write(new Uint8Array([0x73]));
  loadStop = false;
  loadDone = (async () => {
    let sent = 0;
    while (!loadStop && sent < 1024 * MiB) {
      await stream.write(payload);
      sent += CHUNK;
    }
    await stream.closeWrite();
  })();
}

const idleSession = await yamuxClient(256);

Deno.bench({
  group: "ping RTT",
  name: "ping, idle session",
  baseline: true,
  n: PINGS,
  warmup: 50,
  async fn() {
    await idleSession.ping();
  },
});

Deno.bench({
  group: "ping RTT",
  name: "ping while one stream pushes bulk data (256 KiB window)",
  n: PINGS,
  warmup: 50,
  async fn(b) {
    if (loadSession === null) await startLoad();
    b.start();
    await loadSession!.ping();
    b.end();
    if (++pingCount === PINGS + 50) {
      loadStop = true;
      await loadDone;
      report(`ping under load: ${loadSession!.stats().bytesSent / MiB | 0} MiB pushed meanwhile`);
    }
  },
});

// ---- 3. eight saturating streams: byte shares ----

Deno.bench({
  group: "8 streams × 32 MiB",
  name: "8 raw TCP connections",
  baseline: true,
  n: 4,
  warmup: 1,
  async fn(b) {
    const conns = await Promise.all(Array.from({ length: 8 }, () => dial(new Uint8Array([0x72]))));
    b.start();
    await Promise.all(conns.map(async (conn) => {
      for (let sent = 0; sent < 32 * MiB; sent += CHUNK) await writeAll(conn, payload);
      await conn.closeWrite();
      await readFull(conn, 8);
      conn.close();
    }));
    b.end();
  },
});

const spreads: number[] = [];
Deno.bench({
  group: "8 streams × 32 MiB",
  name: "yamux, 8 streams on one connection (1 MiB windows)",
  n: 4,
  warmup: 1,
  async fn(b) {
    const session = await yamuxClient(1024);
    const streams: YamuxStream[] = [];
    for (let i = 0; i < 8; i++) {
      const s = await session.open();
      await s.write(new Uint8Array([0x73]));
      streams.push(s);
    }
    const sent = new Array<number>(8).fill(0);
    let snapshot: number[] | null = null;
    b.start();
    await Promise.all(streams.map(async (s, i) => {
      while (sent[i]! < 32 * MiB) {
        await s.write(payload);
        sent[i]! += CHUNK;
      }
      snapshot ??= [...sent];
      await s.closeWrite();
      await readFull(s, 8);
    }));
    b.end();
    const mean = snapshot!.reduce((a, b) => a + b, 0) / 8;
    spreads.push(Math.max(...snapshot!.map((x) => Math.abs(x - mean) / mean)));
    await session.close();
  },
});
globalThis.addEventListener("unload", () => {
  if (spreads.length > 0) {
    report(
      `8 streams: largest deviation from the mean byte share when the first stream finished: ${
        spreads.map((s) => `${(s * 100).toFixed(1)}%`).join(", ")
      }`,
    );
  }
});

// ---- 4. open → 1-byte echo → close, sequential ----

const echoSession = await yamuxClient(256);
const one = new Uint8Array([0x65, 0x2a]);

const pingPong = await dial(new Uint8Array([0x70]));
const oneByte = new Uint8Array([0x2a]);

Deno.bench({
  group: "open → 1-byte echo → close",
  name: "raw TCP 1-byte round trip on an open connection (the floor)",
  baseline: true,
  n: 10_000,
  warmup: 500,
  async fn() {
    await writeAll(pingPong, oneByte);
    await readFull(pingPong, 1);
  },
});

Deno.bench({
  group: "open → 1-byte echo → close",
  name: "TCP connect → 1-byte echo → close",
  n: 2000,
  warmup: 100,
  async fn() {
    const conn = await dial(new Uint8Array([0x70, 0x2a]));
    await readFull(conn, 1);
    conn.close();
  },
});

Deno.bench({
  group: "open → 1-byte echo → close",
  name: "yamux stream open → 1-byte echo → close",
  n: 10_000,
  warmup: 500,
  async fn() {
    // As hashicorp's benchmark: open, write, read the echo, close (FIN); the peer's FIN
    // is processed in the background.
    const s = await echoSession.open();
    await s.write(one);
    await readFull(s, 1);
    await s.closeWrite();
  },
});

// ---- 5. slow reader: memory stays bounded by the window ----

const SLOW_TOTAL = 256 * MiB;
const SLOW_RATE = 100 * MiB; // bytes per second

async function slowRead(
  read: (p: Uint8Array) => Promise<number | null>,
): Promise<{ peak: number; got: number }> {
  const base = Deno.memoryUsage().rss;
  let peak = 0;
  let got = 0;
  const buf = new Uint8Array(MiB);
  const t0 = performance.now();
  for (;;) {
    const k = await read(buf);
    if (k === null) break;
    got += k;
    peak = Math.max(peak, Deno.memoryUsage().rss - base);
    const due = t0 + (got / SLOW_RATE) * 1000;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
  }
  return { peak, got };
}

function request(total: number): Uint8Array {
  const out = new Uint8Array(9);
  out[0] = 0x67;
  new DataView(out.buffer).setBigUint64(1, BigInt(total));
  return out;
}

Deno.bench({
  group: "slow reader, 256 MiB at 100 MiB/s",
  name: "yamux (256 KiB window): receiver RSS growth",
  baseline: true,
  n: 1,
  warmup: 0,
  async fn() {
    const session = await yamuxClient(256);
    const stream = await session.open();
    await stream.write(request(SLOW_TOTAL));
    const { peak, got } = await slowRead((p) => stream.read(p));
    report(`slow reader, yamux: received ${got / MiB} MiB, peak RSS growth ${(peak / MiB).toFixed(1)} MiB`);
    await session.close();
  },
});

Deno.bench({
  group: "slow reader, 256 MiB at 100 MiB/s",
  name: "@chainsafe/libp2p-yamux (for await): receiver RSS growth",
  n: 1,
  warmup: 0,
  async fn() {
    const { muxer, close } = await chainsafeClient();
    const stream = await muxer.createStream();
    // The chainsafe peer serves `s`/`e` only; ask our peer-side generator through a
    // chainsafe stream is not possible, so pace a chainsafe echo of our own upload:
    // upload in the background, read the echo slowly.
    stream.send(new Uint8Array([0x65]));
    const uploading = (async () => {
      for (let sent = 0; sent < SLOW_TOTAL; sent += CHUNK) {
        if (!stream.send(payload.slice())) await stream.onDrain();
      }
      await stream.close();
    })();
    const iterator = stream[Symbol.asyncIterator]();
    let pending: Uint8Array | null = null;
    const { peak, got } = await slowRead(async (p) => {
      if (pending === null) {
        const next = await iterator.next();
        if (next.done) return null;
        pending = toBytes(next.value);
      }
      const n = Math.min(p.byteLength, pending.byteLength);
      p.set(pending.subarray(0, n));
      pending = n === pending.byteLength ? null : pending.subarray(n);
      return n;
    });
    await uploading;
    report(
      `slow reader, chainsafe: received ${got / MiB} MiB, peak RSS growth ${(peak / MiB).toFixed(1)} MiB`,
    );
    await close();
  },
});
