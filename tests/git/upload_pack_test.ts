import assert from "node:assert/strict";
import {
  type ByteWriter,
  GrpcError,
  parseConfigOptions,
  postUploadPackError,
  spawnUploadPack,
  sshUploadPackError,
  Status,
  type UploadPackOptions,
  type UploadPackResult,
} from "../../mod.ts";
import { concat } from "../_util.ts";
import {
  demux,
  drain,
  git,
  makeStorage,
  noGit,
  pkts,
  pktText,
  splitPkts,
  type TestStorage,
  v0Request,
  v2FetchRequest,
  verifyPack,
} from "./_git.ts";

const dec = new TextDecoder();

/** Runs upload-pack to completion, collecting stdout. */
async function run(repoPath: string, options: UploadPackOptions = {}): Promise<{
  out: Uint8Array;
  result: UploadPackResult;
}> {
  const uploadPack = spawnUploadPack(repoPath, options);
  const out = await drain(uploadPack.stdout);
  return { out, result: await uploadPack.result };
}

/** Fails the test for anything but a clean success. */
function assertSuccess(result: UploadPackResult): void {
  assert.equal(result.failure, null, `failure: ${JSON.stringify(result.failure)}`);
  assert.equal(
    result.status?.success,
    true,
    `status ${JSON.stringify(result.status)}: ${dec.decode(result.stderr)}`,
  );
  assert.equal(postUploadPackError(result), undefined);
}

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

test("spawnUploadPack() advertises refs exactly as git does (v0, --advertise-refs)", async (s) => {
  const { out, result } = await run(s.repo.path, { advertiseRefs: true });
  assertSuccess(result);
  const direct = await new Deno.Command("git", {
    args: ["upload-pack", "--stateless-rpc", "--advertise-refs", s.repo.path],
    env: { GIT_CONFIG_GLOBAL: "/dev/null", GIT_CONFIG_SYSTEM: "/dev/null" },
  }).output();
  assert.deepEqual(out, direct.stdout);
  const lines = splitPkts(out);
  assert.equal(lines.at(-1)!.kind, "flush");
  const first = pktText(lines[0]!);
  assert.ok(first.startsWith(`${s.repo.head} HEAD\0`), first);
  assert.match(first, /multi_ack_detailed/);
  assert.match(first, /symref=HEAD:refs\/heads\/main/);
  const refs = lines.slice(1, -1).map((p) => pktText(p).trimEnd());
  assert.deepEqual(refs, [
    `${s.repo.head} refs/heads/main`,
    `${s.repo.side} refs/heads/side`,
    `${s.repo.tag} refs/tags/v1`,
    `${s.repo.side} refs/tags/v1^{}`,
  ]);
  assert.equal(result.stdoutLength, out.byteLength);
  assert.equal(result.stdinLength, 0);
});

test("spawnUploadPack() serves a full protocol v0 fetch whose pack passes index-pack --fix-thin and fsck", async (s) => {
  const request = v0Request([s.repo.head, s.repo.side]);
  const { out, result } = await run(s.repo.path, { stdin: request });
  assertSuccess(result);
  const packets = splitPkts(out);
  assert.equal(pktText(packets[0]!), "NAK\n");
  assert.equal(packets.at(-1)!.kind, "flush");
  const { pack, error } = demux(packets.slice(1));
  assert.equal(error, "");
  const verified = await verifyPack(pack, { "refs/heads/main": s.repo.head, "refs/heads/side": s.repo.side });
  try {
    assert.equal(await git(["-C", verified.dir, "rev-list", "--count", "main"]), "50");
    const types = Object.fromEntries(verified.objects.map((o) => [o.type, o.count]));
    assert.equal(types.commit, 50);
    assert.ok(types.blob! > 3 && types.tree! > 50, JSON.stringify(types));
    assert.equal(types.tag, 1, "include-tag adds v1, which points at a sent commit");
  } finally {
    await verified.cleanup();
  }
  assert.equal(result.stdinLength, request.byteLength);
  assert.equal(result.stdoutLength, out.byteLength);
  assert.equal(result.negotiation.wants, 2);
  assert.equal(result.negotiation.packets, 3);
  assert.equal(result.negotiation.error, null);
});

test("spawnUploadPack() serves a full protocol v2 fetch (GIT_PROTOCOL=version=2)", async (s) => {
  const request = v2FetchRequest([
    "thin-pack\n",
    "ofs-delta\n",
    "include-tag\n",
    `want ${s.repo.head}\n`,
    "done\n",
  ]);
  const { out, result } = await run(s.repo.path, { stdin: request, gitProtocol: "version=2" });
  assertSuccess(result);
  const packets = splitPkts(out);
  assert.equal(pktText(packets[0]!), "packfile\n");
  assert.equal(packets.at(-1)!.kind, "flush");
  const { pack } = demux(packets.slice(1));
  const verified = await verifyPack(pack, { "refs/heads/main": s.repo.head, "refs/tags/v1": s.repo.tag });
  try {
    assert.equal(await git(["-C", verified.dir, "rev-list", "--count", "main"]), "50");
    assert.ok(verified.objects.some((o) => o.type === "tag"), "include-tag sent the annotated tag");
  } finally {
    await verified.cleanup();
  }
  assert.equal(result.negotiation.command, "fetch");
  assert.equal(result.negotiation.wants, 1);
  assert.equal(result.negotiation.packets, 8);
});

test("spawnUploadPack() serves an incremental v0 fetch as a thin pack completed by --fix-thin", async (s) => {
  const dir = await Deno.makeTempDir({ prefix: "sidechannel-incremental-" });
  try {
    const local = `${dir}/local.git`;
    await git(["clone", "-q", "--bare", "--single-branch", "--branch=side", `file://${s.repo.path}`, local]);
    const request = v0Request([s.repo.head], { haves: [s.repo.side] });
    const { out, result } = await run(s.repo.path, { stdin: request });
    assertSuccess(result);
    const packets = splitPkts(out);
    assert.equal(pktText(packets[0]!), `ACK ${s.repo.side} common\n`);
    const { pack } = demux(packets);
    assert.equal(dec.decode(pack.subarray(0, 4)), "PACK");
    await git(["-C", local, "index-pack", "--stdin", "--fix-thin"], { stdin: pack });
    await git(["-C", local, "update-ref", "refs/heads/main", s.repo.head]);
    await git(["-C", local, "fsck", "--no-dangling", "--no-progress"]);
    assert.equal(await git(["-C", local, "rev-list", "--count", "main"]), "50");
    assert.equal(result.negotiation.haves, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("spawnUploadPack() shallow requests: a non-zero exit after a deepen line is success (Gitaly's deepen exemption)", async (s) => {
  // Gitaly's TestServer_PostUploadPackWithSidechannel_suppressDeepenExitError request: the
  // response is the shallow lines and a flush. (Gitaly's git exits non-zero here; git 2.39
  // exits 0 when the request ends right after the flush.)
  const want = `want ${s.repo.head} multi_ack_detailed no-done side-band-64k thin-pack ofs-delta\n`;
  const gitaly = await run(s.repo.path, { stdin: pkts(want, "deepen 1", "0000") });
  assert.equal(dec.decode(gitaly.out), dec.decode(pkts(`shallow ${s.repo.head}`)) + "0000");
  assert.equal(postUploadPackError(gitaly.result), undefined);
  assert.equal(gitaly.result.negotiation.deepen, "deepen 1");

  // A stateless shallow round that ends inside the negotiation (haves without flush): git
  // dies with "the remote end hung up unexpectedly" and exit 128, which the deepen line excuses.
  const shallow = await run(s.repo.path, { stdin: pkts(want, "deepen 1", "0000", `have ${s.repo.side}\n`) });
  assert.equal(shallow.result.failure, null);
  assert.equal(shallow.result.status?.code, 128);
  assert.equal(dec.decode(shallow.result.stderr), "fatal: the remote end hung up unexpectedly\n");
  assert.ok(dec.decode(shallow.out).startsWith(dec.decode(pkts(`shallow ${s.repo.head}`)) + "0000"));
  assert.equal(postUploadPackError(shallow.result), undefined);

  // The same exit without a deepen line is an error.
  const deep = await run(s.repo.path, { stdin: pkts(want, "0000", `have ${s.repo.side}\n`) });
  assert.equal(deep.result.status?.code, 128);
  const error = postUploadPackError(deep.result);
  assert.ok(error instanceof GrpcError);
  assert.equal(error.code, Status.FAILED_PRECONDITION);
  assert.equal(error.details, "running upload-pack: waiting for upload-pack: exit status 128");

  // A deepen line in a request that fails to parse earns no exemption (Gitaly then has empty stats).
  const broken = await run(s.repo.path, { stdin: pkts(want, "deepen 1", "0000", "have\n") });
  assert.ok(broken.result.negotiation.error !== null);
  assert.equal(broken.result.status?.success, false);
  assert.equal(postUploadPackError(broken.result)?.code, Status.FAILED_PRECONDITION);

  // A missing object fails with git's ERR packet.
  const missing = await run(s.repo.path, { stdin: v0Request(["1".repeat(40)]) });
  assert.equal(postUploadPackError(missing.result)?.code, Status.FAILED_PRECONDITION);
  assert.match(dec.decode(missing.out), /ERR upload-pack: not our ref 1{40}/);
});

test("spawnUploadPack() serves a shallow v2 fetch (deepen 1 with done) whose pack fscks as shallow", async (s) => {
  const request = v2FetchRequest(["ofs-delta\n", `want ${s.repo.head}\n`, "deepen 1\n", "done\n"]);
  const { out, result } = await run(s.repo.path, { stdin: request, gitProtocol: "version=2" });
  assertSuccess(result);
  const packets = splitPkts(out);
  const texts = packets.map((p) => p.kind === "data" ? pktText(p) : p.kind);
  assert.deepEqual(texts.slice(0, 4), ["shallow-info\n", `shallow ${s.repo.head}`, "delim", "packfile\n"]);
  const { pack } = demux(packets.slice(4));
  const verified = await verifyPack(pack, { "refs/heads/main": s.repo.head }, { shallow: [s.repo.head] });
  try {
    assert.equal(Object.fromEntries(verified.objects.map((o) => [o.type, o.count])).commit, 1);
  } finally {
    await verified.cleanup();
  }
  assert.equal(result.negotiation.deepen, "deepen 1");
});

test("spawnUploadPack() serves a partial clone (filter blob:none) when uploadpack.allowFilter is set", async (s) => {
  const request = v2FetchRequest(["ofs-delta\n", `want ${s.repo.head}\n`, "filter blob:none\n", "done\n"]);
  const { out, result } = await run(s.repo.path, {
    stdin: request,
    gitProtocol: "version=2",
    config: parseConfigOptions(["uploadpack.allowFilter=true"]),
  });
  assertSuccess(result);
  const packets = splitPkts(out);
  assert.equal(pktText(packets[0]!), "packfile\n");
  const { pack } = demux(packets.slice(1));
  const dir = await Deno.makeTempDir({ prefix: "sidechannel-partial-" });
  try {
    // A promisor pack may miss blobs: index it in a repository that knows it is partial.
    await git(["init", "-q", "--bare", dir]);
    await git(["-C", dir, "config", "extensions.partialClone", "origin"]);
    await git(["-C", dir, "config", "core.repositoryFormatVersion", "1"]);
    await git(["-C", dir, "index-pack", "--stdin", "--fix-thin", "--promisor"], { stdin: pack });
    const types = await git(["-C", dir, "cat-file", "--batch-all-objects", "--batch-check=%(objecttype)"]);
    assert.ok(!types.split("\n").includes("blob"), "no blobs in a blob:none pack");
    assert.equal(types.split("\n").filter((t) => t === "commit").length, 50);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(result.negotiation.filter, "blob:none");

  // Without the config, git refuses the filter.
  const refused = await run(s.repo.path, { stdin: request, gitProtocol: "version=2" });
  assert.equal(refused.result.status?.success, false);
  assert.equal(
    postUploadPackError(refused.result)?.details,
    "running upload-pack: waiting for upload-pack: exit status 128",
  );
});

test("spawnUploadPack() applies git_config_options: hidden refs fail as in Gitaly's gitConfigOptions test", async (s) => {
  // A commit only reachable from refs/hidden/csv.
  const tree = await git(["-C", s.repo.path, "rev-parse", `${s.repo.head}^{tree}`]);
  const hidden = await git(
    ["-C", s.repo.path, "commit-tree", tree, "-p", s.repo.head, "-m", "hidden commit"],
    {
      env: {
        GIT_AUTHOR_DATE: "1700000000 +0000",
        GIT_COMMITTER_DATE: "1700000000 +0000",
        GIT_AUTHOR_NAME: "a",
        GIT_AUTHOR_EMAIL: "a@example.com",
        GIT_COMMITTER_NAME: "a",
        GIT_COMMITTER_EMAIL: "a@example.com",
      },
    },
  );
  await git(["-C", s.repo.path, "update-ref", "refs/hidden/csv", hidden]);
  const request = concat([
    pkts(
      `want ${hidden} multi_ack_detailed no-done side-band-64k thin-pack include-tag ofs-delta deepen-since deepen-not filter agent=git/2.18.0\n`,
      "0000",
    ),
    pkts(`have ${s.repo.head}\n`, "0000"),
  ]);
  const visible = await run(s.repo.path, { stdin: request });
  assertSuccess(visible.result);
  const pack = demux(splitPkts(visible.out)).pack;
  assert.equal(
    new DataView(pack.buffer, pack.byteOffset).getUint32(8),
    1,
    "the pack holds the hidden commit only",
  );

  const hiddenRun = await run(s.repo.path, {
    stdin: request,
    config: parseConfigOptions(["uploadpack.hideRefs=refs/hidden", "uploadpack.allowAnySHA1InWant=false"]),
  });
  const error = postUploadPackError(hiddenRun.result);
  assert.equal(error?.code, Status.FAILED_PRECONDITION);
  assert.equal(error?.details, "running upload-pack: waiting for upload-pack: exit status 128");
  assert.equal(dec.decode(hiddenRun.out), dec.decode(pkts(`ERR upload-pack: not our ref ${hidden}`)));
});

test("spawnUploadPack() refuses an invalid config key at spawn with Gitaly's message; parseConfigOptions() refuses a missing '='", async (s) => {
  for (
    const [key, reason] of [
      ["core", 'key "core" must contain at least one section'],
      [".core.x", 'key ".core.x" must not start or end with a dot'],
      ["core.", 'key "core." must not start or end with a dot'],
      ["co re.x", 'key "co re.x" failed regexp validation'],
      ["", "not set"],
    ]
  ) {
    const uploadPack = spawnUploadPack(s.repo.path, { config: [{ key: key!, value: "1" }] });
    assert.equal(uploadPack.pid, null);
    assert.deepEqual(await drain(uploadPack.stdout), new Uint8Array(0));
    const result = await uploadPack.result;
    assert.equal(result.failure?.kind, "spawn");
    assert.equal(result.status, null);
    const error = postUploadPackError(result);
    assert.equal(error?.code, Status.FAILED_PRECONDITION);
    assert.equal(
      error?.details,
      `running upload-pack: spawning upload-pack: invalid configuration key ${
        JSON.stringify(key)
      }: key: ${reason}`,
    );
  }
  assert.throws(() => parseConfigOptions(["uploadpack.allowFilter"]), (e: unknown) => {
    assert.ok(e instanceof GrpcError);
    assert.equal(e.code, Status.INVALID_ARGUMENT);
    assert.equal(e.details, 'cannot convert invalid config key: "uploadpack.allowFilter"');
    return true;
  });
});

test("spawnUploadPack() passes only version=1 and version=2 as GIT_PROTOCOL, warning about others", async (s) => {
  const v2 = await run(s.repo.path, { advertiseRefs: true, gitProtocol: "version=2" });
  assert.equal(pktText(splitPkts(v2.out)[0]!), "version 2\n");
  const v1 = await run(s.repo.path, { advertiseRefs: true, gitProtocol: "version=1" });
  assert.equal(pktText(splitPkts(v1.out)[0]!), "version 1\n");
  for (const gitProtocol of ["", "version=3", "v2", "version=2:x", "version=2 "]) {
    const warnings: string[] = [];
    const v0 = await run(s.repo.path, {
      advertiseRefs: true,
      gitProtocol,
      onWarning: (m) => warnings.push(m),
    });
    assert.ok(pktText(splitPkts(v0.out)[0]!).startsWith(`${s.repo.head} HEAD\0`), gitProtocol);
    assert.equal(warnings.length, gitProtocol === "" ? 0 : 1, gitProtocol);
  }
  // command=ls-refs only exists in v2 (Gitaly's gitProtocol test).
  const lsRefs = await run(s.repo.path, {
    gitProtocol: "version=2",
    stdin: pkts("command=ls-refs\n", "object-format=sha1\n", "0001", "peel\n", "symrefs\n", "0000"),
  });
  assertSuccess(lsRefs.result);
  assert.match(dec.decode(lsRefs.out), /refs\/heads\/main/);
});

test("spawnUploadPack() gives git a minimal, explicit environment and the documented arguments", async (s) => {
  const dir = await Deno.makeTempDir({ prefix: "sidechannel-env-" });
  try {
    const wrapper = `${dir}/git`;
    await Deno.writeTextFile(
      wrapper,
      `#!/bin/sh\nenv > '${dir}/env.txt'\nprintf '%s\\n' "$@" > '${dir}/args.txt'\nexec git "$@"\n`,
    );
    await Deno.chmod(wrapper, 0o755);
    const { result } = await run(s.repo.path, {
      gitBinary: wrapper,
      advertiseRefs: true,
      gitProtocol: "version=2",
      config: [{ key: "uploadpack.allowFilter", value: "true" }],
      env: { GIT_TRACE_PACKET: "0" },
    });
    assertSuccess(result);
    const env = Object.fromEntries(
      (await Deno.readTextFile(`${dir}/env.txt`)).trim().split("\n").map((
        l,
      ) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    // The shell adds PWD, SHLVL and _; everything else is ours.
    for (const shellVar of ["PWD", "SHLVL", "_", "OLDPWD"]) delete env[shellVar];
    assert.deepEqual(Object.keys(env).sort(), [
      "GIT_CONFIG_GLOBAL",
      "GIT_CONFIG_SYSTEM",
      "GIT_PROTOCOL",
      "GIT_TERMINAL_PROMPT",
      "GIT_TRACE_PACKET",
      "LANG",
      "PATH",
      "XDG_CONFIG_HOME",
    ]);
    assert.equal(env.GIT_PROTOCOL, "version=2");
    assert.equal(env.GIT_CONFIG_GLOBAL, "/dev/null");
    const args = (await Deno.readTextFile(`${dir}/args.txt`)).trim().split("\n");
    assert.deepEqual(args, [
      "-c",
      "uploadpack.allowFilter=true",
      "upload-pack",
      "--stateless-rpc",
      "--advertise-refs",
      "--",
      s.repo.path,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("spawnUploadPack() reports a missing git binary as a spawn failure and cancels the request stream", async (s) => {
  let cancelled: unknown = undefined;
  const stdin = new ReadableStream<Uint8Array>({
    cancel: (reason) => void (cancelled = reason ?? "cancelled"),
  });
  const uploadPack = spawnUploadPack(s.repo.path, { gitBinary: "/nonexistent/git", stdin });
  assert.equal(uploadPack.pid, null);
  assert.deepEqual(await drain(uploadPack.stdout), new Uint8Array(0));
  uploadPack.kill(); // nothing to stop
  await uploadPack[Symbol.asyncDispose]();
  const result = await uploadPack.result;
  assert.equal(result.failure?.kind, "spawn");
  assert.notEqual(cancelled, undefined);
  const error = postUploadPackError(result);
  assert.equal(error?.code, Status.FAILED_PRECONDITION);
  assert.match(error!.details, /^running upload-pack: spawning upload-pack: /);
  const ssh = sshUploadPackError(result);
  assert.equal(ssh?.code, Status.INTERNAL);
  assert.match(ssh!.details, /^running upload-pack: starting command: /);
});

test("spawnUploadPack() with an already aborted signal starts nothing", async (s) => {
  const controller = new AbortController();
  controller.abort(new DOMException("client went away", "AbortError"));
  const uploadPack = spawnUploadPack(s.repo.path, { advertiseRefs: true, signal: controller.signal });
  assert.equal(uploadPack.pid, null);
  const result = await uploadPack.result;
  assert.equal(result.failure?.kind, "aborted");
  assert.equal(postUploadPackError(result)?.code, Status.CANCELLED);
  const timeout = spawnUploadPack(s.repo.path, {
    signal: AbortSignal.abort(new DOMException("late", "TimeoutError")),
  });
  assert.equal(postUploadPackError(await timeout.result)?.code, Status.DEADLINE_EXCEEDED);
});

test("spawnUploadPack() keeps a bounded tail of stderr and forwards every chunk to onStderr", async (s) => {
  const chunks: Uint8Array[] = [];
  // An unknown capability in v2 makes git die with a message naming it.
  const long = "x".repeat(300);
  const { result } = await run(s.repo.path, {
    gitProtocol: "version=2",
    stdin: pkts(`${long}\n`, "0000"),
    stderrLimit: 32,
    onStderr: (chunk) => chunks.push(chunk.slice()),
  });
  const full = dec.decode(concat(chunks));
  assert.equal(full, `fatal: unknown capability '${long}'\n`);
  assert.equal(result.stderrLength, full.length);
  assert.equal(result.stderr.byteLength, 32);
  assert.equal(dec.decode(result.stderr), full.slice(-32));
  // A truncated stderr never matches the hung-up text; the message holds the tail.
  const error = sshUploadPackError(result);
  assert.equal(error?.code, Status.INTERNAL);
  assert.equal(
    error?.details,
    `running upload-pack: cmd wait: exit status 128, stderr: ${JSON.stringify(full.slice(-32))}`,
  );
});

test("UploadPack.copyStdoutTo() copies to a ByteWriter (short writes) and to a WritableStream", async (s) => {
  // no-progress: progress messages depend on timing. The sideband framing does too (git
  // forwards whatever each pipe read gave), so compare the pack data inside it.
  const request = v0Request([s.repo.head], {
    caps: "multi_ack_detailed side-band-64k ofs-delta no-progress",
  });
  const expected = demux(splitPkts((await run(s.repo.path, { stdin: request })).out)).pack;

  const received: Uint8Array[] = [];
  const writer: ByteWriter = {
    write(p) {
      // Take at most 1000 bytes per call to exercise the write loop.
      const n = Math.min(p.byteLength, 1000);
      received.push(p.slice(0, n));
      return Promise.resolve(n);
    },
  };
  const a = spawnUploadPack(s.repo.path, { stdin: request });
  const copiedA = await a.copyStdoutTo(writer);
  const resultA = await a.result;
  assertSuccess(resultA);
  assert.equal(copiedA, concat(received).byteLength);
  assert.equal(resultA.stdoutLength, copiedA);
  assert.deepEqual(demux(splitPkts(concat(received))).pack, expected);

  const chunks: Uint8Array[] = [];
  const b = spawnUploadPack(s.repo.path, { stdin: request });
  const sink = new WritableStream<Uint8Array>({ write: (c) => void chunks.push(c) });
  const copiedB = await b.copyStdoutTo(sink);
  assertSuccess(await b.result);
  assert.equal(copiedB, concat(chunks).byteLength);
  assert.deepEqual(demux(splitPkts(concat(chunks))).pack, expected);
  assert.equal(sink.locked, false, "the sink's writer is released");
});

test("UploadPack.copyStdoutTo() stops git when the sink fails: FAILED_PRECONDITION 'copying stdout'", async (s) => {
  const uploadPack = spawnUploadPack(s.repo.path, { stdin: v0Request([s.repo.head]) });
  let calls = 0;
  const copied = await uploadPack.copyStdoutTo({
    write() {
      calls++;
      return Promise.reject(new Error("client went away"));
    },
  });
  assert.equal(copied, 0);
  assert.equal(calls, 1);
  const result = await uploadPack.result;
  assert.equal(result.failure?.kind, "stdout");
  const error = postUploadPackError(result);
  assert.equal(error?.code, Status.FAILED_PRECONDITION);
  assert.equal(error?.details, "running upload-pack: copying stdout from upload-pack: client went away");
  assert.equal(sshUploadPackError(result)?.code, Status.CANCELLED);
});

test("UploadPack.stdout cancelled before its end stops git with a 'stdout' failure; after its end it is no failure", async (s) => {
  const uploadPack = spawnUploadPack(s.repo.path, { stdin: v0Request([s.repo.head]) });
  const reader = uploadPack.stdout.getReader();
  const first = await reader.read();
  assert.equal(first.done, false);
  await reader.cancel(new Error("stop"));
  const result = await uploadPack.result;
  assert.equal(result.failure?.kind, "stdout");
  assert.equal(postUploadPackError(result)?.code, Status.FAILED_PRECONDITION);
  assert.equal(result.stdoutLength, first.value!.byteLength);

  const complete = spawnUploadPack(s.repo.path, { advertiseRefs: true });
  const completeReader = complete.stdout.getReader();
  while (!(await completeReader.read()).done);
  await completeReader.cancel(new Error("late"));
  const completeResult = await complete.result;
  assert.equal(completeResult.failure, null);
});

test("UploadPack.kill() sends SIGKILL to a process that is still alive after killGrace", async (s) => {
  const dir = await Deno.makeTempDir({ prefix: "sidechannel-stubborn-" });
  try {
    // A "git" that ignores SIGTERM and its closed stdin, and has no children.
    const stubborn = `${dir}/git`;
    await Deno.writeTextFile(stubborn, "#!/bin/sh\ntrap '' TERM\nexec sleep 30\n");
    await Deno.chmod(stubborn, 0o755);
    const uploadPack = spawnUploadPack(s.repo.path, { gitBinary: stubborn, killGrace: 50 });
    const out = drain(uploadPack.stdout).catch((e) => e);
    uploadPack.kill(new Error("stop"));
    const result = await uploadPack.result;
    assert.equal(result.failure?.kind, "aborted");
    assert.equal(result.status?.signal, "SIGKILL");
    assert.ok((await out) instanceof Error);
    assert.equal(await Deno.readTextFile(`/proc/${uploadPack.pid}/stat`).catch(() => "gone"), "gone");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("UploadPack[Symbol.asyncDispose]() ends a run nobody reads", async (s) => {
  let pid: number | null;
  {
    await using uploadPack = spawnUploadPack(s.repo.path, { stdin: v0Request([s.repo.head]) });
    pid = uploadPack.pid;
    assert.ok(pid !== null);
  }
  assert.equal(await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => "gone"), "gone");
});

// ---- SSH flavour: Gitaly's TestUploadPackWithSidechannel_client cases ----

async function ssh(
  repoPath: string,
  stdin: Uint8Array | ReadableStream<Uint8Array>,
  options: UploadPackOptions = {},
) {
  return await run(repoPath, { statelessRpc: false, stdin, ...options });
}

test("SSH upload-pack: successful clone (v0) → stats Packets 2, Caps [multi_ack], Wants 1", async (s) => {
  const { out, result } = await ssh(s.repo.path, pkts(`want ${s.repo.head} multi_ack\n`, "0000", "done\n"));
  assert.equal(sshUploadPackError(result), undefined, dec.decode(result.stderr));
  assert.equal(result.negotiation.packets, 2);
  assert.deepEqual(result.negotiation.caps, ["multi_ack"]);
  assert.equal(result.negotiation.wants, 1);
  // The advertisement, then NAK and the (non-sideband) pack.
  const text = new TextDecoder("latin1").decode(out);
  assert.ok(text.slice(4).startsWith(`${s.repo.head} HEAD\0`));
  assert.ok(text.includes("00000008NAK\nPACK"));
});

test("SSH upload-pack: successful clone with protocol v2 → stats Packets 5, Wants 1", async (s) => {
  const { result } = await ssh(
    s.repo.path,
    pkts(
      "command=fetch\n",
      "agent=git/2.36.1\n",
      "object-format=sha1\n",
      "0001",
      `want ${s.repo.head}\n`,
      "done\n",
      "0000",
    ),
    { gitProtocol: "version=2" },
  );
  assert.equal(sshUploadPackError(result), undefined, dec.decode(result.stderr));
  assert.equal(result.negotiation.packets, 5);
  assert.equal(result.negotiation.wants, 1);
});

test("SSH upload-pack: Gitaly's failure cases map to INTERNAL with git's stderr, hang-ups to CANCELLED", async (s) => {
  const v2Fetch = pkts(
    "command=fetch\n",
    "agent=git/2.36.1\n",
    "object-format=sha1\n",
    "0001",
    `want ${s.repo.head}\n`,
    "done\n",
    "0000",
  );
  const cases: {
    name: string;
    stdin: Uint8Array;
    v2: boolean;
    code: Status | undefined;
    details?: string;
  }[] = [
    {
      name: "client talks protocol v0 but v2 is requested",
      stdin: pkts(`want ${s.repo.head} multi_ack\n`, "0000", "done\n"),
      v2: true,
      code: Status.INTERNAL,
      details:
        `running upload-pack: cmd wait: exit status 128, stderr: "fatal: unknown capability 'want ${s.repo.head} multi_ack'\\n"`,
    },
    {
      name: "client talks protocol v2 but v0 is requested",
      stdin: v2Fetch,
      v2: false,
      code: Status.INTERNAL,
      details:
        `running upload-pack: cmd wait: exit status 128, stderr: "fatal: git upload-pack: protocol error, expected to get object ID, not 'command=fetch'\\n"`,
    },
    {
      name: "request missing object",
      stdin: pkts(`want ${"1".repeat(40)} multi_ack\n`, "0000", "done\n"),
      v2: false,
      code: Status.INTERNAL,
      details:
        `running upload-pack: cmd wait: exit status 128, stderr: "fatal: git upload-pack: not our ref ${
          "1".repeat(40)
        }\\n"`,
    },
    {
      name: "request invalidly formatted object",
      stdin: pkts("want 1111 multi_ack\n", "0000", "done\n"),
      v2: false,
      code: Status.INTERNAL,
      details:
        `running upload-pack: cmd wait: exit status 128, stderr: "fatal: git upload-pack: protocol error, expected to get object ID, not 'want 1111 multi_ack'\\n"`,
    },
    { name: "missing input", stdin: new Uint8Array(0), v2: true, code: undefined },
    {
      name: "short write",
      stdin: concat([pkts("command=fetch\n"), new TextEncoder().encode("0011agent")]),
      v2: true,
      code: Status.CANCELLED,
      details: "running upload-pack: user canceled the request",
    },
    {
      name: "garbage",
      stdin: pkts("foobar"),
      v2: true,
      code: Status.INTERNAL,
      details:
        `running upload-pack: cmd wait: exit status 128, stderr: "fatal: unknown capability 'foobar'\\n"`,
    },
  ];
  for (const c of cases) {
    const { result } = await ssh(s.repo.path, c.stdin, { gitProtocol: c.v2 ? "version=2" : "" });
    const error = sshUploadPackError(result);
    assert.equal(error?.code, c.code, `${c.name}: ${error?.details}`);
    if (c.details !== undefined) assert.equal(error?.details, c.details, c.name);
    if (c.name === "missing input") {
      assert.equal(result.negotiation.packets, 0);
      assert.equal(result.negotiation.payloadSize, 0);
    }
  }
});

test("SSH upload-pack: cancellation while negotiating (with or without closing stdin) → CANCELLED", async (s) => {
  for (const closeFirst of [true, false, undefined]) {
    const controller = new AbortController();
    let streamController!: ReadableStreamDefaultController<Uint8Array>;
    const stdin = new ReadableStream<Uint8Array>({ start: (c) => void (streamController = c) });
    streamController.enqueue(pkts("command=fetch\n", "agent=git/2.36.1\n"));
    const uploadPack = spawnUploadPack(s.repo.path, {
      statelessRpc: false,
      gitProtocol: "version=2",
      stdin,
      signal: controller.signal,
    });
    const out = drain(uploadPack.stdout).catch((e) => e);
    if (closeFirst === true) streamController.close();
    controller.abort();
    if (closeFirst === false) {
      try {
        streamController.close();
      } catch {
        // Already cancelled by the stopped run: closing a cancelled stream throws.
      }
    }
    const result = await uploadPack.result;
    assert.equal(result.failure?.kind, "aborted");
    assert.equal(sshUploadPackError(result)?.code, Status.CANCELLED);
    assert.ok((await out) instanceof DOMException, "the output stream errors with the abort reason");
  }
});

test("spawnUploadPack() records a failing request stream as stdinError; git sees the end of its input", async (s) => {
  // The first packet arrives, then the transport fails (like a sidechannel framing error).
  const failure = new Error("sidechannel: invalid header 3");
  let pulls = 0;
  const stdin = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulls++ === 0) controller.enqueue(pkts(`want ${s.repo.head} multi_ack_detailed side-band-64k\n`));
      else controller.error(failure);
    },
  });
  const { result } = await run(s.repo.path, { stdin });
  assert.equal(result.stdinError, failure);
  assert.equal(result.status?.code, 128, "git saw its input end in the middle of the request");
  assert.equal(postUploadPackError(result)?.code, Status.FAILED_PRECONDITION);
  assert.equal(result.stdinLength, result.negotiation.payloadSize + 4 + 1, "prefix and newline");
});

test("SSH upload-pack: a silent client hits the negotiation timeout → DEADLINE_EXCEEDED, git is gone", async (s) => {
  const stdin = new ReadableStream<Uint8Array>(); // never sends, never closes
  const uploadPack = spawnUploadPack(s.repo.path, { statelessRpc: false, stdin, negotiationTimeout: 50 });
  const pid = uploadPack.pid!;
  const out = drain(uploadPack.stdout).catch((e) => e);
  const result = await uploadPack.result;
  assert.equal(result.failure?.kind, "negotiation-timeout");
  const error = sshUploadPackError(result);
  assert.equal(error?.code, Status.DEADLINE_EXCEEDED);
  assert.equal(error?.details, "running upload-pack: waiting for negotiation: context canceled");
  assert.equal(postUploadPackError(result)?.code, Status.DEADLINE_EXCEEDED);
  assert.ok((await out) instanceof DOMException);
  assert.equal(await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => "gone"), "gone");
});

test("SSH upload-pack: a flush ends the negotiation without a timeout, even with stdin left open", async (s) => {
  let streamController!: ReadableStreamDefaultController<Uint8Array>;
  let cancelled = false;
  const stdin = new ReadableStream<Uint8Array>({
    start: (c) => void (streamController = c),
    cancel: () => void (cancelled = true),
  });
  streamController.enqueue(pkts("0000"));
  const { out, result } = await ssh(s.repo.path, stdin, { negotiationTimeout: 60_000 });
  assert.equal(result.failure, null);
  assert.equal(result.status?.success, true);
  assert.equal(sshUploadPackError(result), undefined);
  assert.ok(pktText(splitPkts(out)[0]!).startsWith(`${s.repo.head} HEAD\0`));
  assert.ok(cancelled, "the open request stream is cancelled once git has exited");
});

test("SSH upload-pack: done within the deadline stops the timer for the rest of the transfer", async (s) => {
  const { result } = await ssh(
    s.repo.path,
    pkts(`want ${s.repo.head} multi_ack side-band-64k\n`, "0000", "done\n"),
    {
      negotiationTimeout: 60_000,
    },
  );
  assert.equal(result.failure, null);
  assert.equal(sshUploadPackError(result), undefined);
});

Deno.test("spawnUploadPack() rejects misuse synchronously", () => {
  assert.throws(() => spawnUploadPack("relative/path"), TypeError);
  assert.throws(() => spawnUploadPack("/x\0y"), TypeError);
  assert.throws(() => spawnUploadPack("/x", { statelessRpc: false, advertiseRefs: true }), TypeError);
  assert.throws(() => spawnUploadPack("/x", { killGrace: -1 }), RangeError);
  assert.throws(() => spawnUploadPack("/x", { negotiationTimeout: Infinity }), RangeError);
  assert.throws(() => spawnUploadPack("/x", { stderrLimit: 1.5 }), RangeError);
  assert.throws(() => spawnUploadPack("/x", { env: { "A=B": "c" } }), TypeError);
  assert.throws(() => spawnUploadPack("/x", { env: { A: "c\0" } }), TypeError);
  const locked = new ReadableStream<Uint8Array>();
  locked.getReader();
  assert.throws(() => spawnUploadPack("/x", { stdin: locked }), TypeError);
});
