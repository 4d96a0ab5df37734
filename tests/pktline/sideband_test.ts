import assert from "node:assert/strict";
import {
  Band,
  demuxSideband,
  encodeSideband,
  parseSideband,
  PktlineError,
  readPkts,
  SidebandDecoderStream,
  SidebandEncoderStream,
} from "../../mod.ts";
import { concat, readAll, text } from "../_util.ts";

/** Byte-per-char encoding, so "\xfe" is the single byte 0xfe (Go string literals). */
function latin1(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function oneByteChunks(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return ReadableStream.from(Array.from(bytes, (b) => new Uint8Array([b])));
}

function isCode(code: string): (e: unknown) => boolean {
  return (e: unknown) => e instanceof PktlineError && e.code === code;
}

Deno.test("Band values are git's 1/2/3", () => {
  assert.deepEqual(Band, { DATA: 1, PROGRESS: 2, ERROR: 3 });
});

// Gitaly TestSidebandWriter_boundaries
const boundaries: [string, string, number, string][] = [
  ["empty", "", 0, ""],
  ["1 byte", "x", 1, "0006\x01x"],
  ["65514 bytes", "x".repeat(65514), 255, "ffef\xff" + "x".repeat(65514)],
  ["65515 bytes: max per sideband packets", "x".repeat(65515), 254, "fff0\xfe" + "x".repeat(65515)],
  [
    "65516 bytes: split across two packets",
    "x".repeat(65516),
    253,
    "fff0\xfd" + "x".repeat(65515) + "0006\xfdx",
  ],
];

for (const [desc, input, band, out] of boundaries) {
  Deno.test(`encodeSideband() TestSidebandWriter_boundaries: ${desc}`, () => {
    assert.deepEqual(encodeSideband(band, latin1(input)), latin1(out));
  });
  Deno.test(`SidebandEncoderStream TestSidebandWriter_boundaries: ${desc}`, async () => {
    const encoded = await readAll(
      ReadableStream.from([latin1(input)]).pipeThrough(new SidebandEncoderStream(band)),
    );
    assert.deepEqual(encoded, latin1(out));
  });
}

Deno.test("encodeSideband() rejects bands outside 0-255", () => {
  assert.throws(() => encodeSideband(256, latin1("x")), RangeError);
  assert.throws(() => encodeSideband(-1, latin1("x")), RangeError);
  assert.throws(() => new SidebandEncoderStream(1.5), RangeError);
});

Deno.test("encodeSideband() splits a large write into full packets plus a remainder", () => {
  const data = new Uint8Array(65515 * 3 + 10).map((_, i) => i & 0xff);
  const out = encodeSideband(2, data);
  assert.equal(out.byteLength, data.byteLength + 4 * 5);
  const parts: Uint8Array[] = [];
  let offset = 0;
  while (offset < out.byteLength) {
    const length = parseInt(text(out.subarray(offset, offset + 4)), 16);
    assert.equal(out[offset + 4], 2);
    parts.push(out.subarray(offset + 5, offset + length));
    offset += length;
  }
  assert.deepEqual(parts.map((p) => p.byteLength), [65515, 65515, 65515, 10]);
  assert.deepEqual(concat(parts), data);
});

// Gitaly TestEachSidebandPacket
Deno.test("SidebandDecoderStream TestEachSidebandPacket: empty", async () => {
  assert.deepEqual(
    await Array.fromAsync(ReadableStream.from([]).pipeThrough(new SidebandDecoderStream())),
    [],
  );
});

for (const chunking of ["whole", "1-byte"] as const) {
  const source = (s: string) =>
    chunking === "whole" ? ReadableStream.from([latin1(s)]) : oneByteChunks(latin1(s));

  Deno.test(`SidebandDecoderStream TestEachSidebandPacket: valid stream, bands 0/1/254/255 (${chunking})`, async () => {
    const packets = await Array.fromAsync(
      source("0008\x00foo0008\x01bar0008\xfequx0008\xffbaz").pipeThrough(new SidebandDecoderStream()),
    );
    const out: Record<number, string> = {};
    for (const { band, data } of packets) out[band] = (out[band] ?? "") + text(data);
    assert.deepEqual(out, { 0: "foo", 1: "bar", 254: "qux", 255: "baz" });
  });

  Deno.test(`SidebandDecoderStream TestEachSidebandPacket: interrupted stream (${chunking})`, async () => {
    await assert.rejects(
      Array.fromAsync(source("fff0\x10hello world!!").pipeThrough(new SidebandDecoderStream())),
      isCode("UNEXPECTED_EOF"),
    );
  });

  Deno.test(`SidebandDecoderStream TestEachSidebandPacket: stream without band (${chunking})`, async () => {
    await assert.rejects(
      Array.fromAsync(source("0004").pipeThrough(new SidebandDecoderStream())),
      (e: unknown) => isCode("INVALID_SIDEBAND")(e) && (e as Error).message.includes('"0004"'),
    );
  });

  Deno.test(`SidebandDecoderStream rejects a flush, as Gitaly does (${chunking})`, async () => {
    await assert.rejects(
      Array.fromAsync(source("0006\x01x0000").pipeThrough(new SidebandDecoderStream())),
      (e: unknown) => isCode("INVALID_SIDEBAND")(e) && (e as Error).message.includes('"0000"'),
    );
  });

  Deno.test(`SidebandDecoderStream rejects a band outside options.bands (${chunking})`, async () => {
    await assert.rejects(
      Array.fromAsync(source("0006\x01x0006\x03y").pipeThrough(new SidebandDecoderStream({ bands: [1, 2] }))),
      isCode("UNEXPECTED_BAND"),
    );
  });
}

Deno.test("parseSideband() rejects every special packet", () => {
  for (const kind of ["flush", "delim", "response-end", "reserved"] as const) {
    assert.throws(() => parseSideband({ kind }), isCode("INVALID_SIDEBAND"));
  }
  assert.deepEqual(parseSideband({ kind: "data", payload: latin1("\x01") }), {
    band: 1,
    data: new Uint8Array(),
  });
});

Deno.test("encodeSideband() round-trips through readPkts() and parseSideband()", async () => {
  const data = new Uint8Array(200_000).map((_, i) => (i * 7) & 0xff);
  const encoded = concat([
    encodeSideband(1, data.subarray(0, 100_000)),
    encodeSideband(2, data.subarray(100_000)),
  ]);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < encoded.byteLength; i += 4093) chunks.push(encoded.subarray(i, i + 4093));
  const bands: Record<number, Uint8Array[]> = { 1: [], 2: [] };
  for await (const pkt of readPkts(ReadableStream.from(chunks))) {
    const { band, data } = parseSideband(pkt);
    bands[band]!.push(data.slice());
  }
  assert.deepEqual(concat(bands[1]!), data.subarray(0, 100_000));
  assert.deepEqual(concat(bands[2]!), data.subarray(100_000));
});

function collector(): { writable: WritableStream<Uint8Array>; chunks: Uint8Array[]; state: string[] } {
  const chunks: Uint8Array[] = [];
  const state: string[] = [];
  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      chunks.push(chunk.slice());
    },
    close() {
      state.push("closed");
    },
    abort() {
      state.push("aborted");
    },
  });
  return { writable, chunks, state };
}

Deno.test("demuxSideband() routes stdout/stderr and closes the outputs (1-byte chunks)", async () => {
  const input = concat([
    encodeSideband(1, latin1("hello ")),
    encodeSideband(2, latin1("progress")),
    encodeSideband(1, latin1("world")),
  ]);
  const stdout = collector();
  const stderr = collector();
  await demuxSideband(oneByteChunks(input), { 1: stdout.writable, 2: stderr.writable });
  assert.equal(text(concat(stdout.chunks)), "hello world");
  assert.equal(text(concat(stderr.chunks)), "progress");
  assert.deepEqual([stdout.state, stderr.state], [["closed"], ["closed"]]);
});

Deno.test("demuxSideband() fails with UNEXPECTED_BAND and aborts the outputs", async () => {
  const stdout = collector();
  const stderr = collector();
  const input = ReadableStream.from([
    concat([encodeSideband(1, latin1("a")), encodeSideband(3, latin1("fatal"))]),
  ]);
  await assert.rejects(
    demuxSideband(input, { 1: stdout.writable, 2: stderr.writable }),
    (e: unknown) => isCode("UNEXPECTED_BAND")(e) && (e as Error).message.includes("unexpected band: 3"),
  );
  assert.equal(text(concat(stdout.chunks)), "a");
  assert.deepEqual([stdout.state, stderr.state], [["aborted"], ["aborted"]]);
});

Deno.test("demuxSideband() rejects with the abort reason while an output blocks", async () => {
  const controller = new AbortController();
  const reason = new Error("stop");
  let started!: () => void;
  const writing = new Promise<void>((resolve) => (started = resolve));
  const stuck = new WritableStream<Uint8Array>({
    write() {
      started();
      return new Promise(() => {});
    },
  });
  const input = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(encodeSideband(1, latin1("x")));
    },
  });
  const done = demuxSideband(input, { 1: stuck }, { signal: controller.signal });
  await writing;
  controller.abort(reason);
  await assert.rejects(done, (e: unknown) => e === reason);
});
