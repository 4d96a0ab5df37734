/**
 * gRPC's standard interop service: our interop client and server (`deno task
 * interop-client` / `interop-server`, `tests/interop/grpc_testing/`) against each other
 * and against grpc-go's (the `grpc_peer` TestService server and interop client).
 */

import assert from "node:assert/strict";
import { GrpcClient, serveGrpc } from "../../mod.ts";
import { ignoreUnless } from "../_util.ts";
import { assertGrpcGoClientOk, GRPC_INTEROP_CASES, startGrpcGoServer } from "./_grpc_go.ts";
import { assertPeerOk, type PeerResult, runPeer, startPeer } from "./_peer.ts";
import { INTEROP_CASES, runInteropCases } from "./grpc_testing/cases.ts";
import { interopServer } from "./grpc_testing/services.ts";

const PROGRAMS = new URL("./grpc_testing/", import.meta.url).pathname;
const FIXTURES = new URL("../fixtures/http2/", import.meta.url).pathname;

function passed(result: PeerResult): string[] {
  return (result.cases as PeerResult[]).filter((c) => c.ok).map((c) => c.testCase as string);
}

for (const tls of [false, true]) {
  Deno.test(`interop-client passes every case against interop-server, as separate processes${tls ? ", over TLS" : ""}`, async () => {
    const flag = `--use_tls=${tls}`;
    await using server = await startPeer(Deno.execPath(), [
      "run",
      "-A",
      PROGRAMS + "server.ts",
      "--port=0",
      flag,
    ], {
      listen: true,
      timeoutMs: 60_000,
    });
    const client = await runPeer(Deno.execPath(), [
      "run",
      "-A",
      PROGRAMS + "client.ts",
      `--server_port=${server.port}`,
      "--test_case=all",
      flag,
    ]);
    assert.deepEqual(passed(assertPeerOk(client, "interop-client")), [...INTEROP_CASES]);
    const exit = assertPeerOk(await server.stop(), "interop-server");
    assert.equal((exit.calls as Record<string, number>).UnaryCall, 4);
  });
}

Deno.test({
  name: "Our interop client passes every case against grpc-go's TestService server, h2c and TLS",
  ignore: ignoreUnless("go"),
  async fn() {
    {
      await using server = await startGrpcGoServer();
      await using client = await GrpcClient.connect({ port: server.port });
      const results = await runInteropCases(client, INTEROP_CASES);
      assert.deepEqual(results.filter((r) => !r.ok), []);
    }
    {
      await using server = await startGrpcGoServer({
        tls: true,
        args: ["-cert-file", FIXTURES + "cert.pem", "-key-file", FIXTURES + "key.pem"],
      });
      await using client = await GrpcClient.connect({
        hostname: "localhost",
        port: server.port,
        tls: { caCerts: [await Deno.readTextFile(FIXTURES + "ca.pem")] },
      });
      const results = await runInteropCases(client, INTEROP_CASES);
      assert.deepEqual(results.filter((r) => !r.ok), []);
    }
  },
});

Deno.test({
  name:
    "grpc-go's interop client passes every case (and half_duplex) against our interop server, h2c and TLS",
  ignore: ignoreUnless("go"),
  async fn() {
    {
      await using listener = serveGrpc({ hostname: "127.0.0.1", port: 0 }, interopServer());
      const result = await assertGrpcGoClientOk(listener.addr.port, "all");
      assert.deepEqual(passed(result), [...GRPC_INTEROP_CASES]);
      assert.deepEqual(passed(await assertGrpcGoClientOk(listener.addr.port, "half_duplex,empty_unary")), [
        "half_duplex",
        "empty_unary",
      ]);
    }
    {
      const [cert, key] = await Promise.all(
        ["cert.pem", "key.pem"].map((f) => Deno.readTextFile(FIXTURES + f)),
      );
      await using listener = serveGrpc(
        { hostname: "127.0.0.1", port: 0, cert: cert!, key: key! },
        interopServer(),
      );
      const result = await assertGrpcGoClientOk(listener.addr.port, "all", { caFile: FIXTURES + "ca.pem" });
      assert.deepEqual(passed(result), [...GRPC_INTEROP_CASES]);
    }
  },
});
