import assert from "node:assert/strict";
import {
  BACKCHANNEL_CLIENT_YAMUX_OPTIONS,
  BACKCHANNEL_SERVER_YAMUX_OPTIONS,
  listenmux,
  openSidechannel,
  SidechannelError,
  SidechannelRegistry,
  Status,
  type YamuxOptions,
  YamuxSession,
  type YamuxStream,
} from "../../mod.ts";
import { readAll, text, transports, utf8, withTimeout } from "../_util.ts";

/** A Gitaly-configured yamux pair; `onStream` plays the client for each server-opened stream. */
async function sessions(
  transportIndex: number,
  onStream: (stream: YamuxStream) => Promise<void>,
  clientOptions: YamuxOptions = {},
) {
  const pair = await transports[transportIndex]!.pair();
  const client = YamuxSession.client(pair.client, { ...BACKCHANNEL_CLIENT_YAMUX_OPTIONS, ...clientOptions });
  const server = YamuxSession.server(pair.server, BACKCHANNEL_SERVER_YAMUX_OPTIONS);
  const loop = (async () => {
    for await (const stream of client) void onStream(stream).catch(() => {});
  })().catch(() => {});
  return {
    client,
    server,
    async close() {
      await client.close();
      await server.closed;
      await loop;
      await pair.close();
    },
  };
}

/** A client that routes by magic to a registry, like the backchannel client does. */
function registryClient(registry: SidechannelRegistry) {
  return async (stream: YamuxStream) => {
    const routed = await listenmux(stream, { sidechannel: registry });
    if (routed.kind === "matched") await routed.handshaker.handshake(routed.conn);
    else routed.conn.reset();
  };
}

async function readPreamble(stream: YamuxStream): Promise<{ magic: string; id: bigint }> {
  const bytes = new Uint8Array(19);
  let got = 0;
  while (got < 19) {
    const n = await stream.read(bytes.subarray(got));
    assert.notEqual(n, null);
    got += n!;
  }
  return { magic: text(bytes.subarray(0, 11)), id: new DataView(bytes.buffer).getBigInt64(11) };
}

function isHandshake(e: unknown): boolean {
  assert.ok(e instanceof SidechannelError, String(e));
  assert.equal(e.code, "HANDSHAKE");
  assert.equal(e.retryable, true);
  assert.equal(e.status, Status.UNAVAILABLE);
  assert.equal(e.toGrpcError().code, Status.UNAVAILABLE);
  return true;
}

for (const [index, transport] of transports.entries()) {
  Deno.test(`openSidechannel() hands the stream to the client's waiter (${transport.name})`, async () => {
    const registry = new SidechannelRegistry();
    const s = await sessions(index, registryClient(registry));
    const waiter = registry.register(async (conn) => {
      await conn.write(utf8("request"));
      await conn.closeWrite();
      assert.equal(text(await readAll(conn.readable)), "response");
    });
    const conn = await openSidechannel(s.server, waiter.id);
    assert.equal(text(await readAll(conn.readable)), "request");
    await conn.write(utf8("response"));
    await conn.close();
    await waiter.close();
    await s.close();
  });

  Deno.test(`openSidechannel(): garbage instead of 'ok' is BAD_CONFIRMATION, not retryable (${transport.name})`, async () => {
    const s = await sessions(index, async (stream) => {
      const { magic } = await readPreamble(stream);
      assert.equal(magic, "sidechannel");
      await stream.write(utf8("no"));
    });
    const error = await openSidechannel(s.server, 3).catch((e) => e);
    assert.ok(error instanceof SidechannelError);
    assert.equal(error.code, "BAD_CONFIRMATION");
    assert.equal(error.retryable, false);
    assert.equal(error.status, Status.INTERNAL);
    assert.match(error.message, /expected ok, got "no"/);
    // Other streams on the session still work.
    const other = await s.server.open();
    await other.close();
    await s.close();
  });

  Deno.test(`openSidechannel(): a silent client times out with HANDSHAKE (${transport.name})`, async () => {
    const s = await sessions(index, async (stream) => {
      await readPreamble(stream); // and never answer
      await stream.closed;
    });
    const error = await withTimeout(openSidechannel(s.server, 1, { timeout: 100 }).catch((e) => e), 10_000);
    isHandshake(error);
    assert.equal((error.cause as DOMException).name, "TimeoutError");
    await s.close();
  });

  Deno.test(`openSidechannel(): a client that closes instead of answering is HANDSHAKE (${transport.name})`, async () => {
    const s = await sessions(index, async (stream) => {
      await readPreamble(stream);
      await stream.close();
    });
    isHandshake(await openSidechannel(s.server, 1).catch((e) => e));
    await s.close();
  });

  Deno.test(`openSidechannel(): an unknown id is HANDSHAKE and the registry is intact (${transport.name})`, async () => {
    const registry = new SidechannelRegistry();
    const s = await sessions(index, registryClient(registry));
    const waiter = registry.register(async (conn) => await conn.closeWrite());
    isHandshake(await openSidechannel(s.server, 99).catch((e) => e));
    assert.equal(registry.waiting, 1);
    const conn = await openSidechannel(s.server, waiter.id);
    assert.equal(text(await readAll(conn.readable)), "");
    await conn.close();
    await waiter.close();
    await s.close();
  });

  Deno.test(`openSidechannel(): a reused id is HANDSHAKE (${transport.name})`, async () => {
    const registry = new SidechannelRegistry();
    const s = await sessions(index, registryClient(registry));
    const waiter = registry.register(async (conn) => await conn.closeWrite());
    const conn = await openSidechannel(s.server, waiter.id);
    isHandshake(await openSidechannel(s.server, waiter.id).catch((e) => e));
    await conn.close();
    await waiter.close();
    await s.close();
  });

  Deno.test(`openSidechannel(): a client that resets the stream is HANDSHAKE (${transport.name})`, async () => {
    const s = await sessions(index, async (stream) => {
      await readPreamble(stream);
      stream.reset();
    });
    const error = await openSidechannel(s.server, 1).catch((e) => e);
    isHandshake(error);
    await s.close();
  });
}

Deno.test("openSidechannel(): a closed session is HANDSHAKE (open stream failed)", async () => {
  const s = await sessions(0, () => Promise.resolve());
  await s.server.close();
  const error = await openSidechannel(s.server, 1).catch((e) => e);
  isHandshake(error);
  assert.match(error.message, /open stream/);
  await s.close();
});

Deno.test("openSidechannel(): an aborted signal rejects with its reason and resets the stream", async () => {
  const s = await sessions(0, async (stream) => {
    await readPreamble(stream);
    await stream.closed;
  });
  const controller = new AbortController();
  const opening = openSidechannel(s.server, 1, { signal: controller.signal });
  const reason = new Error("stop");
  setTimeout(() => controller.abort(reason), 10);
  await assert.rejects(opening, (e: unknown) => e === reason);
  await assert.rejects(
    openSidechannel(s.server, 1, { signal: controller.signal }),
    (e: unknown) => e === reason,
  );
  await s.close();
});

Deno.test("openSidechannel(): bad arguments throw RangeError", async () => {
  const s = await sessions(0, () => Promise.resolve());
  await assert.rejects(openSidechannel(s.server, 1n << 63n), RangeError);
  await assert.rejects(openSidechannel(s.server, 1, { timeout: -1 }), RangeError);
  await s.close();
});
