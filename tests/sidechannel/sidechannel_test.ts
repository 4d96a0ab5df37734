import assert from "node:assert/strict";
import {
  callWithSidechannel,
  type DirectIo,
  type DuplexConn,
  GrpcError,
  openSidechannelForCall,
  SIDECHANNEL_ID_METADATA,
  SidechannelError,
  SidechannelRegistry,
  Status,
} from "../../mod.ts";
import { pseudoRandomBytes, readAll, sha256Hex, text, transports, utf8, withTimeout } from "../_util.ts";
import { connectPair, SC, sidechannelServer, u64 } from "./_harness.ts";

const MiB = 1024 * 1024;

function sidechannelCode(e: unknown): string {
  assert.ok(e instanceof SidechannelError, String(e));
  return e.code;
}

function grpcCode(e: unknown): number {
  assert.ok(e instanceof GrpcError, String(e));
  return e.code;
}

/** Writes `data` and reads the echo concurrently; no closeWrite (Gitaly's TestSidechannel). */
async function echoThrough(
  registry: SidechannelRegistry,
  invoke: (metadata: [string, string][]) => Promise<unknown>,
  data: Uint8Array,
): Promise<Uint8Array> {
  let echoed: Uint8Array | undefined;
  await callWithSidechannel(registry, async (conn) => {
    const reading = readAll(conn.readable);
    await conn.write(data);
    echoed = await reading;
  }, (metadata) => invoke(metadata as [string, string][]));
  return echoed!;
}

for (const transport of transports) {
  Deno.test(`sidechannel: TestSidechannel, 1 MiB echo without closeWrite (${transport.name})`, async () => {
    const p = await connectPair(transport, sidechannelServer());
    const data = pseudoRandomBytes(MiB, 11);
    const echoed = await echoThrough(
      p.registry,
      (metadata) => p.client.grpc.unary(SC.echoN, u64(MiB), { metadata }),
      data,
    );
    assert.equal(await sha256Hex(echoed), await sha256Hex(data));
    assert.equal(p.registry.waiting, 0);
    await p.close();
  });

  Deno.test(`sidechannel: TestSidechannelConcurrency, 10 x 1 MiB on one connection (${transport.name})`, async () => {
    const p = await connectPair(transport, sidechannelServer());
    await Promise.all(Array.from({ length: 10 }, async (_, i) => {
      const data = pseudoRandomBytes(MiB, 100 + i);
      const echoed = await echoThrough(
        p.registry,
        (metadata) => p.client.grpc.unary(SC.echoN, u64(MiB), { metadata }),
        data,
      );
      assert.equal(await sha256Hex(echoed), await sha256Hex(data), `call ${i}`);
    }));
    assert.equal(p.registry.waiting, 0);
    await p.close();
  });
}

Deno.test("sidechannel: the server uses the last gitaly-sidechannel-id value", async () => {
  const p = await connectPair(transports[0]!, sidechannelServer());
  const decoy = p.registry.register(() => {
    throw new Error("the decoy must not be opened");
  });
  const data = utf8("last one wins");
  const echoed = await echoThrough(
    p.registry,
    (metadata) =>
      p.client.grpc.unary(SC.echoN, u64(data.byteLength), {
        metadata: [[SIDECHANNEL_ID_METADATA, decoy.metadataValue], ...metadata],
      }),
    data,
  );
  assert.equal(text(echoed), "last one wins");
  await assert.rejects(decoy.close(), { code: "CALLBACK_DID_NOT_RUN" });
  await p.close();
});

Deno.test("sidechannel: handshake failures map to UNAVAILABLE, other calls unaffected", async () => {
  // The client routes nothing: every server-opened stream is reset.
  const errors: unknown[] = [];
  const p = await connectPair(transports[1]!, sidechannelServer({}, errors), { handshakers: {} });
  const registry = new SidechannelRegistry();
  const error = await callWithSidechannel(
    registry,
    () => {},
    (metadata) => p.client.grpc.unary(SC.echoN, u64(1), { metadata }),
  ).catch((e) => e);
  assert.equal(grpcCode(error), Status.UNAVAILABLE);
  assert.match(error.details, /Cannot open sidechannel: receive confirmation/);
  assert.equal(sidechannelCode(errors.at(-1)), "HANDSHAKE");
  assert.deepEqual(await p.client.grpc.unary(SC.plain, utf8("still fine")), utf8("still fine"));
  await p.close();
});

Deno.test("sidechannel: an unregistered id maps to UNAVAILABLE and leaves the registry intact", async () => {
  const p = await connectPair(transports[0]!, sidechannelServer());
  const waiter = p.registry.register(() => {});
  const error = await p.client.grpc.unary(SC.echoN, u64(1), { metadata: [[SIDECHANNEL_ID_METADATA, "777"]] })
    .catch((e) => e);
  assert.equal(grpcCode(error), Status.UNAVAILABLE);
  assert.equal(p.registry.waiting, 1);
  await assert.rejects(waiter.close(), { code: "CALLBACK_DID_NOT_RUN" });
  await p.close();
});

Deno.test("sidechannel: missing or unparsable id maps to INVALID_ARGUMENT (Gitaly would use id 0)", async () => {
  const errors: unknown[] = [];
  const p = await connectPair(transports[0]!, sidechannelServer({}, errors));
  const zero = p.registry.register(() => {
    throw new Error("id 0 must not be opened by a garbage id");
  });
  assert.equal(zero.id, 0);
  const missing = await p.client.grpc.unary(SC.echoN, u64(1)).catch((e) => e);
  assert.equal(grpcCode(missing), Status.INVALID_ARGUMENT);
  assert.equal(sidechannelCode(errors.at(-1)), "MISSING_ID");
  const garbage = await p.client.grpc.unary(SC.echoN, u64(1), {
    metadata: [[SIDECHANNEL_ID_METADATA, "zero"]],
  })
    .catch((e) => e);
  assert.equal(grpcCode(garbage), Status.INVALID_ARGUMENT);
  assert.equal(sidechannelCode(errors.at(-1)), "INVALID_ID");
  assert.equal(p.registry.waiting, 1);
  await assert.rejects(zero.close(), { code: "CALLBACK_DID_NOT_RUN" });
  await p.close();
});

Deno.test("sidechannel: a call over a plain connection maps to FAILED_PRECONDITION", async () => {
  const { duplexPair, GrpcClient, serveGrpcConnection } = await import("../../mod.ts");
  const [a, b] = duplexPair();
  const errors: unknown[] = [];
  const connection = serveGrpcConnection(b, sidechannelServer({}, errors));
  const client = new GrpcClient(a);
  const error = await client.unary(SC.echoN, u64(1), { metadata: [[SIDECHANNEL_ID_METADATA, "0"]] }).catch((
    e,
  ) => e);
  assert.equal(grpcCode(error), Status.FAILED_PRECONDITION);
  assert.equal(sidechannelCode(errors.at(-1)), "NOT_MULTIPLEXED");
  assert.match(error.details, /non-multiplexed connection/);
  await client.close();
  await connection.closed;
});

/** A client handshaker table entry that plays a misbehaving client. */
function rawClient(play: (conn: DuplexConn & DirectIo) => Promise<void>) {
  return {
    async handshake(conn: DuplexConn & DirectIo) {
      const id = new Uint8Array(8);
      let got = 0;
      while (got < 8) got += (await conn.read(id.subarray(got))) ?? 8;
      await play(conn);
    },
  };
}

Deno.test("sidechannel: garbage instead of 'ok' maps to INTERNAL; a silent client to UNAVAILABLE", async () => {
  let play: (conn: DuplexConn & DirectIo) => Promise<void> = async (conn) =>
    void await conn.write(utf8("KO"));
  const errors: unknown[] = [];
  const server = sidechannelServer({
    custom: async (_request, call) => {
      const conn = await openSidechannelForCall(call, { timeout: 200 });
      await conn.close();
      return new Uint8Array(0);
    },
  }, errors);
  const p = await connectPair(transports[0]!, server, {
    handshakers: { sidechannel: rawClient((conn) => play(conn)) },
  });
  const metadata: [string, string][] = [[SIDECHANNEL_ID_METADATA, "0"]];
  const garbage = await p.client.grpc.unary(SC.custom, new Uint8Array(0), { metadata }).catch((e) => e);
  assert.equal(grpcCode(garbage), Status.INTERNAL);
  assert.equal(sidechannelCode(errors.at(-1)), "BAD_CONFIRMATION");
  assert.match(garbage.details, /expected ok, got "KO"/);

  play = async (conn) => await conn.closed; // never answers
  const silent = await withTimeout(
    p.client.grpc.unary(SC.custom, new Uint8Array(0), { metadata }).catch((e) => e),
    10_000,
  );
  assert.equal(grpcCode(silent), Status.UNAVAILABLE);
  assert.equal(sidechannelCode(errors.at(-1)), "HANDSHAKE");
  assert.deepEqual(await p.client.grpc.unary(SC.plain, utf8("ok")), utf8("ok"));
  await p.close();
});

Deno.test("sidechannel: malformed and oversized pkt headers map to INVALID_ARGUMENT; a short request to CANCELLED", async () => {
  let input = "";
  const seen: string[] = [];
  const errors: unknown[] = [];
  const server = sidechannelServer({
    custom: async (_request, call) => {
      const conn = await openSidechannelForCall(call);
      try {
        const body = await readAll(conn.readable);
        seen.push(text(body));
        return body;
      } finally {
        await conn.close();
      }
    },
  }, errors);
  const p = await connectPair(transports[1]!, server, {
    handshakers: {
      sidechannel: rawClient(async (conn) => {
        await conn.write(utf8("ok" + input));
        if (input.endsWith("!")) await conn.close();
        else await conn.closed;
      }),
    },
  });
  const metadata: [string, string][] = [[SIDECHANNEL_ID_METADATA, "0"]];
  const cases: [string, number, string][] = [
    ["0009hello0001", Status.INVALID_ARGUMENT, "INVALID_HEADER"],
    ["0002", Status.INVALID_ARGUMENT, "INVALID_HEADER"],
    ["0003", Status.INVALID_ARGUMENT, "INVALID_HEADER"],
    ["fff1", Status.INVALID_ARGUMENT, "INVALID_HEADER"],
    ["ffff", Status.INVALID_ARGUMENT, "INVALID_HEADER"],
    ["zzzz", Status.INVALID_ARGUMENT, "INVALID_HEADER"],
    ["0009hel!", Status.CANCELLED, "UNEXPECTED_EOF"],
    ["0009hello!", Status.CANCELLED, "UNEXPECTED_EOF"],
  ];
  for (const [bytes, status, code] of cases) {
    input = bytes;
    const error = await p.client.grpc.unary(SC.custom, new Uint8Array(0), { metadata }).catch((e) => e);
    assert.equal(grpcCode(error), status, bytes);
    assert.equal(sidechannelCode(errors.at(-1)), code, bytes);
  }
  input = "0009hello0000";
  assert.deepEqual(await p.client.grpc.unary(SC.custom, new Uint8Array(0), { metadata }), utf8("hello"));
  assert.deepEqual(seen, ["hello"]);
  await p.close();
});

Deno.test("sidechannel: a client that hangs up while the server writes: the write fails (RESET) and the call is CANCELLED", async () => {
  let writeError: unknown;
  let written = 0;
  const server = sidechannelServer({
    custom: async (_request, call) => {
      const conn = await openSidechannelForCall(call);
      const chunk = new Uint8Array(64 * 1024);
      try {
        for (;;) {
          await conn.write(chunk);
          written += chunk.byteLength;
        }
      } catch (error) {
        writeError = error;
        throw error;
      }
    },
  });
  const p = await connectPair(transports[1]!, server);
  const outcome = await withTimeout(
    callWithSidechannel(p.registry, async (conn) => {
      // Read a little, then hang up (close without reading the rest).
      const buffer = new Uint8Array(1024);
      await conn.read(buffer);
    }, (metadata) => p.client.grpc.unary(SC.custom, new Uint8Array(0), { metadata })).catch((e) => e),
    20_000,
    "server write failure after a client hang-up",
  );
  assert.ok(writeError instanceof SidechannelError, String(writeError));
  assert.equal(writeError.code, "RESET");
  assert.equal(grpcCode(outcome), Status.CANCELLED);
  assert.ok(written > 0);
  // Bounded by the client's 1 s close timeout (plus scheduling), not hashicorp's 5 min;
  // `withTimeout` above only catches a hang.
  assert.deepEqual(await p.client.grpc.unary(SC.plain, utf8("alive")), utf8("alive"));
  await p.close();
});

Deno.test("sidechannel: the server dies mid-transfer: the client reader sees an error, never a clean end", async () => {
  const server = sidechannelServer({
    custom: async (_request, call) => {
      const conn = await openSidechannelForCall(call);
      const chunk = new Uint8Array(64 * 1024);
      for (let i = 0; i < 16; i++) await conn.write(chunk);
      // Then the whole connection goes away mid-transfer.
      const { getBackchannelPeer } = await import("../../mod.ts");
      getBackchannelPeer(call).session.close();
      await new Promise((resolve) => call.signal.addEventListener("abort", resolve, { once: true }));
      return new Uint8Array(0);
    },
  });
  const p = await connectPair(transports[0]!, server);
  let readError: unknown;
  let received = 0;
  const outcome = await callWithSidechannel(p.registry, async (conn) => {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await conn.read(buffer);
        if (n === null) break;
        received += n;
      }
    } catch (error) {
      readError = error;
      throw error;
    }
  }, (metadata) => p.client.grpc.unary(SC.custom, new Uint8Array(0), { metadata })).catch((e) => e);
  assert.ok(readError instanceof SidechannelError, `clean end after ${received} bytes`);
  assert.equal(readError.code, "CONNECTION_LOST");
  assert.equal(readError.status, Status.UNAVAILABLE);
  assert.equal(grpcCode(outcome), Status.UNAVAILABLE);
  await p.close();
});

Deno.test("sidechannel: the client dies mid-request: the server reader sees CONNECTION_LOST", async () => {
  let readError: unknown;
  let gotRequest!: () => void;
  const requested = new Promise<void>((resolve) => gotRequest = resolve);
  const server = sidechannelServer({
    custom: async (_request, call) => {
      const conn = await openSidechannelForCall(call);
      try {
        const buffer = new Uint8Array(1024);
        assert.ok((await conn.read(buffer))! > 0);
        gotRequest();
        for (;;) if ((await conn.read(buffer)) === null) break;
      } catch (error) {
        readError = error;
        throw error;
      }
      return new Uint8Array(0);
    },
  });
  const pair = await connectPair(transports[1]!, server);
  const call = callWithSidechannel(pair.registry, async (conn) => {
    await conn.write(utf8("partial request"));
    await new Promise(() => {}); // never finishes: the connection dies first
  }, (metadata) => pair.client.grpc.unary(SC.custom, new Uint8Array(0), { metadata })).catch((e) => e);
  await requested;
  pair.client.session.close(); // the client goes away (no 0000)
  await pair.peer.closed;
  assert.ok(readError instanceof SidechannelError, String(readError));
  assert.equal(readError.code, "CONNECTION_LOST");
  void call;
  await pair.close();
});

Deno.test("sidechannel: faulty calls do not disturb a 4 MiB echo running beside them on the same connection", async () => {
  let mode = 0;
  const server = sidechannelServer({
    custom: async (_request, call) => {
      const conn = await openSidechannelForCall(call);
      const which = mode++ % 3;
      if (which === 0) {
        conn.reset(new Error("server gave up")); // the client's reads fail
        return new Uint8Array(0);
      }
      try {
        await readAll(conn.readable); // which === 1: the client sends a bad header
      } finally {
        await conn.close();
      }
      return new Uint8Array(0);
    },
  });
  let clientPlay = 0;
  const p = await connectPair(transports[1]!, server);
  const data = pseudoRandomBytes(4 * MiB, 77);
  const good = echoThrough(
    p.registry,
    (metadata) => p.client.grpc.unary(SC.echoN, u64(data.byteLength), { metadata }),
    data,
  );
  const faulty = Array.from({ length: 6 }, async () => {
    const error = await callWithSidechannel(p.registry, async (conn) => {
      const play = clientPlay++ % 3;
      if (play === 2) {
        conn.reset(new Error("client gave up"));
        return;
      }
      await conn.write(utf8("data"));
      if (play === 1) await conn.close(); // no 0000: the server sees UNEXPECTED_EOF
      else await readAll(conn.readable);
    }, (metadata) => p.client.grpc.unary(SC.custom, new Uint8Array(0), { metadata })).catch((e) => e);
    return error;
  });
  const outcomes = await Promise.all(faulty);
  assert.ok(outcomes.some((o) => o instanceof Error), "some faulty calls fail");
  const echoed = await good;
  assert.equal(await sha256Hex(echoed), await sha256Hex(data));
  assert.deepEqual(await p.client.grpc.unary(SC.plain, utf8("fine")), utf8("fine"));
  assert.equal(p.registry.waiting, 0);
  await p.close();
});
