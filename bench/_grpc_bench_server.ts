/**
 * The server side of `bench/grpc_bench.ts`, run as a subprocess so client and server do
 * not share one event loop (the node:http2 baseline runs the same way):
 *
 *     deno run -A bench/_grpc_bench_server.ts <message bytes>
 *
 * Serves `raw.Raw/Pull` (request: 8-byte big-endian N; reply: N bytes in messages of the
 * given size, one reused buffer) and `raw.Raw/Echo` on 127.0.0.1:0 with 8 MiB stream and
 * 32 MiB connection windows, prints `LISTEN <port>`, and serves until stdin closes.
 *
 * @module
 */

import { GrpcServer, serveGrpc } from "../mod.ts";
import { echo, pull } from "./_raw_methods.ts";

const size = Number(Deno.args[0] ?? 65536);
const chunk = new Uint8Array(size).map((_, i) => i & 0xff);
const server = new GrpcServer()
  .handle(echo, (request) => request)
  .handle(pull, function* (request) {
    const total = Number(new DataView(request.buffer, request.byteOffset, 8).getBigUint64(0));
    for (let sent = 0; sent < total; sent += size) {
      yield sent + size <= total ? chunk : chunk.subarray(0, total - sent);
    }
  });
const controller = new AbortController();
const listener = serveGrpc({
  hostname: "127.0.0.1",
  port: 0,
  signal: controller.signal,
  initialWindowSize: 8 << 20,
  connectionWindowSize: 32 << 20,
  maxFrameSize: 65536,
  maxConcurrentStreams: 1000,
}, server);
Deno.stdout.writeSync(new TextEncoder().encode(`LISTEN ${listener.addr.port}\n`));
for await (const _ of Deno.stdin.readable) {
  // serve until the parent closes our stdin
}
controller.abort();
await listener.finished;
