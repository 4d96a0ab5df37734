/**
 * Runs one lifecycle scenario in a process of its own and prints a JSON report, so that
 * file descriptor counts and RSS are not disturbed by test files running in parallel in
 * the test process. Used by `lifecycle_test.ts`:
 * `deno run -A tests/git/_lifecycle_probe.ts <scenario>`.
 *
 * @module
 */

// deno-lint-ignore-file no-console

import assert from "node:assert/strict";
import { type ByteWriter, spawnUploadPack, type UploadPack, type UploadPackResult } from "../../mod.ts";
import { MEDIUM_REPO_DIR, MEDIUM_SPEC, referenceRepo } from "../../bench/_reference_repo.ts";
import { childrenOf, openFds, procState, v0Request } from "./_git.ts";

const MiB = 1024 * 1024;
/** Progress off: the response is the pack in sideband packets. */
const CAPS = "multi_ack_detailed side-band-64k thin-pack ofs-delta no-progress";

/** Reads at least `bytes` of output; returns the pids seen meanwhile (git and its children). */
async function readSome(
  uploadPack: UploadPack,
  reader: ReadableStreamBYOBReader,
  bytes: number,
): Promise<number[]> {
  const pids = new Set<number>([uploadPack.pid!]);
  let read = 0;
  let buffer = new ArrayBuffer(64 * 1024);
  while (read < bytes) {
    const { value, done } = await reader.read(new Uint8Array(buffer));
    assert.equal(done, false, "the pack is larger than what the probe reads");
    read += value!.byteLength;
    buffer = value!.buffer as ArrayBuffer;
    for (const child of childrenOf(uploadPack.pid!)) pids.add(child);
  }
  return [...pids];
}

async function warmUp(path: string): Promise<void> {
  const warm = spawnUploadPack(path, { advertiseRefs: true });
  await warm.stdout.pipeTo(new WritableStream());
  await warm.result;
}

/**
 * Stops 24 runs mid-pack in four ways; reports leftover processes, and fds over the last
 * 20 (the first round of each way warms up the runtime, which allocates a few fds once).
 */
async function abortRuns() {
  const repo = await referenceRepo(MEDIUM_SPEC, MEDIUM_REPO_DIR);
  const request = v0Request([repo.head], { caps: CAPS });
  await warmUp(repo.path);
  let baseline = openFds();
  const methods = ["signal", "cancel", "kill", "sink"] as const;
  const leftovers: string[] = [];
  const failures: string[] = [];
  let children = 0;
  let stdoutBytes = 0;
  for (let run = 0; run < 24; run++) {
    if (run === methods.length) baseline = openFds();
    const method = methods[run % methods.length]!;
    const controller = new AbortController();
    const uploadPack = spawnUploadPack(repo.path, { stdin: request, signal: controller.signal });
    let pids: number[];
    let result: UploadPackResult;
    if (method === "sink") {
      // The sink accepts 1 MiB, then fails, like a client that went away.
      let taken = 0;
      const seen = new Set<number>([uploadPack.pid!]);
      const sink: ByteWriter = {
        write(p) {
          for (const child of childrenOf(uploadPack.pid!)) seen.add(child);
          if (taken >= MiB) return Promise.reject(new Error("client went away"));
          taken += p.byteLength;
          return Promise.resolve(p.byteLength);
        },
      };
      await uploadPack.copyStdoutTo(sink);
      pids = [...seen];
      result = await uploadPack.result;
    } else {
      const reader = uploadPack.stdout.getReader({ mode: "byob" });
      pids = await readSome(uploadPack, reader, MiB);
      if (method === "signal") controller.abort();
      else if (method === "kill") uploadPack.kill(new Error("killed by the probe"));
      else await reader.cancel(new Error("consumer gone"));
      result = await uploadPack.result;
      if (method !== "cancel") {
        const errored = await reader.read(new Uint8Array(16)).then(() => false, () => true);
        if (!errored) failures.push(`run ${run}: stdout did not error`);
      }
      reader.releaseLock();
    }
    const kind = method === "cancel" || method === "sink" ? "stdout" : "aborted";
    if (result.failure?.kind !== kind) {
      failures.push(`run ${run} (${method}): failure ${result.failure?.kind}`);
    }
    if (result.status === null) failures.push(`run ${run}: no exit status`);
    stdoutBytes += result.stdoutLength;
    children += pids.length - 1;
    for (const pid of pids) {
      const state = procState(pid);
      if (state !== null) leftovers.push(`run ${run} (${method}): pid ${pid} ${JSON.stringify(state)}`);
    }
  }
  return { runs: 24, children, stdoutBytes, leftovers, failures, fdsBefore: baseline, fdsAfter: openFds() };
}

/** 20 runs that end normally or by negotiation timeout; reports fds. */
async function reapRuns() {
  const repo = await referenceRepo(MEDIUM_SPEC, MEDIUM_REPO_DIR);
  await warmUp(repo.path);
  const baseline = openFds();
  const leftovers: string[] = [];
  const failures: string[] = [];
  for (let run = 0; run < 20; run++) {
    const timeout = run % 2 === 1;
    const uploadPack = timeout
      ? spawnUploadPack(repo.path, {
        statelessRpc: false,
        stdin: new ReadableStream(),
        negotiationTimeout: 1,
      })
      : spawnUploadPack(repo.path, { advertiseRefs: true });
    await uploadPack.stdout.pipeTo(new WritableStream()).catch(() => {});
    const result = await uploadPack.result;
    if (timeout ? result.failure?.kind !== "negotiation-timeout" : result.status?.success !== true) {
      failures.push(`run ${run}: ${JSON.stringify(result.failure)} ${JSON.stringify(result.status)}`);
    }
    const state = procState(uploadPack.pid!);
    if (state !== null) leftovers.push(`run ${run}: ${JSON.stringify(state)}`);
  }
  return { runs: 20, leftovers, failures, fdsBefore: baseline, fdsAfter: openFds() };
}

/** Waits for the next timer tick: the consumer is slow on purpose. */
function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 1));
}

/** Streams the whole pack to a slow consumer; reports bytes and peak RSS/heap growth. */
async function slow(mode: "stream" | "copy") {
  const repo = await referenceRepo(MEDIUM_SPEC, MEDIUM_REPO_DIR);
  await warmUp(repo.path);
  const uploadPack = spawnUploadPack(repo.path, { stdin: v0Request([repo.head], { caps: CAPS }) });
  const start = Deno.memoryUsage();
  let rss = 0, heap = 0, total = 0, calls = 0;
  const sample = () => {
    const now = Deno.memoryUsage();
    rss = Math.max(rss, now.rss - start.rss);
    heap = Math.max(heap, now.heapUsed - start.heapUsed);
  };
  const started = performance.now();
  if (mode === "stream") {
    const reader = uploadPack.stdout.getReader({ mode: "byob" });
    // A 16 KiB buffer and a timer tick every 8 reads: far slower than git.
    let buffer = new ArrayBuffer(16 * 1024);
    while (true) {
      const { value, done } = await reader.read(new Uint8Array(buffer));
      if (done) break;
      total += value.byteLength;
      buffer = value.buffer as ArrayBuffer;
      if (++calls % 8 === 0) await tick();
      if (calls % 64 === 0) sample();
    }
  } else {
    const sink: ByteWriter = {
      async write(p) {
        // A slow client: at most 8 KiB per write, a timer tick every 16 writes.
        const n = Math.min(p.byteLength, 8 * 1024);
        total += n;
        if (++calls % 16 === 0) await tick();
        if (calls % 128 === 0) sample();
        return n;
      },
    };
    const copied = await uploadPack.copyStdoutTo(sink);
    assert.equal(copied, total);
  }
  const result = await uploadPack.result;
  sample();
  return {
    mode,
    bytes: total,
    stdoutLength: result.stdoutLength,
    failure: result.failure?.kind ?? null,
    success: result.status?.success ?? false,
    seconds: (performance.now() - started) / 1000,
    rssGrowth: rss,
    heapGrowth: heap,
  };
}

const scenario = Deno.args[0];
const report = scenario === "abort"
  ? await abortRuns()
  : scenario === "reap"
  ? await reapRuns()
  : scenario === "slow-stream"
  ? await slow("stream")
  : scenario === "slow-copy"
  ? await slow("copy")
  : null;
if (report === null) throw new Error(`unknown scenario ${scenario}`);
console.log(JSON.stringify(report));
