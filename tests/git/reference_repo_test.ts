import assert from "node:assert/strict";
import { generateRepo, REFERENCE_SPEC, SMALL_SPEC } from "../../bench/_reference_repo.ts";
import { git, noGit } from "./_git.ts";

Deno.test({
  name: "generateRepo() is deterministic: the small test repository has the same ids on every run",
  ignore: noGit,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sidechannel-refrepo-" });
    try {
      const started = performance.now();
      const a = await generateRepo(`${dir}/a.git`, SMALL_SPEC);
      const elapsed = performance.now() - started;
      const b = await generateRepo(`${dir}/b.git`, SMALL_SPEC);
      const expected = {
        head: "7e95328144dcf0354eb356b4fb34ca61ebd41102",
        side: "edf9469cef647a7264bc893725379b8ea8a3304e",
        root: "74239e03db6cc6ed6d5ee5a78d2f37f0d029d25c",
        tag: "1d596dd8810a50b7f07a0a9119f1788f5ff8149a",
      };
      for (const repo of [a, b]) {
        assert.deepEqual({ head: repo.head, side: repo.side, root: repo.root, tag: repo.tag }, expected);
      }
      assert.equal(await git(["-C", a.path, "rev-list", "--count", "main"]), "50");
      assert.equal(await git(["-C", a.path, "rev-list", "--count", "side"]), "25");
      assert.equal(await git(["-C", a.path, "symbolic-ref", "HEAD"]), "refs/heads/main");
      assert.equal(await git(["-C", a.path, "cat-file", "-t", expected.tag]), "tag");
      await git(["-C", a.path, "fsck", "--no-progress"]);
      const packs = [...Deno.readDirSync(`${a.path}/objects/pack`)].map((e) => e.name);
      assert.equal(packs.filter((n) => n.endsWith(".pack")).length, 1, "one pack after repack -ad");
      assert.equal(packs.filter((n) => n.endsWith(".bitmap")).length, 1, "with a bitmap");
      // Informational bound (timings are not asserted tightly): a small repository is cheap.
      assert.ok(elapsed < 30_000, `generation took ${elapsed} ms`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("REFERENCE_SPEC describes about 3,000 commits and twenty 10 MiB blobs", () => {
  assert.equal(REFERENCE_SPEC.commits, 3000);
  assert.equal(REFERENCE_SPEC.blobs * REFERENCE_SPEC.blobSize, 200 * 1024 * 1024);
  assert.equal(REFERENCE_SPEC.bitmap, true);
});
