/**
 * The limits big servers had to add after real attacks, each with a small configured limit.
 */

import assert from "node:assert/strict";
import { Http2Error } from "../../mod.ts";
import {
  encodeContinuation,
  encodeData,
  encodeHeaders,
  encodePing,
  encodeRstStream,
  encodeSettings,
  FrameFlag,
  FrameType,
  SettingId,
} from "../../src/http2/frame.ts";
import { text, utf8, withTimeout } from "../_util.ts";
import { finish, GET, rawClient, type RawPeer, rawServer } from "./_raw.ts";

const POST: [string, string][] = [[":method", "POST"], [":scheme", "http"], [":authority", "t"], [
  ":path",
  "/",
]];

async function body(peer: RawPeer, id: number): Promise<string> {
  const chunks: number[] = [];
  for (;;) {
    const f = await peer.until((f) =>
      f.streamId === id && (f.type === FrameType.DATA || f.type === FrameType.HEADERS)
    );
    if (f.type === FrameType.DATA) chunks.push(...f.payload);
    if (f.flags & FrameFlag.END_STREAM) break;
  }
  return text(new Uint8Array(chunks));
}

Deno.test("Http2Connection answers a rapid-reset flood with GOAWAY(ENHANCE_YOUR_CALM) (CVE-2023-44487)", async () => {
  const { server, peer } = await rawClient({ resetRateLimit: { count: 50, intervalMs: 60_000 } });
  const accepted: unknown[] = [];
  const serving = (async () => {
    for await (const s of server) accepted.push(s);
  })();
  const frames: Uint8Array[] = [];
  for (let id = 1; id <= 201; id += 2) frames.push(peer.headersFrame(id, GET), encodeRstStream(id, "CANCEL"));
  await peer.send(...frames);
  const goAway = await peer.goAway();
  assert.equal(goAway.code, "ENHANCE_YOUR_CALM");
  assert.ok(goAway.lastStreamId >= 101 && goAway.lastStreamId <= 201);
  await finish(server, peer);
  await serving;
  assert.ok(accepted.length <= 51);
});

Deno.test("Http2Connection answers a CONTINUATION flood with GOAWAY(ENHANCE_YOUR_CALM) (CVE-2024-27316)", async () => {
  const { server, peer } = await rawClient({ maxContinuationFrames: 8 });
  const frames = [encodeHeaders(1, new Uint8Array([0x82]), { endHeaders: false })];
  for (let i = 0; i < 20; i++) frames.push(encodeContinuation(1, new Uint8Array(0), false));
  await peer.send(...frames);
  assert.equal((await peer.goAway()).code, "ENHANCE_YOUR_CALM");
  await finish(server, peer);
});

Deno.test("Http2Connection caps the bytes of a field block before END_HEADERS", async () => {
  const { server, peer } = await rawClient({ maxHeaderBlockSize: 16384 });
  await peer.send(
    encodeHeaders(1, new Uint8Array(10_000), { endHeaders: false }),
    encodeContinuation(1, new Uint8Array(10_000), false),
  );
  assert.equal((await peer.goAway()).code, "ENHANCE_YOUR_CALM");
  await finish(server, peer);
});

Deno.test("Http2Connection answers a PING flood from a peer that does not read with ENHANCE_YOUR_CALM", async () => {
  const { server, peer } = await rawClient({ maxQueuedControlFrames: 100 }, 512);
  const ping = encodePing(new Uint8Array(8));
  const flood = new Uint8Array(ping.byteLength * 2000);
  for (let i = 0; i < 2000; i++) flood.set(ping, i * ping.byteLength);
  await peer.send(flood); // never reading the ACKs meanwhile
  const goAway = await peer.goAway();
  assert.equal(goAway.code, "ENHANCE_YOUR_CALM");
  const acks = peer.seen.filter((f) => f.type === FrameType.PING).length;
  assert.ok(acks < 2000, `${acks} ACKs were queued`);
  await finish(server, peer);
});

Deno.test("Http2Connection answers a SETTINGS flood from a peer that does not read with ENHANCE_YOUR_CALM", async () => {
  const { server, peer } = await rawClient({ maxQueuedControlFrames: 100 }, 512);
  const settings = encodeSettings([[SettingId.MAX_CONCURRENT_STREAMS, 10]]);
  const flood = new Uint8Array(settings.byteLength * 2000);
  for (let i = 0; i < 2000; i++) flood.set(settings, i * settings.byteLength);
  await peer.send(flood);
  assert.equal((await peer.goAway()).code, "ENHANCE_YOUR_CALM");
  await finish(server, peer);
});

Deno.test("Http2Connection answers an empty DATA flood with GOAWAY(ENHANCE_YOUR_CALM) (CVE-2019-9518)", async () => {
  const { server, peer } = await rawClient({ emptyFrameRateLimit: { count: 20, intervalMs: 60_000 } });
  const frames = [peer.headersFrame(1, POST)];
  for (let i = 0; i < 100; i++) frames.push(encodeData(1, new Uint8Array(0)));
  await peer.send(...frames);
  assert.equal((await peer.goAway()).code, "ENHANCE_YOUR_CALM");
  await finish(server, peer);
});

Deno.test("Http2Connection refuses streams beyond MAX_CONCURRENT_STREAMS with REFUSED_STREAM", async () => {
  const { server, peer } = await rawClient({ maxConcurrentStreams: 2 });
  const serving = (async () => {
    for await (const s of server) {
      s.respond({ ":status": "200" });
      void s.readable.pipeTo(s.writable).catch(() => {});
    }
  })();
  await peer.send(peer.headersFrame(1, POST), peer.headersFrame(3, POST), peer.headersFrame(5, POST));
  assert.equal(await peer.reset(5), "REFUSED_STREAM");
  await peer.send(encodeData(1, utf8("one"), { endStream: true }));
  assert.equal(await body(peer, 1), "one");
  // Stream 1 is closed now: a new stream fits again.
  await peer.send(peer.headersFrame(7, POST), encodeData(7, utf8("seven"), { endStream: true }));
  assert.equal(await body(peer, 7), "seven");
  await peer.send(encodeData(3, utf8("three"), { endStream: true }));
  assert.equal(await body(peer, 3), "three");
  server.goAway();
  await finish(server, peer);
  await serving;
});

Deno.test("Http2Connection refuses a header list above maxHeaderListSize on that stream only", async () => {
  const { server, peer } = await rawClient({ maxHeaderListSize: 2048 });
  const serving = (async () => {
    for await (const s of server) {
      s.respond({ ":status": "200" });
      void s.readable.pipeTo(s.writable).catch(() => {});
    }
  })();
  await peer.send(peer.headersFrame(1, POST));
  await peer.send(peer.headersFrame(3, [...GET, ["x-big", "x".repeat(4000)]], true));
  assert.equal(await peer.reset(3), "PROTOCOL_ERROR");
  await peer.send(encodeData(1, utf8("still here"), { endStream: true }));
  assert.equal(await body(peer, 1), "still here");
  server.goAway();
  await finish(server, peer);
  await serving;
});

Deno.test("Http2Stream is reset when the peer keeps its send window at zero too long", async () => {
  const { client, peer } = await rawServer({ sendStallTimeout: 50 }, [[SettingId.INITIAL_WINDOW_SIZE, 0]]);
  const stream = await client.request(POST);
  const w = stream.writable.getWriter();
  const error = await w.write(new Uint8Array(1000)).catch((e) => e);
  assert.ok(error instanceof Http2Error);
  assert.equal(error.code, "CANCEL");
  assert.equal(error.streamId, 1);
  assert.equal(await peer.reset(1), "CANCEL");
  assert.equal(client.error, undefined);
  await client.close();
  await finish(client, peer);
});

Deno.test("Http2Connection limits do not trip on ordinary traffic", async () => {
  const { server, peer } = await rawClient({ resetRateLimit: { count: 10, intervalMs: 60_000 } });
  const serving = (async () => {
    for await (const s of server) s.respond({ ":status": "200" }, { endStream: true });
  })();
  // 100 requests, a few cancellations, some PINGs: all within the limits.
  for (let id = 1; id <= 199; id += 2) {
    await peer.send(peer.headersFrame(id, GET, true));
    if (id % 40 === 1) await peer.send(encodeRstStream(id, "CANCEL"));
    await peer.send(encodePing(new Uint8Array(8)));
  }
  await peer.until((f) => f.type === FrameType.HEADERS && f.streamId === 199);
  assert.equal(server.error, undefined);
  assert.ok(!peer.seen.some((f) => f.type === FrameType.GOAWAY));
  server.goAway();
  await withTimeout(finish(server, peer), 5000, "finish");
  await serving;
});
