/**
 * @grpc/grpc-js 1.14.7 (npm, on Deno's node:http2) as a client of our server. The client
 * runs in its own Deno process (`tests/interop/grpc_js/client.ts`): node:http2 in Deno
 * 2.9.6 can abort its process (see the design notes), which must not take the test runner
 * with it.
 */

import assert from "node:assert/strict";
import { serveGrpc } from "../../mod.ts";
import { pseudoRandomBytes, sha256Hex } from "../_util.ts";
import { assertPeerOk, type PeerResult, runPeer } from "./_peer.ts";
import { interopServer } from "./grpc_testing/services.ts";

const CLIENT = new URL("./grpc_js/client.ts", import.meta.url).pathname;

Deno.test("@grpc/grpc-js client → our server: raw unary/streaming with identity serializers, deadline, cancel, status, protobuf", async () => {
  await using listener = serveGrpc({ hostname: "127.0.0.1", port: 0 }, interopServer());
  const bytes = 3_000_001;
  const exit = await runPeer(Deno.execPath(), [
    "run",
    "-A",
    CLIENT,
    String(listener.addr.port),
    String(bytes),
  ], 120_000);
  const result = assertPeerOk(exit, "grpc-js client");
  const cases = result.cases as PeerResult[];
  assert.deepEqual(cases.map((c) => c.testCase), [
    "raw-echo",
    "raw-pull",
    "raw-push",
    "raw-bidi",
    "deadline",
    "cancel",
    "status-message",
    "large-unary-proto",
    "unimplemented",
  ]);
  const pull = cases.find((c) => c.testCase === "raw-pull")!;
  assert.equal(pull.sha256, await sha256Hex(pseudoRandomBytes(bytes, 1)));
});
