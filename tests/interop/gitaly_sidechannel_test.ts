/**
 * Backchannel/sidechannel interop with a Go peer playing Gitaly's roles
 * (`tests/interop/gitaly_peer/`, hashicorp/yamux + grpc-go from Debian): its client
 * against our server and its server against our client, each a 64 MiB sidechannel echo
 * with sha256 checks on both ends.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  BackchannelClient,
  callWithSidechannel,
  GrpcClient,
  GrpcError,
  grpcMethod,
  GrpcServer,
  openSidechannelForCall,
  rawCodec,
  serveBackchannel,
  sidechannelErrorInterceptor,
  SidechannelRegistry,
  Status,
} from "../../mod.ts";
import { ignoreUnless, pseudoRandomBytes, sha256Hex } from "../_util.ts";
import { buildGoPeer } from "./_go.ts";
import { assertPeerOk, runPeer, startPeer } from "./_peer.ts";

const ignore = ignoreUnless("go");
const MiB = 1024 * 1024;
const echo = grpcMethod({
  service: "sc.Interop",
  name: "Echo",
  kind: "unary",
  request: rawCodec,
  response: rawCodec,
});

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Our server side of `/sc.Interop/Echo`: de-framed bytes echoed raw; reply sha256 + length. */
function echoServer(received: { sha256: string; bytes: number }[]): GrpcServer {
  return new GrpcServer({ interceptors: [sidechannelErrorInterceptor] }).handle(
    echo,
    async (_request, call) => {
      const conn = await openSidechannelForCall(call);
      const hash = createHash("sha256");
      const buffer = new Uint8Array(256 * 1024);
      let total = 0;
      try {
        for (;;) {
          const n = await conn.read(buffer);
          if (n === null) break;
          const chunk = buffer.subarray(0, n);
          hash.update(chunk);
          total += n;
          await conn.write(chunk);
        }
      } finally {
        await conn.close();
      }
      const digest = new Uint8Array(hash.digest());
      received.push({ sha256: hex(digest), bytes: total });
      const reply = new Uint8Array(40);
      reply.set(digest);
      new DataView(reply.buffer).setBigUint64(32, BigInt(total));
      return reply;
    },
  );
}

Deno.test({
  name: "gitaly_peer: Gitaly's client (Go) against our server, 64 MiB sidechannel echo",
  ignore,
  async fn() {
    const bin = await buildGoPeer("gitaly_peer");
    const received: { sha256: string; bytes: number }[] = [];
    await using listener = serveBackchannel({ hostname: "127.0.0.1", port: 0 }, echoServer(received));
    const exit = await runPeer(bin, [
      "-mode",
      "client",
      "-target",
      `127.0.0.1:${listener.addr.port}`,
      "-bytes",
      String(64 * MiB),
    ], 120_000);
    const result = assertPeerOk(exit, "gitaly_peer client");
    const expected = await sha256Hex(pseudoRandomBytes(64 * MiB, 1));
    const [call] = result.calls as { sha256Sent: string; sha256Echoed: string; sha256Server: string }[];
    assert.equal(call!.sha256Sent, expected);
    assert.equal(call!.sha256Echoed, expected);
    assert.equal(call!.sha256Server, expected);
    assert.deepEqual(received, [{ sha256: expected, bytes: 64 * MiB }]);
  },
});

Deno.test({
  name:
    "gitaly_peer: Gitaly's client (Go) against our server, 8 concurrent 4 MiB sidechannels on one connection",
  ignore,
  async fn() {
    const bin = await buildGoPeer("gitaly_peer");
    const received: { sha256: string; bytes: number }[] = [];
    await using listener = serveBackchannel({ hostname: "127.0.0.1", port: 0 }, echoServer(received));
    const exit = await runPeer(bin, [
      "-mode",
      "client",
      "-target",
      `127.0.0.1:${listener.addr.port}`,
      "-bytes",
      String(4 * MiB),
      "-calls",
      "8",
    ], 120_000);
    const result = assertPeerOk(exit, "gitaly_peer client");
    assert.equal((result.calls as unknown[]).length, 8);
    const expected = await Promise.all(
      Array.from({ length: 8 }, (_, i) => sha256Hex(pseudoRandomBytes(4 * MiB, i + 1))),
    );
    assert.deepEqual(received.map((r) => r.sha256).sort(), [...expected].sort());
    assert.equal(listener.backchannel.registry.size <= 1, true);
  },
});

Deno.test({
  name: "gitaly_peer: Gitaly's server (Go) against our client, 64 MiB sidechannel echo",
  ignore,
  async fn() {
    const bin = await buildGoPeer("gitaly_peer");
    const peer = await startPeer(bin, ["-mode", "server", "-listen", "127.0.0.1:0"], {
      listen: true,
      timeoutMs: 120_000,
    });
    try {
      const registry = new SidechannelRegistry();
      await using client = await BackchannelClient.dial({
        port: peer.port,
        handshakers: { sidechannel: registry },
      });
      const data = pseudoRandomBytes(64 * MiB, 1);
      const expected = await sha256Hex(data);
      let echoed = "";
      let echoedBytes = 0;
      const reply = await callWithSidechannel(registry, async (conn) => {
        const reading = (async () => {
          const hash = createHash("sha256");
          const buffer = new Uint8Array(256 * 1024);
          for (;;) {
            const n = await conn.read(buffer);
            if (n === null) break;
            hash.update(buffer.subarray(0, n));
            echoedBytes += n;
          }
          echoed = hex(new Uint8Array(hash.digest()));
        })();
        for (let offset = 0; offset < data.byteLength; offset += MiB) {
          await conn.write(data.subarray(offset, offset + MiB));
        }
        await conn.closeWrite();
        await reading;
      }, (metadata) => client.grpc.unary(echo, new Uint8Array(0), { metadata }));
      assert.equal(echoedBytes, 64 * MiB);
      assert.equal(echoed, expected);
      assert.equal(hex(reply.subarray(0, 32)), expected);
      assert.equal(new DataView(reply.buffer, reply.byteOffset).getBigUint64(32), BigInt(64 * MiB));

      // A plain gRPC client on the same port is served too (the Go listenmux replays its bytes).
      await using plain = await GrpcClient.connect({ port: peer.port });
      const error = await plain.unary(echo, new Uint8Array(0), { metadata: [["gitaly-sidechannel-id", "0"]] })
        .catch((e) => e);
      assert.ok(error instanceof GrpcError);
      assert.equal(error.code, Status.FAILED_PRECONDITION);
    } finally {
      const exit = await peer.stop();
      const result = assertPeerOk(exit, "gitaly_peer server");
      assert.equal(result.multiplexed, 1);
      assert.equal(result.plain, 1);
      assert.equal(result.sidechannels, 1);
      assert.equal(result.rejected, 1);
      assert.equal(result.bytes, 64 * MiB);
    }
  },
});
