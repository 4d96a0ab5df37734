import assert from "node:assert/strict";
import { DynamicTable, entrySize } from "../../../src/http2/hpack/dynamic_table.ts";

function entries(table: DynamicTable): [string, string][] {
  return Array.from({ length: table.length }, (_, i) => [table.name(i), table.value(i)]);
}

Deno.test("entrySize() is name + value + 32 octets", () => {
  assert.equal(entrySize("custom-key", "custom-header"), 55);
  assert.equal(entrySize("", ""), 32);
  assert.equal(entrySize("x", "\xff\x00"), 35);
});

Deno.test("DynamicTable evicts oldest first as in RFC 7541 C.5 (256 octets)", () => {
  const evicted: [string, string, number][] = [];
  const table = new DynamicTable(256, (name, value, sequence) => evicted.push([name, value, sequence]));
  assert.equal(table.add(":status", "302"), 0);
  assert.equal(table.add("cache-control", "private"), 1);
  assert.equal(table.add("date", "Mon, 21 Oct 2013 20:13:21 GMT"), 2);
  assert.equal(table.add("location", "https://www.example.com"), 3);
  assert.equal(table.size, 222);
  assert.equal(table.add(":status", "307"), 4);
  assert.deepEqual(evicted, [[":status", "302", 0]]);
  assert.equal(table.size, 222);
  table.add("date", "Mon, 21 Oct 2013 20:13:22 GMT");
  table.add("content-encoding", "gzip");
  table.add("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1");
  assert.deepEqual(evicted.map((e) => e[2]), [0, 1, 2, 3, 4]);
  assert.deepEqual(entries(table), [
    ["set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"],
    ["content-encoding", "gzip"],
    ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
  ]);
  assert.equal(table.size, 215);
  assert.equal(table.inserted, 8);
});

Deno.test("DynamicTable.add() of an entry larger than the table empties it (RFC 7541 §4.4)", () => {
  const table = new DynamicTable(100);
  table.add("a", "b");
  assert.equal(table.add("big", "x".repeat(70)), -1);
  assert.equal(table.length, 0);
  assert.equal(table.size, 0);
  // Exactly the maximum fits.
  assert.equal(table.add("a", "x".repeat(67)), 1);
  assert.equal(table.size, 100);
});

Deno.test("DynamicTable.setMaxSize() evicts down to the new size; 0 clears", () => {
  const table = new DynamicTable(4096);
  for (let i = 0; i < 10; i++) table.add("k", String(i)); // 34 octets each
  table.setMaxSize(100);
  assert.deepEqual(entries(table), [["k", "9"], ["k", "8"]]);
  table.setMaxSize(0);
  assert.equal(table.length, 0);
  table.setMaxSize(4096);
  assert.equal(table.maxSize, 4096);
  assert.equal(table.length, 0);
});

Deno.test("DynamicTable keeps order across ring growth and wrap-around", () => {
  const table = new DynamicTable(34 * 40);
  const expected: [string, string][] = [];
  for (let i = 0; i < 500; i++) {
    const value = String(i % 10);
    table.add(String.fromCharCode(97 + (i % 26)), value);
    expected.unshift([String.fromCharCode(97 + (i % 26)), value]);
    if (expected.length > 40) expected.pop();
    if (i % 37 === 0) assert.deepEqual(entries(table), expected);
  }
  assert.deepEqual(entries(table), expected);
  assert.equal(table.length, 40);
  assert.equal(table.size, 40 * 34);
});
