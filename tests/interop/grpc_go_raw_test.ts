/**
 * Our gRPC stack with grpc-go (Debian's 1.33, `tests/interop/grpc_peer/`) in both
 * roles on the raw codec: unary and all streaming kinds, deadlines, cancellation,
 * metadata, status messages, large messages; `ForceCodec` (bare `application/grpc`) and
 * `CallContentSubtype("raw")` (`application/grpc+raw`).
 */

import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { GrpcClient, GrpcError, type Metadata, serveGrpc, Status } from "../../mod.ts";
import { concat, ignoreUnless, pseudoRandomBytes, sha256Hex } from "../_util.ts";
import { assertGrpcGoClientOk, GRPC_RAW_CASES, startGrpcGoServer } from "./_grpc_go.ts";
import type { PeerResult } from "./_peer.ts";
import { SimpleRequestSchema } from "./gen/grpc/testing/messages_pb.ts";
import { interopServer, RAW, TEST } from "./grpc_testing/services.ts";

const ignore = ignoreUnless("go");

function passed(result: PeerResult): string[] {
  return (result.cases as PeerResult[]).filter((c) => c.ok).map((c) => c.testCase as string);
}

function u64(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

Deno.test({
  name:
    "grpc-go client → our server: every raw case with ForceCodec and with the +raw subtype (sha256 checked)",
  ignore,
  async fn() {
    await using listener = serveGrpc({ hostname: "127.0.0.1", port: 0 }, interopServer());
    const bytes = 3_000_003; // raw-echo sends it as one message: under the 4 MiB default limit
    for (const args of [[], ["-subtype", "raw"]]) {
      const result = await assertGrpcGoClientOk(listener.addr.port, "all-raw", { bytes, args });
      assert.deepEqual(passed(result), [...GRPC_RAW_CASES]);
      const pull = (result.cases as PeerResult[]).find((c) => c.testCase === "raw-pull")!;
      assert.equal(pull.sha256, await sha256Hex(pseudoRandomBytes(bytes, 1)));
    }
  },
});

Deno.test({
  name: "grpc-go client → our server: 48 MiB messages both ways and a 64 MiB pull with big windows",
  ignore,
  async fn() {
    await using listener = serveGrpc(
      { hostname: "127.0.0.1", port: 0, initialWindowSize: 8 << 20, connectionWindowSize: 16 << 20 },
      interopServer({ maxReceiveMessageBytes: 64 << 20 }),
    );
    const echo = await assertGrpcGoClientOk(listener.addr.port, "raw-echo", {
      bytes: 48 << 20,
      args: ["-subtype", "raw"],
    });
    assert.equal(echo.bytes, 48 << 20);
    const pull = await assertGrpcGoClientOk(listener.addr.port, "raw-pull", {
      bytes: 64 << 20,
      window: 8 << 20,
      connWindow: 16 << 20,
      args: ["-verify=false"],
    });
    assert.equal(pull.bytes, 64 << 20);
  },
});

Deno.test({
  name: "Our client → grpc-go server: raw unary, pull, push, bidi, large messages, metadata",
  ignore,
  async fn() {
    await using server = await startGrpcGoServer({ window: 8 << 20, connWindow: 16 << 20 });
    await using client = await GrpcClient.connect({
      port: server.port,
      maxReceiveMessageBytes: 64 << 20,
      initialWindowSize: 8 << 20,
      connectionWindowSize: 16 << 20,
    });
    // Unary echo of a large message, with metadata both ways.
    const big = pseudoRandomBytes(40 << 20, 9);
    let header: Metadata = [];
    let trailer: Metadata = [];
    const echoed = await client.unary(RAW.echo, big, {
      metadata: [["x-grpc-test-echo-initial", "hi"], [
        "x-grpc-test-echo-trailing-bin",
        new Uint8Array([0, 1, 255]),
      ]],
      onHeader: (m) => header = m,
      onTrailer: (m) => trailer = m,
    });
    assert.equal(await sha256Hex(echoed), await sha256Hex(big));
    assert.deepEqual(header.filter(([k]) => k.startsWith("x-grpc")), [["x-grpc-test-echo-initial", "hi"]]);
    assert.deepEqual(trailer.filter(([k]) => k.startsWith("x-grpc")), [[
      "x-grpc-test-echo-trailing-bin",
      new Uint8Array([0, 1, 255]),
    ]]);
    // Server streaming: the Go server's PRNG bytes.
    const n = 32 << 20;
    const pull = client.serverStream(RAW.pull, u64(n));
    const chunks = await Array.fromAsync(pull.responses);
    assert.equal(await sha256Hex(concat(chunks)), await sha256Hex(pseudoRandomBytes(n, 1)));
    // Client streaming: the Go server replies with the total and sha256.
    const parts = Array.from({ length: 100 }, (_, i) => pseudoRandomBytes(100_000 + i, i));
    const reply = await client.clientStream(RAW.push, parts);
    assert.equal(Number(new DataView(reply.buffer, reply.byteOffset).getBigUint64(0)), 100 * 100_000 + 4950);
    const digest = Array.from(reply.subarray(8), (b) => b.toString(16).padStart(2, "0")).join("");
    assert.equal(digest, await sha256Hex(concat(parts)));
    // Bidi, writing while reading.
    const bidi = client.stream(RAW.bidi);
    const sent = pseudoRandomBytes(8 << 20, 3);
    const writing = (async () => {
      const w = bidi.requests.getWriter();
      for (let i = 0; i < sent.byteLength; i += 65536) await w.write(sent.subarray(i, i + 65536));
      await w.close();
    })();
    const back = concat(await Array.fromAsync(bidi.responses));
    await writing;
    assert.equal(await sha256Hex(back), await sha256Hex(sent));
  },
});

Deno.test({
  name: "Our client → grpc-go server: deadline, cancellation, status with message, unimplemented",
  ignore,
  async fn() {
    await using server = await startGrpcGoServer();
    await using client = await GrpcClient.connect({ port: server.port });
    // Deadline: a Bidi call that echoes once and then idles.
    const slow = client.stream(RAW.bidi, { timeout: 150 });
    const writer = slow.requests.getWriter();
    await writer.write(new Uint8Array([1]));
    const reader = slow.responses.getReader();
    assert.deepEqual((await reader.read()).value, new Uint8Array([1]));
    const late = await reader.read().catch((e) => e);
    assert.ok(late instanceof GrpcError);
    assert.equal(late.code, Status.DEADLINE_EXCEEDED);
    // Cancellation.
    const controller = new AbortController();
    const cancelled = client.stream(RAW.bidi, { signal: controller.signal });
    const w2 = cancelled.requests.getWriter();
    await w2.write(new Uint8Array([2]));
    const r2 = cancelled.responses.getReader();
    await r2.read();
    controller.abort();
    assert.equal((await r2.read().catch((e) => e)).code, Status.CANCELLED);
    // Status with a message that needs percent-encoding.
    const message = "caf\u00e9 100% \u{1f608}\r\n";
    const error = await client.unary(
      TEST.unaryCall,
      create(SimpleRequestSchema, { responseStatus: { code: 9, message } }),
    )
      .catch((e) => e);
    assert.equal(error.code, Status.FAILED_PRECONDITION);
    assert.equal(error.details, message);
    // A method the Go server does not have.
    const missing = await client.unary(TEST.cacheableUnaryCall, create(SimpleRequestSchema)).catch((e) => e);
    assert.equal(missing.code, Status.UNIMPLEMENTED);
  },
});
