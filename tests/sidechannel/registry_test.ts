import assert from "node:assert/strict";
import {
  type DirectIo,
  type DuplexConn,
  duplexPair,
  SidechannelError,
  SidechannelRegistry,
  SidechannelServerConn,
} from "../../mod.ts";
import { readAll, text, utf8, withTimeout } from "../_util.ts";

/** The server's view of a stream the registry takes: writes the id, reads "ok". */
async function serverSide(
  id: number | bigint,
): Promise<{ client: DuplexConn; server: DuplexConn & DirectIo }> {
  const [client, server] = duplexPair();
  const idBytes = new Uint8Array(8);
  new DataView(idBytes.buffer).setBigInt64(0, BigInt(id));
  await server.write(idBytes);
  return { client, server };
}

async function readOk(server: DirectIo): Promise<string> {
  const ok = new Uint8Array(2);
  let got = 0;
  while (got < 2) {
    const n = await server.read(ok.subarray(got));
    if (n === null) break;
    got += n;
  }
  return text(ok.subarray(0, got));
}

Deno.test("SidechannelRegistry: waiter removed from the registry right after connection received", async () => {
  const registry = new SidechannelRegistry();
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);
  const waiter = registry.register(async () => await released);
  assert.equal(registry.waiting, 1);
  assert.equal(waiter.state, "registered");
  const { client, server } = await serverSide(waiter.id);
  await registry.handshake(client);
  assert.equal(registry.waiting, 0);
  assert.equal(await readOk(server), "ok");
  assert.equal(waiter.state, "running");
  release();
  await waiter.close();
  assert.equal(waiter.state, "done");
  // The waiter closed the stream after the callback: the server reads its end.
  assert.equal(await server.read(new Uint8Array(1)), null);
  await server.close();
});

Deno.test("SidechannelRegistry: receive connections successfully (10 parallel waiters)", async () => {
  const registry = new SidechannelRegistry();
  const waiters = Array.from({ length: 10 }, (_, i) =>
    registry.register(async (conn) => {
      await conn.write(utf8(String(i)));
      await conn.closeWrite();
    }));
  assert.deepEqual(waiters.map((w) => w.id), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(registry.waiting, 10);
  await Promise.all(waiters.map(async (waiter, i) => {
    const { client, server } = await serverSide(waiter.id);
    await registry.handshake(client);
    assert.equal(await readOk(server), "ok");
    const conn = new SidechannelServerConn(server);
    assert.equal(text(await readAll(conn.readable)), String(i));
    await conn.close();
    await waiter.close();
  }));
  assert.equal(registry.waiting, 0);
});

Deno.test("SidechannelRegistry: receive connection for non-existing ID closes it, registry intact", async () => {
  const registry = new SidechannelRegistry();
  const waiter = registry.register(() => {});
  const { client, server } = await serverSide(42);
  await assert.rejects(registry.handshake(client), (e: unknown) => {
    assert.ok(e instanceof SidechannelError);
    assert.equal(e.code, "ID_NOT_REGISTERED");
    return true;
  });
  assert.equal(await readOk(server), ""); // closed without "ok"
  assert.equal(registry.waiting, 1);
  await assert.rejects(waiter.close(), { code: "CALLBACK_DID_NOT_RUN" });
  await server.close();
});

Deno.test("SidechannelRegistry: a reused id is not registered any more", async () => {
  const registry = new SidechannelRegistry();
  const waiter = registry.register(async (conn) => await conn.closeWrite());
  const first = await serverSide(waiter.id);
  await registry.handshake(first.client);
  const second = await serverSide(waiter.id);
  await assert.rejects(registry.handshake(second.client), { code: "ID_NOT_REGISTERED" });
  assert.equal(await readOk(second.server), "");
  assert.equal(await readOk(first.server), "ok");
  await waiter.close();
  await Promise.all([first.server.close(), second.server.close()]);
});

Deno.test("SidechannelRegistry: ids beyond int53 or negative are not registered", async () => {
  const registry = new SidechannelRegistry();
  registry.register(() => {});
  for (const id of [-1n, 1n << 60n]) {
    const { client, server } = await serverSide(id);
    await assert.rejects(registry.handshake(client), { code: "ID_NOT_REGISTERED" });
    await server.close();
  }
  assert.equal(registry.waiting, 1);
});

Deno.test("SidechannelWaiter.close() before the server opened: CALLBACK_DID_NOT_RUN, registry empty", async () => {
  const registry = new SidechannelRegistry();
  let ran = false;
  const waiter = registry.register(() => {
    ran = true;
  });
  const first = waiter.close();
  assert.equal(waiter.close(), first, "idempotent");
  await assert.rejects(first, (e: unknown) => {
    assert.ok(e instanceof SidechannelError);
    assert.equal(e.code, "CALLBACK_DID_NOT_RUN");
    assert.equal(e.retryable, false);
    return true;
  });
  assert.equal(registry.waiting, 0);
  assert.equal(waiter.state, "cancelled");
  // The server opening it later finds nothing.
  const { client, server } = await serverSide(waiter.id);
  await assert.rejects(registry.handshake(client), { code: "ID_NOT_REGISTERED" });
  assert.equal(ran, false);
  await server.close();
});

Deno.test("SidechannelWaiter.close() returns the callback's own error; the stream is reset", async () => {
  const registry = new SidechannelRegistry();
  const boom = new Error("callback failed");
  const waiter = registry.register(() => {
    throw boom;
  });
  const { client, server } = await serverSide(waiter.id);
  await registry.handshake(client);
  assert.equal(await readOk(server), "ok");
  await assert.rejects(waiter.close(), (e: unknown) => e === boom);
  await assert.rejects(server.read(new Uint8Array(1)));
});

Deno.test("SidechannelRegistry ids start at 0 per registry", () => {
  const a = new SidechannelRegistry();
  const b = new SidechannelRegistry();
  assert.equal(a.register(() => {}).id, 0);
  assert.equal(a.register(() => {}).id, 1);
  assert.equal(b.register(() => {}).id, 0);
  assert.equal(a.waiting, 2);
  assert.throws(() => new SidechannelRegistry({ timeout: -1 }), RangeError);
});

Deno.test("SidechannelRegistry: a server that never reads 'ok' fails the waiter with HANDSHAKE", async () => {
  const registry = new SidechannelRegistry({ timeout: 50 });
  let ran = false;
  const waiter = registry.register(() => {
    ran = true;
  });
  const [client, server] = duplexPair({ highWaterMark: 0 });
  const idBytes = new Uint8Array(8);
  await Promise.all([registry.handshake(client), server.write(idBytes)]);
  const error = await withTimeout(waiter.close().catch((e) => e), 5000, "waiter close");
  assert.ok(error instanceof SidechannelError);
  assert.equal(error.code, "HANDSHAKE");
  assert.equal(ran, false);
  server.reset();
});

Deno.test("SidechannelRegistry.handshake(): a stream that ends inside the id fails with HANDSHAKE", async () => {
  const registry = new SidechannelRegistry();
  const [client, server] = duplexPair();
  await server.write(new Uint8Array(3));
  await server.closeWrite();
  await assert.rejects(registry.handshake(client), { code: "HANDSHAKE" });
  server.reset();
});
