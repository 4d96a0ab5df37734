import assert from "node:assert/strict";
import {
  GitError,
  NegotiationStatsParser,
  negotiationStatsToProto,
  type PackfileNegotiation,
  parsePackfileNegotiation,
} from "../../mod.ts";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { SSHUploadPackWithSidechannelResponseSchema } from "../../src/git/gen/ssh_pb.ts";
import { git, makeStorage, noGit, pkts, V0_CAPS, v0Request, v2FetchRequest } from "./_git.ts";

const enc = new TextEncoder();
const A = "a".repeat(40);
const B = "b".repeat(40);

function parse(bytes: Uint8Array): PackfileNegotiation {
  const parser = new NegotiationStatsParser();
  parser.push(bytes);
  return parser.end();
}

/** Parses byte by byte: the result must not depend on chunking. */
function parseBytewise(bytes: Uint8Array): PackfileNegotiation {
  const parser = new NegotiationStatsParser();
  for (let i = 0; i < bytes.byteLength; i++) parser.push(bytes.subarray(i, i + 1));
  return parser.end();
}

function withoutError(stats: PackfileNegotiation): Omit<PackfileNegotiation, "error"> {
  const { error: _, ...rest } = stats;
  return rest;
}

Deno.test("NegotiationStatsParser counts Gitaly's SSH 'successful clone' request as Packets 2, Caps [multi_ack], Wants 1", () => {
  const request = pkts(`want ${A} multi_ack\n`, "0000", "done\n");
  const stats = parse(request);
  assert.equal(stats.error, null);
  assert.equal(stats.packets, 2);
  assert.deepEqual(stats.caps, ["multi_ack"]);
  assert.equal(stats.wants, 1);
  // "want <oid> multi_ack" (55) + flush (0) + "done" (4): one trailing newline dropped each.
  assert.equal(stats.payloadSize, 55 + 4);
  const proto = negotiationStatsToProto(stats);
  assert.equal(proto.packets, 2n);
  assert.deepEqual(proto.caps, ["multi_ack"]);
  assert.equal(proto.wants, 1n);
  assert.equal(proto.haves, 0n);
});

Deno.test("NegotiationStatsParser counts Gitaly's SSH 'clone with protocol v2' request as Packets 5, Wants 1", () => {
  const request = pkts(
    "command=fetch\n",
    "agent=git/2.36.1\n",
    "object-format=sha1\n",
    "0001",
    `want ${A}\n`,
    "done\n",
    "0000",
  );
  const stats = parse(request);
  assert.equal(stats.error, null);
  assert.equal(stats.packets, 5);
  assert.equal(stats.wants, 1);
  assert.deepEqual(stats.caps, []);
  assert.equal(stats.command, "fetch");
  assert.equal(stats.userAgent, "git/2.36.1");
  assert.equal(
    stats.payloadSize,
    "command=fetch".length + "agent=git/2.36.1".length + "object-format=sha1".length + 45 + 4,
  );
});

Deno.test("NegotiationStatsParser gives the same result for any chunking", () => {
  const requests = [
    v0Request([A, B], { haves: [B, A], extra: [`shallow ${B}\n`, "deepen 3\n", "filter blob:none\n"] }),
    v2FetchRequest(["thin-pack\n", `want ${A}\n`, `have ${B}\n`, "deepen-since 1700000000\n", "done\n"]),
    pkts("command=ls-refs\n", "0001", "peel\n", "symrefs\n", "0000"),
  ];
  for (const request of requests) {
    const whole = parse(request);
    assert.equal(whole.error, null);
    assert.deepEqual(parseBytewise(request), whole);
  }
});

Deno.test("NegotiationStatsParser reads wants, haves, shallows, deepen and filter lines", () => {
  const stats = parse(
    v0Request([A, B], {
      caps: "multi_ack_detailed side-band-64k agent=git/2.39.5 ofs-delta",
      extra: [`shallow ${A}\n`, `shallow ${B}\n`, "deepen 3\n", "filter blob:limit=1k\n"],
      haves: [A, B, A],
    }),
  );
  assert.equal(stats.error, null);
  assert.equal(stats.wants, 2);
  assert.equal(stats.haves, 3);
  assert.equal(stats.shallows, 2);
  assert.equal(stats.deepen, "deepen 3");
  assert.equal(stats.filter, "blob:limit=1k");
  assert.equal(stats.userAgent, "git/2.39.5");
  assert.deepEqual(stats.caps, ["multi_ack_detailed", "side-band-64k", "agent=git/2.39.5", "ofs-delta"]);
  // want, want, shallow, shallow, deepen, filter, flush, have×3; done not counted.
  assert.equal(stats.packets, 10);

  assert.equal(parse(pkts("deepen-not refs/heads/x\n", "done\n")).deepen, "deepen-not refs/heads/x");
  assert.equal(parse(pkts("deepen-since 1700000000\n")).deepen, "deepen-since 1700000000");
  // The last deepen line wins.
  assert.equal(parse(pkts("deepen 1\n", "deepen 2\n")).deepen, "deepen 2");
});

Deno.test("NegotiationStatsParser stops at done: later bytes, even broken ones, are ignored", () => {
  const request = new Uint8Array([...pkts(`want ${A}\n`, "done\n", `want ${B}\n`), ...enc.encode("zzzz00")]);
  const stats = parse(request);
  assert.equal(stats.error, null);
  assert.equal(stats.wants, 1);
  assert.equal(stats.packets, 1);
  // A request without done is parsed to its end.
  assert.equal(parse(pkts(`want ${A}\n`, "0000", `have ${B}\n`, "0000")).packets, 4);
});

Deno.test("NegotiationStatsParser reports Gitaly's parse errors and keeps the counts up to them", () => {
  const cases: [string, Uint8Array][] = [
    ["want without id", pkts("want\n")],
    ["capabilities twice", pkts(`want ${A} ofs-delta\n`, `want ${B} thin-pack\n`)],
    ["have with two ids", pkts(`want ${A}\n`, "0000", `have ${A} ${B}\n`)],
    ["shallow without id", pkts("shallow\n")],
    ["deepen without depth", pkts("deepen\n")],
    ["deepen-since with extra words", pkts("deepen-since 1 2\n")],
    ["filter with two specs", pkts("filter a b\n")],
    ["bad length prefix", enc.encode("zzzzwant")],
    ["length above the maximum", enc.encode("fff1")],
    ["truncated packet", enc.encode("0032want ")],
    ["truncated prefix", enc.encode("00")],
  ];
  for (const [name, request] of cases) {
    const stats = parse(request);
    assert.ok(stats.error instanceof GitError, name);
    assert.equal(stats.error.code, "INVALID_NEGOTIATION", name);
    assert.deepEqual(withoutError(parseBytewise(request)), withoutError(stats), name);
  }
  const partial = parse(pkts(`want ${A} ofs-delta\n`, "0000", `have ${A}\n`, "have\n"));
  assert.equal(partial.wants, 1);
  assert.equal(partial.haves, 1);
  assert.equal(partial.packets, 3);
});

Deno.test("NegotiationStatsParser ignores empty pushes and pushes after the end", () => {
  const parser = new NegotiationStatsParser();
  parser.push(new Uint8Array(0));
  parser.push(pkts(`want ${A}\n`));
  assert.equal(parser.finished, false);
  const stats = parser.end();
  assert.equal(parser.finished, true);
  parser.push(pkts(`want ${B}\n`));
  assert.deepEqual(parser.stats(), stats);
  assert.equal(stats.wants, 1);
});

Deno.test("parsePackfileNegotiation() reads bytes and streams", async () => {
  const request = v0Request([A], { haves: [B] });
  const fromBytes = await parsePackfileNegotiation(request);
  const fromStream = await parsePackfileNegotiation(
    ReadableStream.from([request.subarray(0, 7), request.subarray(7)]),
  );
  assert.deepEqual(fromStream, fromBytes);
  assert.equal(fromBytes.haves, 1);
  assert.equal(fromBytes.wants, 1);
});

/** Records what a real git client sends to upload-pack, through an --upload-pack wrapper. */
async function recordClientRequest(
  repoPath: string,
  clientArgs: string[],
  options: { protocol: 0 | 2; prepare?: (dir: string) => Promise<string[]> },
): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir({ prefix: "sidechannel-record-" });
  try {
    const record = `${dir}/request.bin`;
    const wrapper = `${dir}/upload-pack.sh`;
    await Deno.writeTextFile(wrapper, `#!/bin/sh\ntee -a '${record}' | git upload-pack "$@"\n`);
    await Deno.chmod(wrapper, 0o755);
    const extra = options.prepare === undefined ? [] : await options.prepare(dir);
    await Deno.writeFile(record, new Uint8Array(0));
    await git([
      "-c",
      `protocol.version=${options.protocol}`,
      ...clientArgs,
      `--upload-pack=${wrapper}`,
      ...extra,
      `file://${repoPath}`,
      `${dir}/clone`,
    ]);
    return await Deno.readFile(record);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Counts want/have lines and packets before `done` naively, as a cross-check. */
function naiveCount(bytes: Uint8Array): { packets: number; wants: number; haves: number } {
  let packets = 0, wants = 0, haves = 0;
  for (let i = 0; i + 4 <= bytes.byteLength;) {
    const length = parseInt(new TextDecoder().decode(bytes.subarray(i, i + 4)), 16);
    const data = length < 4 ? "" : new TextDecoder().decode(bytes.subarray(i + 4, i + length));
    i += length < 4 ? 4 : length;
    if (data === "done\n") break;
    packets++;
    if (data.startsWith("want ")) wants++;
    if (data.startsWith("have ")) haves++;
  }
  return { packets, wants, haves };
}

Deno.test({
  name:
    "NegotiationStatsParser matches requests recorded from real git clients (v0 and v2, full, incremental, shallow, partial)",
  ignore: noGit,
  async fn() {
    const s = await makeStorage();
    try {
      await git(["-C", s.repo.path, "config", "uploadpack.allowFilter", "true"]);
      const cases: {
        name: string;
        protocol: 0 | 2;
        args: string[];
        fetchSide?: boolean;
        check(stats: PackfileNegotiation): void;
      }[] = [
        {
          name: "v0 clone",
          protocol: 0,
          args: ["clone", "--bare", "-q"],
          check(stats) {
            assert.equal(stats.wants, 4); // HEAD and main (the same id), side, tag v1
            assert.equal(stats.packets, 5);
            assert.equal(stats.command, "");
            assert.ok(stats.caps.includes("multi_ack_detailed"), stats.caps.join(" "));
            assert.ok(stats.caps.includes("side-band-64k"));
            assert.match(stats.userAgent, /^git\/2\./);
          },
        },
        {
          name: "v2 clone",
          protocol: 2,
          args: ["clone", "--bare", "-q"],
          check(stats) {
            assert.equal(stats.command, "fetch");
            assert.ok(stats.wants >= 3, `wants ${stats.wants}`);
            assert.deepEqual(stats.caps, []);
            assert.match(stats.userAgent, /^git\/2\./);
          },
        },
        {
          name: "v0 shallow clone",
          protocol: 0,
          args: ["clone", "--bare", "-q", "--depth=1"],
          check(stats) {
            assert.equal(stats.deepen, "deepen 1");
            assert.equal(stats.wants, 2); // HEAD and main
          },
        },
        {
          name: "v2 shallow clone since a date",
          protocol: 2,
          args: ["clone", "--bare", "-q", "--shallow-since=2023-11-14T22:40:00Z"],
          check(stats) {
            assert.match(stats.deepen, /^deepen-since \d+$/);
          },
        },
        {
          name: "v2 partial clone",
          protocol: 2,
          args: ["clone", "--bare", "-q", "--filter=blob:none"],
          check(stats) {
            assert.equal(stats.filter, "blob:none");
          },
        },
        {
          name: "v0 partial clone",
          protocol: 0,
          args: ["clone", "--bare", "-q", "--filter=blob:limit=1k"],
          check(stats) {
            assert.equal(stats.filter, "blob:limit=1024"); // git normalizes the spec
            assert.ok(stats.caps.includes("filter"));
          },
        },
      ];
      for (const c of cases) {
        const request = await recordClientRequest(s.repo.path, c.args, { protocol: c.protocol });
        const stats = parse(request);
        assert.equal(stats.error, null, `${c.name}: ${stats.error}`);
        const naive = naiveCount(request);
        assert.equal(stats.packets, naive.packets, c.name);
        assert.equal(stats.wants, naive.wants, c.name);
        assert.equal(stats.haves, naive.haves, c.name);
        assert.deepEqual(parseBytewise(request), stats, c.name);
        c.check(stats);
      }
    } finally {
      await s.cleanup();
    }
  },
});

Deno.test({
  name: "NegotiationStatsParser counts the haves of an incremental fetch recorded from real git (v0 and v2)",
  ignore: noGit,
  async fn() {
    const s = await makeStorage();
    const dir = await Deno.makeTempDir({ prefix: "sidechannel-fetch-" });
    try {
      for (const protocol of [0, 2] as const) {
        const local = `${dir}/local-v${protocol}.git`;
        // A clone that only has `side`, then fetches `main` (which extends it).
        await git([
          "clone",
          "-q",
          "--bare",
          "--single-branch",
          "--branch=side",
          `file://${s.repo.path}`,
          local,
        ]);
        const record = `${dir}/request-v${protocol}.bin`;
        const wrapper = `${dir}/upload-pack.sh`;
        await Deno.writeTextFile(wrapper, `#!/bin/sh\ntee '${record}' | git upload-pack "$@"\n`);
        await Deno.chmod(wrapper, 0o755);
        await git([
          "-C",
          local,
          "-c",
          `protocol.version=${protocol}`,
          "fetch",
          "-q",
          `--upload-pack=${wrapper}`,
          "origin",
          "refs/heads/main:refs/heads/main",
        ]);
        const request = await Deno.readFile(record);
        const stats = parse(request);
        assert.equal(stats.error, null);
        assert.ok(stats.haves >= 1, `v${protocol}: haves ${stats.haves}`);
        assert.equal(stats.haves, naiveCount(request).haves);
        assert.ok(stats.wants >= 1);
        assert.equal(await git(["-C", local, "rev-parse", "main"]), s.repo.head);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
      await s.cleanup();
    }
  },
});

Deno.test("V0_CAPS is what the helpers send as a git 2.39 client", () => {
  assert.ok(V0_CAPS.startsWith("multi_ack_detailed"));
});

Deno.test("negotiationStatsToProto() builds a message that fits the generated response and round-trips", () => {
  const stats = parse(
    v0Request([A, B], { haves: [B], extra: ["deepen 2\n", "filter tree:0\n", `shallow ${A}\n`] }),
  );
  const response = create(SSHUploadPackWithSidechannelResponseSchema, {
    packfileNegotiationStatistics: negotiationStatsToProto(stats),
  });
  const decoded = fromBinary(
    SSHUploadPackWithSidechannelResponseSchema,
    toBinary(SSHUploadPackWithSidechannelResponseSchema, response),
  );
  const message = decoded.packfileNegotiationStatistics!;
  assert.equal(message.payloadSize, BigInt(stats.payloadSize));
  assert.equal(message.packets, BigInt(stats.packets));
  assert.deepEqual(message.caps, stats.caps);
  assert.equal(message.wants, 2n);
  assert.equal(message.haves, 1n);
  assert.equal(message.shallows, 1n);
  assert.equal(message.deepen, "deepen 2");
  assert.equal(message.filter, "tree:0");
});
