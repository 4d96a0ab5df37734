import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { EmptySchema } from "./gen/grpc/testing/empty_pb.ts";
import {
  SimpleRequestSchema,
  StreamingInputCallResponseSchema,
  StreamingOutputCallRequestSchema,
} from "./gen/grpc/testing/messages_pb.ts";
import { TestService, UnimplementedService } from "./gen/grpc/testing/test_pb.ts";

Deno.test("grpc.testing.SimpleRequest encodes with the interop field numbers", () => {
  const request = create(SimpleRequestSchema, {
    responseSize: 1,
    payload: { body: new Uint8Array(2) },
    fillUsername: true,
    responseCompressed: { value: true },
    responseStatus: { code: 2, message: "x" },
  });
  assert.deepEqual(
    toBinary(SimpleRequestSchema, request),
    new Uint8Array([
      ...[0x10, 0x01], // 2 response_size = 1
      ...[0x1a, 0x04, 0x12, 0x02, 0x00, 0x00], // 3 payload { 2 body = 00 00 }
      ...[0x20, 0x01], // 4 fill_username = true
      ...[0x32, 0x02, 0x08, 0x01], // 6 response_compressed { 1 value = true }
      ...[0x3a, 0x05, 0x08, 0x02, 0x12, 0x01, 0x78], // 7 response_status { code = 2, message = "x" }
    ]),
  );
});

Deno.test("grpc.testing.StreamingOutputCallRequest encodes response_parameters", () => {
  const request = create(StreamingOutputCallRequestSchema, {
    responseParameters: [{ size: 31415 }, { size: 9, intervalUs: 1000 }],
  });
  assert.deepEqual(
    toBinary(StreamingOutputCallRequestSchema, request),
    new Uint8Array([
      ...[0x12, 0x04, 0x08, 0xb7, 0xf5, 0x01], // 2 { 1 size = 31415 }
      ...[0x12, 0x05, 0x08, 0x09, 0x10, 0xe8, 0x07], // 2 { size = 9, 2 interval_us = 1000 }
    ]),
  );
  const response = fromBinary(StreamingInputCallResponseSchema, new Uint8Array([0x08, 0xaa, 0xc9, 0x04]));
  assert.equal(response.aggregatedPayloadSize, 74922);
  assert.deepEqual(toBinary(EmptySchema, create(EmptySchema)), new Uint8Array());
});

Deno.test("grpc.testing services have the interop method names and kinds", () => {
  assert.equal(TestService.typeName, "grpc.testing.TestService");
  assert.deepEqual(TestService.methods.map((m) => [m.name, m.methodKind]), [
    ["EmptyCall", "unary"],
    ["UnaryCall", "unary"],
    ["CacheableUnaryCall", "unary"],
    ["StreamingOutputCall", "server_streaming"],
    ["StreamingInputCall", "client_streaming"],
    ["FullDuplexCall", "bidi_streaming"],
    ["HalfDuplexCall", "bidi_streaming"],
    ["UnimplementedCall", "unary"],
  ]);
  assert.equal(UnimplementedService.typeName, "grpc.testing.UnimplementedService");
  assert.deepEqual(UnimplementedService.methods.map((m) => m.name), ["UnimplementedCall"]);
});
