import assert from "node:assert/strict";
import { fromDenoConn } from "../../mod.ts";
import { pseudoRandomBytes, readAll, tcpTransport } from "../_util.ts";

Deno.test("fromDenoConn() half-closes with closeWrite and keeps reading", async () => {
  const pair = await tcpTransport.pair();
  const data = pseudoRandomBytes(3 * 1024 * 1024, 5);
  const echo = pair.server.readable.pipeTo(pair.server.writable);
  const w = pair.client.writable.getWriter();
  const sending = (async () => {
    for (let i = 0; i < data.length; i += 65536) await w.write(data.subarray(i, i + 65536));
    await w.close();
  })();
  const [got] = await Promise.all([readAll(pair.client.readable), sending, echo]);
  assert.equal(got.length, data.length);
  assert.deepEqual(got, data);
  await Promise.all([pair.client.closed, pair.server.closed]);
});

Deno.test("fromDenoConn() close() ends a pending read on the closing side cleanly", async () => {
  const pair = await tcpTransport.pair();
  const reader = pair.client.readable.getReader();
  const pending = reader.read();
  await pair.client.close();
  const { done } = await pending;
  assert.equal(done, true);
  // The peer sees end-of-stream.
  const r2 = pair.server.readable.getReader();
  assert.equal((await r2.read()).done, true);
  await pair.server.close();
});

Deno.test("fromDenoConn() rejects a bad readChunkSize", async () => {
  const pair = await tcpTransport.pair();
  assert.throws(
    () =>
      fromDenoConn({ read: () => Promise.resolve(null), write: () => Promise.resolve(0), close() {} }, {
        readChunkSize: 0,
      }),
    RangeError,
  );
  await pair.close();
});
