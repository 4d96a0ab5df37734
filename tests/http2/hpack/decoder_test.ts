import assert from "node:assert/strict";
import { HpackDecoder } from "../../../src/http2/hpack/decoder.ts";
import { HpackError } from "../../../src/http2/hpack/errors.ts";
import { encodeInteger } from "../../../src/http2/hpack/integer.ts";
import { C2, C3, C4, C5, C6, type Example, hex, RESPONSE_TABLE_SIZE } from "./_vectors.ts";

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof HpackError) return e.code;
    throw e;
  }
  return "none";
}

/** Octets of a prefix integer with flags. */
function int(value: number, prefixBits: number, flags: number): number[] {
  const out = new Uint8Array(6);
  return [...out.subarray(0, encodeInteger(out, 0, value, prefixBits, flags))];
}

/** A raw (non-Huffman) string literal. */
function str(s: string): number[] {
  return [...int(s.length, 7, 0), ...Array.from(s, (c) => c.charCodeAt(0))];
}

/**
 * Checks the decoder's dynamic table against an example by decoding indexed references to
 * each entry (indexed fields do not change the table).
 */
function assertTable(decoder: HpackDecoder, example: Example): void {
  if (example.table.length === 0) return;
  const probe = new Uint8Array(example.table.map((_, i) => 0x80 | (62 + i)));
  assert.deepEqual(decoder.decode(probe), example.table, `${example.section} table`);
  const size = example.table.reduce((sum, [n, v]) => sum + n.length + v.length + 32, 0);
  assert.equal(size, example.tableSize, `${example.section} table size`);
}

/** Asserts that the table has no entry beyond `length` (this poisons the decoder). */
function assertTableLength(decoder: HpackDecoder, length: number): void {
  assert.equal(code(() => decoder.decode(new Uint8Array(int(62 + length, 7, 0x80)))), "INVALID_INDEX");
}

function decodeSequence(examples: Example[], maxTableSize?: number): void {
  const decoder = new HpackDecoder(maxTableSize === undefined ? {} : { maxTableSize });
  for (const example of examples) {
    assert.deepEqual(decoder.decode(example.block), example.headers, example.section);
    assertTable(decoder, example);
  }
  assertTableLength(decoder, examples.at(-1)!.table.length);
}

Deno.test("HpackDecoder.decode() decodes RFC 7541 C.2 field representations", () => {
  for (const example of C2) {
    const decoder = new HpackDecoder();
    assert.deepEqual(decoder.decode(example.block), example.headers, example.section);
    assertTable(decoder, example);
    assertTableLength(decoder, example.table.length);
  }
});

Deno.test("HpackDecoder.decode() decodes RFC 7541 C.3 requests without Huffman", () => {
  decodeSequence(C3);
});

Deno.test("HpackDecoder.decode() decodes RFC 7541 C.4 requests with Huffman", () => {
  decodeSequence(C4);
});

Deno.test("HpackDecoder.decode() decodes RFC 7541 C.5 responses with evictions (table 256)", () => {
  decodeSequence(C5, RESPONSE_TABLE_SIZE);
});

Deno.test("HpackDecoder.decode() decodes RFC 7541 C.6 Huffman responses with evictions (table 256)", () => {
  decodeSequence(C6, RESPONSE_TABLE_SIZE);
});

Deno.test("HpackDecoder.decode() maps octets 0x00-0xff to chars U+0000-U+00FF", () => {
  let all = "";
  for (let b = 0; b < 256; b++) all += String.fromCharCode(b);
  const block = new Uint8Array([0x00, ...str("x-bin"), ...str(all)]);
  assert.deepEqual(new HpackDecoder().decode(block), [["x-bin", all]]);
  assert.deepEqual(new HpackDecoder().decode(new Uint8Array()), []);
});

Deno.test("HpackDecoder.decode() resolves a literal's name before adding it evicts that entry (RFC 7541 §4.4)", () => {
  const decoder = new HpackDecoder({ maxTableSize: 64 });
  // "k: v" (34 octets) fills more than half of the 64-octet table.
  decoder.decode(new Uint8Array([0x40, ...str("k"), ...str("v")]));
  // Literal with incremental indexing, name index 62 ("k"), value "w": evicts "k: v" first.
  assert.deepEqual(decoder.decode(new Uint8Array([0x40 | 62, ...str("w")])), [["k", "w"]]);
  assert.deepEqual(decoder.decode(new Uint8Array([0xbe])), [["k", "w"]]);
});

Deno.test("HpackDecoder.decode() rejects index 0 and indices beyond the table with INVALID_INDEX", () => {
  assert.equal(code(() => new HpackDecoder().decode(hex("80"))), "INVALID_INDEX");
  assert.equal(code(() => new HpackDecoder().decode(hex("be"))), "INVALID_INDEX");
  assert.equal(code(() => new HpackDecoder().decode(new Uint8Array(int(1000, 7, 0x80)))), "INVALID_INDEX");
  // Literal names by index 62 on an empty table, in all three literal forms.
  assert.equal(code(() => new HpackDecoder().decode(new Uint8Array([0x7e, ...str("v")]))), "INVALID_INDEX");
  assert.equal(
    code(() => new HpackDecoder().decode(new Uint8Array([...int(62, 4, 0x00), ...str("v")]))),
    "INVALID_INDEX",
  );
  assert.equal(
    code(() => new HpackDecoder().decode(new Uint8Array([...int(62, 4, 0x10), ...str("v")]))),
    "INVALID_INDEX",
  );
  // One past the newest entry after C.3.1.
  const decoder = new HpackDecoder();
  decoder.decode(C3[0]!.block);
  assert.deepEqual(decoder.decode(hex("be")), [[":authority", "www.example.com"]]);
  assert.equal(code(() => decoder.decode(hex("bf"))), "INVALID_INDEX");
});

Deno.test("HpackDecoder.decode() rejects truncated integers and strings with TRUNCATED", () => {
  const cases = [
    [0xff], // indexed, integer continues
    [0xff, 0x80], // integer continues again
    [0x40], // new name missing
    [0x40, 0x05, 0x61], // name shorter than its length
    [0x40, ...str("name")], // value missing
    [0x04], // :path without value
    [0x04, 0x7f], // value length continues
    [0x04, 0x85, 0xf1], // Huffman value cut short
    [0x1f], // never indexed, name index continues
    [0x3f], // size update continues
  ];
  for (const bytes of cases) {
    assert.equal(code(() => new HpackDecoder().decode(new Uint8Array(bytes))), "TRUNCATED", `${bytes}`);
  }
});

Deno.test("HpackDecoder.decode() rejects overlong and oversized integers with INVALID_INTEGER", () => {
  assert.equal(code(() => new HpackDecoder().decode(hex("ff 80 00"))), "INVALID_INTEGER");
  assert.equal(code(() => new HpackDecoder().decode(hex("04 ff ff ff ff ff 0f"))), "INVALID_INTEGER");
  assert.equal(code(() => new HpackDecoder().decode(hex("ff 80 80 80 80 80 80 01"))), "INVALID_INTEGER");
});

Deno.test("HpackDecoder.decode() rejects Huffman strings with EOS or bad padding with INVALID_HUFFMAN", () => {
  const cases = [
    "04 84 ffffffff", // EOS
    "04 85 1fffffffff", // 'a' then EOS
    "04 81 18", // 'a' + 000 padding
    "04 82 1fff", // 'a' + 11 bits of padding
    "04 81 ff", // 8 bits of padding
    "40 81 18 00", // bad padding in a new name
  ];
  for (const dump of cases) {
    assert.equal(code(() => new HpackDecoder().decode(hex(dump))), "INVALID_HUFFMAN", dump);
  }
  assert.deepEqual(new HpackDecoder().decode(hex("04 81 1f")), [[":path", "a"]]);
});

Deno.test("HpackDecoder.decode() accepts size updates only at the start and within the advertised size", () => {
  // Two updates at the start are fine (RFC 7541 §4.2).
  const decoder = new HpackDecoder();
  decoder.decode(C3[0]!.block);
  assert.deepEqual(decoder.decode(new Uint8Array([0x20, ...int(4096, 5, 0x20), 0x82])), [[":method", "GET"]]);
  // The update to 0 emptied the table.
  assert.equal(code(() => decoder.decode(hex("be"))), "INVALID_INDEX");
  // Above the advertised maximum.
  assert.equal(
    code(() => new HpackDecoder().decode(new Uint8Array(int(4097, 5, 0x20)))),
    "TABLE_SIZE_UPDATE",
  );
  assert.equal(
    code(() => new HpackDecoder({ maxTableSize: 256 }).decode(new Uint8Array(int(257, 5, 0x20)))),
    "TABLE_SIZE_UPDATE",
  );
  assert.deepEqual(new HpackDecoder({ maxTableSize: 256 }).decode(new Uint8Array(int(256, 5, 0x20))), []);
  // After a field.
  assert.equal(code(() => new HpackDecoder().decode(hex("82 20"))), "TABLE_SIZE_UPDATE");
  assert.equal(code(() => new HpackDecoder().decode(hex("20 82 3f e1 1f"))), "TABLE_SIZE_UPDATE");
});

Deno.test("HpackDecoder.decode() shrinks the table on a size update and keeps the newest entries", () => {
  const decoder = new HpackDecoder();
  for (const example of C3) decoder.decode(example.block);
  // 164 octets in three entries; shrink to 110: the oldest (:authority, 57) goes.
  assert.deepEqual(decoder.decode(new Uint8Array([...int(110, 5, 0x20), 0xbe, 0xbf])), [
    ["custom-key", "custom-value"],
    ["cache-control", "no-cache"],
  ]);
  assert.equal(code(() => decoder.decode(hex("c0"))), "INVALID_INDEX");
});

Deno.test("HpackDecoder.setMaxTableSize() requires a size update in the next block when lowered", () => {
  const decoder = new HpackDecoder();
  decoder.decode(C3[0]!.block);
  decoder.setMaxTableSize(100);
  assert.equal(code(() => decoder.decode(hex("82"))), "TABLE_SIZE_UPDATE");

  const decoder2 = new HpackDecoder();
  decoder2.setMaxTableSize(100);
  assert.equal(code(() => decoder2.decode(new Uint8Array([...int(101, 5, 0x20)]))), "TABLE_SIZE_UPDATE");

  const decoder3 = new HpackDecoder();
  decoder3.decode(C3[0]!.block);
  decoder3.setMaxTableSize(100);
  assert.deepEqual(decoder3.decode(new Uint8Array([...int(100, 5, 0x20), 0xbe])), [[
    ":authority",
    "www.example.com",
  ]]);
  // Satisfied: later blocks need no update.
  assert.deepEqual(decoder3.decode(hex("82")), [[":method", "GET"]]);

  // Raising needs no update; the peer may then grow the table to the new limit.
  const decoder4 = new HpackDecoder({ maxTableSize: 100 });
  decoder4.setMaxTableSize(8192);
  assert.deepEqual(decoder4.decode(new Uint8Array([...int(8192, 5, 0x20)])), []);
  assert.throws(() => decoder4.setMaxTableSize(-1), RangeError);
});

Deno.test("HpackDecoder.decode() limits string length, encoded and Huffman-decoded, with STRING_TOO_LONG", () => {
  const decoder = new HpackDecoder({ maxStringLength: 6 });
  assert.deepEqual(decoder.decode(new Uint8Array([0x00, ...str("abcdef"), ...str("")])), [["abcdef", ""]]);
  assert.equal(
    code(() => new HpackDecoder({ maxStringLength: 6 }).decode(new Uint8Array([0x04, ...str("abcdefg")]))),
    "STRING_TOO_LONG",
  );
  // Eight '0' (5 bits each) are 5 Huffman octets but decode to 8.
  assert.equal(
    code(() => new HpackDecoder({ maxStringLength: 6 }).decode(hex("04 85 0000000000"))),
    "STRING_TOO_LONG",
  );
  // A length far beyond the block is STRING_TOO_LONG before TRUNCATED: no allocation for it.
  assert.equal(
    code(() => new HpackDecoder().decode(new Uint8Array([0x04, ...int(1 << 30, 7, 0)]))),
    "STRING_TOO_LONG",
  );
});

Deno.test("HpackDecoder.decode() stops an HPACK bomb at maxHeaderListSize and stays in sync", () => {
  const decoder = new HpackDecoder({ maxHeaderListSize: 16384 });
  const big = "b".repeat(4000);
  // One 4000-octet entry, then 1000 one-octet references to it: a 4-MB list from 5 KB.
  const bomb = new Uint8Array([0x40, ...str("x-big"), ...str(big), ...new Array(1000).fill(0xbe)]);
  assert.equal(code(() => decoder.decode(bomb)), "HEADER_LIST_TOO_LARGE");
  // The block was processed to the end: its entry is in the table and the decoder works on.
  assert.deepEqual(decoder.decode(hex("be 82")), [["x-big", big], [":method", "GET"]]);
});

Deno.test("HpackDecoder.decode() keeps inserting entries after a list limit is hit", () => {
  const decoder = new HpackDecoder({ maxHeaderListSize: 100 });
  // Three incrementally indexed fields; the list passes 100 octets at the second.
  const block = new Uint8Array([
    0x40,
    ...str("a"),
    ...str("x".repeat(50)),
    0x40,
    ...str("b"),
    ...str("y".repeat(50)),
    0x40,
    ...str("c"),
    ...str("z"),
  ]);
  assert.equal(code(() => decoder.decode(block)), "HEADER_LIST_TOO_LARGE");
  assert.deepEqual(decoder.decode(hex("be")), [["c", "z"]]);
  assert.deepEqual(decoder.decode(hex("c0")), [["a", "x".repeat(50)]]);
});

Deno.test("HpackDecoder.decode() limits the number of fields with TOO_MANY_FIELDS and stays in sync", () => {
  const decoder = new HpackDecoder({ maxFields: 10 });
  assert.equal(decoder.decode(new Uint8Array(10).fill(0x82)).length, 10);
  assert.equal(
    code(() => decoder.decode(new Uint8Array([...new Array(11).fill(0x82), 0x40, ...str("k"), ...str("v")]))),
    "TOO_MANY_FIELDS",
  );
  assert.deepEqual(decoder.decode(hex("be")), [["k", "v"]]);
  // The default is 1000.
  assert.equal(code(() => new HpackDecoder().decode(new Uint8Array(1001).fill(0x82))), "TOO_MANY_FIELDS");
});

Deno.test("HpackDecoder refuses every block after a fatal error", () => {
  const decoder = new HpackDecoder();
  assert.equal(code(() => decoder.decode(hex("80"))), "INVALID_INDEX");
  let error: unknown;
  try {
    decoder.decode(hex("82"));
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof HpackError);
  assert.equal(error.code, "INVALID_INDEX");
  assert.equal(error.name, "HpackError");
  assert.ok(error.cause instanceof HpackError);
});

Deno.test("HpackDecoder rejects bad options with RangeError and bad input with TypeError", () => {
  assert.throws(() => new HpackDecoder({ maxTableSize: -1 }), RangeError);
  assert.throws(() => new HpackDecoder({ maxTableSize: 2 ** 31 }), RangeError);
  assert.throws(() => new HpackDecoder({ maxHeaderListSize: 1.5 }), RangeError);
  assert.throws(() => new HpackDecoder({ maxStringLength: NaN }), RangeError);
  assert.throws(() => new HpackDecoder({ maxFields: Infinity }), RangeError);
  const decoder = new HpackDecoder();
  assert.throws(() => decoder.decode([0x82] as unknown as Uint8Array), TypeError);
  assert.deepEqual(decoder.decode(hex("82")), [[":method", "GET"]]);
});
