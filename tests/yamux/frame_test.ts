import assert from "node:assert/strict";
import {
  decodeHeader,
  describeHeader,
  encodeHeader,
  encodeHeaderInto,
  FLAG_ACK,
  FLAG_FIN,
  FLAG_RST,
  FLAG_SYN,
  GO_AWAY_INTERNAL_ERROR,
  GO_AWAY_NORMAL,
  GO_AWAY_PROTOCOL_ERROR,
  HEADER_SIZE,
  INITIAL_STREAM_WINDOW,
  MAX_UINT32,
  TYPE_DATA,
  TYPE_GO_AWAY,
  TYPE_PING,
  TYPE_WINDOW_UPDATE,
  YAMUX_VERSION,
} from "../../mod.ts";

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("yamux frame constants match spec.md", () => {
  assert.equal(YAMUX_VERSION, 0);
  assert.equal(HEADER_SIZE, 12);
  assert.equal(TYPE_DATA, 0);
  assert.equal(TYPE_WINDOW_UPDATE, 1);
  assert.equal(TYPE_PING, 2);
  assert.equal(TYPE_GO_AWAY, 3);
  assert.equal(FLAG_SYN, 1);
  assert.equal(FLAG_ACK, 2);
  assert.equal(FLAG_FIN, 4);
  assert.equal(FLAG_RST, 8);
  assert.equal(GO_AWAY_NORMAL, 0);
  assert.equal(GO_AWAY_PROTOCOL_ERROR, 1);
  assert.equal(GO_AWAY_INTERNAL_ERROR, 2);
  assert.equal(INITIAL_STREAM_WINDOW, 262144);
  assert.equal(MAX_UINT32, 4294967295);
});

// The header bytes Gitaly's sidechannel exchange shows on the wire (gitaly.md §1.3).
const GITALY_EXAMPLES: [string, number, number, number, number][] = [
  ["000100010000000100000000", TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0], // client SYN stream 1
  ["000100020000000100fc0000", TYPE_WINDOW_UPDATE, FLAG_ACK, 1, 0xfc0000], // Gitaly ACK, 16 MiB window
  ["000100010000000200fc0000", TYPE_WINDOW_UPDATE, FLAG_SYN, 2, 0xfc0000], // Gitaly SYN sidechannel
  ["000100020000000200000000", TYPE_WINDOW_UPDATE, FLAG_ACK, 2, 0], // client ACK stream 2
  ["000000000000000200000400", TYPE_DATA, 0, 2, 1024], // data, 1024 bytes
  ["000100040000000200000000", TYPE_WINDOW_UPDATE, FLAG_FIN, 2, 0], // FIN
  ["000100080000000200000000", TYPE_WINDOW_UPDATE, FLAG_RST, 2, 0], // RST
];

for (const [bytes, type, flags, id, length] of GITALY_EXAMPLES) {
  Deno.test(`encodeHeader()/decodeHeader() match the wire example ${bytes}`, () => {
    assert.equal(hex(encodeHeader(type, flags, id, length)), bytes);
    const decoded = decodeHeader(Uint8Array.from(bytes.match(/../g)!, (h) => parseInt(h, 16)));
    assert.deepEqual(decoded, { version: 0, type, flags, streamId: id, length });
  });
}

Deno.test("16 MiB window grant is 0x00FC0000", () => {
  assert.equal(16 * 1024 * 1024 - INITIAL_STREAM_WINDOW, 0x00fc0000);
});

Deno.test("decodeHeader() round-trips extreme values", () => {
  for (const [id, length] of [[0, 0], [MAX_UINT32, MAX_UINT32], [0x80000001, 0x7fffffff]]) {
    const h = decodeHeader(encodeHeader(TYPE_PING, FLAG_SYN | FLAG_ACK | FLAG_FIN | FLAG_RST, id!, length!));
    assert.equal(h.streamId, id);
    assert.equal(h.length, length);
    assert.equal(h.flags, 15);
  }
});

Deno.test("encodeHeaderInto() writes at an offset and decodeHeader() reads at one", () => {
  const buf = new Uint8Array(30).fill(0xee);
  encodeHeaderInto(buf, 9, TYPE_GO_AWAY, 0, 0, GO_AWAY_PROTOCOL_ERROR);
  assert.equal(buf[8], 0xee);
  assert.equal(buf[21], 0xee);
  assert.deepEqual(decodeHeader(buf, 9), {
    version: 0,
    type: TYPE_GO_AWAY,
    flags: 0,
    streamId: 0,
    length: 1,
  });
});

Deno.test("decodeHeader() keeps an unknown version and type for the session to reject", () => {
  const h = decodeHeader(new Uint8Array([7, 9, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]));
  assert.equal(h.version, 7);
  assert.equal(h.type, 9);
  assert.match(describeHeader(h), /Type\(9\).*version=7/);
});

Deno.test("decodeHeader() rejects fewer than 12 bytes", () => {
  assert.throws(() => decodeHeader(new Uint8Array(11)), RangeError);
  assert.throws(() => decodeHeader(new Uint8Array(12), 1), RangeError);
});

Deno.test("describeHeader() names type and flags", () => {
  assert.equal(
    describeHeader({
      version: 0,
      type: TYPE_WINDOW_UPDATE,
      flags: FLAG_SYN | FLAG_ACK,
      streamId: 3,
      length: 0,
    }),
    "WindowUpdate SYN|ACK stream=3 length=0",
  );
});
