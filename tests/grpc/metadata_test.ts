import assert from "node:assert/strict";
import {
  decodeBinaryHeader,
  decodeMetadata,
  encodeMetadata,
  isReservedHeader,
  isValidMetadataName,
  isValidMetadataValue,
  type Metadata,
  metadataValues,
  validateMetadata,
} from "../../mod.ts";

Deno.test("isValidMetadataName() allows 0-9 a-z _ - . only", () => {
  for (const ok of ["a", "x-request-id", "a_b.c-9", "trace-proto-bin", "0"]) {
    assert.equal(isValidMetadataName(ok), true);
  }
  for (const bad of ["", "A", "x id", "x:y", "é", ":path", "x/y"]) {
    assert.equal(isValidMetadataName(bad), false);
  }
});

Deno.test("isValidMetadataValue() allows space and printable ASCII only", () => {
  assert.equal(isValidMetadataValue(""), true);
  assert.equal(isValidMetadataValue(" ~!azAZ09"), true);
  for (const bad of ["\t", "\n", "\x7f", "\u00e9", "\u0000"]) assert.equal(isValidMetadataValue(bad), false);
});

Deno.test("isReservedHeader() covers pseudo, grpc-*, content-type, te, user-agent, connection headers", () => {
  for (
    const name of [
      ":path",
      ":status",
      "grpc-status",
      "grpc-message",
      "grpc-status-details-bin",
      "grpc-timeout",
      "grpc-encoding",
      "grpc-accept-encoding",
      "grpc-message-type",
      "grpc-future-thing",
      "content-type",
      "te",
      "user-agent",
      "connection",
      "transfer-encoding",
      "upgrade",
    ]
  ) {
    assert.equal(isReservedHeader(name), true, name);
  }
  for (const name of ["authorization", "gitaly-sidechannel-id", "grpcx", "x-grpc-id"]) {
    assert.equal(isReservedHeader(name), false, name);
  }
});

Deno.test("validateMetadata() throws TypeError for bad names, reserved names and wrong value types", () => {
  validateMetadata([]);
  validateMetadata([["a", "b"], ["user-agent", "me/1.0"], ["x-bin", new Uint8Array()]]);
  const bad: Metadata[] = [
    [["Upper", "x"]],
    [["", "x"]],
    [["grpc-status", "0"]],
    [["content-type", "application/grpc"]],
    [["te", "trailers"]],
    [["a", "caf\u00e9"]],
    [["a", "line\nbreak"]],
    [["a", new Uint8Array([1])]],
    [["a-bin", "AQ"]],
  ];
  for (const metadata of bad) {
    assert.throws(() => validateMetadata(metadata), TypeError, JSON.stringify(metadata));
  }
});

Deno.test("encodeMetadata() base64-encodes -bin values unpadded and omits user-agent", () => {
  const headers = encodeMetadata([
    ["a", "1"],
    ["user-agent", "app/1.0"],
    ["one-bin", new Uint8Array([0xff])],
    ["two-bin", new Uint8Array([0xfb, 0xff])],
    ["three-bin", new Uint8Array([1, 2, 3])],
    ["empty-bin", new Uint8Array()],
    ["a", "2"],
  ]);
  assert.deepEqual(headers, [
    ["a", "1"],
    ["one-bin", "/w"],
    ["two-bin", "+/8"],
    ["three-bin", "AQID"],
    ["empty-bin", ""],
    ["a", "2"],
  ]);
});

Deno.test("decodeBinaryHeader() accepts padded, unpadded and comma-joined values", () => {
  assert.deepEqual(decodeBinaryHeader("/w=="), [new Uint8Array([0xff])]);
  assert.deepEqual(decodeBinaryHeader("/w"), [new Uint8Array([0xff])]);
  assert.deepEqual(decodeBinaryHeader("+/8="), [new Uint8Array([0xfb, 0xff])]);
  assert.deepEqual(decodeBinaryHeader(""), [new Uint8Array()]);
  assert.deepEqual(decodeBinaryHeader("AQID,/w==, +/8"), [
    new Uint8Array([1, 2, 3]),
    new Uint8Array([0xff]),
    new Uint8Array([0xfb, 0xff]),
  ]);
  for (const bad of ["A", "-_8", "AQ=D", "AQID!", "AQ===", "/w==,%%"]) {
    assert.equal(decodeBinaryHeader(bad), undefined, bad);
  }
});

Deno.test("decodeMetadata() drops reserved and invalid entries, keeps user-agent, decodes -bin", () => {
  const metadata = decodeMetadata([
    [":method", "POST"],
    [":path", "/gitaly.SmartHTTPService/PostUploadPackWithSidechannel"],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ["grpc-timeout", "1S"],
    ["grpc-accept-encoding", "gzip"],
    ["user-agent", "grpc-go/1.80.0"],
    ["gitaly-sidechannel-id", "0"],
    ["trace-bin", "AQID,BA"],
    ["bad-bin", "!!"],
    ["x-latin1", "caf\u00e9"],
    ["Bad Name", "x"],
    ["gitaly-sidechannel-id", "3"],
  ]);
  assert.deepEqual(metadata, [
    ["user-agent", "grpc-go/1.80.0"],
    ["gitaly-sidechannel-id", "0"],
    ["trace-bin", new Uint8Array([1, 2, 3])],
    ["trace-bin", new Uint8Array([4])],
    ["gitaly-sidechannel-id", "3"],
  ]);
  assert.deepEqual(metadataValues(metadata, "gitaly-sidechannel-id"), ["0", "3"]);
  assert.deepEqual(metadataValues(metadata, "missing"), []);
});

Deno.test("decodeMetadata() output can be echoed with encodeMetadata()", () => {
  const received = decodeMetadata([["user-agent", "x"], ["k", "v"], ["b-bin", "AQ"], ["grpc-status", "0"]]);
  assert.deepEqual(encodeMetadata(received), [["k", "v"], ["b-bin", "AQ"]]);
});
