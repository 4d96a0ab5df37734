/**
 * Interop with `@chainsafe/libp2p-yamux` 8.0.1 running in-process under Deno, over
 * loopback TCP, in both yamux roles. The chainsafe muxer runs on a minimal libp2p
 * `MessageStream` over the `Deno.Conn` (`_message_stream.ts`); it keeps its default
 * 256 KiB initial window (it does not advertise larger ones correctly, see
 * yamux.md §5.1).
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { yamux } from "@chainsafe/libp2p-yamux";
import { fromDenoConn, YamuxError, YamuxSession, type YamuxStream } from "../../mod.ts";
import { pseudoRandomBytes, sha256Hex, withTimeout } from "../_util.ts";
import { DenoMessageStream, toBytes } from "./_message_stream.ts";

type Role = "client" | "server";
const ROLES: Role[] = ["client", "server"];

const KiB = 1024;
const MiB = 1024 * KiB;

type CsFactory = ReturnType<ReturnType<typeof yamux>>;
type CsMuxer = ReturnType<CsFactory["createStreamMuxer"]>;
type CsStream = Awaited<ReturnType<CsMuxer["createStream"]>>;
type CsChunk = Parameters<CsStream["send"]>[0];

interface Pair {
  /** Our session, in the role under test. */
  session: YamuxSession;
  /** The chainsafe muxer, in the other role. */
  muxer: CsMuxer;
}

/**
 * Connects our session (yamux `ourRole`) and a chainsafe muxer (the other role) over
 * loopback TCP, runs `fn`, then closes our session and waits for both ends. Inbound
 * chainsafe streams go to `onCsStream`; its failures fail the test.
 */
async function withChainsafe(
  ourRole: Role,
  fn: (pair: Pair) => Promise<void>,
  onCsStream?: (stream: CsStream) => Promise<void>,
): Promise<void> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [accepted, dialed] = await Promise.all([
    listener.accept(),
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
  ]);
  // Whoever is the yamux client dials here, as in Gitaly.
  const ourConn = ourRole === "client" ? dialed : accepted;
  const csConn = ourRole === "client" ? accepted : dialed;
  const transport = new DenoMessageStream(csConn, ourRole === "client" ? "inbound" : "outbound");
  const factory: CsFactory = yamux()();
  const muxer = factory.createStreamMuxer(
    transport as unknown as Parameters<CsFactory["createStreamMuxer"]>[0],
  );
  const handlers: Promise<unknown>[] = [];
  muxer.addEventListener("stream", (evt) => {
    const stream = evt.detail;
    const handled = onCsStream === undefined ? Promise.resolve() : onCsStream(stream);
    handlers.push(
      handled.then(() => null, (error: unknown) => error ?? new Error("chainsafe handler failed")),
    );
  });
  const duplex = fromDenoConn(ourConn);
  const session = ourRole === "client" ? YamuxSession.client(duplex) : YamuxSession.server(duplex);
  try {
    await withTimeout(fn({ session, muxer }), 30_000, "scenario against chainsafe");
    for (const outcome of await withTimeout(Promise.all(handlers), 10_000, "chainsafe handlers")) {
      if (outcome !== null) throw outcome;
    }
  } finally {
    await session.close();
    await withTimeout(transport.closed, 10_000, "chainsafe transport closed");
    await duplex.closed;
  }
  assert.equal(muxer.status, "closed");
}

/** Accepts our inbound streams until the session closes; rethrows handler errors. */
async function serveStreams(
  session: YamuxSession,
  handle: (s: YamuxStream) => Promise<void>,
): Promise<number> {
  const outcomes: Promise<unknown>[] = [];
  for (;;) {
    let stream: YamuxStream;
    try {
      stream = await session.accept();
    } catch (error) {
      if (
        error instanceof YamuxError && (error.code === "SESSION_CLOSED" || error.code === "CONNECTION_LOST")
      ) break;
      throw error;
    }
    outcomes.push(handle(stream).then(() => null, (error: unknown) => error ?? new Error("handler failed")));
  }
  for (const outcome of await Promise.all(outcomes)) {
    if (outcome !== null) throw outcome;
  }
  return outcomes.length;
}

const echo = (s: YamuxStream): Promise<void> => s.readable.pipeTo(s.writable);

/** chainsafe side: echo every chunk, then half-close after the peer's FIN. */
async function csEcho(stream: CsStream): Promise<void> {
  for await (const chunk of stream) {
    if (!stream.send(chunk)) await stream.onDrain();
  }
  await stream.close();
}

/** chainsafe side: send `data` in 64 KiB pieces, honouring backpressure. */
async function csSend(stream: CsStream, data: Uint8Array): Promise<void> {
  for (let offset = 0; offset < data.byteLength; offset += 64 * KiB) {
    if (!stream.send(data.subarray(offset, offset + 64 * KiB) as CsChunk)) await stream.onDrain();
  }
}

async function hashChunks(
  chunks: AsyncIterable<Uint8Array | { subarray(): Uint8Array }>,
): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of chunks) {
    const b = toBytes(chunk);
    hash.update(b);
    bytes += b.byteLength;
  }
  return { bytes, sha256: hash.digest("hex") };
}

async function writeAll(writable: WritableStream<Uint8Array>, data: Uint8Array): Promise<void> {
  const writer = writable.getWriter();
  for (let offset = 0; offset < data.byteLength; offset += 64 * KiB) {
    await writer.write(data.subarray(offset, offset + 64 * KiB));
  }
  await writer.close();
}

/** Our side opens a stream, sends while reading, half-closes, compares the echo. */
async function ourEcho(session: YamuxSession, size: number, seed: number): Promise<void> {
  const stream = await session.open();
  const data = pseudoRandomBytes(size, seed);
  const [, got] = await Promise.all([writeAll(stream.writable, data), hashChunks(stream.readable)]);
  assert.equal(got.bytes, size);
  assert.equal(got.sha256, await sha256Hex(data));
}

/** chainsafe opens a stream, sends while reading, half-closes, compares the echo. */
async function csEchoRoundTrip(muxer: CsMuxer, size: number, seed: number): Promise<void> {
  const stream = await muxer.createStream();
  const data = pseudoRandomBytes(size, seed);
  const [, got] = await Promise.all([
    csSend(stream, data).then(() => stream.close()),
    hashChunks(stream),
  ]);
  assert.equal(got.bytes, size);
  assert.equal(got.sha256, await sha256Hex(data));
}

for (const role of ROLES) {
  const our = `YamuxSession (${role})`;
  const cs = `chainsafe (${role === "client" ? "server" : "client"})`;

  Deno.test(`${our} → ${cs} echo: 8 streams × 1 MiB, sha256`, async () => {
    let handled = 0;
    await withChainsafe(role, async ({ session }) => {
      await Promise.all(Array.from({ length: 8 }, (_, i) => ourEcho(session, MiB, i + 1)));
    }, async (stream) => {
      handled++;
      await csEcho(stream);
    });
    assert.equal(handled, 8);
  });

  Deno.test(`${cs} → ${our} echo server: 8 streams × 1 MiB, sha256`, async () => {
    let served: Promise<number> | undefined;
    await withChainsafe(role, async ({ session, muxer }) => {
      served = serveStreams(session, echo);
      await Promise.all(Array.from({ length: 8 }, (_, i) => csEchoRoundTrip(muxer, MiB, i + 1)));
    });
    assert.equal(await served, 8);
  });

  Deno.test(`${our} → ${cs}: 16 MiB one way, sha256`, async () => {
    const data = pseudoRandomBytes(16 * MiB, 3);
    let got: { bytes: number; sha256: string } | undefined;
    await withChainsafe(role, async ({ session }) => {
      const stream = await session.open();
      await Promise.all([writeAll(stream.writable, data), hashChunks(stream.readable)]);
    }, async (stream) => {
      got = await hashChunks(stream);
      await stream.close();
    });
    assert.equal(got?.bytes, data.byteLength);
    assert.equal(got?.sha256, await sha256Hex(data));
  });

  Deno.test(`${cs} → ${our}: 16 MiB one way, sha256`, async () => {
    const data = pseudoRandomBytes(16 * MiB, 4);
    let got: { bytes: number; sha256: string } | undefined;
    await withChainsafe(role, async ({ session, muxer }) => {
      const served = serveStreams(session, async (stream) => {
        got = await hashChunks(stream.readable);
        await stream.writable.close();
      });
      const stream = await muxer.createStream();
      await Promise.all([csSend(stream, data).then(() => stream.close()), hashChunks(stream)]);
      await session.close();
      assert.equal(await served, 1);
    });
    assert.equal(got?.bytes, data.byteLength);
    assert.equal(got?.sha256, await sha256Hex(data));
  });

  Deno.test(`${our} half-closes, then reads ${cs}'s whole echo`, async () => {
    await withChainsafe(role, async ({ session }) => {
      const stream = await session.open();
      const data = pseudoRandomBytes(100_000, 5);
      await writeAll(stream.writable, data); // FIN before reading anything
      const got = await hashChunks(stream.readable);
      assert.equal(got.bytes, data.byteLength);
      assert.equal(got.sha256, await sha256Hex(data));
    }, csEcho);
  });

  Deno.test(`${cs} half-closes, then reads the whole reply of ${our}`, async () => {
    await withChainsafe(role, async ({ session, muxer }) => {
      const served = serveStreams(session, async (stream) => {
        // Reply only after the peer's FIN.
        const chunks: Uint8Array[] = [];
        for await (const chunk of stream.readable) chunks.push(chunk.slice());
        const writer = stream.writable.getWriter();
        for (const chunk of chunks) await writer.write(chunk);
        await writer.close();
      });
      const stream = await muxer.createStream();
      const data = pseudoRandomBytes(100_000, 6);
      await csSend(stream, data);
      await stream.close();
      const got = await hashChunks(stream);
      assert.equal(got.bytes, data.byteLength);
      assert.equal(got.sha256, await sha256Hex(data));
      await session.close();
      assert.equal(await served, 1);
    });
  });

  Deno.test(`${our} ↔ ${cs}: 100 concurrent streams each way × 8 KiB`, async () => {
    await withChainsafe(role, async ({ session, muxer }) => {
      const served = serveStreams(session, echo);
      await Promise.all([
        ...Array.from({ length: 100 }, (_, i) => ourEcho(session, 8 * KiB, i + 1)),
        ...Array.from({ length: 100 }, (_, i) => csEchoRoundTrip(muxer, 8 * KiB, 1000 + i)),
      ]);
      await session.close();
      assert.equal(await served, 100);
    }, csEcho);
  });

  Deno.test(`${our} and ${cs} answer each other's pings`, async () => {
    await withChainsafe(role, async ({ session, muxer }) => {
      for (let i = 0; i < 10; i++) {
        assert.ok((await session.ping()) >= 0);
        assert.ok((await muxer.ping()) >= 0);
      }
    });
  });
}
