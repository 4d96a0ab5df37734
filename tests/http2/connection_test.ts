import assert from "node:assert/strict";
import { Http2Connection, type Http2ConnectionOptions, Http2Error, type Http2Stream } from "../../mod.ts";
import { pseudoRandomBytes, readAll, sha256Hex, text, transports, utf8, withTimeout } from "../_util.ts";
import { encodePing, FrameFlag, FrameType } from "../../src/http2/frame.ts";
import { finish, GET, rawClient } from "./_raw.ts";

const POST: [string, string][] = [
  [":method", "POST"],
  [":scheme", "http"],
  [":authority", "test"],
  [":path", "/echo"],
];

async function pair(
  transport: (typeof transports)[number],
  clientOptions: Http2ConnectionOptions = {},
  serverOptions: Http2ConnectionOptions = {},
) {
  const conns = await transport.pair();
  const client = Http2Connection.client(conns.client, { closeTimeout: 1000, ...clientOptions });
  const server = Http2Connection.server(conns.server, { closeTimeout: 1000, ...serverOptions });
  return {
    client,
    server,
    async close() {
      await withTimeout(Promise.all([client.close(), server.closed]), 5000, "connections closed");
      await conns.close();
    },
  };
}

/** Echoes each request body back with trailers. */
async function echoServer(server: Http2Connection): Promise<void> {
  const handlers: Promise<void>[] = [];
  for await (const stream of server) {
    handlers.push((async () => {
      stream.respond({ ":status": "200" });
      await stream.readable.pipeTo(stream.writable, { preventClose: true });
      await stream.sendTrailers({ "x-bytes": "done" });
    })());
  }
  await Promise.all(handlers);
}

async function writeAll(stream: Http2Stream, data: Uint8Array, chunk = 100_000): Promise<void> {
  const w = stream.writable.getWriter();
  for (let i = 0; i < data.length; i += chunk) await w.write(data.subarray(i, i + chunk));
  await w.close();
}

for (const transport of transports) {
  Deno.test(`Http2Connection echoes a 4 MiB body with trailers (${transport.name})`, async () => {
    const { client, server, close } = await pair(transport);
    const serving = echoServer(server);
    const data = pseudoRandomBytes(4 << 20, 7);
    const stream = await client.request(POST);
    const [, got] = await Promise.all([writeAll(stream, data), readAll(stream.readable)]);
    assert.equal(await sha256Hex(got), await sha256Hex(data));
    assert.deepEqual(await stream.response, [[":status", "200"]]);
    assert.deepEqual(await stream.trailers, [["x-bytes", "done"]]);
    await stream.closed;
    assert.equal(stream.state, "closed");
    await close();
    await serving;
  });

  Deno.test(`Http2Connection runs 40 concurrent streams (${transport.name})`, async () => {
    const { client, server, close } = await pair(transport);
    const serving = echoServer(server);
    const results = await Promise.all(Array.from({ length: 40 }, async (_, i) => {
      const data = pseudoRandomBytes(20_000 + i * 1000, i + 1);
      const stream = await client.request(POST);
      const [, got] = await Promise.all([writeAll(stream, data, 7000), readAll(stream.readable)]);
      return got.length === data.length && (await sha256Hex(got)) === (await sha256Hex(data));
    }));
    assert.ok(results.every(Boolean));
    assert.equal(client.stats().streamsOpened, 40);
    assert.equal(server.stats().activeStreams, 0);
    await close();
    await serving;
  });

  Deno.test(`Http2Connection.close() lets open streams finish and refuses new ones (${transport.name})`, async () => {
    const { client, server, close } = await pair(transport);
    const accepted = server.accept();
    const stream = await client.request(POST);
    const serverStream = await accepted;
    // The server starts a graceful shutdown while the request is still in flight.
    const closing = server.close();
    const w = stream.writable.getWriter();
    await w.write(utf8("late but welcome"));
    await w.close();
    assert.equal(text(await readAll(serverStream.readable)), "late but welcome");
    serverStream.respond({ ":status": "204" }, { endStream: true });
    assert.equal((await stream.response)[0]![1], "204");
    assert.equal((await readAll(stream.readable)).length, 0);
    const refused = await client.request(GET, { endStream: true }).catch((e) => e);
    assert.ok(refused instanceof Http2Error);
    assert.equal(refused.code, "REFUSED_STREAM");
    await withTimeout(closing, 5000, "server close");
    await close();
  });

  Deno.test(`Http2Stream.reset() reaches the peer as a remote error (${transport.name})`, async () => {
    const { client, server, close } = await pair(transport);
    const accepted = server.accept();
    const stream = await client.request(POST);
    const serverStream = await accepted;
    stream.reset("CANCEL");
    const error = await readAll(serverStream.readable).catch((e) => e);
    assert.ok(error instanceof Http2Error);
    assert.equal(error.code, "CANCEL");
    assert.equal(error.remote, true);
    assert.equal(error.streamId, stream.id);
    const local = await stream.response.catch((e) => e);
    assert.equal(local.code, "CANCEL");
    assert.equal(local.remote, false);
    await serverStream.closed;
    await close();
  });

  Deno.test(`Http2Connection.request() signal abort resets the stream with CANCEL (${transport.name})`, async () => {
    const { client, server, close } = await pair(transport);
    const accepted = server.accept();
    const controller = new AbortController();
    const stream = await client.request(GET, { signal: controller.signal });
    const serverStream = await accepted;
    controller.abort();
    const error = await serverStream.trailers.catch((e) => e);
    assert.equal(error.code, "CANCEL");
    await assert.rejects(stream.response, (e) => e instanceof Http2Error && e.code === "CANCEL");
    await close();
  });

  Deno.test(`Http2Connection.ping() measures a round trip (${transport.name})`, async () => {
    const { client, server, close } = await pair(transport);
    const [a, b] = await Promise.all([client.ping(), server.ping()]);
    assert.ok(a >= 0 && b >= 0);
    assert.equal(client.stats().rtt, a);
    await close();
  });
}

Deno.test("Http2Connection.request() waits for a slot under the peer's MAX_CONCURRENT_STREAMS", async () => {
  const { client, server, close } = await pair(transports[0]!, {}, { maxConcurrentStreams: 2 });
  await client.ping(); // SETTINGS have arrived
  assert.equal(client.remoteSettings.maxConcurrentStreams, 2);
  const s1 = await client.request(GET, { endStream: true });
  await client.request(GET, { endStream: true });
  let third = false;
  const pending = client.request(GET, { endStream: true }).then((s) => (third = true, s));
  const a1 = await server.accept();
  const a2 = await server.accept();
  await client.ping();
  assert.equal(third, false);
  a1.respond({ ":status": "200" }, { endStream: true });
  await s1.closed;
  await withTimeout(pending, 2000, "third request");
  assert.equal(third, true);
  const a3 = await server.accept();
  assert.equal(a3.id, 5);
  for (const s of [a2, a3]) s.respond({ ":status": "200" }, { endStream: true });
  await close();
});

Deno.test("Http2Stream states follow RFC 9113 §5.1 on both sides", async () => {
  const { client, server, close } = await pair(transports[0]!);
  const accepted = server.accept();
  const stream = await client.request(POST);
  assert.equal(stream.state, "open");
  const serverStream = await accepted;
  assert.equal(serverStream.state, "open");
  await stream.writable.close();
  await readAll(serverStream.readable);
  assert.equal(serverStream.state, "half-closed-remote");
  await client.ping();
  assert.equal(stream.state, "half-closed-local");
  serverStream.respond({ ":status": "200" });
  const w = serverStream.writable.getWriter();
  await w.write(utf8("x"));
  await w.close();
  await serverStream.closed;
  assert.equal(serverStream.state, "closed");
  assert.equal(text(await readAll(stream.readable)), "x");
  await stream.closed;
  assert.equal(stream.state, "closed");
  assert.equal(await stream.trailers, undefined);
  await close();
});

Deno.test("Http2Stream validates outgoing headers with TypeError", async () => {
  const { client, server, close } = await pair(transports[0]!);
  await assert.rejects(client.request({ ":method": "GET", ":path": "/" }), TypeError);
  await assert.rejects(client.request([...GET, ["connection", "close"]]), TypeError);
  await assert.rejects(client.request([...GET, ["x-a", "bad\r\nvalue"]]), TypeError);
  await assert.rejects(server.request(GET), TypeError);
  const accepted = server.accept();
  const stream = await client.request([...GET, ["X-Upper", "ok"]], { endStream: true });
  const serverStream = await accepted;
  assert.deepEqual(serverStream.headers.at(-1), ["x-upper", "ok"]);
  assert.throws(() => serverStream.respond({ "x-no-status": "1" }), TypeError);
  assert.throws(() => serverStream.respond({ ":status": "100" }), TypeError);
  assert.throws(() => stream.respond({ ":status": "200" }), TypeError);
  await assert.rejects(serverStream.sendTrailers({ "a": "b" }), TypeError); // before respond()
  serverStream.respond({ ":status": "200" });
  assert.throws(() => serverStream.respond({ ":status": "200" }), TypeError);
  await assert.rejects(serverStream.sendTrailers({ ":status": "200" }), TypeError);
  const writer = serverStream.writable.getWriter();
  await assert.rejects(serverStream.sendTrailers({ "a": "b" }), TypeError); // locked
  await writer.close();
  await readAll(stream.readable);
  await close();
});

Deno.test("Http2Stream writes on the server wait for respond()", async () => {
  const { client, server, close } = await pair(transports[0]!);
  const accepted = server.accept();
  const stream = await client.request(GET, { endStream: true });
  const serverStream = await accepted;
  const writing = (async () => {
    const w = serverStream.writable.getWriter();
    await w.write(utf8("body"));
    await w.close();
  })();
  await client.ping();
  serverStream.respond({ ":status": "201", "content-length": "4" });
  await writing;
  assert.equal((await stream.response)[0]![1], "201");
  assert.equal(text(await readAll(stream.readable)), "body");
  await close();
});

Deno.test("Http2Connection fails every pending read with a typed error when the peer vanishes", async () => {
  for (const transport of transports) {
    const conns = await transport.pair();
    const client = Http2Connection.client(conns.client);
    const server = Http2Connection.server(conns.server);
    const accepted = server.accept();
    const stream = await client.request(POST);
    const serverStream = await accepted;
    serverStream.respond({ ":status": "200" });
    const w = serverStream.writable.getWriter();
    await w.write(new Uint8Array(1000));
    const reader = stream.readable.getReader();
    assert.equal((await reader.read()).value?.byteLength, 1000);
    // The server's transport disappears without any HTTP/2 goodbye.
    conns.server.reset(new Error("gone"));
    const error = await reader.read().catch((e) => e);
    assert.ok(error instanceof Http2Error, `got ${error}`);
    assert.equal(error.code, "INTERNAL_ERROR");
    assert.equal(error.remote, false);
    await assert.rejects(stream.trailers, Http2Error);
    await assert.rejects(client.request(GET), Http2Error);
    await assert.rejects(client.ping(), Http2Error);
    await withTimeout(client.closed, 5000, "client closed");
    assert.equal(client.error?.code, "INTERNAL_ERROR");
    w.releaseLock();
    server.abort();
    await withTimeout(server.closed, 5000, "server closed");
    await conns.close();
  }
});

Deno.test("Http2Connection.accept() ends the async iterator on a graceful close", async () => {
  const { client, server, close } = await pair(transports[0]!);
  const seen: number[] = [];
  const loop = (async () => {
    for await (const s of server) {
      seen.push(s.id);
      s.respond({ ":status": "200" }, { endStream: true });
    }
  })();
  for (let i = 0; i < 3; i++) {
    const s = await client.request(GET, { endStream: true });
    await s.closed;
  }
  await client.close();
  await withTimeout(loop, 2000, "iterator end");
  assert.deepEqual(seen, [1, 3, 5]);
  const error = await server.accept().catch((e) => e);
  assert.equal(error.code, "NO_ERROR");
  await close();
});

Deno.test("Http2Connection.accept() honours an AbortSignal", async () => {
  const { client, server, close } = await pair(transports[0]!);
  const controller = new AbortController();
  const waiting = server.accept({ signal: controller.signal });
  controller.abort(new Error("stop"));
  await assert.rejects(waiting, /stop/);
  await close();
  void client;
});

Deno.test("Http2Connection idleTimeout closes an unused connection gracefully", async () => {
  const { client, server, close } = await pair(transports[0]!, {}, { idleTimeout: 50 });
  await withTimeout(server.closed, 3000, "idle close");
  await withTimeout(client.closed, 3000, "client follows");
  assert.equal(server.error, undefined);
  await close();
});

Deno.test("Http2Connection keepAliveInterval detects a dead peer", async () => {
  const conns = await transports[0]!.pair();
  const client = Http2Connection.client(conns.client, { keepAliveInterval: 30, pingTimeout: 100 });
  // The "server" never answers: nothing reads the other end.
  await withTimeout(client.closed, 3000, "keep-alive failure");
  assert.equal(client.error?.code, "INTERNAL_ERROR");
  await conns.close();
});

Deno.test("Http2Stream.close() ends the stream and stops reading", async () => {
  const { client, server, close } = await pair(transports[0]!);
  const accepted = server.accept();
  const stream = await client.request(POST);
  const serverStream = await accepted;
  serverStream.respond({ ":status": "200" });
  await serverStream.close(); // END_STREAM, then RST(NO_ERROR) since the request is unfinished
  assert.equal((await stream.response)[0]![1], "200");
  assert.equal((await readAll(stream.readable)).length, 0);
  await stream.closed;
  await close();
});

Deno.test("Http2Stream supports BYOB reads", async () => {
  const { client, server, close } = await pair(transports[0]!);
  const accepted = server.accept();
  const stream = await client.request(GET, { endStream: true });
  const serverStream = await accepted;
  serverStream.respond({ ":status": "200" });
  const data = pseudoRandomBytes(300_000, 3);
  const writing = writeAll(serverStream, data);
  const reader = stream.readable.getReader({ mode: "byob" });
  const { value } = await reader.read(new Uint8Array(300_000), { min: 300_000 });
  assert.equal(value!.byteLength, 300_000);
  assert.deepEqual(value, data);
  assert.equal((await reader.read(new Uint8Array(10))).done, true);
  await writing;
  await close();
});

Deno.test("Http2Connection.goAway() on a server has two phases so requests in flight are served", async () => {
  const { server, peer } = await rawClient();
  const serving = (async () => {
    for await (const s of server) s.respond({ ":status": "200" }, { endStream: true });
  })();
  await peer.send(peer.headersFrame(1, GET, true));
  await peer.headers(1);
  server.goAway();
  const first = await peer.goAway();
  assert.deepEqual(first, { lastStreamId: 2 ** 31 - 1, code: "NO_ERROR" });
  const ping = await peer.until((f) => f.type === FrameType.PING && (f.flags & FrameFlag.ACK) === 0);
  // This request crossed the first GOAWAY on the wire: it must still be served.
  await peer.send(peer.headersFrame(3, GET, true));
  await peer.send(encodePing(ping.payload, true));
  const final = await peer.goAway();
  assert.deepEqual(final, { lastStreamId: 3, code: "NO_ERROR" });
  const answer = peer.seen.find((f) => f.type === FrameType.HEADERS && f.streamId === 3) ??
    await peer.until((f) => f.type === FrameType.HEADERS && f.streamId === 3);
  assert.deepEqual(answer.headers, [[":status", "200"]]);
  // With nothing left open, the server closes its side.
  assert.equal(await peer.next(), null);
  await finish(server, peer);
  await serving;
});

Deno.test("Http2Connection splits large header blocks into CONTINUATION frames and reassembles them", async () => {
  const { client, server, close } = await pair(transports[0]!, {}, { maxHeaderListSize: 1 << 18 });
  const big = "v".repeat(100_000);
  const accepted = server.accept();
  const stream = await client.request([...GET, ["x-big", big]], { endStream: true });
  const serverStream = await accepted;
  assert.equal(serverStream.headers.find(([n]) => n === "x-big")?.[1], big);
  serverStream.respond({ ":status": "200", "x-reply": big.slice(0, 50_000) }, { endStream: true });
  const response = await stream.response;
  assert.equal(response.find(([n]) => n === "x-reply")?.[1].length, 50_000);
  await close();
});

Deno.test("Http2Stream.sendTrailers() works on requests too", async () => {
  const { client, server, close } = await pair(transports[0]!);
  const accepted = server.accept();
  const stream = await client.request(POST);
  const w = stream.writable.getWriter();
  await w.write(utf8("body"));
  w.releaseLock();
  await stream.sendTrailers({ "x-checksum": "abc" });
  const serverStream = await accepted;
  assert.equal(text(await readAll(serverStream.readable)), "body");
  assert.deepEqual(await serverStream.trailers, [["x-checksum", "abc"]]);
  serverStream.respond({ ":status": "200" }, { endStream: true });
  await stream.closed;
  await close();
});

Deno.test("Http2Stream.close() on an unanswered server stream resets it", async () => {
  const { client, server, close } = await pair(transports[0]!);
  const accepted = server.accept();
  const stream = await client.request(GET, { endStream: true });
  const serverStream = await accepted;
  await withTimeout(serverStream.close(), 2000, "close");
  assert.equal((await stream.response.catch((e) => e)).code, "CANCEL");
  await close();
});
