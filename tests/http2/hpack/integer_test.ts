import assert from "node:assert/strict";
import { HpackError } from "../../../src/http2/hpack/errors.ts";
import {
  decodeInteger,
  encodeInteger,
  MAX_INTEGER,
  MAX_INTEGER_OCTETS,
} from "../../../src/http2/hpack/integer.ts";

function encode(value: number, prefixBits: number, flags = 0): number[] {
  const out = new Uint8Array(MAX_INTEGER_OCTETS);
  return [...out.subarray(0, encodeInteger(out, 0, value, prefixBits, flags))];
}

function decode(bytes: number[], prefixBits: number): { value: number; offset: number } {
  const cursor = { offset: 0 };
  const value = decodeInteger(new Uint8Array(bytes), cursor, prefixBits);
  return { value, offset: cursor.offset };
}

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof HpackError) return e.code;
    throw e;
  }
  return "none";
}

Deno.test("encodeInteger() and decodeInteger() match RFC 7541 C.1", () => {
  // C.1.1: 10 on a 5-bit prefix.
  assert.deepEqual(encode(10, 5), [0x0a]);
  assert.deepEqual(decode([0xea], 5), { value: 10, offset: 1 }); // flag bits ignored
  // C.1.2: 1337 on a 5-bit prefix.
  assert.deepEqual(encode(1337, 5), [0x1f, 0x9a, 0x0a]);
  assert.deepEqual(decode([0x1f, 0x9a, 0x0a], 5), { value: 1337, offset: 3 });
  // C.1.3: 42 starting at an octet boundary (8-bit prefix).
  assert.deepEqual(encode(42, 8), [0x2a]);
  assert.deepEqual(decode([0x2a], 8), { value: 42, offset: 1 });
});

Deno.test("encodeInteger() keeps flag bits and handles prefix boundaries", () => {
  assert.deepEqual(encode(30, 5, 0x20), [0x3e]);
  assert.deepEqual(encode(31, 5, 0x20), [0x3f, 0x00]);
  assert.deepEqual(encode(127, 7, 0x80), [0xff, 0x00]);
  assert.deepEqual(encode(128, 7, 0x80), [0xff, 0x01]);
  assert.deepEqual(encode(4096, 5, 0x20), [0x3f, 0xe1, 0x1f]);
  assert.deepEqual(encode(0xffffffff, 1), [0x01, 0xfe, 0xff, 0xff, 0xff, 0x0f]);
  assert.throws(() => encode(-1, 5), RangeError);
  assert.throws(() => encode(2 ** 32, 5), RangeError);
  assert.throws(() => encode(1.5, 5), RangeError);
});

Deno.test("decodeInteger() round-trips values up to 2^31 - 1 on every prefix size", () => {
  const values = [
    0,
    1,
    2,
    14,
    15,
    16,
    62,
    63,
    64,
    126,
    127,
    128,
    254,
    255,
    256,
    16383,
    16384,
    2 ** 21,
    2 ** 28,
    MAX_INTEGER,
  ];
  for (let prefix = 1; prefix <= 8; prefix++) {
    for (const value of values) {
      const bytes = encode(value, prefix);
      assert.deepEqual(decode(bytes, prefix), { value, offset: bytes.length }, `${value} on ${prefix} bits`);
    }
  }
});

Deno.test("decodeInteger() rejects truncated, overlong and oversized integers", () => {
  assert.equal(code(() => decode([0x1f], 5)), "TRUNCATED");
  assert.equal(code(() => decode([0x1f, 0x80], 5)), "TRUNCATED");
  assert.equal(code(() => decode([0x1f, 0xff, 0xff], 5)), "TRUNCATED");
  // A zero final group after another group adds nothing: overlong.
  assert.equal(code(() => decode([0x1f, 0x80, 0x00], 5)), "INVALID_INTEGER");
  assert.equal(code(() => decode([0x1f, 0x9a, 0x8a, 0x00], 5)), "INVALID_INTEGER");
  // But one zero group is how 2^N - 1 itself is written.
  assert.deepEqual(decode([0x1f, 0x00], 5), { value: 31, offset: 2 });
  // 2^31 and beyond.
  assert.equal(code(() => decode(encode(MAX_INTEGER + 1, 5), 5)), "INVALID_INTEGER");
  assert.equal(code(() => decode(encode(0xffffffff, 8), 8)), "INVALID_INTEGER");
  // Zero groups with continuation bits forever.
  assert.equal(code(() => decode([0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], 5)), "INVALID_INTEGER");
  // 0x80 continuation groups that are not overlong are fine: 31 + 2^14.
  assert.deepEqual(decode([0x1f, 0x80, 0x80, 0x01], 5), { value: 31 + 16384, offset: 4 });
});
