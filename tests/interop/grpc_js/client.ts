/**
 * @grpc/grpc-js (npm) as a client of our server, run under Deno in its own process
 * (grpc-js sits on Deno's node:http2, see the design notes on its crash risk):
 *
 *     deno run -A tests/interop/grpc_js/client.ts <port> [bytes]
 *
 * Runs raw-codec cases (identity serializers) against `raw.Raw` and protobuf cases
 * against `grpc.testing.TestService`, prints one JSON line, exits 0 iff all passed.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { SimpleRequestSchema, SimpleResponseSchema } from "../gen/grpc/testing/messages_pb.ts";

const port = Number(Deno.args[0]);
const bytes = Number(Deno.args[1] ?? 1 << 20);
const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
  "grpc.max_receive_message_length": -1,
  "grpc.max_send_message_length": -1,
});

const id = (b: Buffer): Buffer => b;
const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
const sha = (chunks: Uint8Array[]): string => {
  const h = createHash("sha256");
  for (const c of chunks) h.update(c);
  return h.digest("hex");
};

function fail(message: string): never {
  throw new Error(message);
}

function statusOf(error: unknown): number {
  return (error as grpc.ServiceError).code;
}

function unary(
  path: string,
  request: Uint8Array,
  options: grpc.CallOptions = {},
  metadata = new grpc.Metadata(),
) {
  type Result = { response: Buffer; header: grpc.Metadata; trailer: grpc.Metadata };
  return new Promise<Result>((resolve, reject) => {
    let header = new grpc.Metadata();
    let response: Buffer | undefined;
    // grpc-js calls back before it emits "status": settle on "status", with the trailers.
    const call = client.makeUnaryRequest(path, id, id, buf(request), metadata, options, (error, value) => {
      if (error) reject(error);
      else response = value;
    });
    call.on("metadata", (m) => header = m);
    call.on("status", (s) => {
      if (response !== undefined) resolve({ response, header, trailer: s.metadata });
    });
  });
}

function collect(stream: grpc.ClientReadableStream<Buffer> | grpc.ClientDuplexStream<Buffer, Buffer>) {
  return new Promise<Buffer[]>((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", reject);
    stream.on("end", () => resolve(chunks));
  });
}

const cases: Record<string, () => Promise<Record<string, unknown>>> = {
  async "raw-echo"() {
    const data = new Uint8Array(bytes).map((_, i) => (i * 31) & 0xff);
    const md = new grpc.Metadata();
    md.set("x-grpc-test-echo-initial", "test_initial_metadata_value");
    md.set("x-grpc-test-echo-trailing-bin", Buffer.from([0x0a, 0x0b, 0x0a, 0x0b, 0x0a, 0x0b]));
    const { response, header, trailer } = await unary("/raw.Raw/Echo", data, {}, md);
    if (sha([response]) !== sha([data])) fail("echo differs");
    if (header.get("x-grpc-test-echo-initial")[0] !== "test_initial_metadata_value") {
      fail("no initial metadata echo");
    }
    const t = trailer.get("x-grpc-test-echo-trailing-bin")[0] as Buffer;
    if (!Buffer.isBuffer(t) || !t.equals(Buffer.from([0x0a, 0x0b, 0x0a, 0x0b, 0x0a, 0x0b]))) {
      fail("no trailing metadata echo");
    }
    return { bytes: response.length };
  },
  async "raw-pull"() {
    const req = new Uint8Array(8);
    new DataView(req.buffer).setBigUint64(0, BigInt(bytes));
    const start = performance.now();
    const chunks = await collect(client.makeServerStreamRequest("/raw.Raw/Pull", id, id, buf(req)));
    const total = chunks.reduce((n, c) => n + c.length, 0);
    if (total !== bytes) fail(`pulled ${total} bytes, want ${bytes}`);
    return { bytes: total, messages: chunks.length, sha256: sha(chunks), ms: performance.now() - start };
  },
  async "raw-push"() {
    const chunks = Array.from(
      { length: Math.ceil(bytes / 65536) },
      (_, i) => new Uint8Array(Math.min(65536, bytes - i * 65536)).fill(i & 0xff),
    );
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const call = client.makeClientStreamRequest("/raw.Raw/Push", id, id, (error, response) => {
        if (error) reject(error);
        else resolve(response!);
      });
      for (const c of chunks) call.write(buf(c));
      call.end();
    });
    const total = Number(reply.readBigUInt64BE(0));
    if (total !== bytes) fail(`server got ${total} bytes`);
    if (reply.subarray(8).toString("hex") !== sha(chunks)) fail("server's sha256 differs");
    return { bytes: total };
  },
  async "raw-bidi"() {
    const call = client.makeBidiStreamRequest("/raw.Raw/Bidi", id, id);
    const got = collect(call);
    const sent: Uint8Array[] = [];
    for (let i = 0; i < bytes; i += 65536) {
      const c = new Uint8Array(Math.min(65536, bytes - i)).fill((i >> 16) & 0xff);
      sent.push(c);
      if (!call.write(buf(c))) await new Promise((r) => call.once("drain", r));
    }
    call.end();
    const chunks = await got;
    if (sha(chunks) !== sha(sent)) fail("bidi echo differs");
    return { messages: chunks.length };
  },
  async deadline() {
    const call = client.makeBidiStreamRequest("/raw.Raw/Bidi", id, id, new grpc.Metadata(), {
      deadline: Date.now() + 200,
    });
    const got = collect(call);
    call.write(buf(new Uint8Array([1])));
    const error = await got.then(() => fail("no deadline"), (e) => e);
    if (statusOf(error) !== grpc.status.DEADLINE_EXCEEDED) fail(`status ${statusOf(error)}`);
    return {};
  },
  async cancel() {
    const call = client.makeBidiStreamRequest("/raw.Raw/Bidi", id, id);
    const echoed = new Promise((r) => call.once("data", r));
    const ended = collect(call).then(() => fail("not cancelled"), (e) => e);
    call.write(buf(new Uint8Array([1])));
    await echoed;
    call.cancel();
    if (statusOf(await ended) !== grpc.status.CANCELLED) fail("not CANCELLED");
    return {};
  },
  async "status-message"() {
    const message = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \u{1f608}\t\n";
    const request = toBinary(
      SimpleRequestSchema,
      create(SimpleRequestSchema, { responseStatus: { code: 2, message } }),
    );
    const error = await unary("/grpc.testing.TestService/UnaryCall", request).then(
      () => fail("no error"),
      (e) => e,
    );
    if (statusOf(error) !== grpc.status.UNKNOWN) fail(`status ${statusOf(error)}`);
    if ((error as grpc.ServiceError).details !== message) {
      fail(`message ${JSON.stringify((error as grpc.ServiceError).details)}`);
    }
    return {};
  },
  async "large-unary-proto"() {
    const request = toBinary(
      SimpleRequestSchema,
      create(SimpleRequestSchema, { responseSize: 314159, payload: { body: new Uint8Array(271828) } }),
    );
    const { response } = await unary("/grpc.testing.TestService/UnaryCall", request);
    const decoded = fromBinary(SimpleResponseSchema, response);
    if (decoded.payload?.body.length !== 314159) fail("wrong payload size");
    return {};
  },
  async unimplemented() {
    const error = await unary("/grpc.testing.TestService/UnimplementedCall", new Uint8Array(0))
      .then(() => fail("no error"), (e) => e);
    if (statusOf(error) !== grpc.status.UNIMPLEMENTED) fail(`status ${statusOf(error)}`);
    return {};
  },
};

const results: Record<string, unknown>[] = [];
for (const [name, run] of Object.entries(cases)) {
  const start = performance.now();
  try {
    results.push({ testCase: name, ok: true, ...(await run()), ms: performance.now() - start });
  } catch (error) {
    results.push({ testCase: name, ok: false, error: String(error), ms: performance.now() - start });
  }
}
client.close();
const failed = results.filter((r) => !r.ok).map((r) => r.testCase);
const line = JSON.stringify({
  ok: failed.length === 0,
  cases: results,
  ...(failed.length ? { error: `failed: ${failed.join(", ")}` } : {}),
});
Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
Deno.exit(failed.length === 0 ? 0 : 1);
