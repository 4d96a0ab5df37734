import assert from "node:assert/strict";
import { type Duplex, duplexPair, Http2Connection } from "../../mod.ts";
import { transports, withTimeout } from "../_util.ts";

const POST: [string, string][] = [[":method", "POST"], [":scheme", "http"], [":authority", "t"], [
  ":path",
  "/",
]];

for (const transport of transports) {
  Deno.test(`Http2Connection shares the wire fairly between bulk streams (${transport.name})`, async () => {
    const conns = await transport.pair();
    const client = Http2Connection.client(conns.client);
    const server = Http2Connection.server(conns.server);
    const n = 4;
    const size = 8 << 20;
    const streams = await Promise.all(Array.from({ length: n }, () => client.request(POST)));
    const chunk = new Uint8Array(256 * 1024);
    const writing = streams.map(async (s) => {
      const w = s.writable.getWriter();
      for (let sent = 0; sent < size; sent += chunk.byteLength) await w.write(chunk);
      await w.close();
    });
    const received = new Map<number, number>();
    let total = 0;
    let snapshot: number[] | undefined;
    const reading: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      const s = await server.accept();
      received.set(s.id, 0);
      reading.push((async () => {
        for await (const c of s.readable) {
          received.set(s.id, received.get(s.id)! + c.byteLength);
          total += c.byteLength;
          if (snapshot === undefined && total >= (n * size) / 2) snapshot = [...received.values()];
        }
        s.respond({ ":status": "200" }, { endStream: true });
      })());
    }
    // PING is answered while bulk data flows: it overtakes queued DATA.
    let bulkDone = false;
    const pinged = client.ping().then((rtt) => ({ rtt, bulkDone }));
    await Promise.all([...reading, ...writing]);
    bulkDone = true;
    const ping = await pinged;
    assert.equal(ping.bulkDone, false, "PING answered before the bulk transfer ended");
    const mean = snapshot!.reduce((a, b) => a + b, 0) / n;
    for (const bytes of snapshot!) {
      assert.ok(Math.abs(bytes - mean) / mean <= 0.1, `share ${bytes} vs mean ${mean}: ${snapshot}`);
    }
    await client.close();
    await server.closed;
    await conns.close();
  });
}

/** Wraps a duplex, counting transport writes. */
function counting(inner: Duplex): Duplex & { writes: number } {
  let writer: WritableStreamDefaultWriter<Uint8Array>;
  const out = {
    writes: 0,
    readable: inner.readable,
    writable: new WritableStream<Uint8Array>({
      start: () => {
        writer = inner.writable.getWriter();
      },
      write: async (chunk) => {
        out.writes++;
        await writer.write(chunk);
      },
      close: () => writer.close(),
      abort: (reason) => writer.abort(reason),
    }),
  };
  return out;
}

Deno.test("Http2Connection coalesces small frames into few transport writes", async () => {
  const [a, b] = duplexPair();
  const wire = counting(a);
  const client = Http2Connection.client(wire);
  const server = Http2Connection.server(b);
  await client.ping();
  const before = wire.writes;
  await Promise.all(Array.from({ length: 100 }, () => client.ping()));
  const writes = wire.writes - before;
  assert.ok(writes <= 5, `100 PINGs took ${writes} transport writes`);
  await withTimeout(client.close(), 3000, "close");
  await server.closed;
});

Deno.test("Http2Connection sends HEADERS before the DATA of new streams and in stream order", async () => {
  const [a, b] = duplexPair();
  const client = Http2Connection.client(a);
  const server = Http2Connection.server(b);
  const streams = await Promise.all(
    Array.from({ length: 20 }, () => client.request(POST, { endStream: true })),
  );
  const ids: number[] = [];
  for (let i = 0; i < 20; i++) {
    const s = await server.accept();
    ids.push(s.id);
    s.respond({ ":status": "200" }, { endStream: true });
  }
  assert.deepEqual(ids, streams.map((s) => s.id));
  assert.deepEqual(ids, Array.from({ length: 20 }, (_, i) => 2 * i + 1));
  await client.close();
  await server.closed;
});
