import assert from "node:assert/strict";
import { duplexPair } from "../../mod.ts";
import { pseudoRandomBytes, readAll, withTimeout } from "../_util.ts";

Deno.test("duplexPair() carries bytes both ways with half-close", async () => {
  const [a, b] = duplexPair();
  const data = pseudoRandomBytes(500_000);
  const echo = b.readable.pipeTo(b.writable);
  const writing = (async () => {
    const w = a.writable.getWriter();
    for (let i = 0; i < data.length; i += 10_000) await w.write(data.subarray(i, i + 10_000));
    await w.close();
  })();
  const [got] = await Promise.all([readAll(a.readable), writing, echo]);
  assert.deepEqual(got, data);
  await Promise.all([a.closed, b.closed]);
});

Deno.test("duplexPair() write() waits while the reader is behind (backpressure)", async () => {
  const [a, b] = duplexPair({ highWaterMark: 1000 });
  const w = a.writable.getWriter();
  await w.write(new Uint8Array(1000));
  let done = false;
  const pending = w.write(new Uint8Array(10)).then(() => done = true);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(done, false);
  const r = b.readable.getReader();
  await r.read();
  await withTimeout(pending, 1000, "write after read");
  assert.equal(done, true);
  await a.close();
  await b.close();
});

Deno.test("duplexPair() reset() makes the peer's reads reject, never a clean EOF", async () => {
  const [a, b] = duplexPair();
  const w = a.writable.getWriter();
  await w.write(new Uint8Array([1, 2, 3]));
  a.reset(new Error("boom"));
  const r = b.readable.getReader();
  await assert.rejects(r.read(), Deno.errors.ConnectionReset);
  await Promise.all([a.closed, b.closed.catch(() => {})]);
  await b.close();
});

Deno.test("duplexPair() writes fail once the peer stopped reading", async () => {
  const [a, b] = duplexPair();
  await b.close();
  const w = a.writable.getWriter();
  await assert.rejects(w.write(new Uint8Array([1])), Deno.errors.BrokenPipe);
  await a.close();
});

Deno.test("duplexPair() supports BYOB reads with min", async () => {
  const [a, b] = duplexPair();
  const w = a.writable.getWriter();
  void w.write(new Uint8Array([1, 2]));
  void w.write(new Uint8Array([3, 4, 5]));
  const r = b.readable.getReader({ mode: "byob" });
  const { value } = await r.read(new Uint8Array(8), { min: 4 });
  assert.ok(value!.byteLength >= 4);
  assert.deepEqual(value!.subarray(0, 4), new Uint8Array([1, 2, 3, 4]));
  r.releaseLock();
  await a.close();
  await b.close();
});
