/**
 * `_rawResponseBytes`: the raw responses of a streaming call as one byte stream (BYOB
 * reads straight out of the HTTP/2 stream), and `_MessageReader.readInto` under it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { GrpcError, gzipCompression, Status } from "../../mod.ts";
import { _rawResponseBytes } from "../../src/grpc/client.ts";
import { grpcPair, grpcTransports, RAW, rawServer } from "./_setup.ts";

/** Echoes `messages` over Bidi and reads the replies back through `_rawResponseBytes` with `size`-byte BYOB reads. */
async function echoBytes(
  messages: Uint8Array[],
  size: number,
  compress = false,
): Promise<{ bytes: Uint8Array; reads: number }> {
  const server = rawServer(compress ? { sendCompression: gzipCompression } : {});
  const pair = await grpcPair(grpcTransports[0]!, server, {});
  try {
    const call = pair.client.stream(RAW.bidi);
    const body = _rawResponseBytes(call);
    const writer = call.requests.getWriter();
    const sending = (async () => {
      for (const m of messages) await writer.write(m);
      await writer.close();
    })();
    const reader = body.getReader({ mode: "byob" });
    const parts: Uint8Array[] = [];
    let reads = 0;
    for (;;) {
      const { value, done } = await reader.read(new Uint8Array(size));
      if (done) break;
      reads++;
      assert.ok(value.byteLength > 0 && value.byteLength <= size);
      parts.push(value);
    }
    await sending;
    await call.done;
    const bytes = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    parts.reduce((at, p) => (bytes.set(p, at), at + p.byteLength), 0);
    return { bytes, reads };
  } finally {
    await pair.close();
  }
}

function concat(messages: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(messages.reduce((n, m) => n + m.byteLength, 0));
  messages.reduce((at, m) => (out.set(m, at), at + m.byteLength), 0);
  return out;
}

Deno.test("_rawResponseBytes() delivers the messages' bytes in order, into reads smaller or larger than a message", async () => {
  const messages = [
    new Uint8Array(100_000).map((_, i) => i * 7),
    new Uint8Array(0),
    new Uint8Array([1, 2, 3]),
    new Uint8Array(70_000).map((_, i) => i * 13),
  ];
  for (const size of [1, 4096, 1 << 20]) {
    const { bytes, reads } = await echoBytes(messages, size);
    assert.deepEqual(bytes, concat(messages));
    if (size === 1) assert.equal(reads, 170_003);
  }
});

Deno.test("_rawResponseBytes() decompresses compressed messages before copying them out", async () => {
  const messages = [new Uint8Array(200_000).fill(7), new Uint8Array(5000).fill(9)];
  const { bytes } = await echoBytes(messages, 3000, true);
  assert.deepEqual(bytes, concat(messages));
});

Deno.test("_rawResponseBytes() errors with the call's GrpcError (a message over the limit: RESOURCE_EXHAUSTED)", async () => {
  const pair = await grpcPair(grpcTransports[0]!, rawServer(), { maxReceiveMessageBytes: 1000 });
  try {
    const call = pair.client.stream(RAW.bidi);
    const body = _rawResponseBytes(call);
    const writer = call.requests.getWriter();
    await writer.write(new Uint8Array(2000));
    await writer.close().catch(() => {});
    const error = await body.getReader({ mode: "byob" }).read(new Uint8Array(10)).then(
      () => assert.fail("no error"),
      (e) => e,
    );
    assert.ok(error instanceof GrpcError);
    assert.equal(error.code, Status.RESOURCE_EXHAUSTED);
    await call.done.catch(() => {});
  } finally {
    await pair.close();
  }
});

Deno.test("_rawResponseBytes() rejects calls whose responses are not raw, and locks responses", async () => {
  const pair = await grpcPair(grpcTransports[0]!, rawServer(), {});
  try {
    const call = pair.client.stream(RAW.bidi);
    _rawResponseBytes(call);
    assert.throws(() => call.responses.getReader(), TypeError);
    call.cancel();
    await call.done.catch(() => {});
  } finally {
    await pair.close();
  }
});
