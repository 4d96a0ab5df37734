import assert from "node:assert/strict";
import { DEFAULT_YAMUX_OPTIONS, duplexPair, resolveYamuxOptions, YamuxSession } from "../../mod.ts";

Deno.test("resolveYamuxOptions() fills hashicorp-compatible defaults", () => {
  assert.deepEqual(resolveYamuxOptions(), {
    maxStreamWindow: 262144,
    acceptBacklog: 256,
    keepAliveInterval: 30000,
    connectionWriteTimeout: 10000,
    streamOpenTimeout: 75000,
    streamCloseTimeout: 300000,
    maxConcurrentStreams: 1024,
    maxFrameSize: 65536,
  });
  assert.ok(Object.isFrozen(DEFAULT_YAMUX_OPTIONS));
});

Deno.test("resolveYamuxOptions() keeps given values and ignores undefined", () => {
  const o = resolveYamuxOptions({ maxStreamWindow: 16 << 20, acceptBacklog: 1, keepAliveInterval: 0 });
  assert.equal(o.maxStreamWindow, 16 << 20);
  assert.equal(o.acceptBacklog, 1);
  assert.equal(o.keepAliveInterval, 0);
  assert.equal(resolveYamuxOptions({ maxFrameSize: undefined } as never).maxFrameSize, 65536);
});

Deno.test("resolveYamuxOptions() rejects out-of-range values with RangeError", () => {
  const bad: Record<string, number>[] = [
    { maxStreamWindow: 262143 },
    { maxStreamWindow: 2 ** 31 },
    { acceptBacklog: 0 },
    { keepAliveInterval: -1 },
    { connectionWriteTimeout: 0 },
    { streamOpenTimeout: 1.5 },
    { streamCloseTimeout: Number.NaN },
    { maxConcurrentStreams: 0 },
    { maxFrameSize: 0 },
  ];
  for (const options of bad) {
    assert.throws(() => resolveYamuxOptions(options), RangeError, JSON.stringify(options));
  }
});

Deno.test("resolveYamuxOptions() rejects unknown options with TypeError", () => {
  assert.throws(() => resolveYamuxOptions({ maxWindow: 1 } as never), TypeError);
});

Deno.test("YamuxSession.client() validates options before touching the transport", () => {
  const [a, b] = duplexPair();
  assert.throws(() => YamuxSession.client(a, { acceptBacklog: -5 }), RangeError);
  a.reset();
  b.reset();
});
