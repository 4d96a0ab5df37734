/**
 * A git client killed (SIGKILL) while a big pack streams through the front: the call is
 * cancelled, the storage server's git processes are reaped (no zombie, checked in
 * /proc), the pooled connections survive, and the next clone works. For each transport.
 * Uses the cached ≈ 61 MiB repository (`.cache/test-repo-60m`), borrowed through
 * alternates so its git processes are recognisable by path.
 */

import assert from "node:assert/strict";
import {
  generateRepo,
  MEDIUM_REPO_DIR,
  MEDIUM_SPEC,
  referenceRepo,
  SMALL_SPEC,
} from "../../bench/_reference_repo.ts";
import { type FrontLogEntry, GitalyUpstream, type StorageLogEntry, StorageServer } from "../../mod.ts";
import { hasProc, noGit } from "../git/_git.ts";
import {
  borrowRepo,
  cmdline,
  descendants,
  git,
  gitEnv,
  procState,
  type RunningFront,
  serveFront,
  waitFor,
} from "./_harness.ts";
import { step, TRANSPORTS } from "./_stack.ts";

const MiB = 1024 * 1024;

/** The size of the temporary pack a clone is receiving into, or 0. */
function receivedBytes(dir: string): number {
  let total = 0;
  try {
    for (const entry of Deno.readDirSync(`${dir}/objects/pack`)) {
      if (entry.name.startsWith("tmp_pack_")) {
        total += Deno.statSync(`${dir}/objects/pack/${entry.name}`).size;
      }
    }
  } catch {
    // not there yet
  }
  return total;
}

function signalAll(pids: number[], signal: Deno.Signal): void {
  for (const pid of pids) {
    try {
      Deno.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

Deno.test({
  name:
    "front: a git clone killed mid-pack is cancelled upstream; server git reaped (no zombie); next clone works",
  ignore: noGit || !hasProc,
  async fn(t) {
    const medium = await referenceRepo(MEDIUM_SPEC, MEDIUM_REPO_DIR);
    const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "sidechannel-kill-" }));
    await borrowRepo(medium.path, `${root}/big.git`);
    const small = await generateRepo(`${root}/small.git`, SMALL_SPEC);
    const rpcs: StorageLogEntry[] = [];
    const server = await StorageServer.start({
      storages: { default: root },
      v3Port: 0,
      onLog: (e) => rpcs.push(e),
    });
    const upstream = new GitalyUpstream({ port: server.addr.port, v3: { port: server.v3Addr!.port } });
    const logs: FrontLogEntry[] = [];
    const fronts: RunningFront[] = [];
    try {
      for (const transport of TRANSPORTS) {
        const front = serveFront({ upstream, transport, onLog: (e) => logs.push(e) });
        fronts.push(front);
        await step(t, transport, async () => {
          const dir = `${root}/clone-${transport}.git`;
          const client = new Deno.Command("git", {
            args: ["clone", "-q", "--bare", `${front.url}/big.git`, dir],
            clearEnv: true,
            env: gitEnv(),
            stdin: "null",
            stdout: "null",
            stderr: "null",
          }).spawn();
          const serverGit = new Set<number>();
          const watch = () => {
            for (const p of descendants(Deno.pid)) {
              if (serverGit.has(p.pid)) continue;
              const args = cmdline(p.pid);
              if (args.includes("upload-pack") && args.includes(`${root}/big.git`)) {
                serverGit.add(p.pid);
                for (const child of descendants(p.pid)) serverGit.add(child.pid);
              }
            }
            for (const pid of [...serverGit]) for (const child of descendants(pid)) serverGit.add(child.pid);
          };
          // Wait until more than 2 MiB of the pack has arrived, then freeze the client (the
          // transfer stalls mid-pack, the server blocks on backpressure) and kill it.
          const flowing = await waitFor(() => {
            watch();
            return receivedBytes(dir) > 2 * MiB;
          }, 30_000);
          const clientTree = [client.pid, ...descendants(client.pid).map((p) => p.pid)];
          signalAll(clientTree, "SIGSTOP");
          watch();
          assert.ok(flowing, "the pack started to arrive");
          const running = [...serverGit].filter((pid) => procState(pid) !== null);
          assert.ok(running.length > 0, "the storage server's git was still running when the client died");
          signalAll([client.pid, ...descendants(client.pid).map((p) => p.pid), ...clientTree], "SIGKILL");
          const status = await client.status;
          assert.equal(status.signal, "SIGKILL");

          const reaped = await waitFor(() => [...serverGit].every((pid) => procState(pid) === null), 15_000);
          const left = [...serverGit].map((pid) => ({ pid, state: procState(pid)?.state })).filter((p) =>
            p.state
          );
          assert.ok(reaped, `server-side git processes left: ${JSON.stringify(left)}`);
          await front.front.idle();
          const entry = logs.findLast((l) => l.repository === "big.git" && l.service === "upload-pack")!;
          assert.notEqual(entry.outcome, "ok");
          assert.ok(entry.bytesOut > 2 * MiB && entry.bytesOut < medium.path.length + 61 * MiB);

          // Healthy: the next clone over the same pooled connection works.
          const next = `${root}/next-${transport}`;
          await git(["clone", "-q", `${front.url}/small.git`, next]);
          assert.equal(await git(["-C", next, "rev-parse", "HEAD"]), small.head);
          await git(["-C", next, "fsck", "--no-dangling"]);
        });
      }
      const stats = upstream.stats();
      assert.deepEqual(
        stats,
        { backchannelConnects: 1, http2Connects: 1, v3Connects: 1 },
        "connections survived",
      );
      // Each clone made two calls (v2: ls-refs, then fetch); the fetches were cut short.
      const calls = rpcs.filter((r) =>
        r.repository?.relativePath === "big.git" && r.method.includes("PostUploadPack")
      );
      assert.deepEqual(calls.map((r) => r.status === "OK"), [true, false, true, false, true, false]);
      // (CANCELLED for V3 and PostUploadPack; FAILED_PRECONDITION "copying stdout" for the
      // sidechannel, as in Gitaly, where the server sees its sidechannel writes fail.)
      assert.ok(
        calls.every((r) => ["OK", "CANCELLED", "FAILED_PRECONDITION"].includes(r.status)),
        calls.map((r) => r.status).join(),
      );
    } finally {
      for (const front of fronts) await front.close();
      await upstream.close();
      await server.shutdown();
      await Deno.remove(root, { recursive: true });
    }
  },
});
