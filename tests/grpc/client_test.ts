/**
 * GrpcClient against hand-written HTTP/2 servers (status mapping, trailers-only, resets)
 * and against GrpcServer (metadata, limits, compression).
 */

import assert from "node:assert/strict";
import {
  duplexPair,
  encodeEnvelope,
  GrpcClient,
  type GrpcClientOptions,
  gzipCompression,
  Http2Connection,
  type Http2ErrorCode,
  type Http2Stream,
  type Metadata,
  Status,
} from "../../mod.ts";
import { concat, pseudoRandomBytes, utf8 } from "../_util.ts";
import { grpcError, grpcPair, grpcTransports, RAW, rawServer, u64 } from "./_setup.ts";

/** A client whose server side runs `handle` on every stream. */
function against(
  handle: (stream: Http2Stream) => void | Promise<void>,
  options: GrpcClientOptions = {},
): { client: GrpcClient; streams: Http2Stream[]; close(): Promise<void> } {
  const [a, b] = duplexPair();
  const server = Http2Connection.server(b);
  const streams: Http2Stream[] = [];
  const loop = (async () => {
    for await (const stream of server) {
      streams.push(stream);
      void Promise.resolve(handle(stream)).catch(() => stream.reset("INTERNAL_ERROR"));
    }
  })();
  const client = new GrpcClient(a, options);
  return {
    client,
    streams,
    async close() {
      client.abort();
      server.abort();
      await Promise.all([client.closed, server.closed, loop]);
    },
  };
}

function message(bytes: Uint8Array): Uint8Array {
  return concat(encodeEnvelope(bytes));
}

async function respondWith(
  stream: Http2Stream,
  headers: [string, string][],
  body?: Uint8Array,
  trailers?: [string, string][],
): Promise<void> {
  stream.respond(headers);
  const writer = stream.writable.getWriter();
  if (body !== undefined) await writer.write(body);
  writer.releaseLock();
  if (trailers !== undefined) await stream.sendTrailers(trailers);
  else await stream.writable.close();
}

const GRPC_OK: [string, string][] = [[":status", "200"], ["content-type", "application/grpc"]];

Deno.test("GrpcClient maps HTTP statuses of non-gRPC responses per the http-to-grpc mapping", async () => {
  const cases: [number, Status][] = [
    [400, Status.INTERNAL],
    [401, Status.UNAUTHENTICATED],
    [403, Status.PERMISSION_DENIED],
    [404, Status.UNIMPLEMENTED],
    [429, Status.UNAVAILABLE],
    [502, Status.UNAVAILABLE],
    [503, Status.UNAVAILABLE],
    [504, Status.UNAVAILABLE],
    [500, Status.UNKNOWN],
  ];
  for (const [http, code] of cases) {
    const peer = against((s) =>
      respondWith(s, [[":status", String(http)], ["content-type", "text/html"]], utf8("<html>"))
    );
    try {
      assert.equal(
        (await grpcError(peer.client.unary(RAW.echo, new Uint8Array(1)))).code,
        code,
        `HTTP ${http}`,
      );
    } finally {
      await peer.close();
    }
  }
});

Deno.test("GrpcClient reports a 200 response that is not gRPC as UNKNOWN", async () => {
  const peer = against((s) =>
    respondWith(s, [[":status", "200"], ["content-type", "text/plain"]], utf8("hi"))
  );
  try {
    assert.equal((await grpcError(peer.client.unary(RAW.echo, new Uint8Array(1)))).code, Status.UNKNOWN);
  } finally {
    await peer.close();
  }
});

Deno.test("GrpcClient reads a Trailers-Only response: status, message, details and metadata from the headers", async () => {
  const peer = against((s) => {
    s.respond([
      ...GRPC_OK,
      ["grpc-status", "5"],
      ["grpc-message", "no %E2%98%83 here"],
      ["grpc-status-details-bin", "CAUSAUE"],
      ["x-why", "because"],
    ], { endStream: true });
  });
  try {
    const error = await grpcError(peer.client.unary(RAW.echo, new Uint8Array(1)));
    assert.equal(error.code, Status.NOT_FOUND);
    assert.equal(error.details, "no \u2603 here");
    assert.deepEqual(error.statusDetailsBin, new Uint8Array([8, 5, 18, 1, 0x41]));
    assert.deepEqual(error.metadata, [["x-why", "because"]]);
    const stream = peer.client.serverStream(RAW.pull, u64(1));
    assert.deepEqual(await stream.header, []);
    assert.equal((await grpcError(stream.done)).code, Status.NOT_FOUND);
    await assert.rejects(Array.fromAsync(stream.responses));
  } finally {
    await peer.close();
  }
});

Deno.test("GrpcClient maps RST_STREAM codes: REFUSED_STREAM → UNAVAILABLE, CANCEL → CANCELLED, others → INTERNAL", async () => {
  const cases: [Http2ErrorCode, Status][] = [
    ["REFUSED_STREAM", Status.UNAVAILABLE],
    ["CANCEL", Status.CANCELLED],
    ["ENHANCE_YOUR_CALM", Status.RESOURCE_EXHAUSTED],
    ["PROTOCOL_ERROR", Status.INTERNAL],
  ];
  for (const [rst, code] of cases) {
    const peer = against((s) => s.reset(rst));
    try {
      assert.equal((await grpcError(peer.client.unary(RAW.echo, new Uint8Array(1)))).code, code, rst);
    } finally {
      await peer.close();
    }
  }
});

Deno.test("GrpcClient fails calls with UNAVAILABLE when the connection is lost", async () => {
  const peer = against(() => {});
  try {
    const call = peer.client.unary(RAW.echo, new Uint8Array(1));
    while (peer.streams.length === 0) await new Promise((r) => setTimeout(r, 1));
    peer.client.connection.abort(new Error("cable cut"));
    assert.equal((await grpcError(call)).code, Status.UNAVAILABLE);
    assert.equal((await grpcError(peer.client.unary(RAW.echo, new Uint8Array(1)))).code, Status.UNAVAILABLE);
  } finally {
    await peer.close();
  }
});

Deno.test("GrpcClient reports missing or malformed grpc-status, and a missing unary response, as INTERNAL", async () => {
  for (
    const handle of [
      (s: Http2Stream) => respondWith(s, GRPC_OK, message(new Uint8Array(1))),
      (s: Http2Stream) => respondWith(s, GRPC_OK, message(new Uint8Array(1)), [["grpc-status", "OK"]]),
      (s: Http2Stream) => respondWith(s, GRPC_OK, undefined, [["grpc-status", "0"]]),
      (s: Http2Stream) =>
        respondWith(s, GRPC_OK, concat([message(new Uint8Array(1)), message(new Uint8Array(1))]), [[
          "grpc-status",
          "0",
        ]]),
      (s: Http2Stream) =>
        respondWith(s, GRPC_OK, message(new Uint8Array(10)).subarray(0, 8), [["grpc-status", "0"]]),
    ]
  ) {
    const peer = against(handle);
    try {
      assert.equal((await grpcError(peer.client.unary(RAW.echo, new Uint8Array(1)))).code, Status.INTERNAL);
    } finally {
      await peer.close();
    }
  }
});

Deno.test("GrpcClient sends the gRPC request headers: method, path, content-type, te, timeout, metadata", async () => {
  let seen: [string, string][] = [];
  const peer = against((s) => {
    seen = s.headers;
    return respondWith(s, GRPC_OK, message(new Uint8Array(0)), [["grpc-status", "0"]]);
  });
  try {
    await peer.client.unary(RAW.echo, new Uint8Array(1), {
      timeout: 60_000,
      metadata: [["x-id", "7"], ["trace-bin", new Uint8Array([1, 2, 3])]],
    });
    const get = (name: string) => seen.find(([k]) => k === name)?.[1];
    assert.equal(get(":method"), "POST");
    assert.equal(get(":path"), "/raw.Raw/Echo");
    assert.equal(get("content-type"), "application/grpc+raw");
    assert.equal(get("te"), "trailers");
    assert.match(get("grpc-timeout")!, /^\d{1,8}[mu]$/);
    assert.equal(get("x-id"), "7");
    assert.equal(get("trace-bin"), "AQID");
    assert.match(get("user-agent")!, /^sidechannel-grpc\//);
  } finally {
    await peer.close();
  }
});

for (const transport of grpcTransports) {
  Deno.test(`GrpcClient sends ASCII and -bin metadata and receives header and trailer metadata over ${transport.name}`, async () => {
    const pair = await grpcPair(transport, rawServer());
    try {
      const binary = new Uint8Array([0x0a, 0x0b, 0x0a, 0x0b, 0x0a, 0x0b, 0x00, 0xff]);
      let header: Metadata | undefined;
      let trailer: Metadata | undefined;
      await pair.client.unary(RAW.echo, new Uint8Array(1), {
        metadata: [["x-grpc-test-echo-initial", "test_initial_metadata_value"], [
          "x-grpc-test-echo-trailing-bin",
          binary,
        ]],
        onHeader: (m) => header = m,
        onTrailer: (m) => trailer = m,
      });
      assert.deepEqual(header, [["x-grpc-test-echo-initial", "test_initial_metadata_value"]]);
      assert.deepEqual(trailer, [["x-grpc-test-echo-trailing-bin", binary]]);
    } finally {
      await pair.close();
    }
  });
}

Deno.test("GrpcClient: onHeader and onTrailer callbacks that throw do not disturb the call", async () => {
  const pair = await grpcPair(grpcTransports[0]!, rawServer());
  try {
    let headerCalls = 0;
    let trailerCalls = 0;
    const reply = await pair.client.unary(RAW.echo, new Uint8Array([7]), {
      onHeader: () => {
        headerCalls++;
        throw new Error("caller's onHeader failed");
      },
      onTrailer: () => {
        trailerCalls++;
        throw new Error("caller's onTrailer failed");
      },
    });
    assert.deepEqual(reply, new Uint8Array([7]));
    assert.equal(headerCalls, 1);
    assert.equal(trailerCalls, 1);
    // The connection still serves further calls.
    assert.deepEqual(await pair.client.unary(RAW.echo, new Uint8Array([8])), new Uint8Array([8]));
  } finally {
    await pair.close();
  }
});

Deno.test("GrpcClient receives the server's status, message, details and metadata (GrpcError)", async () => {
  const pair = await grpcPair(grpcTransports[0]!, rawServer());
  try {
    const error = await grpcError(
      pair.client.unary(RAW.echo, new Uint8Array(1), { metadata: [["x-fail-with", String(Status.ABORTED)]] }),
    );
    assert.equal(error.code, Status.ABORTED);
    assert.equal(error.details, "failed on request: 100% \u2603\n");
    assert.deepEqual(error.statusDetailsBin, new Uint8Array([8, 5, 18, 1, 0x41]));
    assert.deepEqual(error.metadata, [["x-detail", "yes"]]);
  } finally {
    await pair.close();
  }
});

Deno.test("GrpcClient enforces maxReceiveMessageBytes and maxSendMessageBytes with RESOURCE_EXHAUSTED", async () => {
  const pair = await grpcPair(grpcTransports[0]!, rawServer(), {
    maxReceiveMessageBytes: 100,
    maxSendMessageBytes: 1000,
  });
  try {
    assert.equal(
      (await grpcError(pair.client.unary(RAW.echo, new Uint8Array(101)))).code,
      Status.RESOURCE_EXHAUSTED,
    );
    assert.equal(
      (await grpcError(pair.client.unary(RAW.echo, new Uint8Array(1001)))).code,
      Status.RESOURCE_EXHAUSTED,
    );
    assert.equal((await pair.client.unary(RAW.echo, new Uint8Array(100))).byteLength, 100);
    const pull = pair.client.serverStream(RAW.pull, concat([u64(1000), new Uint8Array([0, 0, 0, 200])]));
    assert.equal((await grpcError(Array.fromAsync(pull.responses))).code, Status.RESOURCE_EXHAUSTED);
    assert.equal((await grpcError(pull.done)).code, Status.RESOURCE_EXHAUSTED);
  } finally {
    await pair.close();
  }
});

Deno.test("GrpcClient and GrpcServer compress with gzip both ways when both sides agree", async () => {
  const server = rawServer({ sendCompression: gzipCompression });
  const pair = await grpcPair(grpcTransports[0]!, server, { sendCompression: gzipCompression });
  try {
    const data = new Uint8Array(200_000).fill(7);
    const pull = pair.client.stream(RAW.bidi);
    const writer = pull.requests.getWriter();
    await writer.write(data);
    await writer.close();
    const [echoed] = await Array.fromAsync(pull.responses);
    assert.deepEqual(echoed, data);
    assert.ok(pull.call.stats.bytesSent < 10_000, `sent ${pull.call.stats.bytesSent} bytes`);
    assert.ok(pull.call.stats.bytesReceived < 10_000, `received ${pull.call.stats.bytesReceived} bytes`);
    // A client that does not accept gzip gets identity responses.
    const plain = await grpcPair(grpcTransports[0]!, server, { acceptCompression: [] });
    try {
      const bytes = pseudoRandomBytes(5000, 3);
      assert.deepEqual(await plain.client.unary(RAW.echo, bytes), bytes);
    } finally {
      await plain.close();
    }
  } finally {
    await pair.close();
  }
});
