import assert from "node:assert/strict";
import {
  encodeHeader,
  FLAG_ACK,
  FLAG_FIN,
  FLAG_SYN,
  GO_AWAY_PROTOCOL_ERROR,
  TYPE_DATA,
  TYPE_GO_AWAY,
  TYPE_PING,
  TYPE_WINDOW_UPDATE,
  YamuxError,
  type YamuxSession,
  type YamuxViolation,
} from "../../mod.ts";
import { readAll, text, utf8, withTimeout } from "../_util.ts";
import { type RawPeer, sessionWithRawPeer } from "./_raw_peer.ts";

/** Opens stream `id` from the raw side and sends `data` on it (no FIN). */
async function rawOpen(peer: RawPeer, id: number, data: string): Promise<void> {
  await peer.send(TYPE_WINDOW_UPDATE, FLAG_SYN, id, 0);
  if (data) await peer.send(TYPE_DATA, 0, id, data.length, utf8(data));
}

/** Asserts that our session answered with GoAway(protocol error) and failed with `violation`. */
async function expectProtocolError(
  session: YamuxSession,
  peer: RawPeer,
  violation: YamuxViolation,
): Promise<void> {
  const goAway = await withTimeout(peer.until((f) => f.type === TYPE_GO_AWAY), 5000, "GoAway");
  assert.equal(goAway.length, GO_AWAY_PROTOCOL_ERROR);
  assert.equal(goAway.streamId, 0);
  await withTimeout(session.closed, 5000, "session end");
  assert.ok(session.error instanceof YamuxError);
  assert.equal(session.error.code, "PROTOCOL_ERROR");
  assert.equal(session.error.violation, violation);
  assert.equal(session.error.goAwayCode, GO_AWAY_PROTOCOL_ERROR);
  // After GoAway the transport is closed.
  assert.deepEqual((await peer.rest()).filter((f) => f.type !== TYPE_WINDOW_UPDATE), []);
}

/**
 * A well-behaved stream gets data in, then the peer misbehaves: the stream delivers what it
 * received, then fails with the typed protocol error — never a clean end.
 */
async function streamSeesDataThenError(
  session: YamuxSession,
  peer: RawPeer,
): Promise<{ done: Promise<void> }> {
  await rawOpen(peer, 1, "kept");
  const stream = await session.accept();
  const done = (async () => {
    const reader = stream.readable.getReader();
    assert.equal(text((await reader.read()).value!), "kept");
    const error = await reader.read().catch((e) => e);
    assert.ok(error instanceof YamuxError, `got ${error}`);
    assert.equal(error.code, "PROTOCOL_ERROR");
  })();
  return { done };
}

const CASES: [string, YamuxViolation, (peer: RawPeer) => Promise<void>][] = [
  [
    "a wrong version",
    "INVALID_VERSION",
    (p) => p.sendBytes(new Uint8Array([1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])),
  ],
  ["an unknown frame type", "INVALID_TYPE", (p) => p.sendBytes(encodeHeader(4, 0, 0, 0))],
  ["data beyond the window", "RECV_WINDOW_EXCEEDED", async (p) => {
    await rawOpen(p, 3, "");
    await p.send(TYPE_DATA, 0, 3, 262144, new Uint8Array(262144)); // the whole 256 KiB window
    await p.send(TYPE_DATA, 0, 3, 1, new Uint8Array(1));
  }],
  ["a duplicate SYN", "DUPLICATE_STREAM", (p) => p.send(TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0)],
  ["a SYN with the wrong parity", "INVALID_STREAM_ID", (p) => p.send(TYPE_WINDOW_UPDATE, FLAG_SYN, 2, 0)],
  ["a SYN on stream 0", "INVALID_STREAM_ID", (p) => p.send(TYPE_DATA, FLAG_SYN, 0, 0)],
  ["a second FIN", "UNEXPECTED_FLAG", async (p) => {
    await rawOpen(p, 3, "");
    await p.send(TYPE_WINDOW_UPDATE, FLAG_FIN, 3, 0);
    await p.send(TYPE_WINDOW_UPDATE, FLAG_FIN, 3, 0);
  }],
  [
    "a window update overflowing 2^32",
    "WINDOW_OVERFLOW",
    (p) => p.send(TYPE_WINDOW_UPDATE, 0, 1, 0xffff_ffff),
  ],
  ["huge data for an unknown stream", "RECV_WINDOW_EXCEEDED", (p) => p.send(TYPE_DATA, 0, 99, 0x10000000)],
];

for (const [what, violation, misbehave] of CASES) {
  Deno.test(`YamuxSession answers ${what} with GoAway(1) and typed errors on every stream`, async () => {
    const { session, peer } = sessionWithRawPeer("server", { keepAliveInterval: 0 });
    const streamCheck = await streamSeesDataThenError(session, peer);
    // Stream 3 (opened by some cases) may come first; the outcome is captured at once so
    // the rejection is never unhandled.
    const pendingAccept = session.accept().then(() => session.accept()).then(() => null, (e: unknown) => e);
    await misbehave(peer);
    await expectProtocolError(session, peer, violation);
    await streamCheck.done;
    const acceptError = await pendingAccept;
    assert.ok(acceptError instanceof YamuxError && acceptError.code === "PROTOCOL_ERROR");
    await assert.rejects(
      session.open(),
      (e: unknown) => e instanceof YamuxError && e.code === "PROTOCOL_ERROR",
    );
    await peer.close();
  });
}

Deno.test("YamuxSession drains data for an unknown stream and carries on", async () => {
  const { session, peer } = sessionWithRawPeer("server", { keepAliveInterval: 0 });
  await peer.send(TYPE_DATA, 0, 41, 5, utf8("lost!")); // never opened
  await peer.send(TYPE_WINDOW_UPDATE, 0, 43, 100); // late update for a finished stream
  await peer.send(TYPE_PING, FLAG_ACK, 0, 12345); // pong nobody asked for
  await rawOpen(peer, 1, "hello");
  await peer.send(TYPE_WINDOW_UPDATE, FLAG_FIN, 1, 0);
  const stream = await session.accept();
  assert.equal(text(await readAll(stream.readable)), "hello");
  assert.equal(session.error, undefined);
  await Promise.all([session.close(), peer.close()]);
});

Deno.test("YamuxSession refuses SYNs beyond the accept backlog with RST", async () => {
  const { session, peer } = sessionWithRawPeer("server", { keepAliveInterval: 0, acceptBacklog: 2 });
  for (const id of [1, 3, 5]) await rawOpen(peer, id, "");
  const acks = [];
  for (let i = 0; i < 3; i++) acks.push(await peer.until((f) => f.type === TYPE_WINDOW_UPDATE));
  assert.deepEqual(acks.map((f) => [f.streamId, f.flags]), [[1, FLAG_ACK], [3, FLAG_ACK], [5, 8]]);
  assert.equal(session.stats().streamsRefused, 1);
  assert.equal(session.stats().acceptBacklog, 2);
  await Promise.all([session.close(), peer.close()]);
});

Deno.test("YamuxSession refuses SYNs beyond maxConcurrentStreams, and open() rejects", async () => {
  const { session, peer } = sessionWithRawPeer("server", { keepAliveInterval: 0, maxConcurrentStreams: 2 });
  await rawOpen(peer, 1, "");
  await session.open(); // stream 2: two open now
  await rawOpen(peer, 3, "");
  const frames = [];
  for (let i = 0; i < 3; i++) frames.push(await peer.until((f) => f.type === TYPE_WINDOW_UPDATE));
  assert.deepEqual(frames.map((f) => [f.streamId, f.flags]), [[1, FLAG_ACK], [2, FLAG_SYN], [3, 8]]);
  await assert.rejects(
    session.open(),
    (e: unknown) => e instanceof YamuxError && e.code === "TOO_MANY_STREAMS",
  );
  await Promise.all([session.close(), peer.close()]);
});

Deno.test("YamuxSession fails unfinished streams with CONNECTION_LOST when the peer vanishes", async () => {
  const { session, peer } = sessionWithRawPeer("client", { keepAliveInterval: 0 });
  const stream = await session.open();
  await peer.until((f) => (f.flags & FLAG_SYN) !== 0);
  await peer.send(TYPE_WINDOW_UPDATE, FLAG_ACK, 1, 0);
  await peer.send(TYPE_DATA, 0, 1, 3, utf8("abc"));
  const reader = stream.readable.getReader();
  assert.equal(text((await reader.read()).value!), "abc");
  const pendingRead = reader.read();
  peer.conn.reset(new Error("cable cut"));
  const error = await pendingRead.catch((e) => e);
  assert.ok(error instanceof YamuxError);
  assert.equal(error.code, "CONNECTION_LOST");
  await assert.rejects(stream.write(utf8("x")), (e: unknown) => e instanceof YamuxError);
  await session.closed;
  assert.equal(session.error?.code, "CONNECTION_LOST");
});

Deno.test("YamuxSession: EOF without GoAway mid-stream is CONNECTION_LOST, a finished stream keeps its data", async () => {
  const { session, peer } = sessionWithRawPeer("server", { keepAliveInterval: 0 });
  await rawOpen(peer, 1, "complete");
  await peer.send(TYPE_WINDOW_UPDATE, FLAG_FIN, 1, 0);
  await rawOpen(peer, 3, "truncated");
  const done = await session.accept();
  const cut = await session.accept();
  await peer.close(); // plain EOF, no GoAway
  assert.equal(text(await readAll(done.readable)), "complete");
  const reader = cut.readable.getReader();
  assert.equal(text((await reader.read()).value!), "truncated");
  await assert.rejects(
    reader.read(),
    (e: unknown) => e instanceof YamuxError && e.code === "CONNECTION_LOST",
  );
});

Deno.test("YamuxSession: a truncated frame header at EOF is CONNECTION_LOST", async () => {
  const { session, peer } = sessionWithRawPeer("server", { keepAliveInterval: 0 });
  await peer.sendBytes(new Uint8Array([0, 2, 0]));
  await peer.close();
  await session.closed;
  assert.equal(session.error?.code, "CONNECTION_LOST");
});

Deno.test("YamuxSession: the peer's GoAway(2) ends the session with a remote GO_AWAY", async () => {
  const { session, peer } = sessionWithRawPeer("client", { keepAliveInterval: 0 });
  const stream = await session.open();
  await peer.send(TYPE_GO_AWAY, 0, 0, 2);
  await session.closed;
  assert.equal(session.error?.code, "GO_AWAY");
  assert.equal(session.error?.goAwayCode, 2);
  assert.equal(session.error?.remote, true);
  await assert.rejects(
    readAll(stream.readable),
    (e: unknown) => e instanceof YamuxError && e.code === "GO_AWAY",
  );
  await peer.close();
});
