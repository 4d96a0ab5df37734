import assert from "node:assert/strict";
import { ByteReader, duplexPair, UnexpectedEofError } from "../../mod.ts";
import { concat, pseudoRandomBytes } from "../_util.ts";

function chunked(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) parts.push(bytes.slice(i, i + size));
  return ReadableStream.from(parts);
}

for (const mode of ["default", "byob"] as const) {
  const source = async (bytes: Uint8Array, chunk: number): Promise<ReadableStream<Uint8Array>> => {
    if (mode === "default") return chunked(bytes, chunk);
    const [a, b] = duplexPair();
    void (async () => {
      const w = a.writable.getWriter();
      for (let i = 0; i < bytes.length; i += chunk) await w.write(bytes.subarray(i, i + chunk));
      await w.close();
    })();
    return await Promise.resolve(b.readable);
  };

  Deno.test(`ByteReader.readExactly() reassembles 1-byte chunks (${mode})`, async () => {
    const data = pseudoRandomBytes(1000, 7);
    const reader = new ByteReader(await source(data, 1), { bufferSize: 64 });
    const parts = [
      await reader.readExactly(12),
      await reader.readExactly(500),
      await reader.readExactly(488),
    ];
    assert.deepEqual(concat(parts), data);
    assert.equal(await reader.readSome(10), null);
  });

  Deno.test(`ByteReader.readExactly() handles reads larger than the buffer (${mode})`, async () => {
    const data = pseudoRandomBytes(300_000, 3);
    const reader = new ByteReader(await source(data, 7000), { bufferSize: 1024 });
    const head = await reader.readExactly(12);
    const body = await reader.readExactly(200_000);
    const tail = await reader.readExactly(300_000 - 200_012);
    assert.deepEqual(concat([head, body, tail]), data);
  });

  Deno.test(`ByteReader.readExactly() rejects with UnexpectedEofError on truncation (${mode})`, async () => {
    const reader = new ByteReader(await source(new Uint8Array(40_000), 1000));
    await reader.readExactly(10);
    await assert.rejects(reader.readExactly(50_000), (e: unknown) => {
      assert.ok(e instanceof UnexpectedEofError);
      assert.equal(e.code, "UNEXPECTED_EOF");
      assert.equal(e.received, 39_990);
      return true;
    });
  });

  Deno.test(`ByteReader.fill()/peek()/skip() expose buffered bytes (${mode})`, async () => {
    const reader = new ByteReader(await source(new Uint8Array([1, 2, 3, 4, 5]), 2));
    assert.equal(await reader.fill(3), true);
    assert.deepEqual(reader.peek(3), new Uint8Array([1, 2, 3]));
    reader.skip(3);
    assert.equal(await reader.fill(3), false);
    assert.equal(reader.buffered, 2);
    await reader.discard(2);
    await assert.rejects(reader.discard(1), UnexpectedEofError);
  });

  Deno.test(`ByteReader results own their buffers (${mode})`, async () => {
    const data = pseudoRandomBytes(70_000, 9);
    const reader = new ByteReader(await source(data, 30_000));
    const a = await reader.readExactly(10);
    const b = await reader.readExactly(60_000);
    const c = await reader.readSome(100_000);
    for (const part of [a, b, c!]) assert.equal(part.byteOffset, 0);
    assert.notEqual(a.buffer, b.buffer);
    structuredClone(b, { transfer: [b.buffer as ArrayBuffer] });
    assert.deepEqual(a, data.subarray(0, 10));
    assert.deepEqual(c, data.subarray(60_010));
  });
}
