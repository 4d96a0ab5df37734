/**
 * What GrpcServer answers to bad input, checked on the wire with a raw HTTP/2 client.
 */

import assert from "node:assert/strict";
import {
  duplexPair,
  encodeEnvelope,
  GrpcServer,
  type GrpcServerOptions,
  Http2Connection,
  type Http2Headers,
  protobufMethods,
  serveGrpcConnection,
  Status,
} from "../../mod.ts";
import { TestService } from "../interop/gen/grpc/testing/test_pb.ts";
import { concat, readAll, withTimeout } from "../_util.ts";
import { RAW, rawServer, u64 } from "./_setup.ts";

const REQUEST: [string, string][] = [
  [":method", "POST"],
  [":scheme", "http"],
  [":authority", "test"],
  [":path", "/raw.Raw/Echo"],
  ["content-type", "application/grpc+raw"],
  ["te", "trailers"],
];

function withHeaders(changes: Record<string, string | undefined>): [string, string][] {
  const out = REQUEST.filter(([name]) => !(name in changes));
  for (const [name, value] of Object.entries(changes)) if (value !== undefined) out.push([name, value]);
  return out;
}

function field(headers: Http2Headers | undefined, name: string): string | undefined {
  return headers?.find(([k]) => k === name)?.[1];
}

interface RawResult {
  status: string | undefined;
  grpcStatus: number;
  message: string | undefined;
  body: Uint8Array;
  headers: Http2Headers;
  trailers: Http2Headers | undefined;
  /** Where the status came from: the headers of a Trailers-Only response, or the trailers. */
  statusFields: Http2Headers | undefined;
}

/** Sends `body` (then END_STREAM) on one request and collects the answer. */
async function exchange(
  server: GrpcServer,
  headers: [string, string][],
  body: Uint8Array[],
  options: { end?: boolean; endWithHeaders?: boolean } = {},
): Promise<RawResult> {
  const [a, b] = duplexPair();
  const connection = serveGrpcConnection(b, server);
  const client = Http2Connection.client(a);
  try {
    const stream = await client.request(headers, { endStream: options.endWithHeaders ?? false });
    if (!options.endWithHeaders) {
      const writer = stream.writable.getWriter();
      for (const part of body) await writer.write(part);
      if (options.end ?? true) await writer.close().catch(() => {});
      else writer.releaseLock();
    }
    const response = await withTimeout(stream.response, 5000, "response headers");
    const data = await readAll(stream.readable).catch(() => new Uint8Array(0));
    const trailers = await stream.trailers.catch(() => undefined);
    const statusFields = field(response, "grpc-status") !== undefined ? response : trailers;
    return {
      status: field(response, ":status"),
      grpcStatus: Number(field(statusFields, "grpc-status")),
      message: field(statusFields, "grpc-message"),
      body: data,
      headers: response,
      trailers,
      statusFields,
    };
  } finally {
    await Promise.all([client.close(), connection.close()]);
  }
}

function frame(payload: Uint8Array, flag = 0): Uint8Array {
  const [header] = encodeEnvelope(payload);
  header[0] = flag;
  return concat([header, payload]);
}

Deno.test("GrpcServer answers an unknown method and an unknown service with UNIMPLEMENTED", async () => {
  const server = rawServer();
  const method = await exchange(server, withHeaders({ ":path": "/raw.Raw/Nope" }), [
    frame(new Uint8Array(0)),
  ]);
  assert.equal(method.status, "200");
  assert.equal(method.grpcStatus, Status.UNIMPLEMENTED);
  assert.equal(method.message, "unknown method Nope for service raw.Raw");
  const service = await exchange(server, withHeaders({ ":path": "/no.Such/Thing" }), [
    frame(new Uint8Array(0)),
  ]);
  assert.equal(service.grpcStatus, Status.UNIMPLEMENTED);
  assert.equal(service.message, "unknown service no.Such");
  const malformed = await exchange(server, withHeaders({ ":path": "/justone" }), []);
  assert.equal(malformed.grpcStatus, Status.UNIMPLEMENTED);
});

Deno.test("GrpcServer answers a bad envelope flag, a stray compressed flag and a truncated envelope with INTERNAL", async () => {
  const server = rawServer();
  const flag = await exchange(server, REQUEST, [frame(new Uint8Array([1, 2]), 7)]);
  assert.equal(flag.grpcStatus, Status.INTERNAL);
  assert.match(flag.message!, /flag/);
  const compressed = await exchange(server, REQUEST, [frame(new Uint8Array([1, 2]), 1)]);
  assert.equal(compressed.grpcStatus, Status.INTERNAL);
  const truncated = await exchange(server, REQUEST, [frame(new Uint8Array(100)).subarray(0, 50)]);
  assert.equal(truncated.grpcStatus, Status.INTERNAL);
  const header = await exchange(server, REQUEST, [new Uint8Array([0, 0])]);
  assert.equal(header.grpcStatus, Status.INTERNAL);
  const none = await exchange(server, REQUEST, []);
  assert.equal(none.grpcStatus, Status.INTERNAL);
});

Deno.test("GrpcServer rejects a message over maxReceiveMessageBytes from its header alone (RESOURCE_EXHAUSTED)", async () => {
  const server = rawServer({ maxReceiveMessageBytes: 1000 });
  const header = new Uint8Array([0, 0x7f, 0xff, 0xff, 0xff]); // declares 2 GiB, sends none of it
  const result = await exchange(server, REQUEST, [header], { end: false });
  assert.equal(result.grpcStatus, Status.RESOURCE_EXHAUSTED);
  const ok = await exchange(server, REQUEST, [frame(new Uint8Array(1000))]);
  assert.equal(ok.grpcStatus, Status.OK);
  assert.equal(ok.body.byteLength, 1005);
});

Deno.test("GrpcServer answers a protobuf request it cannot decode with INTERNAL", async () => {
  const test = protobufMethods(TestService);
  const server = new GrpcServer().handle(test.unaryCall, () => {
    throw new Error("not reached");
  });
  const result = await exchange(
    server,
    withHeaders({ ":path": test.unaryCall.path, "content-type": "application/grpc" }),
    [frame(new Uint8Array([0x1a, 0x05, 0x01]))],
  );
  assert.equal(result.grpcStatus, Status.INTERNAL);
});

Deno.test("GrpcServer answers an unsupported grpc-encoding with UNIMPLEMENTED and lists what it accepts", async () => {
  const result = await exchange(rawServer(), withHeaders({ "grpc-encoding": "snappy" }), [
    frame(new Uint8Array(1)),
  ]);
  assert.equal(result.grpcStatus, Status.UNIMPLEMENTED);
  assert.equal(field(result.headers, "grpc-accept-encoding"), "identity,gzip");
});

Deno.test("GrpcServer answers a malformed grpc-timeout with INTERNAL", async () => {
  const result = await exchange(rawServer(), withHeaders({ "grpc-timeout": "1x" }), [
    frame(new Uint8Array(1)),
  ]);
  assert.equal(result.grpcStatus, Status.INTERNAL);
});

Deno.test("GrpcServer answers non-POST with 405 and non-gRPC content without a fallback with 415", async () => {
  const get = await exchange(rawServer(), withHeaders({ ":method": "GET" }), []);
  assert.equal(get.status, "405");
  assert.equal(get.grpcStatus, Status.INTERNAL);
  const html = await exchange(rawServer(), withHeaders({ "content-type": "text/html" }), []);
  assert.equal(html.status, "415");
  assert.equal(html.grpcStatus, Status.INTERNAL);
  assert.equal(field(html.headers, "content-type"), "application/grpc");
  const missing = await exchange(rawServer(), withHeaders({ "content-type": undefined }), []);
  assert.equal(missing.status, "415");
});

Deno.test("GrpcServer maps a handler's plain Error to UNKNOWN and reports it to onError", async () => {
  const errors: unknown[] = [];
  const options: GrpcServerOptions = { onError: (e) => errors.push(e) };
  const server = new GrpcServer(options).handle(RAW.echo, () => {
    throw new RangeError("boom");
  });
  const result = await exchange(server, REQUEST, [frame(new Uint8Array(1))]);
  assert.equal(result.grpcStatus, Status.UNKNOWN);
  assert.equal(result.message, "boom");
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof RangeError);
});

Deno.test("GrpcServer sends a percent-encoded grpc-message, status details and error metadata in trailers", async () => {
  const result = await exchange(
    rawServer(),
    withHeaders({ "x-fail-with": String(Status.FAILED_PRECONDITION) }),
    [frame(new Uint8Array(1))],
  );
  assert.equal(result.grpcStatus, Status.FAILED_PRECONDITION);
  assert.equal(result.message, "failed on request: 100%25 %E2%98%83%0A");
  assert.equal(field(result.statusFields, "grpc-status-details-bin"), "CAUSAUE");
  assert.equal(field(result.statusFields, "x-detail"), "yes");
});

Deno.test("GrpcServer answers with the content-type of the request (bare application/grpc for ForceCodec clients)", async () => {
  const result = await exchange(rawServer(), withHeaders({ "content-type": "application/grpc" }), [
    frame(u64(5)),
  ]);
  assert.equal(field(result.headers, "content-type"), "application/grpc");
  assert.equal(result.grpcStatus, Status.OK);
  assert.equal(result.body.byteLength, 13);
});

Deno.test("GrpcServer answers an early error Trailers-Only, also while the client still sends", async () => {
  const server = rawServer();
  const headers = withHeaders({ ":path": "/raw.Raw/Nope" });
  const closed = await exchange(server, headers, [], { endWithHeaders: true });
  assert.equal(field(closed.headers, "grpc-status"), String(Status.UNIMPLEMENTED));
  assert.equal(closed.trailers, undefined);
  // The client has not half-closed: the Trailers-Only HEADERS still arrive, followed by
  // RST_STREAM(NO_ERROR) (RFC 9113 §8.1).
  const open = await exchange(server, headers, [frame(new Uint8Array(1))], { end: false });
  assert.equal(field(open.headers, "grpc-status"), String(Status.UNIMPLEMENTED));
  assert.equal(open.trailers, undefined);
});

Deno.test("GrpcServer answers a handler result its codec cannot encode with INTERNAL", async () => {
  const server = new GrpcServer().handle(RAW.echo, () => "not bytes" as unknown as Uint8Array);
  const result = await exchange(server, REQUEST, [frame(new Uint8Array(1))]);
  assert.equal(result.grpcStatus, Status.INTERNAL);
});
