import assert from "node:assert/strict";
import {
  decodeSidechannelId,
  encodeSidechannelPreamble,
  formatSidechannelId,
  frameSidechannelChunks,
  parseSidechannelId,
  SIDECHANNEL_CONFIRMATION,
  SIDECHANNEL_ID_METADATA,
  SIDECHANNEL_MAGIC,
  SIDECHANNEL_MAX_CHUNK,
  SIDECHANNEL_PREAMBLE_LENGTH,
  SidechannelError,
} from "../../mod.ts";
import { text, utf8 } from "../_util.ts";

Deno.test("sidechannel wire constants match Gitaly", () => {
  assert.equal(SIDECHANNEL_MAGIC, "sidechannel");
  assert.deepEqual(
    [...utf8(SIDECHANNEL_MAGIC)],
    [0x73, 0x69, 0x64, 0x65, 0x63, 0x68, 0x61, 0x6e, 0x6e, 0x65, 0x6c],
  );
  assert.equal(SIDECHANNEL_ID_METADATA, "gitaly-sidechannel-id");
  assert.equal(SIDECHANNEL_CONFIRMATION, "ok");
  assert.deepEqual([...utf8(SIDECHANNEL_CONFIRMATION)], [0x6f, 0x6b]);
  assert.equal(SIDECHANNEL_MAX_CHUNK, 65516);
  assert.equal(SIDECHANNEL_PREAMBLE_LENGTH, 19);
});

Deno.test("encodeSidechannelPreamble() writes the magic and a big-endian int64", () => {
  const cases: [bigint | number, number[]][] = [
    [0, [0, 0, 0, 0, 0, 0, 0, 0]],
    [1, [0, 0, 0, 0, 0, 0, 0, 1]],
    [0x0102030405, [0, 0, 0, 1, 2, 3, 4, 5]],
    [-1n, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]],
    [(1n << 63n) - 1n, [0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]],
  ];
  for (const [id, bytes] of cases) {
    const out = encodeSidechannelPreamble(id);
    assert.equal(out.byteLength, 19);
    assert.equal(text(out.subarray(0, 11)), "sidechannel");
    assert.deepEqual([...out.subarray(11)], bytes, `id ${id}`);
    assert.equal(decodeSidechannelId(out.subarray(11)), BigInt(id));
  }
  assert.throws(() => encodeSidechannelPreamble(1n << 63n), RangeError);
  assert.throws(() => encodeSidechannelPreamble(0.5), RangeError);
  assert.throws(() => encodeSidechannelPreamble(2 ** 60), RangeError);
  assert.throws(() => decodeSidechannelId(new Uint8Array(7)), RangeError);
});

Deno.test("frameSidechannelChunks() matches Gitaly's TestClientWrite", () => {
  const cases: [string, Uint8Array, string | ((out: Uint8Array) => void)][] = [
    ["empty", new Uint8Array(0), ""],
    ["h", utf8("h"), "0005h"],
    ["hello", utf8("hello"), "0009hello"],
    ["16 chars", utf8("hello this world"), "0014hello this world"],
    ["65516 bytes", new Uint8Array(65516).fill(0x61), (out) => {
      assert.equal(out.byteLength, 65520);
      assert.equal(text(out.subarray(0, 4)), "fff0");
      assert.ok(out.subarray(4).every((b) => b === 0x61));
    }],
    ["65517 bytes", new Uint8Array(65517).fill(0x61).fill(0x62, 65516), (out) => {
      assert.equal(out.byteLength, 65525);
      assert.equal(text(out.subarray(0, 4)), "fff0");
      assert.ok(out.subarray(4, 65520).every((b) => b === 0x61));
      assert.equal(text(out.subarray(65520)), "0005b");
    }],
  ];
  for (const [name, input, expected] of cases) {
    const out = frameSidechannelChunks(input);
    if (typeof expected === "string") assert.equal(text(out), expected, name);
    else expected(out);
  }
});

Deno.test("parseSidechannelId() takes the last value, decimal int64 like Go's ParseInt", () => {
  assert.equal(parseSidechannelId(["0"]), 0n);
  assert.equal(parseSidechannelId(["1", "2", "3"]), 3n);
  assert.equal(parseSidechannelId(["+7"]), 7n);
  assert.equal(parseSidechannelId(["-7"]), -7n);
  assert.equal(parseSidechannelId(["0009"]), 9n);
  assert.equal(parseSidechannelId(["9223372036854775807"]), (1n << 63n) - 1n);
  assert.equal(parseSidechannelId([utf8("42")]), 42n);
  for (const bad of ["", "x", "1x", "0x10", " 1", "9223372036854775808", "1_000", "1.0"]) {
    assert.throws(() => parseSidechannelId(["1", bad]), (e: unknown) => {
      assert.ok(e instanceof SidechannelError);
      assert.equal(e.code, "INVALID_ID");
      return true;
    }, JSON.stringify(bad));
  }
  assert.throws(() => parseSidechannelId([]), { code: "MISSING_ID" });
  assert.equal(formatSidechannelId(17), "17");
  assert.equal(formatSidechannelId(-3n), "-3");
});
