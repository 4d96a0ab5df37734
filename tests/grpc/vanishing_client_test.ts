/**
 * A client that vanishes mid-stream never crashes or leaks the server: 1,000 cycles of
 * "open a 64 MiB server stream over TCP, read a few MiB, close the socket", with the
 * server answering throughout and its memory back near the baseline afterwards.
 */

import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { fromDenoConn, GrpcClient, GrpcServer, serveGrpc } from "../../mod.ts";
import { RAW, u64, until } from "./_setup.ts";

const CYCLES = 1000;
const STREAM_BYTES = 64 << 20;
const CHUNK = new Uint8Array(64 << 10).fill(0x5a);

/** V8's `gc()`, without `--expose-gc` on the command line. */
function gcFunction(): () => void {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

/** Heap plus external (ArrayBuffer) memory, after pauses and full collections. */
async function settledMemory(gc: () => void): Promise<number> {
  for (let i = 0; i < 5; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    gc();
  }
  const { heapUsed, external } = Deno.memoryUsage();
  return heapUsed + external;
}

Deno.test({
  name: "GrpcServer survives 1,000 clients vanishing mid-way through a 64 MiB stream, without leaking",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const errors: unknown[] = [];
    let finished = 0;
    const server = new GrpcServer({ onError: (e) => errors.push(e) })
      .handle(RAW.echo, (request) => request)
      .handle(RAW.pull, async function* (request) {
        try {
          const total = Number(new DataView(request.buffer, request.byteOffset, 8).getBigUint64(0));
          for (let sent = 0; sent < total; sent += CHUNK.byteLength) yield CHUNK;
        } finally {
          finished++;
        }
      });
    await using listener = serveGrpc({ hostname: "127.0.0.1", port: 0, onError: () => {} }, server);
    const port = listener.addr.port;

    async function vanish(cycle: number): Promise<void> {
      const raw = await Deno.connect({ hostname: "127.0.0.1", port });
      const client = new GrpcClient(fromDenoConn(raw));
      const call = client.serverStream(RAW.pull, u64(STREAM_BYTES));
      call.done.catch(() => {});
      const reader = call.responses.getReader();
      const want = (1 + (cycle % 4)) << 20; // 1-4 MiB, then gone
      for (let got = 0; got < want;) {
        const { value, done } = await reader.read();
        if (done) throw new Error("the stream ended early");
        got += value.byteLength;
      }
      if (cycle % 2 === 0) await client.connection.ping(); // let the server run into flow control
      raw.close(); // no GOAWAY, no RST_STREAM: the socket just goes away
      await reader.read().catch(() => {});
      await client.closed;
    }

    async function check(): Promise<void> {
      await using client = await GrpcClient.connect({ hostname: "127.0.0.1", port });
      assert.deepEqual(await client.unary(RAW.echo, new Uint8Array([1, 2, 3])), new Uint8Array([1, 2, 3]));
    }

    for (let i = 0; i < 20; i++) await vanish(i);
    await until(() => listener.connections === 0 && finished === 20, "warm-up connections to close");
    const gc = gcFunction();
    const baseline = await settledMemory(gc);
    for (let i = 20; i < CYCLES; i++) {
      await vanish(i);
      if (i % 100 === 0) await check();
    }
    await check();
    await until(() => listener.connections === 0, "every vanished connection to be cleaned up");
    await until(() => finished === CYCLES, "every handler's generator to be closed");
    const after = await settledMemory(gc);
    const grown = after - baseline;
    assert.ok(
      grown < 16 << 20,
      `memory grew by ${(grown / 2 ** 20).toFixed(1)} MiB over ${CYCLES} cycles (baseline ${
        (baseline / 2 ** 20).toFixed(1)
      } MiB)`,
    );
    assert.deepEqual(errors, []);
  },
});
