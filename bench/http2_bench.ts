/**
 * 256 MiB on one HTTP/2 stream, our client to our server over loopback TCP, against raw
 * TCP through the same duplex adapter.
 *
 * Run: deno bench -A bench/http2_bench.ts
 */

import { type DuplexConn, fromDenoConn, Http2Connection, type Http2ConnectionOptions } from "../mod.ts";

const TOTAL = 256 << 20;
const CHUNK = 1 << 20;
const chunk = new Uint8Array(CHUNK).map((_, i) => i & 0xff);

async function tcpPair(): Promise<[DuplexConn, DuplexConn]> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [server, client] = await Promise.all([
    listener.accept(),
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
  ]);
  listener.close();
  return [fromDenoConn(client), fromDenoConn(server)];
}

/** Reads `total` bytes with a reused BYOB buffer. */
async function drain(readable: ReadableStream<Uint8Array>, total: number): Promise<void> {
  const reader = readable.getReader({ mode: "byob" });
  let buffer = new ArrayBuffer(CHUNK);
  let got = 0;
  while (got < total) {
    const { value, done } = await reader.read(new Uint8Array(buffer));
    if (done) throw new Error(`ended after ${got} bytes`);
    got += value.byteLength;
    buffer = value.buffer as ArrayBuffer;
  }
  reader.releaseLock();
}

async function send(writable: WritableStream<Uint8Array>, total: number, close: boolean): Promise<void> {
  const writer = writable.getWriter();
  for (let sent = 0; sent < total; sent += CHUNK) await writer.write(chunk);
  if (close) await writer.close();
  else writer.releaseLock();
}

const [rawClient, rawServer] = await tcpPair();

Deno.bench({
  group: "256 MiB loopback",
  name: "raw TCP (fromDenoConn, BYOB)",
  baseline: true,
  n: 3,
  warmup: 1,
  async fn() {
    await Promise.all([send(rawClient.writable, TOTAL, false), drain(rawServer.readable, TOTAL)]);
  },
});

async function h2Setup(options: Http2ConnectionOptions) {
  const [a, b] = await tcpPair();
  const client = Http2Connection.client(a, options);
  const server = Http2Connection.server(b, options);
  return { client, server };
}

const GET = { ":method": "POST", ":scheme": "http", ":authority": "bench", ":path": "/" };

for (
  const [name, options] of [
    ["HTTP/2 one stream, defaults (16 KiB frames, 1 MiB window)", {}],
    [
      "HTTP/2 one stream, 64 KiB frames, 4 MiB window",
      { maxFrameSize: 65536, initialWindowSize: 4 << 20, connectionWindowSize: 32 << 20 },
    ],
  ] as const
) {
  const { client, server } = await h2Setup(options);
  Deno.bench({
    group: "256 MiB loopback",
    name,
    n: 3,
    warmup: 1,
    async fn() {
      const accepted = server.accept();
      const stream = await client.request(GET);
      const receiving = accepted.then(async (s) => {
        await drain(s.readable, TOTAL);
        s.respond({ ":status": "200" }, { endStream: true });
      });
      await Promise.all([send(stream.writable, TOTAL, true), receiving]);
      await stream.closed;
    },
  });
}
