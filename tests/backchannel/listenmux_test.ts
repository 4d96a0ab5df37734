import assert from "node:assert/strict";
import {
  BackchannelError,
  type DirectIo,
  type DuplexConn,
  duplexPair,
  fromDenoConn,
  GrpcClient,
  grpcMethod,
  GrpcServer,
  hasDirectIo,
  listenmux,
  rawCodec,
  serveGrpcConnection,
} from "../../mod.ts";
import { readAll, text, utf8, withTimeout } from "../_util.ts";

const MAGIC = "test mux   ";
const health = grpcMethod({
  service: "grpc.health.v1.Health",
  name: "Check",
  kind: "unary",
  request: rawCodec,
  response: rawCodec,
});
const grpcServer = new GrpcServer().handle(health, () => utf8("SERVING"));

type Outcome = "pass" | "steal" | "error";

/** A listener like Gitaly's: listenmux with one test handshaker, gRPC for the rest. */
function listen(handshake: (conn: DuplexConn & DirectIo) => Promise<Outcome>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let handshakes = 0;
  const tasks = new Set<Promise<void>>();
  const connections = new Set<{ close(): Promise<void> }>();
  const loop = (async () => {
    for await (const raw of listener) {
      const task = (async () => {
        const routed = await listenmux(fromDenoConn(raw), { [MAGIC]: handshake });
        if (routed.kind === "plain") {
          connections.add(serveGrpcConnection(routed.conn, grpcServer));
          return;
        }
        handshakes++;
        const outcome = await routed.handshaker(routed.conn);
        if (outcome === "pass") connections.add(serveGrpcConnection(routed.conn, grpcServer));
        else if (outcome === "error") await routed.conn.close();
      })().catch(() => {});
      tasks.add(task);
      void task.finally(() => tasks.delete(task));
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    get handshakes() {
      return handshakes;
    },
    async close() {
      listener.close();
      await loop;
      await Promise.all(tasks);
      await Promise.all([...connections].map((c) => c.close()));
    },
  };
}

async function dial(port: number): Promise<DuplexConn & DirectIo> {
  return fromDenoConn(await Deno.connect({ hostname: "127.0.0.1", port }));
}

async function healthCheck(conn: DuplexConn): Promise<string> {
  const client = new GrpcClient(conn);
  try {
    return text(await client.unary(health, new Uint8Array(0)));
  } finally {
    await client.close();
  }
}

Deno.test("listenmux: TestMux_normalClientNoMux", async () => {
  const server = listen(() => Promise.resolve("pass"));
  assert.equal(await healthCheck(await dial(server.port)), "SERVING");
  await server.close();
});

Deno.test("listenmux: TestMux_normalClientMuxIgnored (the handshaker is never called)", async () => {
  const server = listen(() => {
    throw new Error("must not be called");
  });
  for (let i = 0; i < 3; i++) assert.equal(await healthCheck(await dial(server.port)), "SERVING");
  assert.equal(server.handshakes, 0);
  await server.close();
});

Deno.test("listenmux: TestMux_muxClientPassesThrough", async () => {
  const server = listen(() => Promise.resolve("pass"));
  const conn = await dial(server.port);
  await conn.write(utf8(MAGIC));
  assert.equal(await healthCheck(conn), "SERVING");
  assert.equal(server.handshakes, 1);
  await server.close();
});

Deno.test("listenmux: TestMux_handshakerStealsConnection", async () => {
  const server = listen(async (conn) => {
    const ping = new Uint8Array(4);
    let got = 0;
    while (got < 4) got += (await conn.read(ping.subarray(got)))!;
    assert.equal(text(ping), "ping");
    await conn.write(utf8("pong"));
    await conn.close();
    return "steal";
  });
  const conn = await dial(server.port);
  await conn.write(utf8(MAGIC + "ping"));
  await conn.closeWrite();
  assert.equal(text(await readAll(conn.readable)), "pong");
  await conn.close();
  await server.close();
});

Deno.test("listenmux: TestMux_handshakerReturnsError (the client reads EOF)", async () => {
  const server = listen(() => Promise.resolve("error"));
  const conn = await dial(server.port);
  await conn.write(utf8(MAGIC));
  assert.equal((await readAll(conn.readable)).byteLength, 0);
  await conn.close();
  await server.close();
});

Deno.test("listenmux: TestMux_concurrency (50 raw echo connections, 50 gRPC health checks)", async () => {
  const server = listen(async (conn) => {
    const buffer = new Uint8Array(1024);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      await conn.write(buffer.subarray(0, n));
    }
    await conn.close();
    return "steal";
  });
  const raw = Array.from({ length: 50 }, async (_, i) => {
    const conn = await dial(server.port);
    const message = `hello ${i}`;
    await conn.write(utf8(MAGIC + message));
    await conn.closeWrite(); // TCP half-close
    assert.equal(text(await readAll(conn.readable)), message);
    await conn.close();
  });
  const grpc = Array.from({ length: 50 }, async () => {
    assert.equal(await healthCheck(await dial(server.port)), "SERVING");
  });
  await withTimeout(Promise.all([...raw, ...grpc]), 30_000, "100 connections");
  assert.equal(server.handshakes, 50);
  await server.close();
});

Deno.test("listenmux() reads no more than the magic, and matched conns keep direct I/O", async () => {
  const [client, server] = duplexPair();
  await client.write(utf8(MAGIC + "rest of the stream"));
  const routed = await listenmux(server, { [MAGIC]: 1 });
  assert.equal(routed.kind, "matched");
  assert.equal(routed.conn, server, "a direct-I/O conn is handed on as is");
  const rest = new Uint8Array(4);
  assert.equal(await routed.conn.read(rest), 4);
  assert.equal(text(rest), "rest");
  client.reset();
});

Deno.test("listenmux(): a short connection is plain and replays what it sent", async () => {
  for (const input of ["", "b", "backchanne", "backchannex"]) {
    const [client, server] = duplexPair();
    await client.write(utf8(input));
    await client.closeWrite();
    const routed = await listenmux(server, { backchannel: 1 });
    assert.equal(routed.kind, "plain", JSON.stringify(input));
    assert.ok(hasDirectIo(routed.conn));
    assert.equal(text(await readAll(routed.conn.readable)), input);
    await routed.conn.close();
  }
});

Deno.test("listenmux(): replay works over a plain Web Streams duplex, in any chunking", async () => {
  const input = utf8("backchannelAFTER");
  for (const size of [1, 3, 11, 12, 16]) {
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < input.byteLength; i += size) chunks.push(input.slice(i, i + size));
    const readable = ReadableStream.from(chunks);
    const written: Uint8Array[] = [];
    const conn: DuplexConn = {
      readable,
      writable: new WritableStream({ write: (c) => void written.push(c) }),
      closed: Promise.resolve(),
      close: () => readable.cancel(),
      reset: () => {},
    };
    const routed = await listenmux(conn, { backchannel: "yes" });
    assert.equal(routed.kind, "matched", `chunk ${size}`);
    assert.equal(text(await readAll(routed.conn.readable)), "AFTER", `chunk ${size}`);
    await routed.conn.write(utf8("back"));
    assert.equal(text(written[0]!), "back");

    const plainReadable = ReadableStream.from(chunks);
    const plain = await listenmux({ ...conn, readable: plainReadable }, { sidechannel: "no" });
    assert.equal(plain.kind, "plain");
    assert.equal(text(await readAll(plain.conn.readable)), "backchannelAFTER", `chunk ${size}`);
  }
});

Deno.test("listenmux(): the replaying duplex reads nothing ahead (backpressure stays the peer's)", async () => {
  const [client, server] = duplexPair({ highWaterMark: 16 });
  await client.write(utf8("PRI * HTTP/2.0"));
  const routed = await listenmux(server, { backchannel: 1 });
  assert.equal(routed.kind, "plain");
  // Only the 11 peeked bytes were taken from the pipe: the rest is still there.
  const rest = new Uint8Array(16);
  assert.equal(await server.read(rest), 3);
  assert.equal(text(rest.subarray(0, 3)), "2.0");
  // The replay serves the peeked bytes, then reads the pipe only when asked.
  const head = new Uint8Array(16);
  assert.equal(await routed.conn.read(head), 11);
  assert.equal(text(head.subarray(0, 11)), "PRI * HTTP/");
  await client.write(utf8("xyz"));
  assert.equal(await routed.conn.read(head), 3);
  client.reset();
});

Deno.test("listenmux(): a silent connection times out with HANDSHAKE and is reset", async () => {
  const [client, server] = duplexPair();
  await client.write(utf8("back"));
  const error = await listenmux(server, { backchannel: 1 }, { timeout: 50 }).catch((e) => e);
  assert.ok(error instanceof BackchannelError);
  assert.equal(error.code, "HANDSHAKE");
  await assert.rejects(client.read(new Uint8Array(1)));
});

Deno.test("listenmux(): abort rejects with the signal's reason; bad magics are RangeErrors", async () => {
  const [client, server] = duplexPair();
  const controller = new AbortController();
  const routing = listenmux(server, { backchannel: 1 }, { signal: controller.signal });
  const reason = new Error("shutting down");
  controller.abort(reason);
  await assert.rejects(routing, (e: unknown) => e === reason);
  client.reset();
  const [c2, s2] = duplexPair();
  await assert.rejects(listenmux(s2, { short: 1 }), RangeError);
  await assert.rejects(listenmux(s2, new Map([["twelve bytes", 1]])), RangeError);
  c2.reset();
});
