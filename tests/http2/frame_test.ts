import assert from "node:assert/strict";
import { Http2Error } from "../../mod.ts";
import { errorCodeName, errorCodeValue } from "../../src/http2/errors.ts";
import {
  CONNECTION_PREFACE,
  decodeFrame,
  decodeFrameHeader,
  DEFAULT_HEADER_TABLE_SIZE,
  DEFAULT_INITIAL_WINDOW_SIZE,
  DEFAULT_MAX_FRAME_SIZE,
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
  ErrorCode,
  type Frame,
  FRAME_HEADER_SIZE,
  FrameFlag,
  FrameType,
  MAX_MAX_FRAME_SIZE,
  MAX_STREAM_ID,
  MAX_WINDOW_SIZE,
  SettingId,
  writeFrameHeader,
} from "../../src/http2/frame.ts";

function decode(bytes: Uint8Array): Frame {
  return decodeFrame(decodeFrameHeader(bytes), bytes.subarray(FRAME_HEADER_SIZE));
}

function raw(type: number, flags: number, streamId: number, payload: number[]): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_SIZE + payload.length);
  writeFrameHeader(out, 0, { length: payload.length, type, flags, streamId });
  out.set(payload, FRAME_HEADER_SIZE);
  return out;
}

function expectError(bytes: Uint8Array, code: string, streamId?: number): void {
  assert.throws(() => decode(bytes), (e) => {
    assert.ok(e instanceof Http2Error);
    assert.equal(e.code, code);
    assert.equal(e.streamId, streamId);
    assert.equal(e.remote, false);
    return true;
  });
}

Deno.test("frame constants match RFC 9113", () => {
  assert.equal(FRAME_HEADER_SIZE, 9);
  assert.equal(new TextDecoder().decode(CONNECTION_PREFACE), "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  assert.equal(CONNECTION_PREFACE.byteLength, 24);
  assert.deepEqual({ ...FrameType }, {
    DATA: 0,
    HEADERS: 1,
    PRIORITY: 2,
    RST_STREAM: 3,
    SETTINGS: 4,
    PUSH_PROMISE: 5,
    PING: 6,
    GOAWAY: 7,
    WINDOW_UPDATE: 8,
    CONTINUATION: 9,
  });
  assert.deepEqual({ ...FrameFlag }, { END_STREAM: 1, ACK: 1, END_HEADERS: 4, PADDED: 8, PRIORITY: 0x20 });
  assert.deepEqual({ ...ErrorCode }, {
    NO_ERROR: 0,
    PROTOCOL_ERROR: 1,
    INTERNAL_ERROR: 2,
    FLOW_CONTROL_ERROR: 3,
    SETTINGS_TIMEOUT: 4,
    STREAM_CLOSED: 5,
    FRAME_SIZE_ERROR: 6,
    REFUSED_STREAM: 7,
    CANCEL: 8,
    COMPRESSION_ERROR: 9,
    CONNECT_ERROR: 10,
    ENHANCE_YOUR_CALM: 11,
    INADEQUATE_SECURITY: 12,
    HTTP_1_1_REQUIRED: 13,
  });
  assert.deepEqual({ ...SettingId }, {
    HEADER_TABLE_SIZE: 1,
    ENABLE_PUSH: 2,
    MAX_CONCURRENT_STREAMS: 3,
    INITIAL_WINDOW_SIZE: 4,
    MAX_FRAME_SIZE: 5,
    MAX_HEADER_LIST_SIZE: 6,
  });
  assert.equal(DEFAULT_HEADER_TABLE_SIZE, 4096);
  assert.equal(DEFAULT_INITIAL_WINDOW_SIZE, 65535);
  assert.equal(DEFAULT_MAX_FRAME_SIZE, 16384);
  assert.equal(MAX_MAX_FRAME_SIZE, 2 ** 24 - 1);
  assert.equal(MAX_WINDOW_SIZE, 2 ** 31 - 1);
  assert.equal(MAX_STREAM_ID, 2 ** 31 - 1);
});

Deno.test("errorCodeName() and errorCodeValue() map every code both ways", () => {
  for (const [name, value] of Object.entries(ErrorCode)) {
    assert.equal(errorCodeName(value), name);
    assert.equal(errorCodeValue(name as keyof typeof ErrorCode), value);
  }
  assert.equal(errorCodeName(0xff), "INTERNAL_ERROR");
  const e = new Http2Error("CANCEL", "Cannot x: y", { streamId: 5, remote: true, cause: 1 });
  assert.equal(e.name, "Http2Error");
  assert.equal(e.errorCode, 8);
  assert.equal(e.cause, 1);
});

Deno.test("writeFrameHeader() and decodeFrameHeader() round-trip and clear the reserved bit", () => {
  const out = new Uint8Array(9);
  writeFrameHeader(out, 0, { length: 0x123456, type: 7, flags: 0xab, streamId: 0x7fffffff });
  assert.deepEqual([...out], [0x12, 0x34, 0x56, 7, 0xab, 0x7f, 0xff, 0xff, 0xff]);
  assert.deepEqual(decodeFrameHeader(out), { length: 0x123456, type: 7, flags: 0xab, streamId: 0x7fffffff });
  out[5] = 0xff; // reserved bit set by a sender: ignored
  assert.equal(decodeFrameHeader(out).streamId, 0x7fffffff);
  assert.throws(() => decodeFrameHeader(new Uint8Array(8)), RangeError);
});

Deno.test("encode*() produce the RFC byte layouts", () => {
  assert.deepEqual([...encodeData(1, new Uint8Array([0xaa]), { endStream: true })], [
    0,
    0,
    1,
    0,
    1,
    0,
    0,
    0,
    1,
    0xaa,
  ]);
  assert.deepEqual(
    [...encodeData(3, new Uint8Array([0xaa]), { padLength: 2 })],
    [0, 0, 4, 0, 8, 0, 0, 0, 3, 2, 0xaa, 0, 0],
  );
  assert.deepEqual(
    [...encodeHeaders(1, new Uint8Array([0x82]), { endStream: true })],
    [0, 0, 1, 1, 5, 0, 0, 0, 1, 0x82],
  );
  assert.deepEqual(
    [...encodeHeaders(1, new Uint8Array([0x82]), {
      priority: { dependency: 3, exclusive: true, weight: 16 },
    })],
    [0, 0, 6, 1, 0x24, 0, 0, 0, 1, 0x80, 0, 0, 3, 15, 0x82],
  );
  assert.deepEqual(
    [...encodePriority(5, { dependency: 1, exclusive: false, weight: 256 })],
    [0, 0, 5, 2, 0, 0, 0, 0, 5, 0, 0, 0, 1, 255],
  );
  assert.deepEqual([...encodeRstStream(1, "CANCEL")], [0, 0, 4, 3, 0, 0, 0, 0, 1, 0, 0, 0, 8]);
  assert.deepEqual(
    [...encodeSettings([[SettingId.INITIAL_WINDOW_SIZE, 0x10000]])],
    [0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0],
  );
  assert.deepEqual([...encodeSettings([], true)], [0, 0, 0, 4, 1, 0, 0, 0, 0]);
  assert.deepEqual(
    [...encodePing(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), true)],
    [0, 0, 8, 6, 1, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8],
  );
  assert.throws(() => encodePing(new Uint8Array(7)), RangeError);
  assert.deepEqual(
    [...encodeGoAway(7, "ENHANCE_YOUR_CALM", new Uint8Array([0x21]))],
    [0, 0, 9, 7, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 11, 0x21],
  );
  assert.deepEqual([...encodeWindowUpdate(0, 0x7fffffff)], [
    0,
    0,
    4,
    8,
    0,
    0,
    0,
    0,
    0,
    0x7f,
    0xff,
    0xff,
    0xff,
  ]);
  assert.deepEqual([...encodeContinuation(1, new Uint8Array([9]))], [0, 0, 1, 9, 4, 0, 0, 0, 1, 9]);
  assert.deepEqual(
    [...encodePushPromise(1, 2, new Uint8Array([9]))],
    [0, 0, 5, 5, 4, 0, 0, 0, 1, 0, 0, 0, 2, 9],
  );
});

Deno.test("decodeFrame() decodes every frame type", () => {
  assert.deepEqual(decode(encodeData(1, new Uint8Array([1, 2]), { padLength: 3, endStream: true })), {
    kind: "data",
    streamId: 1,
    data: new Uint8Array([1, 2]),
    endStream: true,
    padding: 4,
  });
  const h = decode(
    encodeHeaders(3, new Uint8Array([0x82]), {
      endHeaders: false,
      padLength: 1,
      priority: { dependency: 1, exclusive: false, weight: 1 },
    }),
  );
  assert.deepEqual(h, {
    kind: "headers",
    streamId: 3,
    fragment: new Uint8Array([0x82]),
    endStream: false,
    endHeaders: false,
    priority: { dependency: 1, exclusive: false, weight: 1 },
  });
  assert.deepEqual(decode(encodeRstStream(1, 0x1234)), {
    kind: "rst_stream",
    streamId: 1,
    errorCode: 0x1234,
  });
  assert.deepEqual(decode(encodeSettings([[1, 0], [0x99, 7]])), {
    kind: "settings",
    ack: false,
    settings: [[1, 0], [0x99, 7]],
  });
  assert.deepEqual(decode(encodePing(new Uint8Array(8), true)), {
    kind: "ping",
    ack: true,
    data: new Uint8Array(8),
  });
  assert.deepEqual(decode(encodeGoAway(5, 2, new Uint8Array([1]))), {
    kind: "goaway",
    lastStreamId: 5,
    errorCode: 2,
    debugData: new Uint8Array([1]),
  });
  assert.deepEqual(decode(encodeWindowUpdate(9, 100)), {
    kind: "window_update",
    streamId: 9,
    increment: 100,
  });
  assert.deepEqual(decode(encodeContinuation(1, new Uint8Array([5]), false)), {
    kind: "continuation",
    streamId: 1,
    fragment: new Uint8Array([5]),
    endHeaders: false,
  });
  assert.equal(decode(encodePushPromise(1, 2, new Uint8Array([9]))).kind, "push_promise");
  assert.equal(decode(encodePriority(3, { dependency: 1, exclusive: false, weight: 8 })).kind, "priority");
  assert.deepEqual(decode(raw(0xfa, 0x3, 1, [1])), {
    kind: "unknown",
    type: 0xfa,
    streamId: 1,
    flags: 3,
    payload: new Uint8Array([1]),
  });
});

Deno.test("decodeFrame() rejects bad lengths with FRAME_SIZE_ERROR", () => {
  expectError(raw(FrameType.SETTINGS, 0, 0, [0, 1, 0, 0, 0]), "FRAME_SIZE_ERROR");
  expectError(raw(FrameType.SETTINGS, FrameFlag.ACK, 0, [0, 1, 0, 0, 0, 0]), "FRAME_SIZE_ERROR");
  expectError(raw(FrameType.PING, 0, 0, [1, 2, 3, 4, 5, 6, 7]), "FRAME_SIZE_ERROR");
  expectError(raw(FrameType.PING, 0, 0, [1, 2, 3, 4, 5, 6, 7, 8, 9]), "FRAME_SIZE_ERROR");
  expectError(raw(FrameType.WINDOW_UPDATE, 0, 1, [0, 0, 1]), "FRAME_SIZE_ERROR");
  expectError(raw(FrameType.RST_STREAM, 0, 1, [0, 0, 0, 0, 0]), "FRAME_SIZE_ERROR");
  expectError(raw(FrameType.GOAWAY, 0, 0, [0, 0, 0, 1, 0, 0, 0]), "FRAME_SIZE_ERROR");
  // PRIORITY of the wrong size is a stream error (§6.3).
  expectError(raw(FrameType.PRIORITY, 0, 3, [0, 0, 0, 1]), "FRAME_SIZE_ERROR", 3);
  // PADDED without room for the pad length octet or the priority fields.
  expectError(raw(FrameType.DATA, FrameFlag.PADDED, 1, []), "FRAME_SIZE_ERROR");
  expectError(raw(FrameType.HEADERS, FrameFlag.PRIORITY, 1, [0, 0, 0]), "FRAME_SIZE_ERROR");
});

Deno.test("decodeFrame() rejects protocol violations with PROTOCOL_ERROR or FLOW_CONTROL_ERROR", () => {
  expectError(raw(FrameType.DATA, 0, 0, [1]), "PROTOCOL_ERROR");
  expectError(raw(FrameType.HEADERS, FrameFlag.END_HEADERS, 0, [0x82]), "PROTOCOL_ERROR");
  expectError(raw(FrameType.PRIORITY, 0, 0, [0, 0, 0, 1, 0]), "PROTOCOL_ERROR");
  expectError(raw(FrameType.RST_STREAM, 0, 0, [0, 0, 0, 0]), "PROTOCOL_ERROR");
  expectError(raw(FrameType.SETTINGS, 0, 1, []), "PROTOCOL_ERROR");
  expectError(raw(FrameType.PUSH_PROMISE, 0, 0, [0, 0, 0, 2]), "PROTOCOL_ERROR");
  expectError(raw(FrameType.PING, 0, 1, [0, 0, 0, 0, 0, 0, 0, 0]), "PROTOCOL_ERROR");
  expectError(raw(FrameType.GOAWAY, 0, 1, [0, 0, 0, 0, 0, 0, 0, 0]), "PROTOCOL_ERROR");
  expectError(raw(FrameType.CONTINUATION, 0, 0, []), "PROTOCOL_ERROR");
  // Padding as long as the payload or longer.
  expectError(raw(FrameType.DATA, FrameFlag.PADDED, 1, [1]), "PROTOCOL_ERROR");
  expectError(raw(FrameType.DATA, FrameFlag.PADDED, 1, [3, 0, 0]), "PROTOCOL_ERROR");
  expectError(raw(FrameType.HEADERS, FrameFlag.PADDED, 1, [3, 0x82, 0]), "PROTOCOL_ERROR");
  // A stream depending on itself is a stream error.
  expectError(raw(FrameType.PRIORITY, 0, 3, [0, 0, 0, 3, 0]), "PROTOCOL_ERROR", 3);
  // WINDOW_UPDATE of zero: connection error on stream 0, stream error elsewhere.
  expectError(raw(FrameType.WINDOW_UPDATE, 0, 0, [0, 0, 0, 0]), "PROTOCOL_ERROR");
  expectError(raw(FrameType.WINDOW_UPDATE, 0, 5, [0x80, 0, 0, 0]), "PROTOCOL_ERROR", 5);
  // SETTINGS values (§6.5.2).
  expectError(encodeSettings([[SettingId.ENABLE_PUSH, 2]]), "PROTOCOL_ERROR");
  expectError(encodeSettings([[SettingId.MAX_FRAME_SIZE, 16383]]), "PROTOCOL_ERROR");
  expectError(encodeSettings([[SettingId.MAX_FRAME_SIZE, 2 ** 24]]), "PROTOCOL_ERROR");
  expectError(encodeSettings([[SettingId.INITIAL_WINDOW_SIZE, 2 ** 31]]), "FLOW_CONTROL_ERROR");
  // Valid extremes pass.
  decode(
    encodeSettings([[SettingId.MAX_FRAME_SIZE, 2 ** 24 - 1], [SettingId.INITIAL_WINDOW_SIZE, 2 ** 31 - 1]]),
  );
  decode(raw(FrameType.DATA, FrameFlag.PADDED, 1, [0]));
});

Deno.test("decodeFrame() checks the payload matches the header", () => {
  assert.throws(
    () => decodeFrame({ length: 4, type: 0, flags: 0, streamId: 1 }, new Uint8Array(3)),
    RangeError,
  );
});
