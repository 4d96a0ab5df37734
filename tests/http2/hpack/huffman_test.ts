import assert from "node:assert/strict";
import { HpackError } from "../../../src/http2/hpack/errors.ts";
import {
  HUFFMAN_CODES,
  HUFFMAN_EOS,
  HUFFMAN_LENGTHS,
  huffmanDecode,
  huffmanDecodeInto,
  huffmanEncode,
  huffmanEncodedLength,
} from "../../../src/http2/hpack/huffman.ts";
import { hex, prng, toHex } from "./_vectors.ts";

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof HpackError) return e.code;
    throw e;
  }
  return "none";
}

Deno.test("HUFFMAN_CODES is the canonical code of HUFFMAN_LENGTHS (RFC 7541 Appendix B)", () => {
  assert.equal(HUFFMAN_CODES.length, 257);
  assert.equal(HUFFMAN_LENGTHS.length, 257);
  // Pinned rows.
  assert.deepEqual([HUFFMAN_CODES[0], HUFFMAN_LENGTHS[0]], [0x1ff8, 13]);
  assert.deepEqual([HUFFMAN_CODES[47], HUFFMAN_LENGTHS[47]], [0x18, 6]); // '/'
  assert.deepEqual([HUFFMAN_CODES[48], HUFFMAN_LENGTHS[48]], [0x0, 5]); // '0'
  assert.deepEqual([HUFFMAN_CODES[97], HUFFMAN_LENGTHS[97]], [0x3, 5]); // 'a'
  assert.deepEqual([HUFFMAN_CODES[255], HUFFMAN_LENGTHS[255]], [0x3ffffee, 26]);
  assert.deepEqual([HUFFMAN_CODES[HUFFMAN_EOS], HUFFMAN_LENGTHS[HUFFMAN_EOS]], [0x3fffffff, 30]);
  // Canonical assignment (by length, then symbol) from the lengths alone reproduces every
  // code, so a typo in either column would show; the Kraft sum of a complete code is 1.
  const order = [...Array(257).keys()].sort((a, b) => HUFFMAN_LENGTHS[a]! - HUFFMAN_LENGTHS[b]! || a - b);
  let next = 0;
  let previousLength = HUFFMAN_LENGTHS[order[0]!]!;
  let kraft = 0;
  for (const sym of order) {
    const length = HUFFMAN_LENGTHS[sym]!;
    next *= 2 ** (length - previousLength);
    previousLength = length;
    assert.equal(HUFFMAN_CODES[sym], next, `symbol ${sym}`);
    next++;
    kraft += 2 ** -length;
  }
  assert.equal(kraft, 1);
});

Deno.test("huffmanEncode() produces the RFC 7541 C.4 and C.6 strings", () => {
  const cases: [string, string][] = [
    ["www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"],
    ["no-cache", "a8eb 1064 9cbf"],
    ["custom-key", "25a8 49e9 5ba9 7d7f"],
    ["custom-value", "25a8 49e9 5bb8 e8b4 bf"],
    ["302", "6402"],
    ["307", "640e ff"],
    ["private", "aec3 771a 4b"],
    ["Mon, 21 Oct 2013 20:13:21 GMT", "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff"],
    ["https://www.example.com", "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3"],
    ["gzip", "9bd9 ab"],
    [
      "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
      "94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    ],
  ];
  for (const [text, dump] of cases) {
    assert.equal(toHex(huffmanEncode(text)), toHex(hex(dump)), text);
    assert.equal(huffmanEncodedLength(text), hex(dump).length);
    assert.equal(huffmanDecode(hex(dump)), text);
  }
  assert.deepEqual(huffmanEncode(""), new Uint8Array());
  assert.equal(huffmanDecode(new Uint8Array()), "");
});

Deno.test("huffmanEncode() and huffmanDecode() round-trip every octet value", () => {
  for (let b = 0; b < 256; b++) {
    const s = String.fromCharCode(b);
    const encoded = huffmanEncode(s);
    assert.equal(encoded.length, Math.ceil(HUFFMAN_LENGTHS[b]! / 8));
    assert.equal(huffmanDecode(encoded), s, `octet ${b}`);
    // And in every bit alignment: after 0 to 7 bits of other symbols.
    for (const prefix of ["", "a", "0a", "e", "ab", "aa", "abc", "\x00"]) {
      const t = prefix + s + prefix;
      assert.equal(huffmanDecode(huffmanEncode(t)), t);
    }
  }
  let all = "";
  for (let b = 0; b < 256; b++) all += String.fromCharCode(b);
  assert.equal(huffmanDecode(huffmanEncode(all)), all);
  assert.equal(
    huffmanDecode(huffmanEncode(all + all.split("").reverse().join(""))),
    all + all.split("").reverse().join(""),
  );
});

Deno.test("huffmanDecode() round-trips random octet strings", () => {
  const random = prng(7541);
  for (let n = 0; n < 500; n++) {
    let s = "";
    const length = Math.floor(random() * 64);
    for (let i = 0; i < length; i++) s += String.fromCharCode(Math.floor(random() * 256));
    const encoded = huffmanEncode(s);
    assert.equal(encoded.length, huffmanEncodedLength(s));
    assert.equal(huffmanDecode(encoded), s);
  }
});

Deno.test("huffmanDecode() rejects EOS and padding that is too long or not all ones (RFC 7541 §5.2)", () => {
  // EOS (30 one bits) inside the string, then two more ones as padding.
  assert.equal(code(() => huffmanDecode(hex("ffffffff"))), "INVALID_HUFFMAN");
  // 'a' (00011) followed by EOS.
  assert.equal(code(() => huffmanDecode(hex("1fffffff ff"))), "INVALID_HUFFMAN");
  // 'a' padded with 000 instead of 111.
  assert.equal(code(() => huffmanDecode(hex("18"))), "INVALID_HUFFMAN");
  // 'a' padded with 101.
  assert.equal(code(() => huffmanDecode(hex("1d"))), "INVALID_HUFFMAN");
  // 'a' + 111 padding + a whole octet of ones: 11 bits of padding.
  assert.equal(code(() => huffmanDecode(hex("1fff"))), "INVALID_HUFFMAN");
  // A lone octet of ones: 8 bits of padding.
  assert.equal(code(() => huffmanDecode(hex("ff"))), "INVALID_HUFFMAN");
  // 'a' + 111 is fine; so is "0" + "a" + padding 111111 (6 bits).
  assert.equal(huffmanDecode(hex("1f")), "a");
  assert.equal(huffmanDecode(hex("00 ff")), "0a");
  // 17 bits of symbols ("  0": 6 + 6 + 5) take the maximum 7 bits of padding.
  const padded = huffmanEncode("  0");
  assert.equal(padded.length, 3);
  assert.equal(padded[2]! & 0x7f, 0x7f);
  assert.equal(huffmanDecode(padded), "  0");
  // Ends mid-symbol on a path that is not all ones: ':' is 1011100 (7 bits); cut to 1011 + pad.
  assert.equal(code(() => huffmanDecode(hex("b8"))), "INVALID_HUFFMAN");
});

Deno.test("huffmanDecodeInto() decodes a slice into the middle of a buffer", () => {
  const src = hex("00 f1e3c2e5f23a6ba0ab90f4ff 00");
  const out = new Uint8Array(40).fill(0x2a);
  const end = huffmanDecodeInto(src, 1, 13, out, 3);
  assert.equal(end, 18);
  assert.equal(String.fromCharCode(...out.subarray(3, end)), "www.example.com");
  assert.equal(out[2], 0x2a);
  assert.equal(out[18], 0x2a);
});

Deno.test("huffmanEncodedLength() returns -1 for chars above U+00FF; huffmanEncode() throws", () => {
  assert.equal(huffmanEncodedLength("é"), 3); // U+00E9 is octet 0xe9: a 22-bit code
  assert.equal(huffmanEncodedLength("€"), -1);
  assert.throws(() => huffmanEncode("a€"), TypeError);
});
