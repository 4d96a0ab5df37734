/**
 * The node:http2 baseline server of `bench/grpc_bench.ts`, on Deno's node:http2, run as
 * a subprocess: Deno 2.9.6's node:http2 *server* can abort its process when a client
 * closes its session after a large stream (nghttp2 assertion, see the design notes), so
 * it never runs inside the bench process.
 *
 *     deno run -A bench/_node_http2_server.ts <message bytes>
 *
 * The same two routes as `_grpc_bench_server.ts`, written as a minimal gRPC server would:
 * `/raw.Raw/Pull` writes N bytes as 5-byte-prefixed messages with drain backpressure and
 * ends with `grpc-status: 0` trailers; `/raw.Raw/Echo` answers the request body.
 * Windows: 8 MiB stream, 32 MiB connection. Prints `LISTEN <port>`; serves until stdin
 * closes.
 *
 * @module
 */

import http2 from "node:http2";
import { Buffer } from "node:buffer";

const size = Number(Deno.args[0] ?? 65536);
const message = Buffer.alloc(5 + size);
message.writeUInt32BE(size, 1);
for (let i = 0; i < size; i++) message[5 + i] = i & 0xff;

const server = http2.createServer({ settings: { initialWindowSize: 8 << 20, maxFrameSize: 65536 } });
server.on("session", (session) => {
  session.on("error", () => {});
  session.setLocalWindowSize(32 << 20);
});
server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
  stream.on("error", () => {});
  const chunks: Buffer[] = [];
  stream.on("data", (c: Buffer) => chunks.push(c));
  stream.on("end", () => {
    const body = Buffer.concat(chunks);
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    if (headers[":path"] === "/raw.Raw/Echo") {
      stream.end(body);
      return;
    }
    let left = Number(body.readBigUInt64BE(5));
    const pump = () => {
      while (left > 0) {
        const n = Math.min(size, left);
        left -= n;
        const piece = n === size
          ? message
          : Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), message.subarray(5, 5 + n)]);
        if (n !== size) piece.writeUInt32BE(n, 1);
        if (!stream.write(piece)) return void stream.once("drain", pump);
      }
      stream.end();
    };
    pump();
  });
});
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as { port: number };
  Deno.stdout.writeSync(new TextEncoder().encode(`LISTEN ${port}\n`));
});
for await (const _ of Deno.stdin.readable) {
  // serve until the parent closes our stdin
}
server.close();
Deno.exit(0);
