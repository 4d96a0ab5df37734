/**
 * Differential tests against npm `hpack.js`, an independent HPACK implementation: random
 * header lists (names and values with arbitrary octets) over many blocks that share one
 * dynamic table, in both directions.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import hpack from "hpack.js";
import { HpackDecoder } from "../../../src/http2/hpack/decoder.ts";
import { HpackEncoder, type HpackEncoderOptions } from "../../../src/http2/hpack/encoder.ts";
import { prng } from "./_vectors.ts";

interface HpackJsHeader {
  name: string;
  value: string;
  neverIndex?: boolean;
  huffman?: boolean;
  incremental?: boolean;
}

/** hpack.js's decompressor as a function from block to header list (its table option is `maxSize`). */
function hpackJsDecoder(maxSize: number): (block: Uint8Array) => HpackJsHeader[] {
  const decompressor = hpack.decompressor.create({ table: { maxSize } });
  return (block) => {
    decompressor.write(Buffer.from(block));
    decompressor.execute();
    const headers: HpackJsHeader[] = [];
    for (let h = decompressor.read(); h !== null; h = decompressor.read()) headers.push(h);
    return headers;
  };
}

/** hpack.js's compressor as a function from header list to block. */
function hpackJsEncoder(maxSize: number): (headers: HpackJsHeader[]) => Uint8Array {
  const compressor = hpack.compressor.create({ table: { maxSize } });
  return (headers) => {
    compressor.write(headers);
    const chunk: Buffer | null = compressor.read();
    return chunk === null ? new Uint8Array() : new Uint8Array(chunk);
  };
}

const STATIC_NAMES = [
  ":method",
  ":path",
  ":authority",
  ":status",
  "content-type",
  "user-agent",
  "cookie",
  "date",
];
const CUSTOM_NAMES = [
  "te",
  "grpc-timeout",
  "grpc-encoding",
  "x-request-id",
  "x-trace-bin",
  "grpc-status",
  "authorization",
];
const COMMON_VALUES = ["GET", "POST", "/", "200", "application/grpc", "trailers", "gzip", "0", ""];

/** Random header lists: table hits, name hits, fresh names and values with any octet, big values. */
function headerLists(seed: number): () => [string, string][] {
  const random = prng(seed);
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const octets = (length: number) => {
    let s = "";
    for (let i = 0; i < length; i++) s += String.fromCharCode(int(256));
    return s;
  };
  const token = (length: number) => {
    let s = "x-";
    for (let i = 0; i < length; i++) s += pick("abcdefghijklmnopqrstuvwxyz0123456789-".split(""));
    return s;
  };
  const recentValues: string[] = [];
  return () => {
    const list: [string, string][] = [];
    for (let i = int(16); i > 0; i--) {
      const r = random();
      const name = r < 0.4
        ? pick(STATIC_NAMES)
        : r < 0.8
        ? pick(CUSTOM_NAMES)
        : r < 0.97
        ? token(1 + int(12))
        : octets(1 + int(8));
      const v = random();
      let value: string;
      if (v < 0.25) value = pick(COMMON_VALUES);
      else if (v < 0.5 && recentValues.length > 0) value = pick(recentValues);
      else if (v < 0.95) value = octets(int(60));
      else value = octets(200 + int(3000)); // evicts much of the table
      if (recentValues.length < 20) recentValues.push(value);
      else recentValues[int(20)] = value;
      list.push([name, value]);
    }
    return list;
  };
}

const BLOCKS = 400;

for (
  const [label, options] of [
    ["defaults", {}],
    ["huffman never", { huffman: "never" }],
    ["huffman always", { huffman: "always" }],
    ["table 256", { maxTableSize: 256 }],
    ["table 0", { maxTableSize: 0 }],
  ] as [string, HpackEncoderOptions][]
) {
  Deno.test(`HpackEncoder blocks decode identically with hpack.js (${label})`, () => {
    const encoder = new HpackEncoder(options);
    const decode = hpackJsDecoder(4096);
    const next = headerLists(label.length * 7919);
    const sensitive = new Set(["cookie", "authorization", "x-trace-bin"]);
    for (let n = 0; n < BLOCKS; n++) {
      // SETTINGS changes now and then; hpack.js allows updates up to its 4096.
      if (n % 97 === 96) encoder.setPeerMaxTableSize([0, 1000, 4096, 100000][n % 4]!);
      const headers = next();
      const decoded = decode(encoder.encode(headers, { sensitive }));
      assert.deepEqual(decoded.map((h) => [h.name, h.value]), headers, `block ${n}`);
      assert.deepEqual(
        decoded.map((h) => h.neverIndex),
        headers.map(([name]) => sensitive.has(name)),
        `block ${n}`,
      );
    }
  });
}

for (const maxSize of [4096, 256]) {
  Deno.test(`HpackDecoder decodes hpack.js blocks (hpack.js table ${maxSize})`, () => {
    const encode = hpackJsEncoder(maxSize);
    // Same table size on both sides, so evictions must match exactly.
    const decoder = new HpackDecoder({ maxTableSize: maxSize });
    const random = prng(maxSize);
    const next = headerLists(maxSize + 1);
    for (let n = 0; n < BLOCKS; n++) {
      const headers = next();
      // hpack.js picks per field: Huffman or not, indexed, not indexed or never indexed.
      const block = encode(headers.map(([name, value]) => {
        const r = random();
        return { name, value, huffman: random() < 0.7, neverIndex: r < 0.1, incremental: r > 0.3 };
      }));
      assert.deepEqual(decoder.decode(block), headers, `block ${n}`);
    }
  });
}

Deno.test("HpackEncoder and hpack.js agree on every RFC-shaped gRPC exchange both ways", () => {
  const request: [string, string][] = [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", "/pkg.Service/Method"],
    [":authority", "localhost:50051"],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ["grpc-timeout", "99S"],
    ["x-user-bin", "\x00\x01\x80\xff"],
  ];
  const ours = new HpackEncoder();
  const theirsDecode = hpackJsDecoder(4096);
  const theirsEncode = hpackJsEncoder(4096);
  const decoder = new HpackDecoder();
  for (let i = 0; i < 20; i++) {
    const headers = request.map(([n, v]): [string, string] => [n, n === "grpc-timeout" ? `${i}m` : v]);
    assert.deepEqual(theirsDecode(ours.encode(headers)).map((h) => [h.name, h.value]), headers);
    assert.deepEqual(
      decoder.decode(theirsEncode(headers.map(([name, value]) => ({ name, value })))),
      headers,
    );
  }
});
