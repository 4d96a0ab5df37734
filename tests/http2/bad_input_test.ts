/**
 * Hand-crafted bad frames against our server and client, asserting the error codes on
 * the wire and that unaffected streams carry on.
 */

import assert from "node:assert/strict";
import { duplexPair, Http2Connection, type Http2ConnectionOptions, Http2Error } from "../../mod.ts";
import {
  CONNECTION_PREFACE,
  encodeContinuation,
  encodeData,
  encodeGoAway,
  encodeHeaders,
  encodePing,
  encodePriority,
  encodePushPromise,
  encodeRstStream,
  encodeSettings,
  encodeWindowUpdate,
  FRAME_HEADER_SIZE,
  FrameFlag,
  FrameType,
  SettingId,
  writeFrameHeader,
} from "../../src/http2/frame.ts";
import { readAll, text, utf8, withTimeout } from "../_util.ts";
import { finish, GET, rawClient, RawPeer, rawServer } from "./_raw.ts";

const POST: [string, string][] = [[":method", "POST"], [":scheme", "http"], [":authority", "t"], [
  ":path",
  "/",
]];

function frame(type: number, flags: number, streamId: number, payload: Uint8Array | number[]): Uint8Array {
  const body = payload instanceof Uint8Array ? payload : new Uint8Array(payload);
  const out = new Uint8Array(FRAME_HEADER_SIZE + body.byteLength);
  writeFrameHeader(out, 0, { length: body.byteLength, type, flags, streamId });
  out.set(body, FRAME_HEADER_SIZE);
  return out;
}

/** Our server echoing request bodies; handler errors are swallowed (they are expected). */
function echo(server: Http2Connection): Promise<void> {
  return (async () => {
    const handlers: Promise<unknown>[] = [];
    for await (const stream of server) {
      handlers.push(
        (async () => {
          stream.respond({ ":status": "200" });
          await stream.readable.pipeTo(stream.writable);
        })().catch(() => {}),
      );
    }
    await Promise.all(handlers);
  })();
}

/** Reads stream `id`'s response body to END_STREAM. */
async function body(peer: RawPeer, id: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  for (;;) {
    const f = await peer.until((f) =>
      f.streamId === id && (f.type === FrameType.DATA || f.type === FrameType.HEADERS)
    );
    if (f.type === FrameType.DATA) chunks.push(f.payload);
    if (f.flags & FrameFlag.END_STREAM) break;
  }
  return text(new Uint8Array(chunks.flatMap((c) => [...c])));
}

interface ConnectionCase {
  name: string;
  code: string;
  options?: Http2ConnectionOptions;
  /** Frames sent after stream 1 was opened. */
  frames: (peer: RawPeer) => Uint8Array[];
  lastStreamId?: number;
  /**
   * The server application does not read stream 1: what it consumes is credited back at
   * once, which would make later frames legal again.
   */
  holdBody?: boolean;
}

const connectionCases: ConnectionCase[] = [
  {
    name: "a frame larger than SETTINGS_MAX_FRAME_SIZE",
    code: "FRAME_SIZE_ERROR",
    frames: () => [frame(FrameType.DATA, 0, 1, new Uint8Array(16385))],
  },
  {
    name: "SETTINGS of 5 bytes",
    code: "FRAME_SIZE_ERROR",
    frames: () => [frame(FrameType.SETTINGS, 0, 0, [0, 0, 0, 0, 0])],
  },
  {
    name: "SETTINGS ACK with a payload",
    code: "FRAME_SIZE_ERROR",
    frames: () => [frame(FrameType.SETTINGS, 1, 0, [0, 1, 0, 0, 0, 0])],
  },
  {
    name: "SETTINGS on a stream",
    code: "PROTOCOL_ERROR",
    frames: () => [frame(FrameType.SETTINGS, 0, 1, [])],
  },
  {
    name: "PING of 7 bytes",
    code: "FRAME_SIZE_ERROR",
    frames: () => [frame(FrameType.PING, 0, 0, [1, 2, 3, 4, 5, 6, 7])],
  },
  {
    name: "PING on a stream",
    code: "PROTOCOL_ERROR",
    frames: () => [frame(FrameType.PING, 0, 1, new Uint8Array(8))],
  },
  {
    name: "GOAWAY of 7 bytes",
    code: "FRAME_SIZE_ERROR",
    frames: () => [frame(FrameType.GOAWAY, 0, 0, new Uint8Array(7))],
  },
  {
    name: "RST_STREAM of 3 bytes",
    code: "FRAME_SIZE_ERROR",
    frames: () => [frame(FrameType.RST_STREAM, 0, 1, [0, 0, 8])],
  },
  {
    name: "WINDOW_UPDATE of 5 bytes",
    code: "FRAME_SIZE_ERROR",
    frames: () => [frame(FrameType.WINDOW_UPDATE, 0, 0, [0, 0, 0, 1, 0])],
  },
  { name: "DATA on stream 0", code: "PROTOCOL_ERROR", frames: () => [frame(FrameType.DATA, 0, 0, [1])] },
  { name: "DATA on an idle stream", code: "PROTOCOL_ERROR", frames: () => [encodeData(5, utf8("x"))] },
  {
    name: "DATA with padding as long as the payload",
    code: "PROTOCOL_ERROR",
    frames: () => [frame(FrameType.DATA, FrameFlag.PADDED, 1, [2, 0])],
  },
  {
    name: "HEADERS on a server-initiated (even) stream",
    code: "PROTOCOL_ERROR",
    frames: (p) => [p.headersFrame(2, GET, true)],
  },
  {
    name: "HEADERS with a stream id lower than one already opened",
    code: "PROTOCOL_ERROR",
    frames: (p) => [p.headersFrame(7, POST), p.headersFrame(5, GET, true)],
    lastStreamId: 7,
  },
  {
    name: "CONTINUATION without HEADERS",
    code: "PROTOCOL_ERROR",
    frames: () => [encodeContinuation(1, new Uint8Array(0))],
  },
  {
    name: "a PING between HEADERS and CONTINUATION",
    code: "PROTOCOL_ERROR",
    frames: (p) => {
      const [h, c] = p.headersWithContinuation(3, GET, 2);
      return [h!, encodePing(new Uint8Array(8)), c!];
    },
  },
  {
    name: "CONTINUATION on another stream",
    code: "PROTOCOL_ERROR",
    frames: (p) => {
      const [h] = p.headersWithContinuation(3, GET, 2);
      return [h!, encodeContinuation(1, new Uint8Array([0x82]))];
    },
  },
  {
    name: "PUSH_PROMISE from a client",
    code: "PROTOCOL_ERROR",
    frames: () => [encodePushPromise(1, 2, new Uint8Array([0x82]))],
  },
  {
    name: "an invalid HPACK index",
    code: "COMPRESSION_ERROR",
    frames: () => [encodeHeaders(3, new Uint8Array([0x80]))],
  },
  {
    name: "a truncated HPACK block",
    code: "COMPRESSION_ERROR",
    frames: () => [encodeHeaders(3, new Uint8Array([0x40, 0x05, 0x61]))],
  },
  {
    name: "RST_STREAM on an idle stream",
    code: "PROTOCOL_ERROR",
    frames: () => [encodeRstStream(9, "CANCEL")],
  },
  {
    name: "WINDOW_UPDATE on an idle stream",
    code: "PROTOCOL_ERROR",
    frames: () => [encodeWindowUpdate(9, 1)],
  },
  {
    name: "a connection WINDOW_UPDATE of 0",
    code: "PROTOCOL_ERROR",
    frames: () => [frame(FrameType.WINDOW_UPDATE, 0, 0, [0, 0, 0, 0])],
  },
  {
    name: "a connection window above 2^31-1",
    code: "FLOW_CONTROL_ERROR",
    frames: () => [encodeWindowUpdate(0, 2 ** 31 - 1)],
  },
  {
    name: "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1",
    code: "FLOW_CONTROL_ERROR",
    frames: () => [encodeSettings([[SettingId.INITIAL_WINDOW_SIZE, 2 ** 31]])],
  },
  {
    name: "SETTINGS_INITIAL_WINDOW_SIZE pushing an open stream's window above 2^31-1",
    code: "FLOW_CONTROL_ERROR",
    frames: () => [
      encodeWindowUpdate(1, 2 ** 31 - 1 - 65535),
      encodeSettings([[SettingId.INITIAL_WINDOW_SIZE, 65536]]),
    ],
  },
  {
    name: "SETTINGS_ENABLE_PUSH of 2",
    code: "PROTOCOL_ERROR",
    frames: () => [encodeSettings([[SettingId.ENABLE_PUSH, 2]])],
  },
  {
    name: "SETTINGS_MAX_FRAME_SIZE of 100",
    code: "PROTOCOL_ERROR",
    frames: () => [encodeSettings([[SettingId.MAX_FRAME_SIZE, 100]])],
  },
  {
    name: "DATA beyond the stream window",
    code: "FLOW_CONTROL_ERROR",
    options: { initialWindowSize: 1000 },
    frames: () => [encodeData(1, new Uint8Array(1001))],
  },
  {
    name: "DATA beyond the connection window",
    code: "FLOW_CONTROL_ERROR",
    options: { connectionWindowSize: 65535 },
    frames: () => [0, 1, 2, 3, 4].map(() => encodeData(1, new Uint8Array(16000))),
    holdBody: true,
  },
  {
    name: "HEADERS on a stream closed in both directions",
    code: "STREAM_CLOSED",
    frames: (p) => [p.headersFrame(3, GET, true), p.headersFrame(3, [["x-late", "1"]], true)],
    lastStreamId: 3,
  },
];

for (const c of connectionCases) {
  Deno.test(`Http2Connection answers ${c.name} with GOAWAY(${c.code})`, async () => {
    const { server, peer } = await rawClient(c.options);
    const serving = c.holdBody ? Array.fromAsync(server).then(() => {}) : echo(server);
    await peer.send(peer.headersFrame(1, POST));
    if (c.name.startsWith("HEADERS on a stream closed")) {
      // Let stream 3 complete first (the server echoes an empty body).
      await peer.send(peer.headersFrame(3, GET, true));
      await body(peer, 3);
      await peer.send(peer.headersFrame(3, [["x-late", "1"]], true));
    } else {
      await peer.send(...c.frames(peer));
    }
    const goAway = await peer.goAway();
    assert.equal(goAway.code, c.code);
    assert.equal(goAway.lastStreamId, c.lastStreamId ?? 1);
    await finish(server, peer);
    assert.equal(server.error?.code, c.code);
    await serving;
  });
}

interface StreamCase {
  name: string;
  code: string;
  /** Frames for stream 3, sent while stream 1 is open. */
  frames: (peer: RawPeer) => Uint8Array[];
}

const streamCases: StreamCase[] = [
  {
    name: "an uppercase header name",
    code: "PROTOCOL_ERROR",
    frames: (p) => [p.headersFrame(3, [...GET, ["X-Bad", "1"]], true)],
  },
  {
    name: "a missing :path",
    code: "PROTOCOL_ERROR",
    frames: (p) => [p.headersFrame(3, GET.slice(0, 3), true)],
  },
  {
    name: "a pseudo-header after a regular field",
    code: "PROTOCOL_ERROR",
    frames: (p) => [p.headersFrame(3, [...GET.slice(0, 3), ["a", "b"], GET[3]!], true)],
  },
  {
    name: "a connection-specific field",
    code: "PROTOCOL_ERROR",
    frames: (p) => [p.headersFrame(3, [...GET, ["connection", "keep-alive"]], true)],
  },
  {
    name: "te other than trailers",
    code: "PROTOCOL_ERROR",
    frames: (p) => [p.headersFrame(3, [...GET, ["te", "gzip"]], true)],
  },
  {
    name: "a duplicate :method",
    code: "PROTOCOL_ERROR",
    frames: (p) => [p.headersFrame(3, [GET[0]!, ...GET], true)],
  },
  {
    name: "a response pseudo-header in a request",
    code: "PROTOCOL_ERROR",
    frames: (p) => [p.headersFrame(3, [...GET, [":status", "200"]], true)],
  },
  {
    name: "a value with a newline",
    code: "PROTOCOL_ERROR",
    frames: (p) => [p.headersFrame(3, [...GET, ["x", "a\nb"]], true)],
  },
  {
    name: "a stream depending on itself",
    code: "PROTOCOL_ERROR",
    frames: (
      p,
    ) => [
      encodeHeaders(3, p.encoder.encode(GET), {
        endStream: true,
        priority: { dependency: 3, exclusive: false, weight: 1 },
      }),
    ],
  },
  {
    name: "DATA after END_STREAM",
    code: "STREAM_CLOSED",
    frames: (p) => [p.headersFrame(3, POST, true), encodeData(3, utf8("late"))],
  },
  {
    name: "trailers without END_STREAM",
    code: "PROTOCOL_ERROR",
    frames: (p) => [p.headersFrame(3, POST), p.headersFrame(3, [["x-t", "1"]])],
  },
  {
    name: "pseudo-headers in trailers",
    code: "PROTOCOL_ERROR",
    frames: (p) => [p.headersFrame(3, POST), p.headersFrame(3, [[":path", "/"]], true)],
  },
  {
    name: "a body longer than content-length",
    code: "PROTOCOL_ERROR",
    frames: (
      p,
    ) => [
      p.headersFrame(3, [...POST, ["content-length", "2"]]),
      encodeData(3, utf8("abc"), { endStream: true }),
    ],
  },
  {
    name: "a body shorter than content-length",
    code: "PROTOCOL_ERROR",
    frames: (
      p,
    ) => [
      p.headersFrame(3, [...POST, ["content-length", "5"]]),
      encodeData(3, utf8("abc"), { endStream: true }),
    ],
  },
  {
    name: "a stream WINDOW_UPDATE of 0",
    code: "PROTOCOL_ERROR",
    frames: (p) => [p.headersFrame(3, POST), frame(FrameType.WINDOW_UPDATE, 0, 3, [0, 0, 0, 0])],
  },
  {
    name: "PRIORITY of 4 bytes",
    code: "FRAME_SIZE_ERROR",
    frames: (p) => [p.headersFrame(3, POST), frame(FrameType.PRIORITY, 0, 3, [0, 0, 0, 1])],
  },
  {
    name: "a stream window above 2^31-1",
    code: "FLOW_CONTROL_ERROR",
    frames: (p) => [p.headersFrame(3, POST), encodeWindowUpdate(3, 2 ** 31 - 1)],
  },
];

for (const c of streamCases) {
  Deno.test(`Http2Connection answers ${c.name} with RST_STREAM(${c.code}) and keeps other streams`, async () => {
    const { server, peer } = await rawClient();
    const serving = echo(server);
    await peer.send(peer.headersFrame(1, POST));
    await peer.send(...c.frames(peer));
    assert.equal(await peer.reset(3), c.code);
    await peer.send(encodeData(1, utf8("sibling ok"), { endStream: true }));
    assert.equal(await body(peer, 1), "sibling ok");
    // The connection is healthy: a PING is still answered and no GOAWAY was sent.
    await peer.send(encodePing(new Uint8Array(8)));
    await peer.until((f) => f.type === FrameType.PING && (f.flags & FrameFlag.ACK) !== 0);
    assert.ok(!peer.seen.some((f) => f.type === FrameType.GOAWAY));
    assert.equal(server.error, undefined);
    server.goAway();
    await finish(server, peer);
    await serving;
  });
}

Deno.test("Http2Connection ignores PRIORITY, unknown frame types and frames on streams it reset", async () => {
  const { server, peer } = await rawClient();
  const serving = echo(server);
  await peer.send(
    encodePriority(11, { dependency: 0, exclusive: false, weight: 16 }), // idle stream: allowed, ignored
    frame(0xee, 0xff, 0, [1, 2, 3]),
    peer.headersFrame(1, POST),
    frame(0xee, 0, 1, []),
  );
  await peer.send(peer.headersFrame(3, [...GET, ["X-Bad", "1"]]));
  assert.equal(await peer.reset(3), "PROTOCOL_ERROR");
  // Frames the client had in flight for stream 3 are ignored, not errors.
  await peer.send(encodeData(3, utf8("in flight")), encodeWindowUpdate(3, 10), encodeRstStream(3, "CANCEL"));
  await peer.send(encodeData(1, utf8("fine"), { endStream: true }));
  assert.equal(await body(peer, 1), "fine");
  assert.equal(server.error, undefined);
  server.goAway();
  await finish(server, peer);
  await serving;
});

Deno.test("Http2Connection server rejects an invalid preface with GOAWAY(PROTOCOL_ERROR)", async () => {
  const [a, b] = duplexPair();
  const server = Http2Connection.server(a, { closeTimeout: 300 });
  const peer = new RawPeer(b);
  await peer.send(utf8("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  assert.equal((await peer.goAway()).code, "PROTOCOL_ERROR");
  await finish(server, peer);
});

Deno.test("Http2Connection requires SETTINGS as the first frame", async () => {
  const [a, b] = duplexPair();
  const server = Http2Connection.server(a, { closeTimeout: 300 });
  const peer = new RawPeer(b);
  await peer.send(CONNECTION_PREFACE, encodePing(new Uint8Array(8)));
  assert.equal((await peer.goAway()).code, "PROTOCOL_ERROR");
  await finish(server, peer);
});

Deno.test("Http2Connection sends GOAWAY(SETTINGS_TIMEOUT) when SETTINGS are never acknowledged", async () => {
  const [a, b] = duplexPair();
  const server = Http2Connection.server(a, { settingsTimeout: 50, closeTimeout: 300 });
  const peer = new RawPeer(b);
  await peer.send(CONNECTION_PREFACE, encodeSettings([]));
  assert.equal((await peer.goAway()).code, "SETTINGS_TIMEOUT");
  await finish(server, peer);
});

// ---- client role ----

Deno.test("Http2Connection client answers SETTINGS_ENABLE_PUSH=1 from a server with PROTOCOL_ERROR", async () => {
  const [a, b] = duplexPair();
  const client = Http2Connection.client(a, { closeTimeout: 300 });
  const peer = new RawPeer(b);
  await peer.reader.readExactly(CONNECTION_PREFACE.byteLength);
  await peer.send(encodeSettings([[SettingId.ENABLE_PUSH, 1]]));
  assert.equal((await peer.goAway()).code, "PROTOCOL_ERROR");
  await finish(client, peer);
});

Deno.test("Http2Connection client refuses PUSH_PROMISE with PROTOCOL_ERROR", async () => {
  const { client, peer } = await rawServer();
  const stream = await client.request(GET, { endStream: true });
  await peer.headers(1);
  await peer.send(encodePushPromise(1, 2, peer.encoder.encode(GET)));
  assert.equal((await peer.goAway()).code, "PROTOCOL_ERROR");
  const error = await stream.response.catch((e) => e);
  assert.ok(error instanceof Http2Error);
  assert.equal(error.code, "PROTOCOL_ERROR");
  await finish(client, peer);
});

Deno.test("Http2Connection client resets a response without :status and DATA before HEADERS", async () => {
  const { client, peer } = await rawServer();
  const s1 = await client.request(GET, { endStream: true });
  const s3 = await client.request(GET, { endStream: true });
  const s5 = await client.request(GET, { endStream: true });
  await peer.headers(5);
  await peer.send(peer.headersFrame(1, [["x-no-status", "1"]], true));
  assert.equal(await peer.reset(1), "PROTOCOL_ERROR");
  await peer.send(encodeData(3, utf8("too early")));
  assert.equal(await peer.reset(3), "PROTOCOL_ERROR");
  assert.equal((await s1.response.catch((e) => e)).code, "PROTOCOL_ERROR");
  assert.equal((await s3.response.catch((e) => e)).code, "PROTOCOL_ERROR");
  // An interim 103 is skipped; the final response arrives.
  await peer.send(peer.headersFrame(5, [[":status", "103"], ["link", "</a>"]]));
  await peer.send(peer.headersFrame(5, [[":status", "200"]]), encodeData(5, utf8("ok"), { endStream: true }));
  assert.deepEqual(await s5.response, [[":status", "200"]]);
  assert.equal(text(await readAll(s5.readable)), "ok");
  await peer.send(encodeGoAway(5, "NO_ERROR"));
  await finish(client, peer);
});

Deno.test("Http2Connection client fails streams above a GOAWAY's last-stream-id with REFUSED_STREAM", async () => {
  const { client, peer } = await rawServer();
  const s1 = await client.request(GET, { endStream: true });
  const s3 = await client.request(GET, { endStream: true });
  await peer.headers(3);
  await peer.send(encodeGoAway(1, "NO_ERROR"));
  const refused = await s3.response.catch((e) => e);
  assert.equal(refused.code, "REFUSED_STREAM");
  assert.equal(refused.remote, true);
  await assert.rejects(client.request(GET), (e) => e instanceof Http2Error && e.code === "REFUSED_STREAM");
  // Stream 1 still completes.
  await peer.send(peer.headersFrame(1, [[":status", "200"]], true));
  assert.deepEqual(await s1.response, [[":status", "200"]]);
  await withTimeout(client.closed, 3000, "client closes after the last stream");
  await peer.close();
});

Deno.test("Http2Connection client treats HEADERS on a server-initiated stream as PROTOCOL_ERROR", async () => {
  const { client, peer } = await rawServer();
  await peer.send(peer.headersFrame(2, [[":status", "200"]], true));
  assert.equal((await peer.goAway()).code, "PROTOCOL_ERROR");
  await finish(client, peer);
});
