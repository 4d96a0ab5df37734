import assert from "node:assert/strict";
import { GrpcError, isStatus, Status, statusFromHttp, statusFromHttp2Error, statusName } from "../../mod.ts";

Deno.test("Status pins the 17 gRPC codes", () => {
  assert.deepEqual(Status, {
    OK: 0,
    CANCELLED: 1,
    UNKNOWN: 2,
    INVALID_ARGUMENT: 3,
    DEADLINE_EXCEEDED: 4,
    NOT_FOUND: 5,
    ALREADY_EXISTS: 6,
    PERMISSION_DENIED: 7,
    RESOURCE_EXHAUSTED: 8,
    FAILED_PRECONDITION: 9,
    ABORTED: 10,
    OUT_OF_RANGE: 11,
    UNIMPLEMENTED: 12,
    INTERNAL: 13,
    UNAVAILABLE: 14,
    DATA_LOSS: 15,
    UNAUTHENTICATED: 16,
  });
});

Deno.test("statusName() and isStatus() cover 0-16 only", () => {
  for (const [name, code] of Object.entries(Status)) {
    assert.equal(statusName(code), name);
    assert.equal(isStatus(code), true);
  }
  assert.equal(statusName(17), "CODE_17");
  assert.equal(statusName(-1), "CODE_-1");
  for (const bad of [17, -1, 1.5, "1", null, undefined]) assert.equal(isStatus(bad), false);
});

Deno.test("GrpcError carries code, details, metadata, status details and cause", () => {
  const cause = new Error("root");
  const details = new Uint8Array([8, 5]);
  const error = new GrpcError(Status.FAILED_PRECONDITION, "running upload-pack: exit status 128", {
    metadata: [["x", "y"]],
    statusDetailsBin: details,
    cause,
  });
  assert.ok(error instanceof Error);
  assert.equal(error.name, "GrpcError");
  assert.equal(error.code, 9);
  assert.equal(error.details, "running upload-pack: exit status 128");
  assert.equal(error.message, "9 FAILED_PRECONDITION: running upload-pack: exit status 128");
  assert.deepEqual(error.metadata, [["x", "y"]]);
  assert.equal(error.statusDetailsBin, details);
  assert.equal(error.cause, cause);
});

Deno.test("GrpcError defaults: empty details and metadata, no status details", () => {
  const error = new GrpcError(Status.UNAVAILABLE);
  assert.equal(error.message, "14 UNAVAILABLE");
  assert.equal(error.details, "");
  assert.deepEqual(error.metadata, []);
  assert.equal("statusDetailsBin" in error, false);
  assert.equal(error.cause, undefined);
});

Deno.test("new GrpcError() rejects OK and unknown codes with RangeError", () => {
  assert.throws(() => new GrpcError(Status.OK), RangeError);
  assert.throws(() => new GrpcError(17 as Status), RangeError);
});

Deno.test("GrpcError.from() maps abort, timeout, passthrough and fallback", () => {
  const original = new GrpcError(Status.NOT_FOUND, "x");
  assert.equal(GrpcError.from(original), original);
  assert.equal(GrpcError.from(original, Status.INTERNAL), original);

  const controller = new AbortController();
  controller.abort();
  const aborted = GrpcError.from(controller.signal.reason);
  assert.equal(aborted.code, Status.CANCELLED);
  assert.equal(aborted.cause, controller.signal.reason);

  const timeout = GrpcError.from(new DOMException("signal timed out", "TimeoutError"));
  assert.equal(timeout.code, Status.DEADLINE_EXCEEDED);
  assert.equal(timeout.details, "signal timed out");

  const plain = GrpcError.from(new TypeError("bad"), Status.INTERNAL);
  assert.equal(plain.code, Status.INTERNAL);
  assert.equal(plain.details, "bad");
  assert.equal(GrpcError.from(new Error("e")).code, Status.UNKNOWN);
  assert.equal(GrpcError.from(42).details, "42");
  assert.equal(GrpcError.from("x", Status.OK).code, Status.UNKNOWN);
});

Deno.test("GrpcError.from() maps an AbortSignal.timeout() reason to DEADLINE_EXCEEDED", async () => {
  const signal = AbortSignal.timeout(1);
  await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
  assert.equal(GrpcError.from(signal.reason).code, Status.DEADLINE_EXCEEDED);
});

Deno.test("statusFromHttp() follows http-grpc-status-mapping.md", () => {
  const table: [number, Status][] = [
    [400, Status.INTERNAL],
    [401, Status.UNAUTHENTICATED],
    [403, Status.PERMISSION_DENIED],
    [404, Status.UNIMPLEMENTED],
    [429, Status.UNAVAILABLE],
    [431, Status.INTERNAL],
    [502, Status.UNAVAILABLE],
    [503, Status.UNAVAILABLE],
    [504, Status.UNAVAILABLE],
    [200, Status.UNKNOWN],
    [415, Status.UNKNOWN],
    [500, Status.UNKNOWN],
  ];
  for (const [http, grpc] of table) assert.equal(statusFromHttp(http), grpc, `HTTP ${http}`);
});

Deno.test("statusFromHttp2Error() follows PROTOCOL-HTTP2.md's RST_STREAM table", () => {
  const table: [number, Status][] = [
    [0x0, Status.INTERNAL], // NO_ERROR
    [0x1, Status.INTERNAL], // PROTOCOL_ERROR
    [0x2, Status.INTERNAL], // INTERNAL_ERROR
    [0x3, Status.INTERNAL], // FLOW_CONTROL_ERROR
    [0x4, Status.INTERNAL], // SETTINGS_TIMEOUT
    [0x6, Status.INTERNAL], // FRAME_SIZE_ERROR
    [0x7, Status.UNAVAILABLE], // REFUSED_STREAM
    [0x8, Status.CANCELLED], // CANCEL
    [0x9, Status.INTERNAL], // COMPRESSION_ERROR
    [0xa, Status.INTERNAL], // CONNECT_ERROR
    [0xb, Status.RESOURCE_EXHAUSTED], // ENHANCE_YOUR_CALM
    [0xc, Status.PERMISSION_DENIED], // INADEQUATE_SECURITY
  ];
  for (const [h2, grpc] of table) assert.equal(statusFromHttp2Error(h2), grpc, `error code ${h2}`);
});
