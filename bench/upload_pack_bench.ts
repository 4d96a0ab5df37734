/**
 * A full-clone upload-pack response of the reference repository (3,000 commits, twenty
 * 10 MiB blobs, ≈ 217 MiB pack; built once into `.cache/reference-repo`): our
 * `spawnUploadPack` against `git upload-pack` in a shell pipe to `/dev/null`.
 *
 * Run: deno bench -A bench/upload_pack_bench.ts
 * Throughput (MB/s per variant, interleaved rounds, medians): deno run -A bench/upload_pack_bench.ts [rounds]
 *
 * Each iteration serves the same protocol v0 request (`want` of main, side-band-64k,
 * no progress, `done`); git's pack-objects reuses the deltas and the bitmap, so this
 * measures the streaming path rather than compression.
 */

import { type ByteWriter, encodeFlush, encodePkt, spawnUploadPack } from "../mod.ts";
import { referenceRepo } from "./_reference_repo.ts";

const repo = await referenceRepo();
const CAPS = "multi_ack_detailed no-done side-band-64k thin-pack ofs-delta no-progress agent=git/2.39.5";
const request = new Uint8Array([
  ...encodePkt(`want ${repo.head} ${CAPS}\n`),
  ...encodeFlush(),
  ...encodePkt("done\n"),
]);
const requestFile = await Deno.makeTempFile({ prefix: "sidechannel-upload-pack-request-" });
await Deno.writeFile(requestFile, request);

const env = {
  PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_CONFIG_SYSTEM: "/dev/null",
};

/** Baseline: git in a shell pipeline, output to /dev/null; returns bytes (counted by wc). */
async function shellPipe(): Promise<number> {
  const out = await new Deno.Command("sh", {
    args: ["-c", `git upload-pack --stateless-rpc '${repo.path}' < '${requestFile}' | wc -c`],
    env,
    clearEnv: true,
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return Number(new TextDecoder().decode(out.stdout).trim());
}

/** Reference: Deno.Command directly (no wrapper, no stats), BYOB reader with a reused buffer. */
async function rawCommand(): Promise<number> {
  const child = new Deno.Command("git", {
    args: ["upload-pack", "--stateless-rpc", repo.path],
    env,
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(request);
  await writer.close();
  const stderr = new Response(child.stderr).arrayBuffer();
  const reader = child.stdout.getReader({ mode: "byob" });
  let buffer = new ArrayBuffer(64 * 1024);
  let total = 0;
  while (true) {
    const { value, done } = await reader.read(new Uint8Array(buffer));
    if (done) break;
    total += value.byteLength;
    buffer = value.buffer as ArrayBuffer;
  }
  await stderr;
  if (!(await child.status).success) throw new Error("git upload-pack failed");
  return total;
}

/** Our upload-pack, output read through `stdout` with one reused BYOB buffer. */
async function byobReader(): Promise<number> {
  const uploadPack = spawnUploadPack(repo.path, { stdin: request });
  const reader = uploadPack.stdout.getReader({ mode: "byob" });
  let buffer = new ArrayBuffer(64 * 1024);
  let total = 0;
  while (true) {
    const { value, done } = await reader.read(new Uint8Array(buffer));
    if (done) break;
    total += value.byteLength;
    buffer = value.buffer as ArrayBuffer;
  }
  const result = await uploadPack.result;
  if (result.status?.success !== true) throw new Error(`upload-pack failed: ${JSON.stringify(result)}`);
  return total;
}

/** Our upload-pack, copied into a ByteWriter that discards (one reused buffer). */
async function copyToWriter(): Promise<number> {
  const uploadPack = spawnUploadPack(repo.path, { stdin: request });
  const sink: ByteWriter = { write: (p) => Promise.resolve(p.byteLength) };
  const total = await uploadPack.copyStdoutTo(sink);
  const result = await uploadPack.result;
  if (result.status?.success !== true) throw new Error(`upload-pack failed: ${JSON.stringify(result)}`);
  return total;
}

/** Our upload-pack, copied into /dev/null as a file (one write syscall per chunk). */
async function copyToDevNull(): Promise<number> {
  using devNull = await Deno.open("/dev/null", { write: true });
  const uploadPack = spawnUploadPack(repo.path, { stdin: request });
  const total = await uploadPack.copyStdoutTo(devNull);
  const result = await uploadPack.result;
  if (result.status?.success !== true) throw new Error(`upload-pack failed: ${JSON.stringify(result)}`);
  return total;
}

/** Our upload-pack, read with `for await` (a fresh chunk per read). */
async function forAwait(): Promise<number> {
  const uploadPack = spawnUploadPack(repo.path, { stdin: request });
  let total = 0;
  for await (const chunk of uploadPack.stdout) total += chunk.byteLength;
  const result = await uploadPack.result;
  if (result.status?.success !== true) throw new Error(`upload-pack failed: ${JSON.stringify(result)}`);
  return total;
}

const variants: [string, () => Promise<number>][] = [
  ["git upload-pack | wc -c (shell pipe)", shellPipe],
  ["Deno.Command, BYOB reader (no wrapper)", rawCommand],
  ["spawnUploadPack, stdout BYOB reader", byobReader],
  ["spawnUploadPack, copyStdoutTo(ByteWriter)", copyToWriter],
  ["spawnUploadPack, copyStdoutTo(/dev/null file)", copyToDevNull],
  ["spawnUploadPack, for await stdout", forAwait],
];

const group = "upload-pack full clone, ≈ 217 MiB";
for (const [name, fn] of variants) {
  Deno.bench({ group, name, baseline: fn === shellPipe, n: 3, warmup: 1, fn: async () => void (await fn()) });
}

if (import.meta.main) {
  // Interleaved rounds (every variant once per round) so that load from other processes
  // on a shared machine spreads over all variants; medians per variant.
  const rounds = Number(Deno.args[0] ?? 5);
  const MB = 1e6;
  const rates = new Map<string, number[]>(variants.map(([name]) => [name, []]));
  const cpu = new Map<string, number[]>(variants.map(([name]) => [name, []]));
  let bytes = 0;
  for (const [, fn] of variants) await fn(); // warm up the page cache and the runtime
  for (let round = 0; round < rounds; round++) {
    for (const [name, fn] of variants) {
      const started = performance.now();
      const cpuStarted = cpuSeconds();
      bytes = await fn();
      rates.get(name)!.push(bytes / MB / ((performance.now() - started) / 1000));
      cpu.get(name)!.push(cpuSeconds() - cpuStarted);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const baseline = median(rates.get(variants[0]![0])!);
  const lines = [
    `≈ ${(bytes / 1048576).toFixed(0)} MiB response, ${rounds} interleaved rounds: median MB/s, ` +
    "ratio to the shell pipe, CPU seconds of this Deno process per run (median), all MB/s",
  ];
  for (const [name, xs] of rates) {
    const m = median(xs);
    const rate = `${m.toFixed(0).padStart(4)} MB/s  ${(m / baseline).toFixed(2)}x`;
    const seconds = `${median(cpu.get(name)!).toFixed(2)} s CPU`;
    lines.push(`${name.padEnd(48)} ${rate}  ${seconds}  (${xs.map((x) => x.toFixed(0)).join(" ")})`);
  }
  // deno-lint-ignore no-console
  console.log(lines.join("\n"));
  await Deno.remove(requestFile);
}

/** This process's CPU time (user + system) in seconds, from `/proc` (Linux; NaN elsewhere). */
function cpuSeconds(): number {
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ (100)
  } catch {
    return NaN;
  }
}
