/**
 * Real `git` against the front, for each transport to the storage server: clone (v0 and
 * v2), fetch of new commits, shallow and partial clones, ls-remote; every clone passes
 * `git fsck`.
 */

import assert from "node:assert/strict";
import { noGit } from "../git/_git.ts";
import { addCommit, git, runGit } from "./_harness.ts";
import { startStack, step, TRANSPORTS } from "./_stack.ts";

const PROTOCOLS = ["0", "2"] as const;

for (const transport of TRANSPORTS) {
  Deno.test({
    name: `front (${transport}): git clone, fetch, shallow, partial and ls-remote with protocol v0 and v2`,
    ignore: noGit,
    async fn(t) {
      const stack = await startStack();
      const url = `${stack.fronts[transport].url}/repo.git`;
      try {
        for (const v of PROTOCOLS) {
          await step(t, `git clone -c protocol.version=${v}, then git fsck`, async () => {
            const dir = await stack.scratch(`clone-v${v}`);
            const before = stack.logs.length;
            await git(["-c", `protocol.version=${v}`, "clone", "-q", url, dir]);
            assert.equal(await git(["-C", dir, "rev-parse", "HEAD"]), stack.repo.head);
            assert.equal(await git(["-C", dir, "rev-parse", "origin/side"]), stack.repo.side);
            assert.equal(await git(["-C", dir, "rev-parse", "v1"]), stack.repo.tag);
            await git(["-C", dir, "fsck", "--full", "--strict", "--no-dangling"]);
            const logs = stack.logs.slice(before);
            assert.ok(logs.every((l) => l.status === 200 && l.outcome === "ok" && l.transport === transport));
            assert.ok(logs.every((l) => l.gitProtocol === (v === "2" ? "version=2" : "")));
            assert.ok(logs.some((l) => l.service === "upload-pack" && l.bytesOut > 10_000));
          });
        }

        for (const v of PROTOCOLS) {
          await step(t, `git fetch -c protocol.version=${v} gets new commits`, async () => {
            const dir = await stack.scratch(`fetch-v${v}`);
            await git(["-c", `protocol.version=${v}`, "clone", "-q", "--bare", url, dir]);
            const head = await addCommit(stack.repo.path, `new-${transport}-v${v}.txt`, `content ${v}\n`);
            const second = await addCommit(stack.repo.path, `more-${transport}-v${v}.txt`, "more\n");
            assert.notEqual(head, second);
            await git([
              "-C",
              dir,
              "-c",
              `protocol.version=${v}`,
              "fetch",
              "-q",
              url,
              "+refs/heads/*:refs/heads/*",
            ]);
            assert.equal(await git(["-C", dir, "rev-parse", "refs/heads/main"]), second);
            assert.equal(
              await git(["-C", dir, "cat-file", "-p", `${second}:more-${transport}-v${v}.txt`]),
              "more",
            );
            await git(["-C", dir, "fsck", "--strict", "--no-dangling"]);
          });
        }

        for (const v of PROTOCOLS) {
          await step(t, `git clone --depth 1 (v${v}) is shallow and consistent`, async () => {
            const dir = await stack.scratch(`shallow-v${v}`);
            await git(["-c", `protocol.version=${v}`, "clone", "-q", "--depth", "1", url, dir]);
            assert.equal(await git(["-C", dir, "rev-list", "--count", "HEAD"]), "1");
            assert.equal(await git(["-C", dir, "rev-parse", "--is-shallow-repository"]), "true");
            await git(["-C", dir, "fsck", "--no-dangling"]);
            // Deepening goes through the front again.
            await git(["-C", dir, "-c", `protocol.version=${v}`, "fetch", "-q", "--deepen", "2"]);
            assert.equal(await git(["-C", dir, "rev-list", "--count", "HEAD"]), "3");
          });
        }

        for (const v of PROTOCOLS) {
          await step(
            t,
            `git clone --filter=blob:none (v${v}) is partial; missing blobs come lazily`,
            async () => {
              const dir = await stack.scratch(`partial-v${v}`);
              await git([
                "-c",
                `protocol.version=${v}`,
                "clone",
                "-q",
                "--filter=blob:none",
                "--no-checkout",
                url,
                dir,
              ]);
              assert.equal(await git(["-C", dir, "config", "remote.origin.promisor"]), "true");
              const missing = (await git(["-C", dir, "rev-list", "--objects", "--missing=print", "--all"]))
                .split("\n").filter((l) => l.startsWith("?"));
              assert.ok(missing.length > 10, `blobs left out (${missing.length})`);
              // Checking out fetches the blobs it needs through the front (a second upload-pack).
              await git(["-C", dir, "-c", `protocol.version=${v}`, "checkout", "-q", "main"]);
              await git(["-C", dir, "fsck", "--no-dangling"]);
              const after = (await git(["-C", dir, "rev-list", "--objects", "--missing=print", "--all"]))
                .split("\n").filter((l) => l.startsWith("?"));
              assert.ok(after.length < missing.length);
            },
          );
        }

        for (const v of PROTOCOLS) {
          await step(t, `git ls-remote (v${v}) lists branches and tags`, async () => {
            const run = await runGit(["-c", `protocol.version=${v}`, "ls-remote", url]);
            assert.equal(run.code, 0, run.stderr);
            const refs = new Map(
              run.stdout.trim().split("\n").map((l) => l.split("\t").reverse() as [string, string]),
            );
            assert.equal(
              refs.get("refs/heads/main"),
              await git(["-C", stack.repo.path, "rev-parse", "main"]),
            );
            assert.equal(refs.get("refs/heads/side"), stack.repo.side);
            assert.equal(refs.get("refs/tags/v1"), stack.repo.tag);
            assert.equal(refs.get("refs/tags/v1^{}"), stack.repo.side);
          });
        }

        await step(t, "every upload-pack RPC used the transport, one connection per kind", () => {
          const methods = new Set(
            stack.rpcs.filter((r) => r.method.includes("UploadPack")).map((r) => r.method),
          );
          const expected = {
            sidechannel: "/gitaly.SmartHTTPService/PostUploadPackWithSidechannel",
            v3: "/gitaly.SmartHTTPService/PostUploadPackV3",
            grpc: "/gitaly.SmartHTTPService/PostUploadPack",
          }[transport];
          assert.ok(methods.has(expected), [...methods].join(", "));
          assert.ok(stack.rpcs.every((r) => r.status === "OK"), "no failed RPC");
          const stats = stack.upstream.stats();
          const connects = stats.backchannelConnects + stats.http2Connects + stats.v3Connects;
          assert.equal(connects, 1, JSON.stringify(stats));
          return Promise.resolve();
        });
      } finally {
        await stack.close();
      }
    },
  });
}
