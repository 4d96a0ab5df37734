/**
 * StorageServer: plain and multiplexed clients on one port, the V3 port, TLS, token
 * auth, the per-RPC log, graceful drain, and clients that vanish mid-pack (their git
 * process must die). The mid-pack cases use the cached ≈ 61 MiB repository
 * (`.cache/test-repo-60m`).
 */

import assert from "node:assert/strict";
import { dirname } from "node:path";
import {
  BackchannelClient,
  fromDenoConn,
  GitalyClient,
  type GitalyConnections,
  type GitalyTransport,
  GrpcClient,
  GrpcError,
  SidechannelRegistry,
  Status,
  type StorageLogEntry,
  StorageServer,
  tokenAuthInterceptor,
} from "../../mod.ts";
import { MEDIUM_REPO_DIR, MEDIUM_SPEC, referenceRepo } from "../../bench/_reference_repo.ts";
import { text, withTimeout } from "../_util.ts";
import { demux, hasProc, makeStorage, noGit, pkts, pktText, splitPkts, V0_CAPS, verifyPack } from "./_git.ts";
import {
  collect,
  eventually,
  fetchWith,
  gitProcessesUnder,
  rigTest,
  TRANSPORTS,
  waitGone,
} from "./_gitaly.ts";

const MiB = 1024 * 1024;
const FIXTURES = new URL("../fixtures/http2/", import.meta.url).pathname;

rigTest(
  "StorageServer serves plain and multiplexed clients on one port, and V3 on both ports",
  async (rig) => {
    const repo = rig.repo;
    const advertisement = (client: GitalyClient) => new Response(client.infoRefsUploadPack(repo)).text();
    const viaPlain = await advertisement(new GitalyClient({ grpc: rig.grpc }));
    const viaBackchannel = await advertisement(
      new GitalyClient({ backchannel: { client: rig.backchannel, registry: rig.registry } }),
    );
    const viaV3Port = await advertisement(new GitalyClient({ v3: rig.v3 }));
    assert.equal(viaPlain, viaBackchannel);
    assert.equal(viaPlain, viaV3Port);
    assert.ok(viaPlain.startsWith("001e# service=git-upload-pack\n0000"));
    assert.ok(viaPlain.includes(`${rig.s.repo.head} refs/heads/main`));

    const request = pkts(`want ${rig.s.repo.head} ofs-delta\n`, "0000", "done\n");
    for (
      const connections of [{ v3: rig.v3 }, { grpc: rig.grpc }, {
        backchannel: { client: rig.backchannel, registry: rig.registry },
      }] as GitalyConnections[]
    ) {
      const client = new GitalyClient(connections);
      const response = client.postUploadPack(repo, ReadableStream.from([request]), { transport: "v3" });
      const { bytes, error } = await collect(response.body);
      assert.equal(error, undefined);
      assert.equal(text(bytes.subarray(0, 12)), "0008NAK\nPACK");
      assert.equal(await response.done, null);
    }
    // A plain connection cannot carry a sidechannel; the misuse is caught before any RPC.
    assert.throws(
      () =>
        new GitalyClient({ grpc: rig.grpc }).postUploadPack(repo, ReadableStream.from([request]), {
          transport: "sidechannel",
        }),
      TypeError,
    );
    // A sidechannel RPC on the plain connection fails as in Gitaly (non-multiplexed → INTERNAL).
    const registry = new SidechannelRegistry();
    const fake = new GitalyClient({
      backchannel: { client: { grpc: rig.grpc } as unknown as BackchannelClient, registry },
    });
    const failed = fake.postUploadPack(repo, ReadableStream.from([request]), { transport: "sidechannel" });
    const error = await failed.done.catch((e) => e);
    assert.ok(error instanceof GrpcError);
    assert.equal(error.code, Status.INTERNAL);
    assert.match(error.details, /^open sidechannel: .*non-multiplexed connection/);
    assert.equal((await collect(failed.body)).error, error);
  },
);

rigTest(
  "StorageServer logs one entry per RPC: method, repository, transport, bytes, duration, status",
  async (rig) => {
    const request = pkts(`want ${rig.s.repo.head} ofs-delta\n`, "0000", "done\n");
    const sizes: number[] = [];
    for (const { transport } of TRANSPORTS) {
      const result = await fetchWith(rig, request, { transport });
      assert.equal(result.error, undefined);
      sizes.push(result.bytes.byteLength);
    }
    await fetchWith(rig, request, { transport: "grpc" }, { storageName: "nope", relativePath: "x" });
    await new Response(rig.client.infoRefsUploadPack(rig.repo)).arrayBuffer();
    const entries = rig.log.map((
      e,
    ) => [e.method.split("/").at(-1), e.transport, e.status, e.bytesIn, e.bytesOut]);
    assert.deepEqual(entries, [
      ["PostUploadPackWithSidechannel", "sidechannel", "OK", request.byteLength, sizes[0]],
      ["PostUploadPackV3", "v3", "OK", request.byteLength, sizes[1]],
      ["PostUploadPack", "grpc", "OK", request.byteLength, sizes[2]],
      ["PostUploadPack", "grpc", "INVALID_ARGUMENT", 0, 0],
      ["InfoRefsUploadPack", "grpc", "OK", 0, rig.log.at(-1)!.bytesOut],
    ]);
    assert.ok(rig.log.every((e) => e.durationMs >= 0 && e.remoteAddr !== undefined));
    assert.equal(rig.log[3]!.error?.details, "storage name not found");
    assert.deepEqual(rig.log[3]!.repository, { storageName: "nope", relativePath: "x" });
  },
);

Deno.test({
  name:
    "StorageServer with a token: UNAUTHENTICATED without it on every transport and both ports, OK with it",
  ignore: noGit,
  async fn() {
    const s = await makeStorage();
    const log: StorageLogEntry[] = [];
    await using server = await StorageServer.start({
      storages: s.storages,
      v3Port: 0,
      token: "s3cret",
      onLog: (e) => log.push(e),
    });
    const auth = [tokenAuthInterceptor({ token: "s3cret" })];
    const repo = { storageName: "default", relativePath: "repo.git" };
    const request = pkts(`want ${s.repo.head} ofs-delta\n`, "0000", "done\n");
    try {
      for (const token of [false, true]) {
        const interceptors = token ? auth : [];
        const registry = new SidechannelRegistry();
        await using backchannel = await BackchannelClient.dial({
          port: server.addr.port,
          handshakers: { sidechannel: registry },
          grpc: { interceptors },
        });
        await using grpc = await GrpcClient.connect({ port: server.addr.port, interceptors });
        await using v3 = await GrpcClient.connect({ port: server.v3Addr!.port, interceptors });
        const client = new GitalyClient({ grpc, v3, backchannel: { client: backchannel, registry } });
        for (const transport of ["sidechannel", "v3", "grpc"] as GitalyTransport[]) {
          const response = client.postUploadPack(repo, ReadableStream.from([request]), { transport });
          const { error } = await collect(response.body);
          const outcome = await response.done.then(() => undefined, (e) => e);
          if (token) {
            assert.equal(outcome, undefined, `${transport}: ${outcome?.details}`);
            assert.equal(error, undefined);
          } else {
            assert.equal(outcome?.code, Status.UNAUTHENTICATED, transport);
            assert.equal(error, outcome);
          }
        }
        const info = await collect(client.infoRefsUploadPack(repo));
        assert.equal((info.error as GrpcError | undefined)?.code, token ? undefined : Status.UNAUTHENTICATED);
        assert.equal(registry.waiting, 0);
      }
      // The metadata option works as well as an interceptor.
      await using grpc = await GrpcClient.connect({ port: server.addr.port });
      const plain = new GitalyClient({ grpc });
      const text = await new Response(
        plain.infoRefsUploadPack(repo, { metadata: [["authorization", "Bearer s3cret"]] }),
      ).text();
      assert.ok(text.startsWith("001e# service=git-upload-pack"));
      assert.equal(log.filter((e) => e.status === "UNAUTHENTICATED").length, 4);
      assert.equal(log.filter((e) => e.status === "OK").length, 5);
    } finally {
      await server.shutdown();
      await s.cleanup();
    }
  },
});

Deno.test({
  name: "StorageServer over TLS: plain gRPC, V3 and a backchannel with sidechannels on the TLS port",
  ignore: noGit,
  async fn() {
    const [ca, cert, key] = await Promise.all(
      ["ca.pem", "cert.pem", "key.pem"].map((f) => Deno.readTextFile(FIXTURES + f)),
    );
    const s = await makeStorage();
    await using server = await StorageServer.start({ storages: s.storages, cert: cert!, key: key! });
    try {
      await using grpc = await GrpcClient.connect({ port: server.addr.port, tls: { caCerts: [ca!] } });
      const tls = await Deno.connectTls({ hostname: "127.0.0.1", port: server.addr.port, caCerts: [ca!] });
      await tls.handshake();
      const registry = new SidechannelRegistry();
      await using backchannel = await BackchannelClient.connect(fromDenoConn(tls), {
        handshakers: { sidechannel: registry },
      });
      const client = new GitalyClient({ grpc, backchannel: { client: backchannel, registry } });
      const repo = { storageName: "default", relativePath: "repo.git" };
      const request = pkts(`want ${s.repo.head} ofs-delta\n`, "0000", "done\n");
      for (const transport of ["sidechannel", "v3", "grpc"] as GitalyTransport[]) {
        const response = client.postUploadPack(repo, ReadableStream.from([request]), { transport });
        const { bytes, error } = await collect(response.body);
        assert.equal(error, undefined, transport);
        assert.equal(text(bytes.subarray(0, 12)), "0008NAK\nPACK", transport);
        await response.done;
      }
      // Plain h2c is refused on the TLS port.
      const plain = await GrpcClient.connect({ port: server.addr.port });
      const refused = await collect(new GitalyClient({ grpc: plain }).infoRefsUploadPack(repo));
      assert.ok(refused.error instanceof GrpcError);
      plain.abort();
    } finally {
      await server.shutdown();
      await s.cleanup();
    }
  },
});

rigTest(
  "StorageServer with sidechannelWriteBuffer: the sidechannel response is intact (index-pack, fsck) and progress still flows",
  async (rig) => {
    const { head } = rig.s.repo;
    const response = rig.client.postUploadPack(
      rig.repo,
      ReadableStream.from([pkts(`want ${head} ${V0_CAPS}\n`, "0000", "done\n")]),
      { transport: "sidechannel" },
    );
    const { bytes, error } = await collect(response.body);
    assert.equal(error, undefined);
    const packets = splitPkts(bytes);
    assert.equal(pktText(packets[0]!), "NAK\n");
    const { pack, progress } = demux(packets.slice(1));
    assert.match(progress, /Enumerating objects/);
    const verified = await verifyPack(pack, { "refs/heads/main": head });
    await verified.cleanup();
    assert.equal((await response.done)?.wants, 1);
  },
  { server: { sidechannelWriteBuffer: 4096 } },
);

Deno.test("StorageServer.start() rejects misuse", async () => {
  await assert.rejects(StorageServer.start({} as never), TypeError);
  await assert.rejects(StorageServer.start({ storages: {}, port: 70000 }), RangeError);
  await assert.rejects(StorageServer.start({ storages: {}, v3Port: -1 }), RangeError);
  await assert.rejects(StorageServer.start({ storages: {}, cert: "x" }), TypeError);
  await assert.rejects(StorageServer.start({ storages: {}, negotiationTimeout: -1 }), RangeError);
  await assert.rejects(StorageServer.start({ storages: {}, sidechannelWriteBuffer: 1.5 }), RangeError);
});

/** A storage server on the cached 61 MiB repository, and a raw connection to dial clients over. */
async function mediumServer(extra: { v3Port?: number; sidechannelWriteBuffer?: number } = {}) {
  const repoPath = await referenceRepo(MEDIUM_SPEC, MEDIUM_REPO_DIR);
  const log: StorageLogEntry[] = [];
  const server = await StorageServer.start({
    storages: { cache: dirname(repoPath.path) },
    onLog: (e) => log.push(e),
    ...extra,
  });
  const repo = { storageName: "cache", relativePath: repoPath.path.split("/").at(-1)! };
  const request = pkts(`want ${repoPath.head} ${V0_CAPS}\n`, "0000", "done\n");
  return { server, log, repo, request, repoPath: repoPath.path, head: repoPath.head };
}

/** A client of `transport` over its own raw TCP connection, which the test can cut. */
async function rawClient(
  port: number,
  transport: GitalyTransport,
): Promise<{ client: GitalyClient; conn: Deno.TcpConn; close(): Promise<void> }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  if (transport === "sidechannel") {
    const registry = new SidechannelRegistry();
    const backchannel = await BackchannelClient.connect(fromDenoConn(conn), {
      handshakers: { sidechannel: registry },
    });
    return {
      client: new GitalyClient({ backchannel: { client: backchannel, registry } }),
      conn,
      close: () => backchannel.close(),
    };
  }
  const grpc = new GrpcClient(fromDenoConn(conn));
  return { client: new GitalyClient({ grpc }), conn, close: () => grpc.close() };
}

/** Reads at least `bytes` of a stream; returns the reader (still locked). */
async function readSome(
  body: ReadableStream<Uint8Array>,
  bytes: number,
): Promise<ReadableStreamDefaultReader<Uint8Array>> {
  const reader = body.getReader();
  let got = 0;
  while (got < bytes) {
    const { value, done } = await reader.read();
    assert.ok(!done, "the response ended early");
    got += value.byteLength;
  }
  return reader;
}

const VANISHING = [
  ...TRANSPORTS.map(({ transport }) => ({ transport, label: transport, buffer: 0 })),
  { transport: "sidechannel" as const, label: "sidechannel, sidechannelWriteBuffer", buffer: 256 * 1024 },
];

for (const { transport, label, buffer } of VANISHING) {
  for (const how of ["the connection drops", "the client cancels the response"] as const) {
    Deno.test({
      name: `StorageServer (${label}): ${how} mid-pack → git and pack-objects are stopped, no process left`,
      ignore: noGit || !hasProc,
      async fn() {
        const m = await mediumServer({ sidechannelWriteBuffer: buffer });
        try {
          const { client, conn, close } = await rawClient(m.server.addr.port, transport);
          const response = client.postUploadPack(m.repo, ReadableStream.from([m.request]), { transport });
          response.done.catch(() => {});
          const reader = await withTimeout(readSome(response.body, 2 * MiB), 30_000, "the first 2 MiB");
          const pids = gitProcessesUnder(m.repoPath);
          assert.ok(pids.length >= 1, "git runs while the pack streams");
          if (how === "the connection drops") {
            conn.close();
            await reader.cancel().catch(() => {});
          } else {
            await reader.cancel();
          }
          const outcome = await response.done.then(() => undefined, (e) => e);
          assert.ok(outcome instanceof GrpcError, "the client sees the call fail");
          await eventually(
            () => m.server.inFlight === 0 && m.server.gitProcesses === 0,
            15_000,
            "the RPC to end",
          );
          assert.deepEqual(await waitGone(pids), [], "upload-pack and pack-objects are gone");
          assert.deepEqual(gitProcessesUnder(m.repoPath), []);
          const entry = m.log.at(-1)!;
          assert.equal(entry.transport, transport);
          assert.ok(
            entry.code === Status.CANCELLED || entry.code === Status.FAILED_PRECONDITION,
            entry.status,
          );
          assert.ok(entry.bytesOut < 40 * MiB, "git did not run to the end");
          if (how !== "the connection drops") await close();
        } finally {
          await m.server.shutdown();
        }
      },
    });
  }
}

Deno.test({
  name: "StorageServer.shutdown() drains: an in-flight 61 MiB fetch completes, then the server closes",
  ignore: noGit,
  async fn() {
    const m = await mediumServer({ v3Port: 0 });
    const { client, close } = await rawClient(m.server.addr.port, "sidechannel");
    const v3 = await rawClient(m.server.v3Addr!.port, "v3");
    try {
      const responses = [
        client.postUploadPack(m.repo, ReadableStream.from([m.request]), { transport: "sidechannel" }),
        v3.client.postUploadPack(m.repo, ReadableStream.from([m.request]), { transport: "v3" }),
      ];
      const readers = await Promise.all(responses.map((r) => readSome(r.body, MiB)));
      let closed = false;
      const shutdown = m.server.shutdown().then(() => (closed = true));
      // New connections are refused once shutdown has started.
      await eventually(() => m.server.inFlight === 2);
      await assert.rejects(
        Deno.connect({ hostname: "127.0.0.1", port: m.server.addr.port }).then((c) => c.close()),
      );
      for (const reader of readers) {
        let total = 0;
        let last: Uint8Array = new Uint8Array(0);
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          total += value.byteLength;
          last = value;
        }
        assert.ok(total > 50 * MiB, `the whole pack arrived (${total})`);
        assert.equal(text(last.subarray(-4)), "0000", "the response ends with its flush");
      }
      await Promise.all(responses.map((r) => r.done));
      await withTimeout(shutdown, 15_000, "shutdown");
      assert.ok(closed);
      assert.deepEqual(m.log.map((e) => e.status), ["OK", "OK"]);
    } finally {
      await close().catch(() => {});
      await v3.close().catch(() => {});
      await m.server.shutdown();
    }
  },
});

Deno.test({
  name:
    "StorageServer.shutdown({ signal }) aborted: in-flight fetches fail and their git processes are reaped",
  ignore: noGit || !hasProc,
  async fn() {
    const m = await mediumServer();
    const { client, close } = await rawClient(m.server.addr.port, "sidechannel");
    try {
      const response = client.postUploadPack(m.repo, ReadableStream.from([m.request]), {
        transport: "sidechannel",
      });
      response.done.catch(() => {});
      const reader = await readSome(response.body, MiB);
      const pids = gitProcessesUnder(m.repoPath);
      assert.ok(pids.length > 0);
      await withTimeout(m.server.shutdown({ signal: AbortSignal.abort() }), 15_000, "shutdown");
      assert.equal(m.server.inFlight, 0, "shutdown waited for the handler");
      assert.equal(m.server.gitProcesses, 0, "shutdown waited until git was reaped");
      assert.deepEqual(await waitGone(pids, 5_000), []);
      await reader.cancel().catch(() => {});
      assert.ok((await response.done.catch((e) => e)) instanceof GrpcError);
    } finally {
      await close().catch(() => {});
    }
  },
});
