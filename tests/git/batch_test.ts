/**
 * The output batcher behind PostUploadPackV3, plain streaming and the sidechannel's
 * write buffer: exact reassembly, growing batch sizes, headroom, the idle flush, and
 * cancellation.
 */

import assert from "node:assert/strict";
import { _batchOutput } from "../../src/git/_batch.ts";
import { concat, pseudoRandomBytes, withTimeout } from "../_util.ts";

/** A byte stream the test feeds chunk by chunk. */
function source(): {
  stream: ReadableStream<Uint8Array>;
  push(bytes: Uint8Array): void;
  end(): void;
  cancelled: Promise<unknown>;
} {
  let controller!: ReadableByteStreamController;
  let cancelled!: (reason: unknown) => void;
  const stream = new ReadableStream({
    type: "bytes",
    start: (c) => void (controller = c),
    cancel: (reason) => cancelled(reason),
  });
  return {
    stream,
    push: (bytes) => controller.enqueue(bytes.slice()),
    end: () => controller.close(),
    cancelled: new Promise((resolve) => (cancelled = resolve)),
  };
}

Deno.test("_batchOutput() reassembles the output exactly, in batches growing from initial to max, after the headroom", async () => {
  const data = pseudoRandomBytes(1_000_003, 5);
  const s = source();
  for (let offset = 0; offset < data.byteLength; offset += 40_000) {
    s.push(data.subarray(offset, offset + 40_000));
  }
  s.end();
  const sizes: number[] = [];
  const parts: Uint8Array[] = [];
  for await (
    const batch of _batchOutput(s.stream, { headroom: 4, initial: 65_536, max: 262_144, flushInterval: 0 })
  ) {
    sizes.push(batch.byteLength - 4);
    parts.push(batch.slice(4));
  }
  assert.deepEqual(concat(parts), data);
  assert.deepEqual(sizes.slice(0, 4), [65_536, 131_072, 262_144, 262_144]);
  assert.equal(sizes.at(-1), data.byteLength - sizes.slice(0, -1).reduce((a, b) => a + b, 0));
});

Deno.test("_batchOutput() sends a partial batch once the output stays idle for flushInterval", async () => {
  const s = source();
  const batches = _batchOutput(s.stream, { headroom: 0, initial: 65_536, max: 65_536, flushInterval: 20 });
  s.push(new TextEncoder().encode("0032progress"));
  // The source stays open: only the idle flush can deliver these bytes.
  const first = await withTimeout(batches.next(), 5_000, "the idle flush");
  assert.equal(new TextDecoder().decode(first.value as Uint8Array), "0032progress");
  s.push(new Uint8Array([1, 2, 3]));
  s.end();
  assert.deepEqual((await batches.next()).value, new Uint8Array([1, 2, 3]));
  assert.equal((await batches.next()).done, true);
});

Deno.test("_batchOutput() with flushInterval 0 holds a partial batch until it is full or the output ends (the POC's rule)", async () => {
  const s = source();
  const batches = _batchOutput(s.stream, { headroom: 0, initial: 8, max: 8, flushInterval: 0 });
  s.push(new Uint8Array([1, 2, 3]));
  const next = batches.next();
  s.push(new Uint8Array([4, 5, 6, 7, 8, 9]));
  assert.deepEqual((await next).value, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
  s.end();
  assert.deepEqual((await batches.next()).value, new Uint8Array([9]));
  assert.equal((await batches.next()).done, true);
});

Deno.test("_batchOutput(): stopping early cancels the output", async () => {
  const s = source();
  const batches = _batchOutput(s.stream, { headroom: 0, initial: 4, max: 4, flushInterval: 0 });
  s.push(new Uint8Array(10));
  await batches.next();
  await batches.return();
  await withTimeout(s.cancelled, 5_000, "the cancellation");
});
