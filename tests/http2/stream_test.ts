/**
 * Http2Stream: a complete response survives close() and reset("NO_ERROR") (RFC 9113 §8.1),
 * direct I/O, trailers set while a writer holds the stream, lazy Web Streams, and frames
 * coalesced into one transport write.
 */

import assert from "node:assert/strict";
import { Http2Connection, type Http2ConnectionOptions, type Http2Stream } from "../../mod.ts";
import { pseudoRandomBytes, readAll, sha256Hex, text, transports, utf8, withTimeout } from "../_util.ts";
import { FrameFlag, FrameType } from "../../src/http2/frame.ts";
import { finish, rawClient } from "./_raw.ts";

const POST: [string, string][] = [
  [":method", "POST"],
  [":scheme", "http"],
  [":authority", "test"],
  [":path", "/"],
];

async function pair(
  transport: (typeof transports)[number],
  options: Http2ConnectionOptions = {},
) {
  const conns = await transport.pair();
  const client = Http2Connection.client(conns.client, { closeTimeout: 1000, ...options });
  const server = Http2Connection.server(conns.server, { closeTimeout: 1000, ...options });
  return {
    client,
    server,
    async close() {
      await withTimeout(Promise.all([client.close(), server.closed]), 5000, "connections closed");
      await conns.close();
    },
  };
}

for (const transport of transports) {
  for (const end of ["close", "reset"] as const) {
    Deno.test(
      `Http2Stream.${end}() right after respond({ endStream }) still sends the response (${transport.name})`,
      async () => {
        const { client, server, close } = await pair(transport);
        const stream = await client.request(POST); // still sending: no END_STREAM yet
        const inbound = await server.accept();
        inbound.respond({ ":status": "200", "grpc-status": "5" }, { endStream: true });
        if (end === "close") void inbound.close();
        else inbound.reset("NO_ERROR");
        assert.deepEqual(await withTimeout(stream.response, 5000, "response"), [
          [":status", "200"],
          ["grpc-status", "5"],
        ]);
        assert.equal(await stream.trailers, undefined);
        assert.equal((await readAll(stream.readable)).byteLength, 0);
        // The server then told us to stop sending (RST_STREAM NO_ERROR).
        const error = await stream.write(utf8("late")).then(() => undefined, (e) => e);
        assert.ok(error === undefined || error.code === "NO_ERROR", String(error));
        await withTimeout(stream.closed, 5000, "client stream closed");
        await inbound.closed;
        await close();
      },
    );
  }

  Deno.test(`Http2Stream.close() after a body and trailers flushes them all (${transport.name})`, async () => {
    const { client, server, close } = await pair(transport);
    const data = pseudoRandomBytes(300_000, 3);
    const stream = await client.request(POST);
    const inbound = await server.accept();
    inbound.respond({ ":status": "200" });
    inbound.setTrailers({ "x-done": "1" });
    void inbound.write(data);
    void inbound.close(); // the client still sends: RST_STREAM(NO_ERROR) after the trailers
    assert.equal(await sha256Hex(await readAll(stream.readable)), await sha256Hex(data));
    assert.deepEqual(await stream.trailers, [["x-done", "1"]]);
    await close();
  });

  Deno.test(`Http2Stream direct I/O moves 2 MiB both ways (${transport.name})`, async () => {
    const { client, server, close } = await pair(transport);
    const data = pseudoRandomBytes(2 << 20, 5);
    const serving = (async () => {
      const inbound = await server.accept();
      inbound.respond({ ":status": "200" });
      const buffer = new Uint8Array(50_000);
      for (let n; (n = await inbound.read(buffer)) !== null;) await inbound.write(buffer.subarray(0, n));
      await inbound.sendTrailers({ "x-echo": "done" });
    })();
    const stream = await client.request(POST);
    const writing = (async () => {
      for (let i = 0; i < data.length; i += 70_000) await stream.write(data.subarray(i, i + 70_000));
      await stream.closeWrite();
    })();
    const got = new Uint8Array(data.length + 1); // never read into an empty view: it returns 0 at once
    let at = 0;
    for (let n; (n = await stream.read(got.subarray(at))) !== null;) at += n;
    assert.equal(await stream.read(new Uint8Array(1)), null);
    await writing;
    assert.equal(at, data.length);
    assert.equal(await sha256Hex(got.subarray(0, at)), await sha256Hex(data));
    assert.deepEqual(await stream.trailers, [["x-echo", "done"]]);
    await serving;
    await close();
  });
}

Deno.test("Http2Stream.setTrailers() ends the stream while a writer holds the writable", async () => {
  const { client, server, close } = await pair(transports[0]!);
  const stream = await client.request(POST, { endStream: true });
  const inbound = await server.accept();
  inbound.respond({ ":status": "200" });
  const writer = inbound.writable.getWriter();
  inbound.setTrailers({ "grpc-status": "0" });
  await writer.write(utf8("body"));
  await writer.close();
  assert.equal(text(await readAll(stream.readable)), "body");
  assert.deepEqual(await stream.trailers, [["grpc-status", "0"]]);
  assert.throws(() => inbound.setTrailers({ "x-late": "1" }), TypeError);
  await assert.rejects(inbound.sendTrailers({ "x-late": "1" }), TypeError);
  await close();
});

Deno.test("Http2Stream.reset() with an error code drops the queued response", async () => {
  const { server, peer } = await rawClient();
  await peer.send(peer.headersFrame(1, POST));
  const inbound = await server.accept();
  inbound.respond({ ":status": "200" }, { endStream: true });
  inbound.reset("INTERNAL_ERROR");
  const first = await peer.until((f) => f.streamId === 1);
  assert.equal(first.type, FrameType.RST_STREAM);
  await finish(server, peer);
});

Deno.test("Http2Stream.reset(NO_ERROR) after respond({ endStream }) sends HEADERS then RST_STREAM", async () => {
  const { server, peer } = await rawClient();
  await peer.send(peer.headersFrame(1, POST));
  const inbound = await server.accept();
  inbound.respond({ ":status": "204" }, { endStream: true });
  inbound.reset("NO_ERROR");
  const headers = await peer.until((f) => f.streamId === 1);
  assert.equal(headers.type, FrameType.HEADERS);
  assert.equal(headers.flags & FrameFlag.END_STREAM, FrameFlag.END_STREAM);
  assert.equal(await peer.reset(1), "NO_ERROR");
  await finish(server, peer);
});

Deno.test("Http2Stream creates its Web Streams only when asked", async () => {
  const { client, server, close } = await pair(transports[0]!);
  const stream = await client.request(POST);
  const inbound = await server.accept();
  inbound.respond({ ":status": "200" });
  await stream.write(utf8("abc"));
  await stream.closeWrite();
  const buffer = new Uint8Array(8);
  assert.equal(await inbound.read(buffer), 3);
  assert.equal(await inbound.read(buffer), null);
  await inbound.closeWrite();
  assert.equal((await readAll(stream.readable)).byteLength, 0); // created after the end: still works
  await stream.closed;
  await close();
});

Deno.test("Http2Connection coalesces a request's HEADERS, DATA and END_STREAM into one transport write", async () => {
  const { client, server, close } = await pair(transports[1]!);
  const serving = (async () => {
    for await (const inbound of server) {
      const body = new Uint8Array(64);
      let n = 0;
      for (let k; (k = await inbound.read(body.subarray(n))) !== null;) n += k;
      inbound.respond({ ":status": "200" });
      inbound.setTrailers({ "x-n": String(n) });
      await inbound.write(body.subarray(0, n));
      await inbound.closeWrite();
    }
  })();
  await client.ping(); // settle the handshake
  const calls = 20;
  const before = [client.stats(), server.stats()];
  for (let i = 0; i < calls; i++) {
    const stream: Http2Stream = await client.request(POST);
    await stream.write(utf8("hello"));
    await stream.closeWrite();
    assert.equal(text(await readAll(stream.readable)), "hello");
    assert.deepEqual(await stream.trailers, [["x-n", "5"]]);
  }
  const after = [client.stats(), server.stats()];
  const clientWrites = (after[0]!.transportWrites - before[0]!.transportWrites) / calls;
  const serverWrites = (after[1]!.transportWrites - before[1]!.transportWrites) / calls;
  // One write per call and side (a WINDOW_UPDATE may add one now and then).
  assert.ok(clientWrites < 1.5, `client: ${clientWrites} writes per call`);
  assert.ok(serverWrites < 1.5, `server: ${serverWrites} writes per call`);
  assert.equal((after[0]!.framesSent - before[0]!.framesSent) / calls, 2); // HEADERS, DATA+END_STREAM
  await close();
  await serving;
});
