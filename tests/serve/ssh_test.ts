/**
 * The SSH-style entry (`src/serve/ssh_entry.ts`) as git's transport, through
 * `GIT_SSH_COMMAND` and the `ext::` remote helper, calling
 * `SSHUploadPackWithSidechannel` on a storage server.
 */

import assert from "node:assert/strict";
import { generateRepo, SMALL_SPEC } from "../../bench/_reference_repo.ts";
import { type StorageLogEntry, StorageServer } from "../../mod.ts";
import { noGit } from "../git/_git.ts";
import { addCommit, git, runGit } from "./_harness.ts";
import { step } from "./_stack.ts";

const ENTRY = new URL("../../src/serve/ssh_entry.ts", import.meta.url).pathname;

Deno.test({
  name:
    "ssh entry: git clone and fetch over GIT_SSH_COMMAND (v0, v2) and ext::; errors exit 128 with a message",
  ignore: noGit,
  async fn(t) {
    const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "sidechannel-ssh-" }));
    const repo = await generateRepo(`${root}/storage/repo.git`, SMALL_SPEC);
    const rpcs: StorageLogEntry[] = [];
    const server = await StorageServer.start({
      storages: { default: `${root}/storage` },
      token: "ssh-secret",
      onLog: (e) => rpcs.push(e),
    });
    const command = `${Deno.execPath()} run -A ${ENTRY} --upstream 127.0.0.1:${server.addr.port}`;
    const env = { GIT_SSH_COMMAND: command, SIDECHANNEL_TOKEN: "ssh-secret" };
    try {
      for (const v of ["0", "2"]) {
        await step(t, `GIT_SSH_COMMAND clone -c protocol.version=${v}, fsck, then fetch`, async () => {
          const dir = `${root}/ssh-v${v}`;
          const clone = await runGit([
            "-c",
            `protocol.version=${v}`,
            "clone",
            "-q",
            "ssh://git@localhost/repo.git",
            dir,
          ], {
            env: { ...env, GIT_TRACE_PACKET: "1" },
          });
          assert.equal(clone.code, 0, clone.stderr);
          // Protocol v2 reached the server (GIT_PROTOCOL through the entry to git_protocol).
          assert.equal(clone.stderr.includes("clone< version 2"), v === "2");
          assert.equal(
            await git(["-C", dir, "rev-parse", "HEAD"]),
            await git(["-C", repo.path, "rev-parse", "main"]),
          );
          await git(["-C", dir, "fsck", "--strict", "--no-dangling"]);
          const head = await addCommit(repo.path, `ssh-${v}.txt`, "over ssh\n");
          await git(["-C", dir, "-c", `protocol.version=${v}`, "pull", "-q", "--ff-only"], { env });
          assert.equal(await git(["-C", dir, "rev-parse", "HEAD"]), head);
          assert.equal(await git(["-C", dir, "show", `HEAD:ssh-${v}.txt`]), "over ssh");
        });
      }
      await step(t, "scp-like and ~/ paths", async () => {
        const dir = `${root}/scp`;
        await git(["clone", "-q", "--bare", "git@localhost:repo.git", dir], { env });
        assert.equal(await git(["-C", dir, "rev-parse", "side"]), repo.side);
      });
      await step(t, "ext:: remote helper", async () => {
        const dir = `${root}/ext`;
        const url = `ext::${command} %S repo.git`;
        await git(["-c", "protocol.ext.allow=always", "clone", "-q", url, dir], { env });
        await git(["-C", dir, "fsck", "--no-dangling"]);
      });
      await step(t, "a missing repository: exit 128 with the reason", async () => {
        const run = await runGit(["clone", "ssh://git@localhost/missing.git", `${root}/missing`], { env });
        assert.equal(run.code, 128);
        assert.match(run.stderr, /fatal: Repository not found: missing\.git/);
        assert.match(run.stderr, /fatal: Could not read from remote repository/);
      });
      await step(t, "traversal and push are refused without calling upstream", async () => {
        const before = rpcs.length;
        const escape = await runGit(["ls-remote", "ssh://git@localhost/../../etc/x.git"], { env });
        assert.equal(escape.code, 128);
        assert.match(escape.stderr, /fatal: Cannot serve repository: path escapes the storage/);
        const push = await runGit(["-C", `${root}/ssh-v0`, "push", "origin", "HEAD:refs/heads/other"], {
          env,
        });
        assert.notEqual(push.code, 0);
        assert.match(push.stderr, /only git-upload-pack is supported/);
        assert.equal(rpcs.length, before);
      });
      await step(t, "without the token: UNAUTHENTICATED reaches the user", async () => {
        const run = await runGit(["ls-remote", "ssh://git@localhost/repo.git"], {
          env: { GIT_SSH_COMMAND: command },
        });
        assert.equal(run.code, 128);
        assert.match(run.stderr, /fatal: The front could not authenticate to the storage server/);
      });
      const used = rpcs.filter((r) => r.status === "OK").map((r) => r.method);
      assert.ok(
        used.length >= 6 && used.every((m) => m === "/gitaly.SSHService/SSHUploadPackWithSidechannel"),
      );
    } finally {
      await server.shutdown();
      await Deno.remove(root, { recursive: true });
    }
  },
});
