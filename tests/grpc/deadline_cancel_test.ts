/**
 * Deadlines (grpc-timeout → AbortSignal on both sides) and cancellation
 * (AbortSignal → RST_STREAM(CANCEL) → the server's call.signal).
 */

import assert from "node:assert/strict";
import {
  duplexPair,
  encodeEnvelope,
  GrpcServer,
  Http2Connection,
  Http2Error,
  type Http2Stream,
  serveGrpcConnection,
  Status,
} from "../../mod.ts";
import { concat, withTimeout } from "../_util.ts";
import { grpcError, grpcPair, grpcTransports, RAW, type RawLog, rawServer, u64, until } from "./_setup.ts";

function newLog(): RawLog {
  return { signals: [], peers: [], aborted: [] };
}

Deno.test("GrpcClient timeout: the call fails with DEADLINE_EXCEEDED and the server's signal aborts", async () => {
  const log = newLog();
  const pair = await grpcPair(grpcTransports[1]!, rawServer({}, log));
  try {
    const error = await grpcError(pair.client.unary(RAW.hang, new Uint8Array(1), { timeout: 30 }));
    assert.equal(error.code, Status.DEADLINE_EXCEEDED);
    await until(() => log.aborted.length === 1, "the server's signal");
    assert.ok(["TimeoutError", "AbortError"].includes((log.aborted[0] as DOMException).name));
  } finally {
    await pair.close();
  }
});

Deno.test("GrpcServer enforces grpc-timeout itself: DEADLINE_EXCEEDED reaches a client that never cancels", async () => {
  const log = newLog();
  const [a, b] = duplexPair();
  const connection = serveGrpcConnection(b, rawServer({}, log));
  const client = Http2Connection.client(a);
  try {
    const stream = await client.request([
      [":method", "POST"],
      [":scheme", "http"],
      [":authority", "t"],
      [":path", "/raw.Raw/Hang"],
      ["content-type", "application/grpc"],
      ["grpc-timeout", "20m"],
    ]);
    const writer = stream.writable.getWriter();
    await writer.write(concat(encodeEnvelope(new Uint8Array(1))));
    // The handler never answered: Trailers-Only, the status in the response headers.
    const response = await withTimeout(stream.response, 5000, "response");
    assert.equal(response.find(([k]) => k === "grpc-status")?.[1], String(Status.DEADLINE_EXCEEDED));
    assert.equal(await stream.trailers, undefined);
    assert.equal((log.aborted[0] as DOMException).name, "TimeoutError");
    writer.releaseLock();
  } finally {
    await Promise.all([client.close(), connection.close()]);
  }
});

Deno.test("GrpcClient signal abort cancels with RST_STREAM(CANCEL) and fails with CANCELLED", async () => {
  const [a, b] = duplexPair();
  const server = Http2Connection.server(b);
  const accepted = server.accept();
  const { GrpcClient } = await import("../../mod.ts");
  const client = new GrpcClient(a);
  try {
    const controller = new AbortController();
    const call = client.unary(RAW.echo, new Uint8Array(1), { signal: controller.signal });
    const stream: Http2Stream = await accepted;
    stream.respond([[":status", "200"], ["content-type", "application/grpc"]]);
    controller.abort();
    assert.equal((await grpcError(call)).code, Status.CANCELLED);
    // The request may have been complete (END_STREAM) before the reset: the server sees
    // the cancel on its side of the stream, not necessarily on the body it already has.
    await stream.closed;
    const error = await stream.write(new Uint8Array(1)).catch((e) => e);
    assert.ok(error instanceof Http2Error);
    assert.equal(error.code, "CANCEL");
    assert.equal(error.remote, true);
    // An already-aborted signal fails before anything is sent.
    const before = server.stats().streamsOpened;
    assert.equal(
      (await grpcError(client.unary(RAW.echo, new Uint8Array(1), { signal: AbortSignal.abort() }))).code,
      Status.CANCELLED,
    );
    assert.equal(server.stats().streamsOpened, before);
  } finally {
    client.abort();
    server.abort();
    await Promise.all([client.closed, server.closed]);
  }
});

for (const transport of grpcTransports) {
  Deno.test(`Cancelling a server stream mid-way runs the server generator's finally over ${transport.name}`, async () => {
    let finalized = false;
    const server = new GrpcServer()
      .handle(RAW.pull, async function* (_request, call) {
        try {
          for (let i = 0; !call.signal.aborted; i++) yield new Uint8Array(16384);
        } finally {
          finalized = true;
        }
      })
      .handle(RAW.echo, (request) => request);
    const pair = await grpcPair(transport, server);
    try {
      const call = pair.client.serverStream(RAW.pull, u64(0));
      const reader = call.responses.getReader();
      for (let i = 0; i < 10; i++) assert.equal((await reader.read()).value?.byteLength, 16384);
      call.cancel();
      assert.equal((await grpcError(reader.read())).code, Status.CANCELLED);
      assert.equal((await grpcError(call.done)).code, Status.CANCELLED);
      await until(() => finalized, "the generator's finally");
      // The connection still serves.
      assert.equal((await pair.client.unary(RAW.echo, new Uint8Array(3))).byteLength, 3);
    } finally {
      await pair.close();
    }
  });
}

Deno.test("Cancelling the responses stream cancels the call; the server's bidi handler sees AbortError", async () => {
  const log = newLog();
  const pair = await grpcPair(grpcTransports[0]!, rawServer({}, log));
  try {
    const call = pair.client.stream(RAW.bidi);
    const writer = call.requests.getWriter();
    await writer.write(new Uint8Array(1));
    const reader = call.responses.getReader();
    await reader.read();
    await reader.cancel();
    assert.equal((await grpcError(call.done)).code, Status.CANCELLED);
    await until(() => log.signals[0]?.aborted === true, "the server's signal");
    assert.equal((log.signals[0]!.reason as DOMException).name, "AbortError");
    await assert.rejects(writer.write(new Uint8Array(1)));
  } finally {
    await pair.close();
  }
});

Deno.test("A deadline that passes while a call waits for a stream slot fails it with DEADLINE_EXCEEDED", async () => {
  const pair = await grpcPair(grpcTransports[0]!, rawServer(), {}, { maxConcurrentStreams: 1 });
  try {
    const blocker = pair.client.unary(RAW.hang, new Uint8Array(1), { timeout: 300 });
    await pair.client.connection.ping();
    const waiting = await grpcError(pair.client.unary(RAW.echo, new Uint8Array(1), { timeout: 20 }));
    assert.equal(waiting.code, Status.DEADLINE_EXCEEDED);
    assert.equal((await grpcError(blocker)).code, Status.DEADLINE_EXCEEDED);
  } finally {
    await pair.close();
  }
});
