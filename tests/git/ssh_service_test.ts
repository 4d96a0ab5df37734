/**
 * Gitaly's RPC-level SSH cases (`internal/gitaly/service/ssh/upload_pack_test.go`:
 * `TestUploadPackWithSidechannel_client`, `_timeout`, `TestUploadPack_validation`),
 * ported by name, through a StorageServer and `GitalyClient.sshUploadPack`.
 */

import assert from "node:assert/strict";
import {
  GrpcError,
  type PackfileNegotiationStats,
  Status,
  statusName,
  type UploadPackCall,
} from "../../mod.ts";
import { concat, text, utf8, withTimeout } from "../_util.ts";
import { demux, git, pkts, pktText, splitPkts, verifyPack } from "./_git.ts";
import { collect, eventually, gitProcessesUnder, type Rig, rigTest, waitGone } from "./_gitaly.ts";

/** A stdin the test controls: `send` bytes, `close()` (the client's CloseWrite). */
function controlledStdin(): {
  stream: ReadableStream<Uint8Array>;
  send(bytes: Uint8Array): void;
  close(): void;
} {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const stream = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
  return {
    stream,
    send: (bytes) => controller.enqueue(bytes),
    close: () => controller.close(),
  };
}

interface SshResult {
  stdout: Uint8Array;
  stderr: string;
  stats: PackfileNegotiationStats | undefined;
  error: GrpcError | undefined;
}

async function ssh(
  rig: Rig,
  stdin: ReadableStream<Uint8Array>,
  call: UploadPackCall = {},
  repo = rig.repo,
): Promise<SshResult> {
  const response = rig.client.sshUploadPack(repo, stdin, call);
  const [out, err] = await withTimeout(
    Promise.all([collect(response.stdout), collect(response.stderr)]),
    30_000,
  );
  let stats: PackfileNegotiationStats | undefined;
  let error: GrpcError | undefined;
  try {
    stats = await withTimeout(response.done, 30_000, "done");
  } catch (e) {
    assert.ok(e instanceof GrpcError, String(e));
    error = e;
  }
  if (error !== undefined) {
    assert.ok(
      out.error instanceof GrpcError && out.error.code === error.code,
      "stdout errors with the status",
    );
  } else {
    assert.equal(out.error, undefined);
    assert.equal(err.error, undefined);
  }
  return { stdout: out.bytes, stderr: text(err.bytes), stats, error };
}

function stdinOf(...chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(chunks);
}

function stats(partial: Partial<PackfileNegotiationStats>, payloadSize: number): PackfileNegotiationStats {
  return {
    payloadSize,
    packets: 0,
    caps: [],
    wants: 0,
    haves: 0,
    shallows: 0,
    deepen: "",
    filter: "",
    ...partial,
  };
}

/** Waits until the RPC and its git process are gone on the server. */
async function assertServerClean(rig: Rig): Promise<void> {
  await eventually(() => rig.server.inFlight === 0, 10_000, "the RPC to finish on the server");
  assert.deepEqual(await waitGone(gitProcessesUnder(rig.s.root)), [], "no git process is left");
}

const NAME = "TestUploadPackWithSidechannel_client";

rigTest(
  `${NAME}/successful clone: stats Packets 2, Caps [multi_ack], Wants 1; the pack verifies`,
  async (rig) => {
    const { head } = rig.s.repo;
    const result = await ssh(rig, stdinOf(pkts(`want ${head} multi_ack\n`, "0000", "done\n")));
    assert.equal(result.error, undefined, `${result.error?.details}`);
    assert.deepEqual(
      result.stats,
      stats({ packets: 2, caps: ["multi_ack"], wants: 1 }, result.stats!.payloadSize),
    );
    assert.ok(result.stats!.payloadSize > 0);
    // The conversation: the advertisement up to its flush, NAK, then the pack (no sideband requested).
    const advertisementEnd = text(result.stdout).indexOf("0000") + 4;
    assert.ok(text(result.stdout.subarray(0, 64)).includes(`${head} HEAD`));
    assert.equal(text(result.stdout.subarray(advertisementEnd, advertisementEnd + 8)), "0008NAK\n");
    const verified = await verifyPack(result.stdout.subarray(advertisementEnd + 8), {
      "refs/heads/main": head,
    });
    try {
      assert.equal(await git(["-C", verified.dir, "rev-list", "--count", "main"]), "50");
    } finally {
      await verified.cleanup();
    }
    // Without side-band, git's progress goes to its stderr: band 2.
    assert.match(result.stderr, /^Enumerating objects: \d+, done\.\nTotal \d+/);
    const entry = rig.log.at(-1)!;
    assert.equal(entry.method, "/gitaly.SSHService/SSHUploadPackWithSidechannel");
    assert.equal(entry.transport, "sidechannel");
    assert.equal(entry.bytesOut, result.stdout.byteLength);
  },
);

rigTest(`${NAME}/successful clone with protocol v2: Packets 5, Wants 1`, async (rig) => {
  const { head } = rig.s.repo;
  const request = pkts(
    "command=fetch\n",
    "agent=git/2.36.1\n",
    "object-format=sha1\n",
    "0001",
    `want ${head}\n`,
    "done\n",
    "0000",
  );
  const result = await ssh(rig, stdinOf(request), { gitProtocol: "version=2" });
  assert.equal(result.error, undefined, `${result.error?.details}`);
  assert.deepEqual(result.stats, stats({ packets: 5, wants: 1 }, result.stats!.payloadSize));
  const packets = splitPkts(result.stdout);
  assert.equal(pktText(packets[0]!), "version 2\n");
  const section = packets.findIndex((p) => p.kind === "data" && pktText(p) === "packfile\n");
  assert.ok(section > 0);
  const { pack } = demux(packets.slice(section + 1));
  const verified = await verifyPack(pack, { "refs/heads/main": head });
  await verified.cleanup();
});

const failures: {
  name: string;
  v2: boolean;
  stdin: (head: string) => Uint8Array;
  code: Status;
  details: (head: string) => string;
  stderr?: boolean;
}[] = [
  {
    name: "client talks protocol v0 but v2 is requested",
    v2: true,
    stdin: (head) => pkts(`want ${head} multi_ack\n`, "0000", "done\n"),
    code: Status.INTERNAL,
    details: (head) =>
      `running upload-pack: cmd wait: exit status 128, stderr: "fatal: unknown capability 'want ${head} multi_ack'\\n"`,
    stderr: true,
  },
  {
    name: "client talks protocol v2 but v0 is requested",
    v2: false,
    stdin: (head) =>
      pkts(
        "command=fetch\n",
        "agent=git/2.36.1\n",
        "object-format=sha1\n",
        "0001",
        `want ${head}\n`,
        "done\n",
        "0000",
      ),
    code: Status.INTERNAL,
    details: () =>
      `running upload-pack: cmd wait: exit status 128, stderr: "fatal: git upload-pack: protocol error, expected to get object ID, not 'command=fetch'\\n"`,
    stderr: true,
  },
  {
    name: "request missing object",
    v2: false,
    stdin: () => pkts(`want ${"1".repeat(40)} multi_ack\n`, "0000", "done\n"),
    code: Status.INTERNAL,
    details: () =>
      `running upload-pack: cmd wait: exit status 128, stderr: "fatal: git upload-pack: not our ref ${
        "1".repeat(40)
      }\\n"`,
    stderr: true,
  },
  {
    name: "request invalidly formatted object",
    v2: false,
    stdin: () => pkts("want 1111 multi_ack\n", "0000", "done\n"),
    code: Status.INTERNAL,
    details: () =>
      `running upload-pack: cmd wait: exit status 128, stderr: "fatal: git upload-pack: protocol error, expected to get object ID, not 'want 1111 multi_ack'\\n"`,
  },
  {
    name: "short write",
    v2: true,
    stdin: () => concat([pkts("command=fetch\n"), utf8("0011agent")]),
    code: Status.CANCELLED,
    details: () => "running upload-pack: user canceled the request",
  },
  {
    name: "garbage",
    v2: true,
    stdin: () => pkts("foobar"),
    code: Status.INTERNAL,
    details: () =>
      `running upload-pack: cmd wait: exit status 128, stderr: "fatal: unknown capability 'foobar'\\n"`,
  },
];

for (const c of failures) {
  rigTest(`${NAME}/${c.name} → ${statusName(c.code)}`, async (rig) => {
    const { head } = rig.s.repo;
    const result = await ssh(rig, stdinOf(c.stdin(head)), c.v2 ? { gitProtocol: "version=2" } : {});
    assert.equal(result.error?.code, c.code, `${result.error?.details}`);
    assert.equal(result.error?.details, c.details(head));
    // git's stderr reached the client on band 2 before the status.
    if (c.stderr) assert.match(result.stderr, /^fatal: /);
    assert.equal(rig.log.at(-1)!.code, c.code);
    await assertServerClean(rig);
  });
}

rigTest(`${NAME}/missing input: OK with empty statistics`, async (rig) => {
  const result = await ssh(rig, stdinOf(), { gitProtocol: "version=2" });
  assert.equal(result.error, undefined, `${result.error?.details}`);
  assert.deepEqual(result.stats, stats({}, 0));
  assert.ok(text(result.stdout).startsWith("000eversion 2\n"), "git advertised its capabilities");
});

for (
  const order of ["close and cancellation", "cancellation and close", "cancellation without close"] as const
) {
  rigTest(`${NAME}/${order} → CANCELLED, git stopped`, async (rig) => {
    const stdin = controlledStdin();
    const controller = new AbortController();
    const response = rig.client.sshUploadPack(rig.repo, stdin.stream, {
      gitProtocol: "version=2",
      signal: controller.signal,
    });
    const out = collect(response.stdout);
    const err = collect(response.stderr);
    stdin.send(pkts("command=fetch\n", "agent=git/2.36.1\n"));
    // The server has the sidechannel and git runs before the client acts.
    await eventually(() => gitProcessesUnder(rig.s.root).length > 0, 10_000, "git to start");
    if (order === "close and cancellation") {
      stdin.close();
      controller.abort();
    } else if (order === "cancellation and close") {
      controller.abort();
      stdin.close();
    } else {
      controller.abort();
    }
    const error = await response.done.catch((e) => e);
    assert.ok(error instanceof GrpcError);
    assert.equal(error.code, Status.CANCELLED);
    assert.equal(((await out).error as GrpcError).code, Status.CANCELLED);
    await err;
    await assertServerClean(rig);
    assert.equal(rig.log.at(-1)!.code, Status.CANCELLED);
  });
}

rigTest(
  "TestUploadPackWithSidechannel_timeout: a silent client → DEADLINE_EXCEEDED waiting for negotiation",
  async (rig) => {
    const stdin = controlledStdin(); // never sends, never closes
    const result = await ssh(rig, stdin.stream);
    assert.equal(result.error?.code, Status.DEADLINE_EXCEEDED);
    assert.equal(result.error?.details, "running upload-pack: waiting for negotiation: context canceled");
    // git advertised its refs before the deadline.
    assert.ok(text(result.stdout).includes(`${rig.s.repo.head} HEAD`));
    await assertServerClean(rig);
  },
  { server: { negotiationTimeout: 200 } },
);

rigTest("TestUploadPack_validation: missing relative path or repository → INVALID_ARGUMENT", async (rig) => {
  for (const repo of [{ storageName: "default", relativePath: "" }, { storageName: "", relativePath: "" }]) {
    const result = await ssh(rig, stdinOf(), {}, repo);
    assert.equal(result.error?.code, Status.INVALID_ARGUMENT);
  }
  const result = await ssh(rig, stdinOf(), {}, { storageName: "fake", relativePath: "x" });
  assert.equal(result.error?.code, Status.INVALID_ARGUMENT);
  assert.equal(result.error?.details, "storage name not found");
  assert.equal(rig.registry.waiting, 0, "the waiters are gone (the callback never ran, which is no error)");
});
