/**
 * Gitaly's RPC-level smart-HTTP cases (`internal/gitaly/service/smarthttp/upload_pack_test.go`,
 * and the V3 proof of concept's copies), ported by name, for each transport:
 * `sidechannel` (PostUploadPackWithSidechannel), `v3` (PostUploadPackV3) and `grpc`
 * (PostUploadPack), through a StorageServer and the GitalyClient.
 */

import assert from "node:assert/strict";
import { GrpcError, Status } from "../../mod.ts";
import { text } from "../_util.ts";
import { demux, git, pkts, pktText, splitPkts, verifyPack } from "./_git.ts";
import { fetchWith, type Rig, rigTest, TRANSPORTS } from "./_gitaly.ts";

/** The capabilities of Gitaly's test client (`clientCapabilities`). */
const GITALY_CAPS =
  "multi_ack_detailed no-done side-band-64k thin-pack include-tag ofs-delta deepen-since deepen-not filter agent=git/2.18.0";

/** The pack in a v0 response with sideband (after the negotiation lines). */
function packOf(bytes: Uint8Array): Uint8Array {
  const packets = splitPkts(bytes);
  const first = packets.findIndex((p) => p.kind === "data" && p.payload[0] === 1);
  assert.ok(first >= 0, "the response has sideband data");
  const { pack, error } = demux(packets.slice(first));
  assert.equal(error, "");
  return pack;
}

function assertOk(result: { error: GrpcError | undefined; bodyError: unknown }): void {
  assert.equal(result.error, undefined, `RPC failed: ${result.error?.code} ${result.error?.details}`);
  assert.equal(result.bodyError, undefined);
}

function assertCode(result: { error: GrpcError | undefined; bodyError: unknown }, code: Status): GrpcError {
  assert.ok(result.error instanceof GrpcError, "the RPC failed");
  assert.equal(result.error.code, code, result.error.details);
  assert.ok(result.bodyError instanceof GrpcError, "the body errors too");
  assert.equal(result.bodyError.code, code);
  return result.error;
}

/** A bare clone of `ref` of the storage's repository, to index a thin pack against. */
async function baseClone(rig: Rig, branch: string): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "sidechannel-base-" });
  await git([
    "clone",
    "-q",
    "--bare",
    "--no-local",
    "--single-branch",
    "--branch",
    branch,
    rig.s.repo.path,
    dir,
  ]);
  return { dir, cleanup: () => Deno.remove(dir, { recursive: true }) };
}

for (const { transport, main, prefix } of TRANSPORTS) {
  const name = (suffix: string) => `${suffix === "" ? main : prefix + suffix} (${transport})`;

  rigTest(
    `${name("")}: want + have, the thin pack indexes on top of the have and fsck passes`,
    async (rig) => {
      const { head, side } = rig.s.repo;
      const request = pkts(`want ${head} ${GITALY_CAPS}\n`, "0000", `have ${side}\n`, "0000");
      const result = await fetchWith(rig, request, { transport });
      assertOk(result);
      const lines = splitPkts(result.bytes).filter((p) =>
        p.kind === "data" && p.payload[0] !== 1 && p.payload[0] !== 2
      )
        .map((p) => pktText(p));
      assert.deepEqual(lines, [`ACK ${side} common\n`, `ACK ${side} ready\n`, "NAK\n", `ACK ${side}\n`]);
      const base = await baseClone(rig, "side");
      try {
        const pack = packOf(result.bytes);
        await git(["-C", base.dir, "index-pack", "--stdin", "--fix-thin"], { stdin: pack });
        await git(["-C", base.dir, "update-ref", "refs/heads/main", head]);
        await git(["-C", base.dir, "fsck", "--no-dangling", "--no-progress"]);
        assert.equal(await git(["-C", base.dir, "rev-list", "--count", `${side}..${head}`]), "25");
      } finally {
        await base.cleanup();
      }
      if (transport === "sidechannel") {
        assert.equal(result.stats?.wants, 1);
        assert.equal(result.stats?.haves, 1);
        assert.equal(result.stats?.packets, 4);
      } else {
        assert.equal(result.stats, null);
      }
      const entry = rig.log.at(-1)!;
      assert.equal(entry.status, "OK");
      assert.equal(entry.transport, transport);
      assert.equal(entry.bytesIn, request.byteLength);
      assert.equal(entry.bytesOut, result.bytes.byteLength);
      assert.deepEqual(entry.repository, { storageName: "default", relativePath: "repo.git" });
    },
  );

  rigTest(
    `${name("_gitConfigOptions")}: uploadpack.hideRefs hides a ref (FAILED_PRECONDITION, ERR packet)`,
    async (rig) => {
      const { head } = rig.s.repo;
      const path = rig.s.repo.path;
      const tree = await git(["-C", path, "rev-parse", `${head}^{tree}`]);
      const hidden = await git(
        [
          "-C",
          path,
          "-c",
          "user.name=t",
          "-c",
          "user.email=t@t",
          "commit-tree",
          "-p",
          head,
          "-m",
          "hidden",
          tree,
        ],
      );
      await git(["-C", path, "update-ref", "refs/hidden/csv", hidden]);
      const request = pkts(`want ${hidden} ${GITALY_CAPS}\n`, "0000", `have ${head}\n`, "0000");

      // Sanity check: the ref exists and can be fetched (the pack holds just the commit).
      const sane = await fetchWith(rig, request, { transport });
      assertOk(sane);
      const pack = packOf(sane.bytes);
      assert.equal(new DataView(pack.buffer, pack.byteOffset).getUint32(8), 1, "one object in the pack");

      // With the request's config the ref is hidden (and the server default allowAnySHA1InWant=true is overridden).
      const failed = await fetchWith(rig, request, {
        transport,
        gitConfigOptions: ["uploadpack.hideRefs=refs/hidden", "uploadpack.allowAnySHA1InWant=false"],
      });
      const error = assertCode(failed, Status.FAILED_PRECONDITION);
      assert.equal(error.details, "running upload-pack: waiting for upload-pack: exit status 128");
      assert.equal(text(failed.bytes), text(pkts(`ERR upload-pack: not our ref ${hidden}`)));
    },
  );

  rigTest(
    `${name("_gitProtocol")}: git_protocol version=2 reaches git (ls-refs works only in v2)`,
    async (rig) => {
      const request = pkts(
        "command=ls-refs\n",
        "object-format=sha1\n",
        "0001",
        "peel\n",
        "symrefs\n",
        "0000",
      );
      const v2 = await fetchWith(rig, request, { transport, gitProtocol: "version=2" });
      assertOk(v2);
      const refs = splitPkts(v2.bytes).filter((p) => p.kind === "data").map((p) => pktText(p));
      assert.ok(refs.includes(`${rig.s.repo.head} HEAD symref-target:refs/heads/main\n`), refs.join(""));
      assert.ok(refs.includes(`${rig.s.repo.head} refs/heads/main\n`));
      // Without it git speaks v0 and refuses the command.
      const v0 = await fetchWith(rig, request, { transport });
      assertCode(v0, Status.FAILED_PRECONDITION);
    },
  );

  rigTest(
    `${name("_suppressDeepenExitError")}: a deepen request's non-zero exit is a success`,
    async (rig) => {
      const { head } = rig.s.repo;
      const result = await fetchWith(rig, pkts(`want ${head} ${GITALY_CAPS}\n`, "deepen 1", "0000"), {
        transport,
      });
      assertOk(result);
      assert.equal(text(result.bytes), text(pkts(`shallow ${head}`)) + "0000");
      if (transport === "sidechannel") assert.equal(result.stats?.deepen, "deepen 1");
    },
  );

  rigTest(`${name("_validation")}: nonexistent storage, unset repository → INVALID_ARGUMENT`, async (rig) => {
    const cases = [
      { repo: { storageName: "fake", relativePath: "path" }, code: Status.INVALID_ARGUMENT },
      { repo: { storageName: "", relativePath: "" }, code: Status.INVALID_ARGUMENT },
      { repo: { storageName: "default", relativePath: "" }, code: Status.INVALID_ARGUMENT },
      { repo: { storageName: "default", relativePath: "../escape" }, code: Status.INVALID_ARGUMENT },
      { repo: { storageName: "default", relativePath: "missing.git" }, code: Status.NOT_FOUND },
    ];
    for (const c of cases) {
      const result = await fetchWith(rig, new Uint8Array(0), { transport }, c.repo);
      assertCode(result, c.code);
      assert.equal(result.bytes.byteLength, 0);
    }
    const badConfig = await fetchWith(rig, new Uint8Array(0), { transport, gitConfigOptions: ["no-equals"] });
    assert.equal(
      assertCode(badConfig, Status.INVALID_ARGUMENT).details,
      'cannot convert invalid config key: "no-equals"',
    );
    // The sidechannel was never opened: no waiter is left behind.
    assert.equal(rig.registry.waiting, 0);
    assert.ok(rig.log.every((e) => e.transport === transport && e.code !== Status.OK));
  });

  rigTest(`${name("_partialClone")}: filter blob:limit leaves the large blobs out`, async (rig) => {
    const { head, path } = rig.s.repo;
    const objects = await git([
      "-C",
      path,
      "cat-file",
      "--batch-all-objects",
      "--batch-check=%(objecttype) %(objectname) %(objectsize)",
    ]);
    const blobs = objects.split("\n").map((l) => l.split(" ")).filter(([type]) => type === "blob");
    const small = blobs.filter(([, , size]) => Number(size) <= 1000).map(([, oid]) => oid!);
    const large = blobs.filter(([, , size]) => Number(size) > 1000).map(([, oid]) => oid!);
    assert.ok(small.length > 0 && large.length === 3);
    const request = pkts(
      `want ${head} ${GITALY_CAPS}\n`,
      "filter blob:limit=1000\n",
      "0000",
      "done\n",
      "0000",
    );
    const result = await fetchWith(rig, request, { transport });
    assertOk(result);
    const dir = await Deno.makeTempDir({ prefix: "sidechannel-partial-" });
    try {
      await git(["init", "-q", "--bare", dir]);
      await git(["-C", dir, "index-pack", "--stdin"], { stdin: packOf(result.bytes) });
      const have = new Set(
        (await git(["-C", dir, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)"])).split(
          "\n",
        ),
      );
      assert.ok(small.every((oid) => have.has(oid)), "every small blob was sent");
      assert.ok(large.every((oid) => !have.has(oid)), "no large blob was sent");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    if (transport === "sidechannel") assert.equal(result.stats?.filter, "blob:limit=1000");
  });

  rigTest(
    `${name("_allowAnySHA1InWant")}: an unreferenced commit can be fetched (server default)`,
    async (rig) => {
      const { head, path } = rig.s.repo;
      const tree = await git(["-C", path, "rev-parse", `${head}^{tree}`]);
      const dangling = await git(
        [
          "-C",
          path,
          "-c",
          "user.name=t",
          "-c",
          "user.email=t@t",
          "commit-tree",
          "-p",
          head,
          "-m",
          "dangling",
          tree,
        ],
      );
      const request = pkts(`want ${dangling} ${GITALY_CAPS}\n`, "0000", "done\n", "0000");
      const result = await fetchWith(rig, request, { transport });
      assertOk(result);
      const verified = await verifyPack(packOf(result.bytes), { "refs/heads/x": dangling });
      try {
        assert.equal(await git(["-C", verified.dir, "rev-list", "--count", "x"]), "51");
      } finally {
        await verified.cleanup();
      }
    },
  );

  rigTest(
    `Praefect's 0008NAK vector (${transport}): want + flush + done without newline → NAK, then a pack index-pack accepts`,
    async (rig) => {
      const { head } = rig.s.repo;
      const result = await fetchWith(rig, pkts(`want ${head} ofs-delta\n`, "0000", "done"), { transport });
      assertOk(result);
      assert.equal(text(result.bytes.subarray(0, 8)), "0008NAK\n");
      const verified = await verifyPack(result.bytes.subarray(8), { "refs/heads/main": head });
      try {
        assert.equal(await git(["-C", verified.dir, "rev-list", "--count", "main"]), "50");
      } finally {
        await verified.cleanup();
      }
    },
  );
}
