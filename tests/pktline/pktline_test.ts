import assert from "node:assert/strict";
import {
  DELIM_PKT,
  encodeDelim,
  encodeFlush,
  encodePkt,
  encodePktHeader,
  encodeResponseEnd,
  FLUSH_PKT,
  isFlush,
  MAX_PKT_DATA,
  MAX_PKT_SIZE,
  MAX_SIDEBAND_DATA,
  pktData,
  PktlineError,
  pktPayload,
  RESPONSE_END_PKT,
} from "../../mod.ts";
import { text, utf8 } from "../_util.ts";

const largestString = "z".repeat(65516);

function assertCode(code: string): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof PktlineError, String(e));
    assert.equal(e.code, code);
    assert.equal(e.name, "PktlineError");
    return true;
  };
}

Deno.test("pktline constants match git and Gitaly", () => {
  assert.equal(MAX_PKT_SIZE, 65520);
  assert.equal(MAX_PKT_DATA, 65516);
  assert.equal(MAX_SIDEBAND_DATA, 65515);
  assert.equal(FLUSH_PKT, "0000");
  assert.equal(DELIM_PKT, "0001");
  assert.equal(RESPONSE_END_PKT, "0002");
});

// Gitaly TestWriteString
for (
  const [desc, input, out] of [
    ["empty string", "", "0004"],
    ["small string", "hello world!", "0010hello world!"],
    ["largest possible string", largestString, "fff0" + largestString],
  ] as const
) {
  Deno.test(`encodePkt() TestWriteString: ${desc}`, () => {
    assert.equal(text(encodePkt(input)), out);
    assert.equal(text(encodePkt(utf8(input))), out);
  });
}

Deno.test("encodePkt() TestWriteString: string that is too large throws TOO_LARGE", () => {
  assert.throws(() => encodePkt("x" + largestString), assertCode("TOO_LARGE"));
  assert.throws(() => encodePkt(new Uint8Array(65517)), assertCode("TOO_LARGE"));
});

Deno.test("encodePkt() counts UTF-8 bytes, not UTF-16 units", () => {
  assert.equal(text(encodePkt("é")), "0006é");
});

Deno.test("encodePktHeader() formats lowercase %04x of length + 4", () => {
  assert.equal(text(encodePktHeader(0)), "0004");
  assert.equal(text(encodePktHeader(16)), "0014");
  assert.equal(text(encodePktHeader(171)), "00af");
  assert.equal(text(encodePktHeader(65516)), "fff0");
  assert.throws(() => encodePktHeader(65517), assertCode("TOO_LARGE"));
  assert.throws(() => encodePktHeader(-1), RangeError);
  assert.throws(() => encodePktHeader(1.5), RangeError);
});

Deno.test("encodeFlush()/encodeDelim()/encodeResponseEnd() TestWriteFlush/TestWriteDelim", () => {
  assert.equal(text(encodeFlush()), "0000");
  assert.equal(text(encodeDelim()), "0001");
  assert.equal(text(encodeResponseEnd()), "0002");
  // Fresh buffers: mutating one never affects the next.
  encodeFlush()[0] = 0x41;
  assert.equal(text(encodeFlush()), "0000");
});

// Gitaly TestData
for (
  const [input, out] of [
    ["0008abcd", "abcd"],
    ["invalid packet", "lid packet"],
    ["0005wrong length prefix", "wrong length prefix"],
    ["0000", ""],
  ] as const
) {
  Deno.test(`pktData() TestData: ${JSON.stringify(input)}`, () => {
    assert.equal(text(pktData(utf8(input))), out);
  });
}

Deno.test("pktData() of fewer than 4 bytes is empty", () => {
  assert.equal(pktData(utf8("00")).byteLength, 0);
});

// Gitaly TestIsFlush
for (
  const [input, flush] of [
    ["0008abcd", false],
    ["invalid packet", false],
    ["0000", true],
    ["0001", false],
  ] as const
) {
  Deno.test(`isFlush() TestIsFlush: ${JSON.stringify(input)}`, () => {
    assert.equal(isFlush(utf8(input)), flush);
  });
}

// Gitaly TestPayload
for (
  const [desc, input, code] of [
    ["packet too small", "123", "INVALID_LENGTH"],
    ["invalid length prefix", "something", "INVALID_LENGTH"],
    ["flush packet", "0000", "UNEXPECTED_FLUSH"],
    ["packet with trailing bytes", "0005atrailing", "INVALID_LENGTH"],
    ["packet with missing bytes", "0006a", "INVALID_LENGTH"],
  ] as const
) {
  Deno.test(`pktPayload() TestPayload: ${desc} throws ${code}`, () => {
    assert.throws(() => pktPayload(utf8(input)), assertCode(code));
  });
}

Deno.test("pktPayload() TestPayload: empty packet and packet with data", () => {
  assert.deepEqual(pktPayload(utf8("0004")), new Uint8Array());
  assert.equal(text(pktPayload(utf8("0068" + "x".repeat(100)))), "x".repeat(100));
  assert.equal(text(pktPayload(utf8("000AABCDEF"))), "ABCDEF");
});
