/**
 * The full-clone upload-pack response of the reference repository (3,000 commits, twenty
 * 10 MiB blobs, ≈ 217 MiB; built once into `.cache/reference-repo`) from a storage
 * server in a subprocess (`bench/_storage_server.ts`) to this process over loopback TCP:
 *
 * - `direct`: the baseline, `git upload-pack --stateless-rpc` through `Deno.Command` in
 *   the server process, its stdout copied to a plain TCP socket;
 * - `sidechannel`: `PostUploadPackWithSidechannel` over a backchannel connection
 *   (Gitaly's yamux settings on both sides), git's pipe reads gathered into writes of up
 *   to 256 KiB (the default `sidechannelWriteBuffer`, no copy), and again with
 *   `sidechannelWriteBuffer: 0`, one write per pipe read (≤ 64 KiB, as Gitaly);
 * - `v3`: `PostUploadPackV3` (`application/grpc+raw`) on the V3 port;
 * - `grpc`: `PostUploadPack`, protobuf `data` messages on the plain gRPC port.
 *
 * Every variant sends the same recorded request (`want` of main, side-band-64k,
 * no-progress, `done`) and must receive the same response, give or take a few sideband
 * headers (git frames pack-objects' output as it reads it, so the packet count varies
 * from run to run by ±0.01 %).
 *
 * Run:
 *
 *     deno bench -A bench/transport_bench.ts            # Deno.bench, 3 runs each
 *     deno bench -A --json bench/transport_bench.ts     # the same as JSON (MB/s = bytes / avg ns)
 *     deno run -A bench/transport_bench.ts [rounds] [--json=out.json]
 *
 * The last form interleaves the variants round by round (the machine is shared and
 * noisy) and reports medians of: wall time and MB/s; CPU time of the server process
 * (user + system from `/proc/<pid>/stat`: the Deno side, git excluded); CPU time of
 * git (upload-pack and pack-objects, from the server's reaped-children counters); the
 * server's peak RSS during the run (`VmHWM`, reset before each run through
 * `/proc/<pid>/clear_refs`); and this process's CPU time.
 *
 * @module
 */

// deno-lint-ignore-file no-console

import { cpuUsage } from "node:process";
import {
  BackchannelClient,
  encodeFlush,
  encodePkt,
  GitalyClient,
  type GitalyTransport,
  GrpcClient,
  type GrpcClientOptions,
  SidechannelRegistry,
} from "../mod.ts";
import { REFERENCE_REPO_DIR, referenceRepo } from "./_reference_repo.ts";

const repo = await referenceRepo();
const CAPS = "multi_ack_detailed no-done side-band-64k thin-pack ofs-delta no-progress agent=git/2.39.5";
const request = new Uint8Array([
  ...encodePkt(`want ${repo.head} ${CAPS}\n`),
  ...encodeFlush(),
  ...encodePkt("done\n"),
]);
const storageRoot = REFERENCE_REPO_DIR.slice(0, REFERENCE_REPO_DIR.lastIndexOf("/"));
const gitalyRepo = { storageName: "bench", relativePath: REFERENCE_REPO_DIR.slice(storageRoot.length + 1) };

/** HTTP/2 settings of the V3 and gRPC clients: 1 MiB DATA frames (RFC 9113 allows up to 16 MiB). */
const http2: GrpcClientOptions = { maxFrameSize: 1 << 20 };

const child = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", new URL("./_storage_server.ts", import.meta.url).pathname, storageRoot, repo.path],
  stdin: "piped",
  stdout: "piped",
  stderr: "inherit",
}).spawn();
const stdinWriter = child.stdin.getWriter();
const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
const { value: line } = await lines.read();
const ports = JSON.parse(line!.split("\n")[0]!) as {
  pid: number;
  port: number;
  v3Port: number;
  unbufferedPort: number;
  directPort: number;
};
lines.releaseLock();
globalThis.addEventListener("unload", () => {
  try {
    child.kill("SIGKILL");
  } catch {
    // gone
  }
});

const registry = new SidechannelRegistry();
const backchannel = await BackchannelClient.dial({
  port: ports.port,
  handshakers: { sidechannel: registry },
});
const grpc = await GrpcClient.connect({ port: ports.port, ...http2 });
const v3 = await GrpcClient.connect({ port: ports.v3Port, ...http2 });
const client = new GitalyClient({ grpc, v3, backchannel: { client: backchannel, registry } });
const unbufferedRegistry = new SidechannelRegistry();
const unbufferedBackchannel = await BackchannelClient.dial({
  port: ports.unbufferedPort,
  handshakers: { sidechannel: unbufferedRegistry },
});
const unbufferedClient = new GitalyClient({
  backchannel: { client: unbufferedBackchannel, registry: unbufferedRegistry },
});

const READ_BUFFER = 1 << 20;

/** Reads a response to its end (BYOB into one reused buffer when the stream allows it). */
async function drain(body: ReadableStream<Uint8Array>): Promise<number> {
  let total = 0;
  let reader: ReadableStreamBYOBReader | undefined;
  try {
    reader = body.getReader({ mode: "byob" });
  } catch {
    reader = undefined;
  }
  if (reader !== undefined) {
    let buffer = new ArrayBuffer(READ_BUFFER);
    for (;;) {
      const { value, done } = await reader.read(new Uint8Array(buffer));
      if (done) break;
      total += value.byteLength;
      buffer = value.buffer as ArrayBuffer;
    }
    return total;
  }
  for await (const chunk of body) total += chunk.byteLength;
  return total;
}

async function viaDirect(): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: ports.directPort });
  for (let offset = 0; offset < request.byteLength;) offset += await conn.write(request.subarray(offset));
  await conn.closeWrite();
  const buffer = new Uint8Array(READ_BUFFER);
  let total = 0;
  for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) total += n;
  conn.close();
  return total;
}

async function viaRpc(transport: GitalyTransport, via = client): Promise<number> {
  const response = via.postUploadPack(gitalyRepo, ReadableStream.from([request]), { transport });
  const total = await drain(response.body);
  await response.done;
  return total;
}

const variants: [name: string, run: () => Promise<number>][] = [
  ["direct: git → Deno.Command → TCP", viaDirect],
  ["sidechannel (PostUploadPackWithSidechannel)", () => viaRpc("sidechannel")],
  ["sidechannel, one write per pipe read", () => viaRpc("sidechannel", unbufferedClient)],
  ["v3 (PostUploadPackV3, grpc+raw)", () => viaRpc("v3")],
  ["grpc (PostUploadPack, protobuf data)", () => viaRpc("grpc")],
];

/** utime+stime and cutime+cstime of the server, in seconds (USER_HZ 100). */
function serverCpu(): { self: number; children: number } {
  const stat = Deno.readTextFileSync(`/proc/${ports.pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  return { self: (f[11]! + f[12]!) / 100, children: (f[13]! + f[14]!) / 100 };
}

function serverMemory(): { hwm: number; rss: number } {
  const status = Deno.readTextFileSync(`/proc/${ports.pid}/status`);
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { hwm: kib("VmHWM") * 1024, rss: kib("VmRSS") * 1024 };
}

function resetPeak(): void {
  try {
    Deno.writeTextFileSync(`/proc/${ports.pid}/clear_refs`, "5");
  } catch {
    // not permitted: the peak then covers the whole run
  }
}

interface Sample {
  bytes: number;
  wallMs: number;
  serverCpuS: number;
  gitCpuS: number;
  clientCpuS: number;
  peakRssMiB: number;
}

async function measure(run: () => Promise<number>): Promise<Sample> {
  resetPeak();
  const cpu0 = serverCpu();
  const client0 = cpuUsage();
  const t0 = performance.now();
  const bytes = await run();
  const wallMs = performance.now() - t0;
  const client1 = cpuUsage(client0);
  // git is reaped (and its time added to the server's children) before the response ends.
  const cpu1 = serverCpu();
  return {
    bytes,
    wallMs,
    serverCpuS: cpu1.self - cpu0.self,
    gitCpuS: cpu1.children - cpu0.children,
    clientCpuS: (client1.user + client1.system) / 1e6,
    peakRssMiB: serverMemory().hwm / 1048576,
  };
}

/** Fails unless `got` is the response size, within the sideband framing's jitter. */
function check(name: string, got: number): void {
  if (Math.abs(got - BYTES) > BYTES / 1000) {
    throw new Error(`${name}: received ${got} bytes, expected ≈ ${BYTES}`);
  }
}

// Warm up every path (JIT, TCP autotuning, page cache) and check that all agree.
const BYTES = await viaDirect();
for (const [name, run] of variants) check(name, await run());

const group = `upload-pack full clone of the reference repo, ${
  (BYTES / 1048576).toFixed(0)
} MiB, server in a subprocess`;
for (const [name, run] of variants) {
  Deno.bench({
    group,
    name,
    baseline: run === viaDirect,
    n: 3,
    warmup: 1,
    async fn() {
      check(name, await run());
    },
  });
}

if (import.meta.main) {
  const rounds = Number(Deno.args.find((a) => /^\d+$/.test(a)) ?? 5);
  const jsonPath = Deno.args.find((a) => a.startsWith("--json="))?.slice("--json=".length);
  const samples = new Map<string, Sample[]>(variants.map(([name]) => [name, []]));
  const idle = serverMemory();
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of variants) {
      const sample = await measure(run);
      check(name, sample.bytes);
      samples.get(name)!.push(sample);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const direct = samples.get(variants[0]![0])!;
  const rate = (s: Sample) => s.bytes / 1e6 / (s.wallMs / 1000);
  const rows = variants.map(([name]) => {
    const xs = samples.get(name)!;
    const wallMs = median(xs.map((s) => s.wallMs));
    return {
      /** Median over rounds of (this variant's MB/s / direct's MB/s in the same round). */
      rateVsDirect: median(xs.map((s, i) => rate(s) / rate(direct[i]!))),
      /** Median over rounds of (server CPU / direct's server CPU in the same round). */
      serverCpuVsDirect: median(xs.map((s, i) => s.serverCpuS / direct[i]!.serverCpuS)),
      name,
      bytes: median(xs.map((s) => s.bytes)),
      wallMs,
      mbPerS: median(xs.map(rate)),
      serverCpuS: median(xs.map((s) => s.serverCpuS)),
      gitCpuS: median(xs.map((s) => s.gitCpuS)),
      clientCpuS: median(xs.map((s) => s.clientCpuS)),
      peakRssMiB: median(xs.map((s) => s.peakRssMiB)),
      samples: xs,
    };
  });
  const out = [
    `${
      (BYTES / 1048576).toFixed(1)
    } MiB response, ${rounds} interleaved rounds, medians ("vs direct": median of ` +
    `the per-round ratios); server idle RSS ${(idle.rss / 1048576).toFixed(0)} MiB`,
    "",
    "| variant | MB/s | vs direct | server CPU s (Deno) | vs direct | git CPU s | client CPU s | server peak RSS MiB |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map((r) =>
      `| ${r.name} | ${r.mbPerS.toFixed(0)} | ${r.rateVsDirect.toFixed(2)}x | ${r.serverCpuS.toFixed(2)} | ${
        r.serverCpuVsDirect.toFixed(2)
      }x | ${r.gitCpuS.toFixed(2)} | ${r.clientCpuS.toFixed(2)} | ${r.peakRssMiB.toFixed(0)} |`
    ),
  ];
  const ratio = (a: string, b: string, metric: (s: Sample) => number) => {
    const xs = samples.get(a)!;
    const ys = samples.get(b)!;
    return median(xs.map((x, i) => metric(x) / metric(ys[i]!)));
  };
  const [, sidechannelName, unbufferedName, v3Name] = variants.map(([name]) => name) as [
    string,
    string,
    string,
    string,
  ];
  const server = (s: Sample) => s.serverCpuS;
  const total = (s: Sample) => s.serverCpuS + s.clientCpuS;
  out.push(
    "",
    `V3 / sidechannel, server CPU: ${
      ratio(v3Name, sidechannelName, server).toFixed(2)
    }x; one write per pipe read: ${
      ratio(v3Name, unbufferedName, server).toFixed(2)
    }x (median of per-round ratios)`,
    `V3 / sidechannel, server + client CPU: ${
      ratio(v3Name, sidechannelName, total).toFixed(2)
    }x; one write per pipe read: ${ratio(v3Name, unbufferedName, total).toFixed(2)}x`,
  );
  console.log(out.join("\n"));
  if (jsonPath !== undefined) {
    await Deno.writeTextFile(
      jsonPath,
      JSON.stringify({ rounds, bytes: BYTES, idleRssMiB: idle.rss / 1048576, rows }, null, 2),
    );
  }
  await Promise.all([backchannel.close(), unbufferedBackchannel.close(), grpc.close(), v3.close()]);
  await stdinWriter.close();
  await child.status;
}
