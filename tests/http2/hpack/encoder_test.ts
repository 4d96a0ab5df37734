import assert from "node:assert/strict";
import { HpackDecoder } from "../../../src/http2/hpack/decoder.ts";
import { HpackEncoder } from "../../../src/http2/hpack/encoder.ts";
import { C2, C3, C4, C5, C6, type Example, hex, prng, RESPONSE_TABLE_SIZE, toHex } from "./_vectors.ts";

/** The dynamic table size update to 256 our encoder sends first when its table is 256. */
const UPDATE_TO_256 = "3fe101";

function assertBlocks(encoder: HpackEncoder, examples: Example[], firstPrefix = ""): void {
  const decoder = new HpackDecoder();
  examples.forEach((example, i) => {
    const block = encoder.encode(example.headers);
    assert.equal(toHex(block), (i === 0 ? firstPrefix : "") + toHex(example.block), example.section);
    assert.deepEqual(decoder.decode(block), example.headers, example.section);
  });
}

Deno.test("HpackEncoder.encode() reproduces RFC 7541 C.2 representations", () => {
  const [c21, c22, c23, c24] = C2 as [Example, Example, Example, Example];
  // C.2.1: literal with incremental indexing, new name.
  assert.equal(toHex(new HpackEncoder({ huffman: "never" }).encode(c21.headers)), toHex(c21.block));
  // C.2.2: literal without indexing, for a name configured as unindexed.
  const unindexed = new HpackEncoder({ huffman: "never", unindexedNames: new Set([":path"]) });
  assert.equal(toHex(unindexed.encode(c22.headers)), toHex(c22.block));
  // C.2.3: literal never indexed, for a sensitive name.
  const sensitive = new Set(["password"]);
  assert.equal(
    toHex(new HpackEncoder({ huffman: "never" }).encode(c23.headers, { sensitive })),
    toHex(c23.block),
  );
  // C.2.4: indexed static field.
  assert.equal(toHex(new HpackEncoder().encode(c24.headers)), toHex(c24.block));
});

Deno.test("HpackEncoder.encode() reproduces RFC 7541 C.3 requests without Huffman", () => {
  assertBlocks(new HpackEncoder({ huffman: "never" }), C3);
});

Deno.test("HpackEncoder.encode() reproduces RFC 7541 C.4 requests with Huffman (auto picks it)", () => {
  assertBlocks(new HpackEncoder(), C4);
  assertBlocks(new HpackEncoder({ huffman: "always" }), C4);
});

Deno.test("HpackEncoder.encode() reproduces RFC 7541 C.5 responses after the size update to 256", () => {
  // The examples assume a 256-octet table from the start; an HTTP/2 encoder whose table is
  // smaller than the protocol's initial 4096 must first say so, which is all that differs.
  assertBlocks(new HpackEncoder({ huffman: "never", maxTableSize: RESPONSE_TABLE_SIZE }), C5, UPDATE_TO_256);
  const viaSettings = new HpackEncoder({ huffman: "never" });
  viaSettings.setPeerMaxTableSize(RESPONSE_TABLE_SIZE);
  assertBlocks(viaSettings, C5, UPDATE_TO_256);
});

Deno.test("HpackEncoder.encode() reproduces RFC 7541 C.6 Huffman responses after the size update to 256", () => {
  // "always": C.6.2 Huffman-codes "307", which is no shorter than raw (3 octets either way).
  assertBlocks(new HpackEncoder({ huffman: "always", maxTableSize: RESPONSE_TABLE_SIZE }), C6, UPDATE_TO_256);
  // "auto" differs from the RFC only there.
  const auto = new HpackEncoder({ maxTableSize: RESPONSE_TABLE_SIZE });
  auto.encode(C6[0]!.headers);
  assert.equal(toHex(auto.encode(C6[1]!.headers)), "4803333037c1c0bf");
});

Deno.test("HpackEncoder.setPeerMaxTableSize() signals the smallest and the final size (RFC 7541 §4.2)", () => {
  const encoder = new HpackEncoder({ huffman: "never" });
  const decoder = new HpackDecoder();
  assert.deepEqual(decoder.decode(encoder.encode([["x-a", "1"]])), [["x-a", "1"]]);
  // Unchanged: no update.
  encoder.setPeerMaxTableSize(4096);
  assert.equal(toHex(encoder.encode([["x-a", "1"]])), "be");
  // Shrunk to 0 and grown back before the next block: both sizes, then the field anew.
  encoder.setPeerMaxTableSize(0);
  encoder.setPeerMaxTableSize(4096);
  const block = encoder.encode([["x-a", "1"]]);
  assert.equal(toHex(block.subarray(0, 4)), "20" + "3fe11f");
  assert.deepEqual(decoder.decode(block), [["x-a", "1"]]);
  // Larger than our own cap: the cap wins and nothing changes.
  encoder.setPeerMaxTableSize(65536);
  assert.equal(toHex(encoder.encode([["x-a", "1"]])), "be");
  // Shrink only: one update.
  encoder.setPeerMaxTableSize(100);
  assert.equal(toHex(encoder.encode([])), "3f45");
  assert.deepEqual(decoder.decode(hex("3f45")), []);
  assert.throws(() => encoder.setPeerMaxTableSize(-1), RangeError);
  assert.throws(() => encoder.setPeerMaxTableSize(2 ** 32), RangeError);
});

Deno.test("HpackEncoder with a table of 0 never indexes and still compresses with the static table", () => {
  const encoder = new HpackEncoder({ maxTableSize: 0 });
  const first = encoder.encode([[":method", "POST"], ["x-a", "b"]]);
  assert.equal(toHex(first.subarray(0, 2)), "2083");
  const second = encoder.encode([[":method", "POST"], ["x-a", "b"]]);
  assert.equal(second[0], 0x83);
  assert.equal(second[1], 0x00); // literal without indexing, new name
  const decoder = new HpackDecoder();
  decoder.decode(first);
  assert.deepEqual(decoder.decode(second), [[":method", "POST"], ["x-a", "b"]]);
});

Deno.test("HpackEncoder indexes repeated fields and names, and skips volatile and oversized ones", () => {
  const encoder = new HpackEncoder({ huffman: "never" });
  const decoder = new HpackDecoder();
  const check = (headers: [string, string][]) => {
    const block = encoder.encode(headers);
    assert.deepEqual(decoder.decode(block), headers);
    return toHex(block);
  };
  // First time: literal with incremental indexing; then index 62.
  assert.equal(check([["x-id", "1"]]), "4004782d6964" + "0131");
  assert.equal(check([["x-id", "1"]]), "be");
  // Same name, new value: name by dynamic index 62.
  assert.equal(check([["x-id", "2"]]), "7e0132");
  // grpc-timeout and content-length are not indexed by default.
  assert.equal(check([["grpc-timeout", "1S"]]).slice(0, 2), "00");
  assert.equal(check([["content-length", "12"]]), "0f0d023132");
  // A field over half the table is not indexed (it would evict everything else).
  assert.equal(check([["x-big", "x".repeat(2100)]]).slice(0, 2), "00");
  assert.equal(check([["x-id", "2"], ["x-id", "1"]]), "bebf");
});

Deno.test("HpackEncoder.encode() never indexes sensitive names; authorization by default", () => {
  const encoder = new HpackEncoder({ huffman: "never" });
  const decoder = new HpackDecoder();
  for (let i = 0; i < 2; i++) {
    const block = encoder.encode([["authorization", "Bearer t"], ["proxy-authorization", "p"]]);
    // 0x1f 0x08: never indexed, name index 15 + 8 = 23; 0x1f 0x22: name index 15 + 34 = 49.
    assert.equal(toHex(block), "1f08" + "08" + toHex(hex("426561726572 2074")) + "1f22" + "0170");
    assert.deepEqual(decoder.decode(block), [["authorization", "Bearer t"], ["proxy-authorization", "p"]]);
  }
  // A caller's set replaces the default.
  const block = encoder.encode([["cookie", "a=b"], ["authorization", "x"]], {
    sensitive: new Set(["cookie"]),
  });
  assert.equal(toHex(block.subarray(0, 2)), "1f11");
  assert.deepEqual(decoder.decode(block), [["cookie", "a=b"], ["authorization", "x"]]);
  // "authorization: x" is now in the table, yet the default set still keeps it out of the block.
  assert.equal(toHex(encoder.encode([["authorization", "x"]], { sensitive: new Set() })), "be");
  assert.equal(toHex(encoder.encode([["authorization", "x"]])), "1f080178");
});

Deno.test("HpackEncoder.encode() rejects chars above U+00FF and resets both tables in its next block", () => {
  const encoder = new HpackEncoder();
  const decoder = new HpackDecoder();
  const headers: [string, string][] = [["x-a", "1"], ["x-ü", "\xff"]];
  assert.deepEqual(decoder.decode(encoder.encode(headers)), headers);
  // "x-a: 1" is indexed, then "€" fails: the table changed but the block is never sent.
  assert.throws(() => encoder.encode([["x-new", "1"], ["x-b", "€"]]), TypeError);
  assert.throws(() => encoder.encode([["x-\u{1f600}", "1"]]), TypeError);
  assert.throws(() => encoder.encode([["x-a", 1 as unknown as string]]), TypeError);
  // The next block empties both tables (size update to 0, then back to 4096) and starts over.
  const block = encoder.encode(headers);
  assert.equal(toHex(block.subarray(0, 4)), "20" + "3fe11f");
  assert.deepEqual(decoder.decode(block), headers);
  assert.equal(toHex(encoder.encode(headers)), "bfbe");
  assert.deepEqual(decoder.decode(hex("bfbe")), headers);
});

Deno.test("HpackEncoder.encode() accepts any iterable and returns an owned copy", () => {
  const encoder = new HpackEncoder();
  const decoder = new HpackDecoder();
  const map = new Map([["x-a", "1"], ["x-b", "2"]]);
  const first = encoder.encode(map);
  const copy = first.slice();
  const second = encoder.encode([["x-c", "3"]]);
  assert.deepEqual(first, copy);
  assert.deepEqual(decoder.decode(first), [...map]);
  assert.deepEqual(decoder.decode(second), [["x-c", "3"]]);
  function* gen(): Generator<[string, string]> {
    yield ["x-b", "2"];
  }
  assert.deepEqual(decoder.decode(encoder.encode(gen())), [["x-b", "2"]]);
});

Deno.test("HpackEncoder and HpackDecoder stay in sync over many random blocks with evictions", () => {
  const random = prng(20240611);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const names = ["x-a", "x-b", "x-trace", ":path", "content-type", "grpc-timeout", "user-agent", "x-bin"];
  for (const maxTableSize of [0, 64, 256, 4096]) {
    const encoder = new HpackEncoder({ maxTableSize });
    const decoder = new HpackDecoder();
    for (let n = 0; n < 300; n++) {
      if (n % 50 === 49) encoder.setPeerMaxTableSize(pick([0, 100, 4096, 8192]));
      const headers: [string, string][] = [];
      for (let i = Math.floor(random() * 12); i > 0; i--) {
        let value = "";
        for (let j = Math.floor(random() * 40); j > 0; j--) {
          value += String.fromCharCode(
            random() < 0.5 ? 0x61 + Math.floor(random() * 3) : Math.floor(random() * 256),
          );
        }
        headers.push([pick(names), random() < 0.5 ? String(Math.floor(random() * 4)) : value]);
      }
      assert.deepEqual(decoder.decode(encoder.encode(headers)), headers, `table ${maxTableSize}, block ${n}`);
    }
  }
});

Deno.test("HpackEncoder rejects bad options", () => {
  assert.throws(() => new HpackEncoder({ maxTableSize: -1 }), RangeError);
  assert.throws(() => new HpackEncoder({ maxTableSize: 2 ** 31 }), RangeError);
  assert.throws(() => new HpackEncoder({ huffman: "sometimes" as "auto" }), TypeError);
});

Deno.test("HpackEncoder reuses the block of a frozen list only while its table is unchanged", () => {
  const encoder = new HpackEncoder({ maxTableSize: 4096 });
  const decoder = new HpackDecoder();
  const freeze = (list: [string, string][]) => Object.freeze(list.map((field) => Object.freeze(field)));
  const fixed = freeze([[":status", "200"], ["content-type", "application/grpc"], ["x-a", "1"]]);
  const decode = (block: Uint8Array) => decoder.decode(block);
  // First: inserts (not reusable); second: all indexed (remembered); third: reused.
  for (let i = 0; i < 3; i++) assert.deepEqual(decode(encoder.encode(fixed)), fixed);
  const reused = encoder.encode(fixed);
  reused[0] = 0; // a fresh copy each time: the caller owns it
  assert.deepEqual(decode(encoder.encode(fixed)), fixed);
  // Insertions shift the dynamic indices: the old block must not be reused.
  for (let i = 0; i < 40; i++) decode(encoder.encode([[`x-fill-${i}`, "v".repeat(60)]]));
  assert.deepEqual(decode(encoder.encode(fixed)), fixed);
  assert.deepEqual(decode(encoder.encode(fixed)), fixed);
  // A smaller table evicts without inserting: the next blocks still decode.
  encoder.setPeerMaxTableSize(64);
  decoder.setMaxTableSize(64);
  assert.deepEqual(decode(encoder.encode(fixed)), fixed);
  assert.deepEqual(decode(encoder.encode(fixed)), fixed);
  // A sensitive field is never taken from the cache's choices.
  const block = encoder.encode(fixed, { sensitive: new Set(["x-a"]) });
  assert.deepEqual(decode(block), fixed);
});
