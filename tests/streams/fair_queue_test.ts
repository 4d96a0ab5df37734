import assert from "node:assert/strict";
import { FairQueue } from "../../mod.ts";

Deno.test("FairQueue.pop() returns control items before any data", () => {
  const q = new FairQueue<string>({ quantum: 100 });
  q.push(1, "d1", 50);
  q.pushControl("c1", 12);
  q.push(3, "d2", 50);
  q.pushControl("c2", 12);
  assert.equal(q.pop(), "c1");
  assert.equal(q.pop(), "c2");
  q.pushControl("c3");
  assert.equal(q.pop(), "c3");
  assert.deepEqual([q.pop(), q.pop(), q.pop()], ["d1", "d2", undefined]);
  assert.equal(q.length, 0);
  assert.equal(q.bytes, 0);
});

Deno.test("FairQueue.pop() keeps per-flow order", () => {
  const q = new FairQueue<number>({ quantum: 1 });
  for (let i = 0; i < 100; i++) q.push(i % 3, i, 1);
  const seen = new Map<number, number[]>();
  for (let item = q.pop(); item !== undefined; item = q.pop()) {
    const list = seen.get(item % 3) ?? [];
    list.push(item);
    seen.set(item % 3, list);
  }
  for (const list of seen.values()) assert.deepEqual(list, [...list].sort((a, b) => a - b));
});

Deno.test("FairQueue gives backlogged flows equal byte shares whatever their frame sizes", () => {
  const quantum = 16384;
  const q = new FairQueue<{ flow: number; size: number }>({ quantum });
  // Eight flows with very different frame sizes, each with a deep backlog.
  const sizes = [1, 100, 1000, 4096, 9000, 16384, 12345, 700];
  for (let flow = 0; flow < sizes.length; flow++) {
    for (let i = 0; i < Math.ceil((2 << 20) / sizes[flow]!); i++) {
      q.push(flow, { flow, size: sizes[flow]! }, sizes[flow]!);
    }
  }
  const sent = new Array(sizes.length).fill(0);
  let total = 0;
  // Serve a window of 8 MiB while everyone is still backlogged.
  while (total < 8 * 1024 * 1024) {
    const item = q.pop()!;
    sent[item.flow] += item.size;
    total += item.size;
  }
  const mean = total / sizes.length;
  for (const bytes of sent) {
    assert.ok(Math.abs(bytes - mean) / mean < 0.05, `share ${bytes} vs mean ${mean}`);
  }
});

Deno.test("FairQueue serves a frame larger than the quantum after enough rounds", () => {
  const q = new FairQueue<string>({ quantum: 10 });
  q.push(1, "big", 35);
  q.push(2, "s1", 10);
  q.push(2, "s2", 10);
  q.push(2, "s3", 10);
  q.push(2, "s4", 10);
  const order: string[] = [];
  for (let x = q.pop(); x !== undefined; x = q.pop()) order.push(x);
  // flow 1 needs four visits (10, 20, 30, 40 >= 35); flow 2 sends one per visit meanwhile.
  assert.deepEqual(order, ["s1", "s2", "s3", "big", "s4"]);
});

Deno.test("FairQueue: a newcomer waits at most one round", () => {
  const q = new FairQueue<string>({ quantum: 10 });
  for (let i = 0; i < 5; i++) q.push(1, `a${i}`, 10);
  for (let i = 0; i < 5; i++) q.push(2, `b${i}`, 10);
  assert.equal(q.pop(), "a0");
  q.push(3, "c0", 10);
  assert.deepEqual([q.pop(), q.pop(), q.pop()], ["b0", "c0", "a1"]);
});

Deno.test("FairQueue.remove() drops a flow and returns its items", () => {
  const q = new FairQueue<string>({ quantum: 10 });
  q.push(1, "a0", 10);
  q.push(1, "a1", 10);
  q.push(3, "b0", 10);
  assert.equal(q.bytesOf(1), 20);
  assert.deepEqual(q.remove(1), ["a0", "a1"]);
  assert.equal(q.bytesOf(1), 0);
  assert.equal(q.length, 1);
  assert.equal(q.bytes, 10);
  assert.deepEqual(q.remove(42), []);
  assert.equal(q.pop(), "b0");
  assert.equal(q.pop(), undefined);
});

Deno.test("FairQueue.remove() of the flow under the cursor keeps the rotation going", () => {
  const q = new FairQueue<string>({ quantum: 10 });
  for (const f of [1, 2, 3]) for (let i = 0; i < 3; i++) q.push(f, `${f}.${i}`, 10);
  assert.equal(q.pop(), "1.0");
  assert.equal(q.pop(), "2.0");
  q.remove(3);
  assert.deepEqual([q.pop(), q.pop(), q.pop(), q.pop(), q.pop()], ["1.1", "2.1", "1.2", "2.2", undefined]);
});

Deno.test("FairQueue.clear() empties everything", () => {
  const q = new FairQueue<string>();
  q.pushControl("c", 1);
  q.push(1, "d", 5);
  assert.deepEqual(q.clear(), ["c", "d"]);
  assert.equal(q.length, 0);
  assert.equal(q.activeFlows, 0);
  assert.equal(q.pop(), undefined);
});

Deno.test("FairQueue rejects a non-positive quantum", () => {
  assert.throws(() => new FairQueue({ quantum: 0 }), RangeError);
});
