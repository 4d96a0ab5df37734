import assert from "node:assert/strict";
import {
  FLAG_ACK,
  FLAG_FIN,
  FLAG_RST,
  FLAG_SYN,
  GO_AWAY_NORMAL,
  TYPE_DATA,
  TYPE_GO_AWAY,
  TYPE_PING,
  TYPE_WINDOW_UPDATE,
  YamuxError,
} from "../../mod.ts";
import { readAll, text, utf8, withTimeout } from "../_util.ts";
import { sessionWithRawPeer } from "./_raw_peer.ts";

Deno.test("YamuxSession.open() sends WindowUpdate+SYN with the extra window, data may precede the ACK", async () => {
  const { session, peer } = sessionWithRawPeer("client", { keepAliveInterval: 0, maxStreamWindow: 16 << 20 });
  const stream = await session.open();
  assert.equal(stream.state, "synSent");
  await stream.write(utf8("early"));
  const syn = await peer.next();
  assert.deepEqual([syn!.type, syn!.flags, syn!.streamId, syn!.length], [
    TYPE_WINDOW_UPDATE,
    FLAG_SYN,
    1,
    0xfc0000,
  ]);
  const data = await peer.next();
  assert.deepEqual([data!.type, data!.flags, data!.streamId, text(data!.payload)], [
    TYPE_DATA,
    0,
    1,
    "early",
  ]);
  await peer.send(TYPE_WINDOW_UPDATE, FLAG_ACK, 1, 0);
  await peer.sync();
  assert.equal(stream.state, "established");
  await Promise.all([session.close(), peer.close()]);
});

Deno.test("YamuxSession acknowledges an inbound SYN at once with its window delta", async () => {
  const { session, peer } = sessionWithRawPeer("server", { keepAliveInterval: 0, maxStreamWindow: 1 << 20 });
  await peer.send(TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0);
  const ack = await peer.next();
  assert.deepEqual([ack!.type, ack!.flags, ack!.streamId, ack!.length], [
    TYPE_WINDOW_UPDATE,
    FLAG_ACK,
    1,
    (1 << 20) - 262144,
  ]);
  const stream = await session.accept();
  assert.equal(stream.state, "established");
  await Promise.all([session.close(), peer.close()]);
});

Deno.test("YamuxStream close sends WindowUpdate+FIN after its data; states follow hashicorp", async () => {
  const { session, peer } = sessionWithRawPeer("server", { keepAliveInterval: 0 });
  await peer.send(TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0);
  const stream = await session.accept();
  const writer = stream.writable.getWriter();
  await writer.write(utf8("a"));
  await writer.write(utf8("b"));
  await writer.close();
  assert.equal(stream.state, "localClose");
  const frames = [await peer.next(), await peer.next(), await peer.next(), await peer.next()];
  assert.deepEqual(frames.map((f) => [f!.type, f!.flags, f!.streamId, f!.length]), [
    [TYPE_WINDOW_UPDATE, FLAG_ACK, 1, 0],
    [TYPE_DATA, 0, 1, 1],
    [TYPE_DATA, 0, 1, 1],
    [TYPE_WINDOW_UPDATE, FLAG_FIN, 1, 0],
  ]);
  await peer.send(TYPE_WINDOW_UPDATE, FLAG_FIN, 1, 0);
  await stream.closed;
  assert.equal(stream.state, "closed");
  assert.equal(session.stats().openStreams, 0);
  await Promise.all([session.close(), peer.close()]);
});

Deno.test("YamuxStream: the peer's FIN first gives remoteClose, then ours gives closed", async () => {
  const { session, peer } = sessionWithRawPeer("server", { keepAliveInterval: 0 });
  await peer.send(TYPE_DATA, FLAG_SYN | FLAG_FIN, 1, 2, utf8("hi")); // open, data and FIN in one frame
  const stream = await session.accept();
  assert.equal(text(await readAll(stream.readable)), "hi");
  assert.equal(stream.state, "remoteClose");
  await stream.write(utf8("yo")); // writing is allowed after the peer's FIN
  await stream.closeWrite();
  assert.equal(stream.state, "closed");
  await Promise.all([session.close(), peer.close()]);
});

Deno.test("YamuxStream.reset() sends RST and drops queued data", async () => {
  const { session, peer } = sessionWithRawPeer("client", { keepAliveInterval: 0 });
  const stream = await session.open();
  stream.reset();
  const frames = [await peer.next(), await peer.next()];
  assert.deepEqual(frames.map((f) => [f!.type, f!.flags, f!.streamId]), [
    [TYPE_WINDOW_UPDATE, FLAG_SYN, 1],
    [TYPE_WINDOW_UPDATE, FLAG_RST, 1],
  ]);
  await Promise.all([session.close(), peer.close()]);
});

Deno.test("YamuxSession answers a ping with the same opaque value", async () => {
  const { session, peer } = sessionWithRawPeer("server", { keepAliveInterval: 0 });
  await peer.send(TYPE_PING, FLAG_SYN, 0, 0xdeadbeef);
  const pong = await peer.next();
  assert.deepEqual([pong!.type, pong!.flags, pong!.streamId, pong!.length], [
    TYPE_PING,
    FLAG_ACK,
    0,
    0xdeadbeef,
  ]);
  await Promise.all([session.close(), peer.close()]);
});

Deno.test("YamuxSession.close() sends GoAway(0) then half-closes the transport", async () => {
  const { session, peer } = sessionWithRawPeer("client", { keepAliveInterval: 0 });
  const closing = session.close();
  const frames = await peer.rest();
  assert.deepEqual(frames.map((f) => [f.type, f.length]), [[TYPE_GO_AWAY, GO_AWAY_NORMAL]]);
  await peer.close();
  await closing;
});

Deno.test("YamuxSession puts a ping reply ahead of queued bulk data (control lane)", async () => {
  const { session, peer } = sessionWithRawPeer("server", { keepAliveInterval: 0 });
  // The raw peer opens a stream and grants a 32 MiB window, so our side can queue a lot.
  await peer.send(TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 32 << 20);
  const stream = await session.accept();
  const bulk = new Uint8Array(8 << 20);
  const writing = stream.write(bulk);
  assert.equal((await peer.next())!.flags, FLAG_ACK);
  const first = await peer.next(); // bulk is flowing
  assert.equal(first!.type, TYPE_DATA);
  await peer.send(TYPE_PING, FLAG_SYN, 0, 7);
  let dataBytes = 0;
  const pong = await withTimeout(
    peer.until((f) => {
      if (f.type === TYPE_DATA) dataBytes += f.length;
      return f.type === TYPE_PING;
    }),
    5000,
    "pong",
  );
  assert.equal(pong.length, 7);
  // At most the batch in flight and the one being assembled went out first, not 8 MiB.
  assert.ok(dataBytes <= 2 * (256 + 64) * 1024, `${dataBytes} data bytes before the pong`);
  stream.reset();
  await writing.catch(() => {});
  await Promise.all([session.close(), peer.close()]);
});

Deno.test("YamuxSession: stream close timeout resets a stream whose peer never closes", async () => {
  const { session, peer } = sessionWithRawPeer("client", { keepAliveInterval: 0, streamCloseTimeout: 50 });
  const stream = await session.open();
  await stream.closeWrite();
  const frames = [await peer.next(), await peer.next(), await peer.next()];
  assert.deepEqual(frames.map((f) => [f!.flags, f!.streamId]), [[FLAG_SYN, 1], [FLAG_FIN, 1], [FLAG_RST, 1]]);
  await stream.closed;
  assert.equal(stream.state, "reset");
  const error = await readAll(stream.readable).catch((e) => e);
  assert.equal(error.code, "TIMEOUT");
  await Promise.all([session.close(), peer.close()]);
});

Deno.test("YamuxSession: an open without ACK ends the session after streamOpenTimeout", async () => {
  const { session, peer } = sessionWithRawPeer("client", { keepAliveInterval: 0, streamOpenTimeout: 50 });
  const stream = await session.open();
  await session.closed;
  assert.equal(session.error?.code, "TIMEOUT");
  assert.equal(session.error?.streamId, 1);
  await assert.rejects(
    stream.write(utf8("x")),
    (e: unknown) => e instanceof YamuxError && e.code === "TIMEOUT",
  );
  await peer.close();
});

Deno.test("YamuxSession: keepalive ends a session whose peer went silent", async () => {
  const { session, peer } = sessionWithRawPeer("client", {
    keepAliveInterval: 20,
    connectionWriteTimeout: 60,
  });
  const ping = await peer.until((f) => f.type === TYPE_PING); // keepalive ping, never answered
  assert.equal(ping.flags, FLAG_SYN);
  await session.closed;
  assert.equal(session.error?.code, "KEEPALIVE_TIMEOUT");
  await peer.close();
});

Deno.test("YamuxSession: keepalive is satisfied by any traffic, not only pongs", async () => {
  const { session, peer } = sessionWithRawPeer("client", {
    keepAliveInterval: 20,
    connectionWriteTimeout: 60,
  });
  const busy = (async () => {
    for (let i = 0; i < 20; i++) {
      await peer.send(TYPE_WINDOW_UPDATE, 0, 999, 1); // any frame proves life
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  await busy;
  assert.equal(session.error, undefined);
  await session.close().catch(() => {});
  await peer.close();
});

Deno.test("YamuxSession: a transport that accepts nothing ends the session with TIMEOUT", async () => {
  const { session, peer } = sessionWithRawPeer("client", {
    keepAliveInterval: 0,
    connectionWriteTimeout: 100,
  });
  // The raw peer never reads: our writes stall once the pipe's buffer is full.
  const stream = await session.open();
  // 200 KB fit the initial window: they are copied into a batch (the write resolves),
  // and that batch is what the transport never accepts.
  await stream.write(new Uint8Array(200_000));
  await session.closed;
  assert.equal(session.error?.code, "TIMEOUT");
  await assert.rejects(
    stream.write(new Uint8Array(1)),
    (e: unknown) => e instanceof YamuxError && e.code === "TIMEOUT",
  );
  await peer.close();
});

Deno.test("YamuxSession.ping() times out after connectionWriteTimeout", async () => {
  const { session, peer } = sessionWithRawPeer("client", {
    keepAliveInterval: 0,
    connectionWriteTimeout: 50,
  });
  await assert.rejects(session.ping(), (e: unknown) => e instanceof YamuxError && e.code === "TIMEOUT");
  await peer.close();
  await session.close();
});
