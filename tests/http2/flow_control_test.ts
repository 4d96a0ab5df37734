import assert from "node:assert/strict";
import { duplexPair, Http2Connection, type Http2Stream } from "../../mod.ts";
import {
  encodeData,
  encodeSettings,
  encodeWindowUpdate,
  FrameFlag,
  FrameType,
  SettingId,
} from "../../src/http2/frame.ts";
import { pseudoRandomBytes, readAll, sha256Hex, withTimeout } from "../_util.ts";
import { finish, GET, rawClient, type RawFrame, rawServer } from "./_raw.ts";

const POST: [string, string][] = [[":method", "POST"], [":scheme", "http"], [":authority", "t"], [
  ":path",
  "/",
]];

async function slowRead(stream: Http2Stream, yieldEvery: () => Promise<unknown>): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  const reader = stream.readable.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return chunks;
    chunks.push(value);
    await yieldEvery();
  }
}

Deno.test("Http2Stream slow reader: received bytes buffered never exceed the stream window", async () => {
  const [a, b] = duplexPair();
  const window = 65536;
  const client = Http2Connection.client(a);
  const server = Http2Connection.server(b, { initialWindowSize: window });
  const accepted = server.accept();
  const stream = await client.request(POST);
  const data = pseudoRandomBytes(4 << 20, 9);
  const writing = (async () => {
    const w = stream.writable.getWriter();
    await w.write(data); // one huge write: the window, not the writer, must hold it back
    await w.close();
  })();
  const serverStream = await accepted;
  let maxSeen = 0;
  // A slow consumer: after every chunk it lets the connections run a full round trip.
  const chunks = await slowRead(serverStream, async () => {
    await client.ping();
    maxSeen = Math.max(maxSeen, server.stats().bufferedBytes);
  });
  await writing;
  const got = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) got.set(c, (at += c.byteLength) - c.byteLength);
  assert.equal(await sha256Hex(got), await sha256Hex(data));
  const peak = server.stats().peakBufferedBytes;
  assert.ok(peak <= window, `peak buffered ${peak} > window ${window}`);
  assert.ok(peak > 0 && maxSeen <= window);
  serverStream.respond({ ":status": "200" }, { endStream: true });
  await client.close();
  await server.closed;
});

Deno.test("Http2Connection slow readers on many streams stay within the connection window", async () => {
  const [a, b] = duplexPair();
  const connWindow = 128 * 1024;
  const client = Http2Connection.client(a);
  const server = Http2Connection.server(b, { initialWindowSize: 100_000, connectionWindowSize: connWindow });
  const streams = await Promise.all(Array.from({ length: 6 }, () => client.request(POST)));
  const writing = streams.map(async (s, i) => {
    const w = s.writable.getWriter();
    await w.write(pseudoRandomBytes(600_000, i + 1));
    await w.close();
  });
  const reading: Promise<number>[] = [];
  for (let i = 0; i < streams.length; i++) {
    const s = await server.accept();
    reading.push(
      slowRead(s, () => client.ping()).then((c) => {
        s.respond({ ":status": "200" }, { endStream: true });
        return c.reduce((n, x) => n + x.byteLength, 0);
      }),
    );
  }
  assert.deepEqual(await Promise.all(reading), streams.map(() => 600_000));
  await Promise.all(writing);
  const peak = server.stats().peakBufferedBytes;
  assert.ok(peak <= connWindow, `peak buffered ${peak} > connection window ${connWindow}`);
  await client.close();
  await server.closed;
});

Deno.test("Http2Connection sends WINDOW_UPDATE as the application reads, not on receipt", async () => {
  const { server, peer } = await rawClient({ initialWindowSize: 32768 });
  const accepted = server.accept();
  await peer.send(
    peer.headersFrame(1, POST),
    encodeData(1, new Uint8Array(16384)),
    encodeData(1, new Uint8Array(16384)),
  );
  // A PING after the data: its ACK comes after anything queued on receipt.
  await peer.send(new Uint8Array([0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]));
  await peer.until((f) => f.type === FrameType.PING);
  const early = peer.seen.filter((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 1);
  assert.equal(early.length, 0, "no stream WINDOW_UPDATE before the application reads");
  const stream = await accepted;
  const reader = stream.readable.getReader();
  let read = 0;
  while (read < 16384) read += (await reader.read()).value!.byteLength;
  const update = await peer.until((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 1);
  assert.ok(new DataView(update.payload.buffer).getUint32(0) >= 16384);
  reader.releaseLock();
  stream.reset("CANCEL");
  server.goAway();
  await finish(server, peer);
});

function dataFrames(frames: RawFrame[], streamId: number): RawFrame[] {
  return frames.filter((f) => f.type === FrameType.DATA && f.streamId === streamId);
}

async function dataUntilPing(peer: Awaited<ReturnType<typeof rawServer>>["peer"]): Promise<number> {
  const before = peer.seen.length;
  await peer.send(new Uint8Array([0, 0, 8, 6, 0, 0, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9]));
  await peer.until((f) => f.type === FrameType.PING && (f.flags & FrameFlag.ACK) !== 0);
  return dataFrames(peer.seen.slice(before), 1).reduce((n, f) => n + f.length, 0);
}

Deno.test("Http2Connection sender respects the peer's stream window and applies SETTINGS deltas to open streams", async () => {
  const { client, peer } = await rawServer({}, [[SettingId.INITIAL_WINDOW_SIZE, 100]]);
  const stream = await client.request(POST);
  const w = stream.writable.getWriter();
  const writing = w.write(new Uint8Array(5000)).then(() => w.close());
  await peer.headers(1);
  // Windows are exact: 100 bytes and not one more.
  let sent = await dataUntilPing(peer);
  for (let i = 0; i < 3 && sent < 100; i++) sent += await dataUntilPing(peer);
  assert.equal(sent, 100);
  // A WINDOW_UPDATE grants 900 more.
  await peer.send(encodeWindowUpdate(1, 900));
  let more = 0;
  for (let i = 0; i < 5 && more < 900; i++) more += await dataUntilPing(peer);
  assert.equal(more, 900);
  // Raising SETTINGS_INITIAL_WINDOW_SIZE by 1000 adds 1000 to the open stream (§6.9.2).
  await peer.send(encodeSettings([[SettingId.INITIAL_WINDOW_SIZE, 1100]]));
  let delta = 0;
  for (let i = 0; i < 5 && delta < 1000; i++) delta += await dataUntilPing(peer);
  assert.equal(delta, 1000);
  // Lowering it makes the window negative: nothing more until it is positive again.
  await peer.send(encodeSettings([[SettingId.INITIAL_WINDOW_SIZE, 0]]));
  await peer.send(encodeWindowUpdate(1, 1000));
  assert.equal(await dataUntilPing(peer), 0);
  await peer.send(encodeWindowUpdate(1, 100 + 3000));
  let rest = 0;
  for (let i = 0; i < 5 && rest < 3000; i++) rest += await dataUntilPing(peer);
  assert.equal(rest, 3000);
  await writing;
  await peer.until((f) => f.type === FrameType.DATA && (f.flags & FrameFlag.END_STREAM) !== 0);
  await peer.send(peer.headersFrame(1, [[":status", "200"]], true));
  await stream.closed;
  await finish(client, peer);
});

Deno.test("Http2Connection sender respects the connection window and the peer's max frame size", async () => {
  const { client, peer } = await rawServer({}, [
    [SettingId.INITIAL_WINDOW_SIZE, 1 << 20],
    [SettingId.MAX_FRAME_SIZE, 20000],
  ]);
  const stream = await client.request(POST);
  const w = stream.writable.getWriter();
  const writing = w.write(new Uint8Array(100_000)).then(() => w.close());
  await peer.headers(1);
  let sent = 0;
  for (let i = 0; i < 10 && sent < 65535; i++) sent += await dataUntilPing(peer);
  assert.equal(sent, 65535, "the connection window starts at 65535");
  await peer.send(encodeWindowUpdate(0, 100_000));
  await writing;
  const frames = dataFrames(
    await (async () => {
      await peer.until((f) => f.type === FrameType.DATA && (f.flags & FrameFlag.END_STREAM) !== 0);
      return peer.seen;
    })(),
    1,
  );
  assert.equal(frames.reduce((n, f) => n + f.length, 0), 100_000);
  assert.ok(frames.every((f) => f.length <= 20000));
  assert.ok(frames.some((f) => f.length === 20000), "uses the peer's larger frame size");
  await peer.send(peer.headersFrame(1, [[":status", "200"]], true));
  await finish(client, peer);
});

Deno.test("Http2Connection grants a large connection window right after the preface", async () => {
  const { server, peer } = await rawClient({ connectionWindowSize: 1 << 24 });
  const update = peer.seen.find((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 0) ??
    await peer.until((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 0);
  assert.equal(new DataView(update.payload.buffer).getUint32(0), (1 << 24) - 65535);
  const settings = peer.seen.find((f) => f.type === FrameType.SETTINGS && f.flags === 0)!;
  const values = new Map<number, number>();
  const view = new DataView(settings.payload.buffer, settings.payload.byteOffset);
  for (let i = 0; i < settings.length; i += 6) values.set(view.getUint16(i), view.getUint32(i + 2));
  assert.equal(values.get(SettingId.ENABLE_PUSH), 0);
  assert.equal(values.get(SettingId.INITIAL_WINDOW_SIZE), 1 << 20);
  assert.equal(values.get(SettingId.MAX_CONCURRENT_STREAMS), 256);
  server.goAway();
  await finish(server, peer);
});

Deno.test("Http2Connection moves 32 MiB through small windows intact", async () => {
  const [a, b] = duplexPair();
  const client = Http2Connection.client(a, { initialWindowSize: 16384, connectionWindowSize: 65535 });
  const server = Http2Connection.server(b, { initialWindowSize: 16384, connectionWindowSize: 65535 });
  const accepted = server.accept();
  const data = pseudoRandomBytes(32 << 20, 5);
  const stream = await client.request(POST);
  const writing = (async () => {
    const w = stream.writable.getWriter();
    for (let i = 0; i < data.length; i += 1 << 20) await w.write(data.subarray(i, i + (1 << 20)));
    await w.close();
  })();
  const serverStream = await accepted;
  const got = await readAll(serverStream.readable);
  await writing;
  assert.equal(await sha256Hex(got), await sha256Hex(data));
  serverStream.respond({ ":status": "200" }, { endStream: true });
  await withTimeout(client.close(), 5000, "close");
  await server.closed;
  void GET;
});
