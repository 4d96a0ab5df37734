import assert from "node:assert/strict";
import {
  STATIC_TABLE,
  STATIC_TABLE_LENGTH,
  staticFieldIndex,
  staticNameIndex,
} from "../../../src/http2/hpack/static_table.ts";

Deno.test("STATIC_TABLE has the 61 entries of RFC 7541 Appendix A", () => {
  assert.equal(STATIC_TABLE.length, 61);
  assert.equal(STATIC_TABLE_LENGTH, 61);
  assert.deepEqual(STATIC_TABLE[0], [":authority", ""]);
  assert.deepEqual(STATIC_TABLE[1], [":method", "GET"]);
  assert.deepEqual(STATIC_TABLE[2], [":method", "POST"]);
  assert.deepEqual(STATIC_TABLE[7], [":status", "200"]);
  assert.deepEqual(STATIC_TABLE[13], [":status", "500"]);
  assert.deepEqual(STATIC_TABLE[15], ["accept-encoding", "gzip, deflate"]);
  assert.deepEqual(STATIC_TABLE[22], ["authorization", ""]);
  assert.deepEqual(STATIC_TABLE[30], ["content-type", ""]);
  assert.deepEqual(STATIC_TABLE[54], ["set-cookie", ""]);
  assert.deepEqual(STATIC_TABLE[60], ["www-authenticate", ""]);
  for (const [name] of STATIC_TABLE) assert.equal(name, name.toLowerCase());
});

Deno.test("staticFieldIndex() finds exact fields and staticNameIndex() the lowest index of a name", () => {
  assert.equal(staticFieldIndex(":method", "GET"), 2);
  assert.equal(staticFieldIndex(":method", "POST"), 3);
  assert.equal(staticFieldIndex(":status", "404"), 13);
  assert.equal(staticFieldIndex(":status", "302"), 0);
  assert.equal(staticFieldIndex(":authority", ""), 1);
  assert.equal(staticFieldIndex("content-type", "application/grpc"), 0);
  assert.equal(staticFieldIndex("te", "trailers"), 0);
  assert.equal(staticNameIndex(":status"), 8);
  assert.equal(staticNameIndex(":path"), 4);
  assert.equal(staticNameIndex("content-type"), 31);
  assert.equal(staticNameIndex("www-authenticate"), 61);
  assert.equal(staticNameIndex("te"), 0);
  for (let i = 1; i <= 61; i++) {
    const [name, value] = STATIC_TABLE[i - 1]!;
    assert.equal(staticFieldIndex(name, value), i);
    assert.ok(staticNameIndex(name) <= i);
  }
});
