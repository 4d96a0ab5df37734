/**
 * gRPC interop server: `grpc.testing.TestService` (and the Go peer's `raw.Raw`) on our
 * GrpcServer, for any interop client.
 *
 *     deno task interop-server --port=10000 [--use_tls=true] [--host=127.0.0.1]
 *
 * Prints `LISTEN <port>` once listening (`--port=0` picks one), serves until SIGINT or
 * SIGTERM, then drains and prints one JSON line with the calls it served. TLS uses the
 * test certificate in `tests/fixtures/http2/` (CA `ca.pem`, for localhost/127.0.0.1).
 *
 * @module
 */

import { GrpcMetrics, serveGrpc } from "../../../mod.ts";
import { parseFlags, printLine } from "./_flags.ts";
import { interopServer } from "./services.ts";

const FIXTURES = new URL("../../fixtures/http2/", import.meta.url).pathname;

const flags = parseFlags(Deno.args, { port: "10000", host: "127.0.0.1", use_tls: false, chunk: "65536" });
const metrics = new GrpcMetrics();
const server = interopServer({ interceptors: [metrics.interceptor], chunk: Number(flags.chunk) });
const tls = flags.use_tls
  ? {
    cert: await Deno.readTextFile(FIXTURES + "cert.pem"),
    key: await Deno.readTextFile(FIXTURES + "key.pem"),
  }
  : {};
const controller = new AbortController();
const listener = serveGrpc({
  hostname: flags.host,
  port: Number(flags.port),
  signal: controller.signal,
  initialWindowSize: 4 << 20,
  connectionWindowSize: 32 << 20,
  ...tls,
}, server);
printLine(`LISTEN ${listener.addr.port}`);
const stop = () => controller.abort();
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
await listener.finished;
Deno.removeSignalListener("SIGINT", stop);
Deno.removeSignalListener("SIGTERM", stop);
const calls: Record<string, number> = {};
for (const [path, m] of Object.entries(metrics.snapshot())) {
  calls[path.slice(path.lastIndexOf("/") + 1)] = m.started;
}
printLine(JSON.stringify({ ok: true, mode: "server", tls: flags.use_tls, calls }));
