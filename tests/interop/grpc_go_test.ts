/**
 * gRPC interop with grpc-go (Debian's 1.33) through `tests/interop/grpc_peer/`.
 *
 * For now this proves the harness: the Go client passes every case against the Go
 * server. Cases against our own HTTP/2 + gRPC stack go here once it lands, using
 * `startGrpcGoServer()` (our client → Go server) and `runGrpcGoClient()` (Go client →
 * our server).
 */

import assert from "node:assert/strict";
import { ignoreUnless, pseudoRandomBytes, sha256Hex } from "../_util.ts";
import {
  assertGrpcGoClientOk,
  GRPC_INTEROP_CASES,
  GRPC_RAW_CASES,
  runGrpcGoClient,
  startGrpcGoServer,
} from "./_grpc_go.ts";
import { assertPeerOk, type PeerResult } from "./_peer.ts";

const ignore = ignoreUnless("go");

function caseNames(result: PeerResult): string[] {
  return (result.cases as PeerResult[]).filter((c) => c.ok).map((c) => c.testCase as string);
}

Deno.test({
  name: "grpc_peer Go client passes every interop case against the Go server",
  ignore,
  async fn() {
    const server = await startGrpcGoServer();
    let stopped = false;
    try {
      const result = await assertGrpcGoClientOk(server.port, "all");
      assert.deepEqual(caseNames(result), [...GRPC_INTEROP_CASES]);
      const exit = await server.stop();
      stopped = true;
      const calls = assertPeerOk(exit, "grpc_peer server").calls as Record<string, number>;
      assert.equal(calls.UnaryCall, 4);
      assert.equal(calls.UnimplementedCall, 1);
    } finally {
      if (!stopped) await server.stop();
    }
  },
});

Deno.test({
  name: "grpc_peer Go client passes the raw cases (sha256 checked) over TLS with +raw content-subtype",
  ignore,
  async fn() {
    await using server = await startGrpcGoServer({ tls: true });
    const bytes = 3_000_000;
    const result = await assertGrpcGoClientOk(server.port, "all-raw", {
      caFile: server.certFile!,
      bytes,
      args: ["-subtype", "raw"],
    });
    assert.deepEqual(caseNames(result), [...GRPC_RAW_CASES]);
    const pull = (result.cases as PeerResult[]).find((c) => c.testCase === "raw-pull")!;
    assert.equal(pull.sha256, await sha256Hex(pseudoRandomBytes(bytes, 1)));
  },
});

Deno.test({
  name: "grpc_peer HalfDuplexCall and a 16 MiB raw Pull with 8/16 MiB windows on both sides",
  ignore,
  async fn() {
    const windows = { window: 8 << 20, connWindow: 16 << 20 };
    await using server = await startGrpcGoServer(windows);
    const result = await assertGrpcGoClientOk(server.port, "half_duplex,raw-pull", {
      ...windows,
      bytes: 16 << 20,
    });
    assert.deepEqual(caseNames(result), ["half_duplex", "raw-pull"]);
  },
});

Deno.test({
  name: "grpc_peer client reports a failing case with ok:false and exit 1",
  ignore,
  async fn() {
    await using server = await startGrpcGoServer();
    const exit = await runGrpcGoClient(server.port, "no_such_case");
    assert.equal(exit.code, 1);
    assert.equal(exit.result.ok, false);
    assert.match(exit.result.error ?? "", /unknown -test_case/);
  },
});
