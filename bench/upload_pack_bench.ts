/**
 * A full-clone upload-pack response of the reference repository (3,000 commits, twenty
 * 10 MiB blobs, ≈ 217 MiB pack; built once into `.cache/reference-repo`): our
 * `spawnUploadPack` against `git upload-pack` in a shell pipe to `/dev/null`.
 *
 * Run: deno bench -A bench/upload_pack_bench.ts
 * Throughput (bytes/s per variant, 3 runs each): deno run -A bench/upload_pack_bench.ts
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
  const MB = 1e6;
  for (const [name, fn] of variants) {
    const rates: string[] = [];
    let bytes = 0;
    await fn(); // warm up the page cache and the runtime
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      bytes = await fn();
      const seconds = (performance.now() - started) / 1000;
      rates.push(`${(bytes / MB / seconds).toFixed(0)} MB/s (${seconds.toFixed(2)} s)`);
    }
    // deno-lint-ignore no-console
    console.log(`${name.padEnd(48)} ${bytes} B  ${rates.join(", ")}`);
  }
  await Deno.remove(requestFile);
}
