/**
 * gRPC interop client: runs the standard cases with our GrpcClient against any
 * `grpc.testing.TestService` server.
 *
 *     deno task interop-client --server_host=127.0.0.1 --server_port=10000 --test_case=all [--use_tls=true]
 *
 * `--test_case` is one case, a comma-separated list, or `all`. With `--use_tls` the
 * server's certificate must be signed by `--ca_file` (default: the test CA in
 * `tests/fixtures/http2/ca.pem`). Prints one JSON line (`{"ok":…,"cases":[…]}`) and
 * exits 0 iff every case passed.
 *
 * @module
 */

import { GrpcClient } from "../../../mod.ts";
import { parseFlags, printLine } from "./_flags.ts";
import { INTEROP_CASES, runInteropCases } from "./cases.ts";

const flags = parseFlags(Deno.args, {
  server_host: "127.0.0.1",
  server_port: "10000",
  test_case: "all",
  use_tls: false,
  ca_file: new URL("../../fixtures/http2/ca.pem", import.meta.url).pathname,
  server_host_override: "",
});
const names = flags.test_case.split(",").flatMap((n) => n === "all" ? [...INTEROP_CASES] : [n]);
let result: Record<string, unknown>;
try {
  const client = await GrpcClient.connect({
    hostname: flags.server_host,
    port: Number(flags.server_port),
    tls: flags.use_tls ? { caCerts: [await Deno.readTextFile(flags.ca_file)] } : false,
    ...(flags.server_host_override === "" ? {} : { authority: flags.server_host_override }),
  });
  const cases = await runInteropCases(client, names);
  client.abort();
  await client.closed;
  const failed = cases.filter((c) => !c.ok).map((c) => c.testCase);
  result = {
    ok: failed.length === 0,
    mode: "client",
    cases,
    ...(failed.length === 0
      ? {}
      : { error: `${failed.length} of ${cases.length} cases failed: ${failed.join(", ")}` }),
  };
} catch (error) {
  result = { ok: false, mode: "client", error: String(error) };
}
printLine(JSON.stringify(result));
Deno.exit(result.ok ? 0 : 1);
