import assert from "node:assert/strict";
import { formatGrpcContentType, GRPC_CONTENT_TYPE, parseGrpcContentType } from "../../mod.ts";

Deno.test("parseGrpcContentType() returns the codec subtype", () => {
  const table: [string, string | undefined][] = [
    ["application/grpc", "proto"],
    ["application/grpc+proto", "proto"],
    ["application/grpc+raw", "raw"],
    ["application/grpc+json", "json"],
    ["application/grpc;charset=utf-8", "proto"],
    ["application/grpc+raw ; x=y", "raw"],
    ["APPLICATION/GRPC+RAW", "raw"],
    [" application/grpc ", "proto"],
    ["application/grpc+", undefined],
    ["application/grpc-web", undefined],
    ["application/grpc-web+proto", undefined],
    ["application/grpcx", undefined],
    ["application/grpc+a b", undefined],
    ["application/json", undefined],
    ["text/html; charset=utf-8", undefined],
    ["", undefined],
  ];
  for (const [value, subtype] of table) assert.equal(parseGrpcContentType(value), subtype, value);
});

Deno.test("formatGrpcContentType() formats bare and subtyped content types", () => {
  assert.equal(GRPC_CONTENT_TYPE, "application/grpc");
  assert.equal(formatGrpcContentType(), "application/grpc");
  assert.equal(formatGrpcContentType(""), "application/grpc");
  assert.equal(formatGrpcContentType("proto"), "application/grpc+proto");
  assert.equal(formatGrpcContentType("raw"), "application/grpc+raw");
  for (const bad of ["Raw", "a b", "x;y", "a/b"]) {
    assert.throws(() => formatGrpcContentType(bad), TypeError, bad);
  }
  for (const subtype of ["proto", "raw", "json"]) {
    assert.equal(parseGrpcContentType(formatGrpcContentType(subtype)), subtype);
  }
});
