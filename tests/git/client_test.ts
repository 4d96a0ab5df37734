/**
 * GitalyClient: Gitaly's client rules around sidechannels (against stub servers that
 * misbehave on purpose), request bodies that fail, backpressure from a paused reader,
 * the advertisement, and misuse.
 */

import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import {
  BackchannelClient,
  GitalyClient,
  GrpcClient,
  GrpcError,
  GrpcServer,
  type GrpcServerCall,
  openSidechannelForCall,
  serveBackchannel,
  SidechannelRegistry,
  Status,
  StorageServer,
} from "../../mod.ts";
import { _SMART_HTTP } from "../../src/git/_gitaly_methods.ts";
import { PostUploadPackWithSidechannelResponseSchema } from "../../src/git/gen/smarthttp_pb.ts";
import { PackfileNegotiationStatisticsSchema } from "../../src/git/gen/packfile_pb.ts";
import { MEDIUM_REPO_DIR, MEDIUM_SPEC, referenceRepo } from "../../bench/_reference_repo.ts";
import { concat, text, utf8, withTimeout } from "../_util.ts";
import { demux, git, noGit, pkts, pktText, splitPkts, V0_CAPS } from "./_git.ts";
import { collect, eventually, gitProcessesUnder, rigTest, TRANSPORTS, waitGone } from "./_gitaly.ts";

const repo = { storageName: "default", relativePath: "repo.git" };

/** A server whose PostUploadPackWithSidechannel is `handler`, and a client connected to it. */
async function stub(
  handler: (request: unknown, call: GrpcServerCall) => unknown,
): Promise<{ client: GitalyClient; registry: SidechannelRegistry; close(): Promise<void> }> {
  const server = new GrpcServer().handle(_SMART_HTTP.postUploadPackWithSidechannel, handler as never);
  const listener = serveBackchannel({ hostname: "127.0.0.1", port: 0 }, server);
  const registry = new SidechannelRegistry();
  const backchannel = await BackchannelClient.dial({
    port: listener.addr.port,
    handshakers: { sidechannel: registry },
  });
  return {
    client: new GitalyClient({ backchannel: { client: backchannel, registry } }),
    registry,
    async close() {
      await backchannel.close();
      await listener.shutdown();
    },
  };
}

const response = () =>
  create(PostUploadPackWithSidechannelResponseSchema, {
    packfileNegotiationStatistics: create(PackfileNegotiationStatisticsSchema, { wants: 3n }),
  });

async function post(client: GitalyClient, body = new Uint8Array(0)) {
  const call = client.postUploadPack(repo, ReadableStream.from([body]), { transport: "sidechannel" });
  const read = await withTimeout(collect(call.body), 10_000, "body");
  const done = await withTimeout(
    call.done.then((stats) => ({ stats }), (error) => ({ error })),
    10_000,
    "done",
  );
  return { ...read, ...done } as { bytes: Uint8Array; error: unknown; stats?: unknown };
}

Deno.test("GitalyClient (sidechannel): OK without the sidechannel ever opened → INTERNAL (the waiter's error after OK)", async () => {
  const s = await stub(() => response());
  try {
    const result = await post(s.client);
    assert.ok(result.error instanceof GrpcError);
    assert.equal(result.error.code, Status.INTERNAL);
    assert.match(result.error.details, /callback de-registered without having run/);
    assert.equal(s.registry.waiting, 0);
  } finally {
    await s.close();
  }
});

Deno.test("GitalyClient (sidechannel): an RPC error before the sidechannel wins; 'callback did not run' is ignored", async () => {
  const s = await stub(() => {
    throw new GrpcError(Status.PERMISSION_DENIED, "no");
  });
  try {
    const result = await post(s.client);
    assert.equal((result.error as GrpcError).code, Status.PERMISSION_DENIED);
    assert.equal((result.error as GrpcError).details, "no");
  } finally {
    await s.close();
  }
});

Deno.test("GitalyClient (sidechannel): the bytes written before an RPC error arrive, then the body errors with it", async () => {
  let received = "";
  const s = await stub(async (_request, call) => {
    const conn = await openSidechannelForCall(call);
    received = await new Response(conn.readable).text();
    await conn.write(utf8("0008NAK\n"));
    await conn.close();
    throw new GrpcError(
      Status.FAILED_PRECONDITION,
      "running upload-pack: waiting for upload-pack: exit status 128",
    );
  });
  try {
    const call = s.client.postUploadPack(repo, ReadableStream.from([utf8("0009done\n")]), {
      transport: "sidechannel",
    });
    const { bytes, error } = await collect(call.body);
    assert.equal(text(bytes), "0008NAK\n");
    assert.equal((error as GrpcError).code, Status.FAILED_PRECONDITION);
    await assert.rejects(call.done, { code: Status.FAILED_PRECONDITION });
    assert.equal(received, "0009done\n", "the request reached the server, framed and closed with 0000");
  } finally {
    await s.close();
  }
});

Deno.test("GitalyClient (sidechannel): OK, but the sidechannel was reset mid-response → the read error is reported", async () => {
  const s = await stub(async (_request, call) => {
    const conn = await openSidechannelForCall(call);
    await conn.write(new Uint8Array(100_000));
    conn.reset(new Error("boom"));
    return response();
  });
  try {
    const result = await post(s.client);
    assert.ok(result.error instanceof GrpcError, String(result.error));
    assert.equal(result.error.code, Status.CANCELLED);
    assert.equal(result.stats, undefined);
  } finally {
    await s.close();
  }
});

Deno.test("GitalyClient (sidechannel): statistics come from the response message", async () => {
  const s = await stub(async (_request, call) => {
    const conn = await openSidechannelForCall(call);
    await new Response(conn.readable).arrayBuffer();
    await conn.write(utf8("0000"));
    await conn.close();
    return response();
  });
  try {
    const result = await post(s.client);
    assert.equal(result.error, undefined);
    assert.equal(text(result.bytes), "0000");
    assert.deepEqual(result.stats, {
      payloadSize: 0,
      packets: 0,
      caps: [],
      wants: 3,
      haves: 0,
      shallows: 0,
      deepen: "",
      filter: "",
    });
  } finally {
    await s.close();
  }
});

Deno.test("GitalyClient rejects misuse: a transport without its connection, an unknown transport", () => {
  const body = new ReadableStream<Uint8Array>();
  assert.throws(() => new GitalyClient({}).postUploadPack(repo, body, { transport: "grpc" }), TypeError);
  assert.throws(() => new GitalyClient({}).postUploadPack(repo, body, { transport: "v3" }), TypeError);
  assert.throws(
    () => new GitalyClient({}).postUploadPack(repo, body, { transport: "sidechannel" }),
    TypeError,
  );
  assert.throws(() => new GitalyClient({}).sshUploadPack(repo, body), TypeError);
  assert.throws(() => new GitalyClient({}).infoRefsUploadPack(repo), TypeError);
  const grpc = { stream: () => assert.fail("no call") } as unknown as GrpcClient;
  assert.throws(
    () => new GitalyClient({ grpc }).postUploadPack(repo, body, { transport: "ftp" as "grpc" }),
    TypeError,
  );
});

for (const { transport } of TRANSPORTS) {
  rigTest(
    `GitalyClient (${transport}): a request body that fails cancels the RPC; git is stopped`,
    async (rig) => {
      let controller!: ReadableStreamDefaultController<Uint8Array>;
      const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
      const call = rig.client.postUploadPack(rig.repo, body, { transport });
      controller.enqueue(pkts(`want ${rig.s.repo.head} ${V0_CAPS}\n`));
      await eventually(() => gitProcessesUnder(rig.s.root).length > 0, 10_000, "git to start");
      const pids = gitProcessesUnder(rig.s.root);
      controller.error(new Error("the git client went away"));
      const { error } = await collect(call.body);
      assert.ok(error instanceof GrpcError);
      assert.equal(error.code, Status.CANCELLED);
      await assert.rejects(call.done, { code: Status.CANCELLED });
      await eventually(() => rig.server.inFlight === 0, 10_000, "the RPC to end");
      assert.deepEqual(await waitGone(pids), []);
    },
  );
}

Deno.test({
  name:
    "GitalyClient: a paused reader holds the server back on every transport (nothing buffers the whole pack); the 61 MiB pack arrives intact",
  ignore: noGit,
  async fn() {
    const medium = await referenceRepo(MEDIUM_SPEC, MEDIUM_REPO_DIR);
    const root = medium.path.slice(0, medium.path.lastIndexOf("/"));
    await using server = await StorageServer.start({ storages: { cache: root } });
    const registry = new SidechannelRegistry();
    await using backchannel = await BackchannelClient.dial({
      port: server.addr.port,
      handshakers: { sidechannel: registry },
    });
    await using grpc = await GrpcClient.connect({ port: server.addr.port });
    const client = new GitalyClient({ grpc, backchannel: { client: backchannel, registry } });
    const cached = { storageName: "cache", relativePath: medium.path.slice(root.length + 1) };
    const request = pkts(`want ${medium.head} ${V0_CAPS}\n`, "0000", "done\n");
    for (const { transport } of TRANSPORTS) {
      const call = client.postUploadPack(cached, ReadableStream.from([request]), { transport });
      const reader = call.body.getReader();
      const chunks: Uint8Array[] = [];
      let got = 0;
      while (got < 1 << 20) {
        const { value } = await reader.read();
        chunks.push(value!.slice());
        got += value!.byteLength;
      }
      // git needs well under a second for this pack; paused, the call must stay open far longer.
      const until = performance.now() + 1000;
      while (performance.now() < until) {
        assert.equal(server.inFlight, 1, `${transport}: the RPC is still running`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        chunks.push(value.slice());
        got += value.byteLength;
      }
      assert.ok(got > 60 * (1 << 20), `${transport}: the whole pack arrived after the pause`);
      assert.equal(await call.done.then(() => "ok"), "ok");
      // Every byte is intact (reused buffers on the way were not overwritten early): the
      // pack's trailing SHA-1 matches its content.
      const packets = splitPkts(concat(chunks));
      assert.equal(pktText(packets[0]!), "NAK\n");
      const { pack } = demux(packets.slice(1));
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-1", pack.slice(0, -20)));
      assert.deepEqual(digest, pack.subarray(-20), `${transport}: the pack checksum`);
    }
  },
});

rigTest(
  "GitalyClient.infoRefsUploadPack(): v0 is the service line plus git's advertisement, internal refs hidden",
  async (rig) => {
    const path = rig.s.repo.path;
    const head = rig.s.repo.head;
    for (
      const ref of ["refs/tmp/x", "refs/keep-around/y", "refs/remotes/origin/z", "refs/merge-requests/1/head"]
    ) {
      await git(["-C", path, "update-ref", ref, head]);
    }
    const v0 = await new Response(rig.client.infoRefsUploadPack(rig.repo)).text();
    assert.ok(v0.startsWith("001e# service=git-upload-pack\n0000"));
    assert.ok(v0.includes(" refs/merge-requests/1/head\n"), "read-only internal refs are advertised");
    for (const hidden of ["refs/tmp/", "refs/keep-around/", "refs/remotes/"]) {
      assert.ok(!v0.includes(hidden), hidden);
    }
    const v2 = await new Response(rig.client.infoRefsUploadPack(rig.repo, { gitProtocol: "version=2" }))
      .text();
    assert.ok(v2.startsWith("001e# service=git-upload-pack\n0000000eversion 2\n"));
    assert.ok(v2.includes("ls-refs"));
    const missing = await collect(rig.client.infoRefsUploadPack({ storageName: "fake", relativePath: "x" }));
    assert.equal((missing.error as GrpcError).code, Status.INVALID_ARGUMENT);
    const entry = rig.log.at(-2)!;
    assert.equal(entry.method, "/gitaly.SmartHTTPService/InfoRefsUploadPack");
    assert.equal(entry.bytesOut, v2.length);
  },
);

for (const { transport } of TRANSPORTS) {
  rigTest(
    `GitalyClient (${transport}): a request body the server never takes is cancelled when the RPC fails`,
    async (rig) => {
      let cancelled: (reason: unknown) => void;
      const wasCancelled = new Promise((resolve) => (cancelled = resolve));
      const body = new ReadableStream<Uint8Array>({ cancel: (reason) => cancelled(reason) });
      const call = rig.client.postUploadPack({ storageName: "fake", relativePath: "x" }, body, { transport });
      await assert.rejects(call.done, { code: Status.INVALID_ARGUMENT });
      await withTimeout(wasCancelled, 10_000, "the body to be cancelled");
      await collect(call.body);
    },
  );
}
