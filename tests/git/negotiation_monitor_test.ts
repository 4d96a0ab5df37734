import assert from "node:assert/strict";
import { encodeFlush, encodePkt, NegotiationMonitor } from "../../mod.ts";
import { pkts } from "./_git.ts";

const enc = new TextEncoder();

/** Resolves after the event loop ran timers due within `ms`. */
function after(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

Deno.test("NegotiationMonitor calls onTimeout once when no done packet arrives in time", async () => {
  let calls = 0;
  const { promise, resolve } = Promise.withResolvers<void>();
  const monitor = new NegotiationMonitor({
    timeout: 5,
    onTimeout: () => {
      calls++;
      resolve();
    },
  });
  monitor.push(pkts(`want ${"a".repeat(40)}\n`, "0000"));
  await promise;
  assert.equal(monitor.state, "timed-out");
  monitor.push(pkts("done\n"));
  monitor.stop();
  assert.equal(monitor.state, "timed-out");
  assert.equal(calls, 1);
});

Deno.test("NegotiationMonitor stops at exactly 0009done\\n, in any chunking", async () => {
  const request = pkts(`want ${"a".repeat(40)}\n`, "0000", `have ${"b".repeat(40)}\n`, "done\n");
  for (const size of [1, 3, 7, request.byteLength]) {
    let timedOut = false;
    const monitor = new NegotiationMonitor({ timeout: 1, onTimeout: () => (timedOut = true) });
    for (let i = 0; i < request.byteLength; i += size) monitor.push(request.subarray(i, i + size));
    assert.equal(monitor.state, "done", `chunk size ${size}`);
    await after(5);
    assert.equal(timedOut, false);
  }
});

Deno.test("NegotiationMonitor ignores look-alikes of done: no newline, other case, inside a longer packet", () => {
  let timedOut = 0;
  const monitor = new NegotiationMonitor({ timeout: 60_000, onTimeout: () => timedOut++ });
  monitor.push(encodePkt("done"));
  monitor.push(encodePkt("DONE\n"));
  monitor.push(encodePkt("done\n\n"));
  monitor.push(encodePkt("have done\n"));
  monitor.push(encodeFlush());
  assert.equal(monitor.state, "waiting", "a flush does not end the deadline");
  monitor.stop();
  assert.equal(monitor.state, "stopped");
  assert.equal(timedOut, 0);
});

Deno.test("NegotiationMonitor stops on broken framing (git will fail on it) and on stop()", () => {
  let timedOut = false;
  const broken = new NegotiationMonitor({ timeout: 60_000, onTimeout: () => (timedOut = true) });
  broken.push(enc.encode("zzzz"));
  assert.equal(broken.state, "stopped");
  const stopped = new NegotiationMonitor({ timeout: 60_000, onTimeout: () => (timedOut = true) });
  stopped.stop();
  stopped.stop();
  assert.equal(stopped.state, "stopped");
  assert.equal(timedOut, false);
});

Deno.test("NegotiationMonitor rejects bad timeouts", () => {
  assert.throws(() => new NegotiationMonitor({ timeout: -1 }), RangeError);
  assert.throws(() => new NegotiationMonitor({ timeout: NaN }), RangeError);
});
