/**
 * What git sees when things go wrong: missing repositories, traversal attempts (refused
 * by the front and by the storage server), authentication, an unreachable storage
 * server, retries, and reconnecting after the storage server restarts.
 */

import assert from "node:assert/strict";
import { generateRepo, SMALL_SPEC } from "../../bench/_reference_repo.ts";
import {
  type FrontLogEntry,
  GitalyClient,
  GitalyUpstream,
  type GitUpstream,
  GrpcClient,
  GrpcError,
  Status,
  StorageServer,
} from "../../mod.ts";
import { noGit } from "../git/_git.ts";
import { git, runGit, serveFront } from "./_harness.ts";
import { startStack, step, TRANSPORTS } from "./_stack.ts";

/** Sends one raw HTTP/1.1 request (the path exactly as given) and returns status and body. */
async function rawGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
    );
    const text = new TextDecoder().decode(new Uint8Array(await new Response(conn.readable).arrayBuffer()));
    const status = Number(text.slice(9, 12));
    return { status, body: text.slice(text.indexOf("\r\n\r\n") + 4) };
  } catch (error) {
    conn.close();
    throw error;
  }
}

const V0_BODY = "0032want 0000000000000000000000000000000000000001\n00000009done\n";

Deno.test({
  name: "front: a missing repository is HTTP 404 and git shows the message, for every transport",
  ignore: noGit,
  async fn(t) {
    const stack = await startStack();
    try {
      for (const transport of TRANSPORTS) {
        await step(t, transport, async () => {
          const base = stack.fronts[transport].url;
          const dir = await stack.scratch("missing");
          const run = await runGit(["clone", `${base}/group/missing.git`, dir]);
          assert.equal(run.code, 128);
          assert.match(run.stderr, /remote: Repository not found: group\/missing\.git/);
          assert.match(run.stderr, /fatal: repository '.*\/group\/missing\.git\/' not found/);
          // The POST goes over the transport itself (sidechannel, V3, PostUploadPack).
          const response = await fetch(`${base}/group/missing.git/git-upload-pack`, {
            method: "POST",
            body: V0_BODY,
            headers: { "content-type": "application/x-git-upload-pack-request" },
          });
          assert.equal(response.status, 404);
          assert.match(await response.text(), /^Repository not found/);
        });
      }
      const failed = stack.rpcs.filter((r) => r.status !== "OK");
      assert.ok(failed.length >= 6 && failed.every((r) => r.status === "NOT_FOUND"));
    } finally {
      await stack.close();
    }
  },
});

Deno.test({
  name: "front: traversal in the URL is refused before any call (raw, encoded, slash-encoded)",
  ignore: noGit,
  async fn(t) {
    const stack = await startStack();
    try {
      const port = stack.fronts.sidechannel.server.addr.port;
      const before = stack.rpcs.length;
      for (
        const path of [
          "/../repo.git",
          "/a/../../etc.git",
          "/%2e%2e/%2e%2e/etc.git",
          "/..%2f..%2fetc.git",
          "/repo.git%2f..%2f..%2frepo.git",
          "/./repo.git",
          "//repo.git",
        ]
      ) {
        await step(t, path, async () => {
          const info = await rawGet(port, `${path}/info/refs?service=git-upload-pack`);
          assert.equal(info.status, 400, path);
          assert.match(info.body, /Cannot serve repository/);
        });
      }
      assert.equal(stack.rpcs.length, before, "the storage server was not called");
      const run = await runGit(["ls-remote", `${stack.fronts.sidechannel.url}/a%2F..%2F..%2Fetc.git`]);
      assert.equal(run.code, 128);
      assert.match(run.stderr, /remote: Cannot serve repository: invalid character in path/);
    } finally {
      await stack.close();
    }
  },
});

Deno.test({
  name: "storage server: refuses traversal itself (direct calls, and a symlink escape through the front)",
  ignore: noGit,
  async fn(t) {
    const stack = await startStack();
    const outside = await Deno.makeTempDir({ prefix: "sidechannel-outside-" });
    try {
      await generateRepo(`${outside}/secret.git`, { ...SMALL_SPEC, commits: 2, blobs: 0 });
      await Deno.symlink(`${outside}/secret.git`, `${stack.root}/escape.git`);
      await step(t, "GitalyClient with ../ and absolute paths → INVALID_ARGUMENT", async () => {
        const grpc = await GrpcClient.connect({ port: stack.server.addr.port });
        try {
          const client = new GitalyClient({ grpc });
          for (const relativePath of ["../secret.git", "a/../../secret.git", `${outside}/secret.git`]) {
            const error = await new Response(
              client.infoRefsUploadPack({ storageName: "default", relativePath }),
            ).text().catch((e) => e);
            assert.ok(error instanceof GrpcError, relativePath);
            assert.equal(error.code, Status.INVALID_ARGUMENT, relativePath);
          }
        } finally {
          await grpc.close();
        }
      });
      for (const transport of TRANSPORTS) {
        await step(t, `a symlink out of the storage, through the front (${transport}) → 400`, async () => {
          const run = await runGit(["ls-remote", `${stack.fronts[transport].url}/escape.git`]);
          assert.equal(run.code, 128);
          assert.match(
            run.stderr,
            /remote: Cannot serve escape\.git: INVALID_ARGUMENT: relative path escapes/,
          );
          assert.match(run.stderr, /returned error: 400/);
          const post = await fetch(`${stack.fronts[transport].url}/escape.git/git-upload-pack`, {
            method: "POST",
            body: V0_BODY,
          });
          assert.equal(post.status, 400);
          await post.body?.cancel();
        });
      }
    } finally {
      await stack.close();
      await Deno.remove(outside, { recursive: true });
    }
  },
});

Deno.test({
  name: "front: a wrong token is 502 with a message; the right one works",
  ignore: noGit,
  async fn() {
    const stack = await startStack({ server: { token: "s3cret" }, upstream: { token: "wrong" } });
    const good = new GitalyUpstream({
      port: stack.server.addr.port,
      v3: { port: stack.server.v3Addr!.port },
      token: "s3cret",
    });
    try {
      for (const transport of TRANSPORTS) {
        const run = await runGit(["ls-remote", `${stack.fronts[transport].url}/repo.git`]);
        assert.equal(run.code, 128, transport);
        assert.match(run.stderr, /remote: The front could not authenticate to the storage server/);
        assert.match(run.stderr, /error: 502/);
        const front = serveFront({ upstream: good, transport });
        try {
          const dir = `${stack.root}/../${crypto.randomUUID()}`;
          await git(["clone", "-q", "--bare", `${front.url}/repo.git`, dir]);
          await Deno.remove(dir, { recursive: true });
        } finally {
          await front.close();
        }
      }
    } finally {
      await good.close();
      await stack.close();
    }
  },
});

Deno.test({
  name: "front: UNAVAILABLE while the storage server is down is retried; after 4 attempts it is 503",
  ignore: noGit,
  async fn() {
    const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "sidechannel-retry-" }));
    await generateRepo(`${root}/repo.git`, { ...SMALL_SPEC, commits: 5 });
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = probe.addr.port;
    probe.close();
    const pool = new GitalyUpstream({ port });
    let server: StorageServer | undefined;
    let failures = 0;
    // The storage server comes up right after the first failed attempt.
    const upstream: GitUpstream = {
      async client(transport, options) {
        try {
          return await pool.client(transport, options);
        } catch (error) {
          failures++;
          if (failures === 1) server = await StorageServer.start({ storages: { default: root }, port });
          throw error;
        }
      },
    };
    const logs: FrontLogEntry[] = [];
    const front = serveFront({ upstream, random: () => 0.1, onLog: (e) => logs.push(e) });
    const down = serveFront({
      upstream: new GitalyUpstream({ port: 1, connectTimeout: 1000 }),
      random: () => 0,
      onLog: (e) => logs.push(e),
    });
    try {
      await git(["clone", "-q", "--bare", `${front.url}/repo.git`, `${root}/clone.git`]);
      assert.equal(failures, 1);
      assert.equal(logs[0]!.attempts, 2);
      assert.ok(logs.every((l) => l.status === 200));

      const run = await runGit(["ls-remote", `${down.url}/repo.git`]);
      assert.equal(run.code, 128);
      assert.match(run.stderr, /remote: The storage server is unavailable/);
      assert.match(run.stderr, /error: 503/);
      assert.equal(logs.at(-1)!.attempts, 4);
    } finally {
      await front.close();
      await down.close();
      await pool.close();
      await server?.shutdown();
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "GitalyUpstream: reconnects (every transport) after the storage server restarts on the same port",
  ignore: noGit,
  async fn() {
    const stack = await startStack();
    let restarted: StorageServer | undefined;
    try {
      const port = stack.server.addr.port;
      const v3Port = stack.server.v3Addr!.port;
      for (const transport of TRANSPORTS) {
        await git(["ls-remote", `${stack.fronts[transport].url}/repo.git`]);
      }
      assert.deepEqual(stack.upstream.stats(), { backchannelConnects: 1, http2Connects: 1, v3Connects: 1 });
      await stack.server.shutdown();
      restarted = await StorageServer.start({ storages: { default: stack.root }, port, v3Port });
      for (const transport of TRANSPORTS) {
        const dir = await stack.scratch(`after-restart-${transport}`);
        await git(["clone", "-q", "--bare", `${stack.fronts[transport].url}/repo.git`, dir]);
      }
      assert.deepEqual(stack.upstream.stats(), { backchannelConnects: 2, http2Connects: 2, v3Connects: 2 });
    } finally {
      await restarted?.shutdown();
      await stack.close();
    }
  },
});
