/**
 * Process lifecycle and memory: stopping upload-pack mid-pack leaves no process and no
 * file descriptor behind, and a slow consumer keeps memory bounded while a pack of more
 * than 50 MiB streams through. Uses a cached ≈ 61 MiB repository
 * (`.cache/test-repo-60m`, generated on first use in a few seconds).
 *
 * Each scenario runs in its own process (`_lifecycle_probe.ts`): fd counts and RSS are
 * per process, and `deno test --parallel` runs other test files in this one.
 */

import assert from "node:assert/strict";
import { MEDIUM_REPO_DIR, MEDIUM_SPEC, referenceRepo } from "../../bench/_reference_repo.ts";
import { hasProc, noGit } from "./_git.ts";

const MiB = 1024 * 1024;

// deno-lint-ignore no-explicit-any
async function probe(scenario: string): Promise<any> {
  // Generate the cached repository once, here, rather than in concurrent probes.
  await referenceRepo(MEDIUM_SPEC, MEDIUM_REPO_DIR);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./_lifecycle_probe.ts", import.meta.url).pathname, scenario],
    stdin: "null",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `probe ${scenario} failed: ${stderr}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

Deno.test({
  name:
    "UploadPack stopped mid-pack (signal, stdout cancel, kill, failing sink) leaves no process and no fd behind (24 runs)",
  ignore: noGit || !hasProc,
  async fn() {
    const report = await probe("abort");
    assert.deepEqual(report.failures, []);
    assert.deepEqual(
      report.leftovers,
      [],
      "no git process (upload-pack or pack-objects) survives, not even as a zombie",
    );
    assert.ok(report.children >= 12, `pack-objects was running in most runs (${report.children})`);
    assert.ok(report.stdoutBytes < 24 * 8 * MiB, "every run was stopped early");
    assert.equal(report.fdsAfter.pipe, report.fdsBefore.pipe, "no pipe to git is left open");
    assert.equal(report.fdsAfter.other, report.fdsBefore.other, "no other fd is left open");
  },
});

Deno.test({
  name:
    "UploadPack reaps git after normal runs and negotiation timeouts: no process and no fd left (20 runs)",
  ignore: noGit || !hasProc,
  async fn() {
    const report = await probe("reap");
    assert.deepEqual(report.failures, []);
    assert.deepEqual(report.leftovers, []);
    assert.equal(report.fdsAfter.pipe, report.fdsBefore.pipe, "no pipe to git is left open");
    assert.equal(report.fdsAfter.other, report.fdsBefore.other, "no other fd is left open");
  },
});

for (
  const [scenario, title] of [
    ["slow-stream", "UploadPack.stdout: a slow BYOB consumer"],
    ["slow-copy", "UploadPack.copyStdoutTo(): a slow ByteWriter"],
  ] as const
) {
  Deno.test({
    name:
      `${title} of a ≥ 50 MiB pack keeps RSS growth under 64 MiB and heap growth under 16 MiB (backpressure)`,
    ignore: noGit,
    async fn() {
      const report = await probe(scenario);
      assert.equal(report.failure, null);
      assert.equal(report.success, true);
      assert.equal(report.stdoutLength, report.bytes);
      assert.ok(report.bytes >= 50 * MiB, `pack size ${report.bytes}`);
      assert.ok(report.rssGrowth < 64 * MiB, `RSS grew by ${(report.rssGrowth / MiB).toFixed(1)} MiB`);
      assert.ok(report.heapGrowth < 16 * MiB, `heap grew by ${(report.heapGrowth / MiB).toFixed(1)} MiB`);
    },
  });
}
