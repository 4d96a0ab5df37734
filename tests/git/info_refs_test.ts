import assert from "node:assert/strict";
import {
  GrpcError,
  infoRefsUploadPack,
  parseConfigOptions,
  Status,
  UPLOAD_PACK_SERVICE_HEADER,
} from "../../mod.ts";
import { concat } from "../_util.ts";
import { drain, makeStorage, noGit, pktText, splitPkts, type TestStorage } from "./_git.ts";

const dec = new TextDecoder();

function test(name: string, fn: (s: TestStorage) => Promise<void>): void {
  Deno.test({
    name,
    ignore: noGit,
    async fn() {
      const s = await makeStorage();
      try {
        await fn(s);
      } finally {
        await s.cleanup();
      }
    },
  });
}

Deno.test("UPLOAD_PACK_SERVICE_HEADER is the smart-HTTP service announcement and a flush", () => {
  assert.equal(dec.decode(UPLOAD_PACK_SERVICE_HEADER), "001e# service=git-upload-pack\n0000");
});

test("infoRefsUploadPack() streams the service header, then git's v0 advertisement byte for byte", async (s) => {
  const out = await drain(infoRefsUploadPack(s.repo.path));
  const direct = await new Deno.Command("git", {
    args: ["upload-pack", "--stateless-rpc", "--advertise-refs", s.repo.path],
    env: { GIT_CONFIG_GLOBAL: "/dev/null", GIT_CONFIG_SYSTEM: "/dev/null" },
  }).output();
  assert.deepEqual(out, concat([UPLOAD_PACK_SERVICE_HEADER, direct.stdout]));
  const packets = splitPkts(out);
  assert.equal(pktText(packets[0]!), "# service=git-upload-pack\n");
  assert.equal(packets[1]!.kind, "flush");
  assert.ok(pktText(packets[2]!).startsWith(`${s.repo.head} HEAD\0`));
  assert.equal(packets.at(-1)!.kind, "flush");
});

test("infoRefsUploadPack() with version=2 streams the header, then the v2 capability advertisement", async (s) => {
  const out = await drain(infoRefsUploadPack(s.repo.path, { gitProtocol: "version=2" }));
  const lines = splitPkts(out).map((p) => p.kind === "data" ? pktText(p) : p.kind);
  assert.deepEqual(lines.slice(0, 3), ["# service=git-upload-pack\n", "flush", "version 2\n"]);
  assert.ok(lines.includes("ls-refs=unborn\n") || lines.includes("ls-refs\n"), lines.join(""));
  assert.ok(lines.some((l) => l.startsWith("fetch=")));
  assert.equal(lines.at(-1), "flush");
  // Per-request config reaches git: allowFilter adds the filter feature to fetch.
  const filtered = dec.decode(
    await drain(infoRefsUploadPack(s.repo.path, {
      gitProtocol: "version=2",
      config: parseConfigOptions(["uploadpack.allowFilter=true"]),
    })),
  );
  assert.match(filtered, /fetch=[^\n]*filter/);
});

test("infoRefsUploadPack() serves readers with tiny BYOB buffers (the header split across reads)", async (s) => {
  const reader = infoRefsUploadPack(s.repo.path).getReader({ mode: "byob" });
  const parts: Uint8Array[] = [];
  while (true) {
    const { value, done } = await reader.read(new Uint8Array(7));
    if (done) break;
    assert.ok(value.byteLength <= 7);
    parts.push(value.slice());
  }
  const whole = await drain(infoRefsUploadPack(s.repo.path));
  assert.deepEqual(concat(parts), whole);
});

test("infoRefsUploadPack() errors with Gitaly's INTERNAL statuses when git fails or cannot start", async (s) => {
  const notRepo = await Deno.makeTempDir({ prefix: "sidechannel-not-repo-" });
  try {
    const error = await drain(infoRefsUploadPack(notRepo)).then(
      () => assert.fail("expected an error"),
      (e) => e,
    );
    assert.ok(error instanceof GrpcError);
    assert.equal(error.code, Status.INTERNAL);
    assert.equal(error.details, "wait: exit status 128");
  } finally {
    await Deno.remove(notRepo);
  }
  const spawn = await drain(infoRefsUploadPack(s.repo.path, { gitBinary: "/nonexistent/git" })).then(
    () => assert.fail("expected an error"),
    (e) => e,
  );
  assert.ok(spawn instanceof GrpcError);
  assert.equal(spawn.code, Status.INTERNAL);
  assert.match(spawn.details, /^cmd: /);
  const badKey = await drain(infoRefsUploadPack(s.repo.path, { config: [{ key: "core", value: "x" }] })).then(
    () => assert.fail("expected an error"),
    (e) => e,
  );
  assert.equal(badKey.code, Status.INTERNAL);
  assert.match(badKey.details, /^cmd: invalid configuration key "core"/);
});

test("infoRefsUploadPack() aborted through its signal errors with CANCELLED; cancelling it stops git", async (s) => {
  const controller = new AbortController();
  const stream = infoRefsUploadPack(s.repo.path, { signal: controller.signal });
  controller.abort();
  // Aborted before its output was read: git is stopped, the stream errors with CANCELLED.
  const error = await drain(stream).then(() => "no error", (e) => e);
  assert.ok(error instanceof GrpcError && error.code === Status.CANCELLED, String(error));

  const cancelled = infoRefsUploadPack(s.repo.path);
  const reader = cancelled.getReader();
  await reader.read();
  await reader.cancel(new Error("client went away"));
});
