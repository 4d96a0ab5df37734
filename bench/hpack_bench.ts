/**
 * HPACK: our codec against npm `hpack.js` (baseline) on gRPC-shaped traffic over one warm
 * connection: each iteration is one call's header blocks, encoded and decoded, with the
 * dynamic tables carried over from the previous calls.
 *
 *   deno bench -A bench/hpack_bench.ts
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import hpack from "hpack.js";
import { HpackDecoder, HpackEncoder } from "../mod.ts";

type Fields = [string, string][];

/** Request headers of call `i`: a fresh timeout and request id, everything else repeats. */
function request(i: number): Fields {
  return [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", "/gitaly.SmartHTTPService/PostUploadPackWithSidechannel"],
    [":authority", "gitaly.internal:8075"],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ["grpc-timeout", `${29_000 - (i % 1000)}m`],
    ["grpc-accept-encoding", "identity,deflate,gzip"],
    ["user-agent", "grpc-deno-sidechannel/0.1.0"],
    ["x-gitlab-correlation-id", `01HZX${(i * 7919).toString(36).padStart(8, "0")}`],
    ["gitaly-feature-use-sidechannel", "true"],
    ["username", "root"],
    ["remote_ip", "10.0.3.17"],
  ];
}

const RESPONSE: Fields = [[":status", "200"], ["content-type", "application/grpc"], [
  "grpc-encoding",
  "identity",
]];
const TRAILERS: Fields = [["grpc-status", "0"], ["grpc-message", ""]];
const ERROR_TRAILERS: Fields = [["grpc-status", "5"], ["grpc-message", "repository%20not%20found"]];

/** One direction of one connection with our codec. */
function ours(): (fields: Fields) => number {
  const encoder = new HpackEncoder();
  const decoder = new HpackDecoder();
  return (fields) => decoder.decode(encoder.encode(fields)).length;
}

/** One direction of one connection with hpack.js. */
function theirs(): (fields: Fields) => number {
  const compressor = hpack.compressor.create({ table: { maxSize: 4096 } });
  const decompressor = hpack.decompressor.create({ table: { maxSize: 4096 } });
  return (fields) => {
    compressor.write(fields.map(([name, value]) => ({ name, value })));
    decompressor.write(compressor.read() as Buffer);
    decompressor.execute();
    let count = 0;
    while (decompressor.read() !== null) count++;
    return count;
  };
}

let sink = 0;

for (const [name, make, baseline] of [["hpack.js", theirs, true], ["sidechannel", ours, false]] as const) {
  const req = make();
  let i = 0;
  Deno.bench({ name, group: "request headers (encode + decode)", baseline, n: 50_000, warmup: 5_000 }, () => {
    sink += req(request(i++));
  });

  const res = make();
  let j = 0;
  Deno.bench({
    name,
    group: "response headers + trailers (encode + decode)",
    baseline,
    n: 50_000,
    warmup: 5_000,
  }, () => {
    sink += res(RESPONSE) + res(j++ % 10 === 0 ? ERROR_TRAILERS : TRAILERS);
  });

  Deno.bench({ name, group: "first request on a new connection", baseline, n: 10_000, warmup: 1_000 }, () => {
    sink += make()(request(0));
  });
}

globalThis.addEventListener("unload", () => {
  if (sink === 0) throw new Error("benchmarks did nothing");
});
