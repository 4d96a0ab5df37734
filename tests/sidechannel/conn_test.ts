import assert from "node:assert/strict";
import {
  type DuplexConn,
  duplexPair,
  frameSidechannelChunks,
  SidechannelClientConn,
  SidechannelError,
  SidechannelServerConn,
} from "../../mod.ts";
import { concat, pseudoRandomBytes, readAll, text, utf8 } from "../_util.ts";

type Feed = "direct" | "bytes-1" | "default-2" | "default-whole";

/** A read-only duplex over fixed input, in one of several shapes and chunkings. */
function inputConn(input: Uint8Array, feed: Feed): DuplexConn {
  if (feed === "direct") {
    const [a, b] = duplexPair({ highWaterMark: input.byteLength + 1 });
    void a.write(input).then(() => a.closeWrite());
    return b;
  }
  // Tiny chunks for small inputs; odd-sized ones for the multi-megabyte cases.
  const small = input.byteLength < 200_000;
  const size = feed === "default-whole"
    ? Math.max(1, input.byteLength)
    : !small
    ? 4093
    : feed === "bytes-1"
    ? 1
    : 2;
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < input.byteLength; i += size) chunks.push(input.slice(i, i + size));
  let readable: ReadableStream<Uint8Array>;
  if (feed === "bytes-1") {
    let i = 0;
    readable = new ReadableStream({
      type: "bytes",
      pull(controller) {
        const chunk = chunks[i++];
        if (chunk === undefined) {
          controller.close();
          controller.byobRequest?.respond(0);
        } else {
          controller.enqueue(chunk);
        }
      },
    });
  } else {
    readable = ReadableStream.from(chunks);
  }
  return {
    readable,
    writable: new WritableStream(),
    closed: Promise.resolve(),
    close: () => readable.cancel(),
    reset: () => void readable.cancel().catch(() => {}),
  };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

const FEEDS: Feed[] = ["direct", "bytes-1", "default-2", "default-whole"];

async function serverRead(input: Uint8Array | string, feed: Feed): Promise<Uint8Array> {
  const bytes = typeof input === "string" ? utf8(input) : input;
  const conn = new SidechannelServerConn(inputConn(bytes, feed));
  return await readAll(conn.readable);
}

async function captureClientWrites(write: (conn: SidechannelClientConn) => Promise<void>): Promise<string> {
  const [a, b] = duplexPair();
  const conn = new SidechannelClientConn(a);
  const captured = readAll(b.readable);
  await write(conn);
  await a.close();
  return text(await captured);
}

Deno.test("SidechannelClientConn.write() frames like Gitaly's TestClientWrite", async () => {
  const cases: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["h", utf8("h")],
    ["hello", utf8("hello")],
    ["16 chars", utf8("hello this world")],
    ["8192 bytes (coalesced)", new Uint8Array(8192).fill(0x63)],
    ["8193 bytes (header + data)", new Uint8Array(8193).fill(0x63)],
    ["65516 bytes", new Uint8Array(65516).fill(0x61)],
    ["65517 bytes", new Uint8Array(65517).fill(0x61).fill(0x62, 65516)],
    ["3 MiB", pseudoRandomBytes(3 << 20, 7)],
  ];
  for (const [name, input] of cases) {
    let written = -1;
    const wire = await captureClientWrites(async (conn) => {
      written = await conn.write(input);
    });
    assert.equal(written, input.byteLength, name);
    assert.equal(wire, text(frameSidechannelChunks(input)), name);
  }
  assert.equal(await captureClientWrites(async (c) => void await c.write(utf8("h"))), "0005h");
  const boundary = await captureClientWrites(async (c) =>
    void await c.write(new Uint8Array(65517).fill(0x62))
  );
  assert.equal(boundary.slice(0, 4), "fff0");
  assert.equal(boundary.slice(65520), "0005b");
});

Deno.test("SidechannelClientConn: writable frames each chunk and close() of it sends 0000", async () => {
  const wire = await captureClientWrites(async (conn) => {
    const writer = conn.writable.getWriter();
    await writer.write(utf8("Hello"));
    await writer.write(new Uint8Array(0));
    await writer.write(utf8("!"));
    await writer.close();
  });
  assert.equal(wire, "0009Hello0005!0000");
});

Deno.test("SidechannelClientConn: concurrent writes do not interleave packets", async () => {
  const wire = await captureClientWrites(async (conn) => {
    await Promise.all([
      conn.write(new Uint8Array(20000).fill(0x61)),
      conn.write(utf8("xy")),
      conn.write(new Uint8Array(9000).fill(0x62)),
    ]);
    await conn.closeWrite();
  });
  const expected = text(frameSidechannelChunks(new Uint8Array(20000).fill(0x61))) + "0006xy" +
    text(frameSidechannelChunks(new Uint8Array(9000).fill(0x62))) + "0000";
  assert.equal(wire, expected);
});

Deno.test("SidechannelClientConn.closeWrite() writes 0000 once; later writes fail with HALF_CLOSED", async () => {
  const wire = await captureClientWrites(async (conn) => {
    await conn.write(utf8("Ping"));
    const first = conn.closeWrite();
    assert.equal(conn.closeWrite(), first);
    await first;
    await conn.closeWrite();
    await assert.rejects(conn.write(utf8("more")), (e: unknown) => {
      assert.ok(e instanceof SidechannelError);
      assert.equal(e.code, "HALF_CLOSED");
      return true;
    });
    const writer = conn.writable.getWriter();
    await assert.rejects(writer.write(utf8("more")), { code: "HALF_CLOSED" });
  });
  assert.equal(wire, "0008Ping0000");
});

Deno.test("SidechannelServerConn reads like Gitaly's TestServerRead", async () => {
  const large = pseudoRandomBytes(65516, 3);
  const veryLarge = pseudoRandomBytes(5 * 1024 * 1024 + 17, 4);
  const ok: [string, Uint8Array | string, Uint8Array | string][] = [
    ["empty", "0000", ""],
    ["empty packet", "00040000", ""],
    ["h", "0005h0000", "h"],
    ["hello", "0009hello0000", "hello"],
    ["three packets", "0009hello0008this0009world0000", "hellothisworld"],
    ["upper-case hex", "000Ahello!0000", "hello!"],
    ["large", concat([frameSidechannelChunks(large), utf8("0000")]), large],
    ["very large", concat([frameSidechannelChunks(veryLarge), utf8("0000")]), veryLarge],
    ["trailing trash is never read", "0009hello0000trashtrash", "hello"],
    ["trash that is not even pkt-lines", "0009hello0000\xff\x01", "hello"],
  ];
  for (const feed of FEEDS) {
    for (const [name, input, expected] of ok) {
      const got = await serverRead(input, feed);
      const want = typeof expected === "string" ? utf8(expected) : expected;
      assert.equal(got.byteLength, want.byteLength, `${name} (${feed})`);
      assert.ok(sameBytes(got, want), `${name} (${feed})`);
    }
  }
});

Deno.test("SidechannelServerConn rejects malformed input with typed errors", async () => {
  const bad: [string, string, string][] = [
    ["invalid header 1", "0001", "INVALID_HEADER"],
    ["invalid header 2", "0009hello0002", "INVALID_HEADER"],
    ["invalid header 3", "0003", "INVALID_HEADER"],
    ["not hex", "zzzz", "INVALID_HEADER"],
    ["negative", "-fff", "INVALID_HEADER"],
    ["sign", "+005h0000", "INVALID_HEADER"],
    ["above 65520", "fff1", "INVALID_HEADER"],
    ["ffff", "ffff", "INVALID_HEADER"],
    ["no 0000 (Gitaly: io.ErrUnexpectedEOF)", "0009hello", "UNEXPECTED_EOF"],
    ["000fhello world without 0000", "000fhello world", "UNEXPECTED_EOF"],
    ["nothing at all", "", "UNEXPECTED_EOF"],
    ["truncated packet", "0009hel", "UNEXPECTED_EOF"],
    ["prefix only", "0005", "UNEXPECTED_EOF"],
    ["incomplete prefix", "0009hello000", "UNEXPECTED_EOF"],
  ];
  for (const feed of FEEDS) {
    for (const [name, input, code] of bad) {
      await assert.rejects(serverRead(input, feed), (e: unknown) => {
        assert.ok(e instanceof SidechannelError, `${name} (${feed}): ${e}`);
        assert.equal(e.code, code, `${name} (${feed})`);
        return true;
      });
    }
  }
});

Deno.test("SidechannelServerConn: data before a bad header is delivered, then the error is sticky", async () => {
  const conn = new SidechannelServerConn(inputConn(utf8("0009hello0002more"), "direct"));
  const buf = new Uint8Array(16);
  assert.equal(await conn.read(buf), 5);
  assert.equal(text(buf.subarray(0, 5)), "hello");
  const first = await conn.read(buf).catch((e) => e);
  assert.equal(first.code, "INVALID_HEADER");
  assert.equal(await conn.read(buf).catch((e) => e), first);
});

Deno.test("SidechannelServerConn.read() reads payload into the caller's buffer in parts", async () => {
  const conn = new SidechannelServerConn(inputConn(utf8("000ehelloworld0000"), "direct"));
  const parts: string[] = [];
  const buf = new Uint8Array(3);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    parts.push(text(buf.subarray(0, n)));
  }
  assert.equal(parts.join(""), "helloworld");
  assert.ok(parts.every((p) => p.length <= 3));
  assert.equal(await conn.read(new Uint8Array(0)), null);
  assert.equal(await conn.read(buf), null);
});

Deno.test("SidechannelServerConn: writes are raw and closeWrite() ends the client's reading", async () => {
  const [a, b] = duplexPair();
  const server = new SidechannelServerConn(b);
  const client = new SidechannelClientConn(a);
  const reply = readAll(client.readable);
  const writer = server.writable.getWriter();
  await writer.write(utf8("0000 is not special here"));
  await writer.close();
  assert.equal(text(await reply), "0000 is not special here");
});

Deno.test("SidechannelClientConn and SidechannelServerConn half-close ping/pong (Gitaly's TestHalfClose)", async () => {
  const [a, b] = duplexPair();
  const client = new SidechannelClientConn(a);
  const server = new SidechannelServerConn(b);
  const serverSide = (async () => {
    const got = await readAll(server.readable);
    assert.equal(text(got), "Ping");
    await server.write(utf8("Pong"));
    await server.close();
  })();
  await client.write(utf8("Ping"));
  await client.closeWrite();
  await assert.rejects(client.write(utf8("x")), { code: "HALF_CLOSED" });
  assert.equal(text(await readAll(client.readable)), "Pong");
  await serverSide;
  await client.close();
});

Deno.test("SidechannelClientConn.close() without closeWrite(): the server sees UNEXPECTED_EOF", async () => {
  const [a, b] = duplexPair();
  const client = new SidechannelClientConn(a);
  const server = new SidechannelServerConn(b);
  await client.write(utf8("partial"));
  await client.close();
  const buf = new Uint8Array(64);
  assert.equal(await server.read(buf), 7);
  await assert.rejects(server.read(buf), { code: "UNEXPECTED_EOF" });
  await server.close();
});

Deno.test("SidechannelClientConn: a reset by the server surfaces as RESET on read and write", async () => {
  const [a, b] = duplexPair();
  const client = new SidechannelClientConn(a);
  b.reset();
  await assert.rejects(client.read(new Uint8Array(8)), (e: unknown) => {
    assert.ok(e instanceof SidechannelError);
    assert.equal(e.code, "RESET");
    assert.ok(e.cause instanceof Deno.errors.ConnectionReset);
    return true;
  });
  await assert.rejects(client.write(new Uint8Array(8)), { code: "RESET" });
});
