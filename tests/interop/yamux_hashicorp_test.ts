/**
 * Interop with hashicorp/yamux (Debian's 2019 snapshot, Gitaly's multiplexer) through
 * `tests/interop/yamux_peer/`, over loopback TCP, in both yamux roles: when our session
 * is the yamux client we dial the Go peer; when it is the yamux server the Go peer
 * dials us. Who opens streams is a property of each scenario, not of the role.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fromDenoConn, YamuxError, type YamuxOptions, YamuxSession, type YamuxStream } from "../../mod.ts";
import { ignoreUnless, pseudoRandomBytes, sha256Hex, withTimeout } from "../_util.ts";
import { buildGoPeer } from "./_go.ts";
import { assertPeerOk, type PeerResult, type RunningPeer, startPeer } from "./_peer.ts";

const ignore = ignoreUnless("go");

type Role = "client" | "server";
const ROLES: Role[] = ["client", "server"];

const KiB = 1024;
const MiB = 1024 * KiB;

interface StreamReport {
  index: number;
  id: number;
  bytesSent: number;
  bytesReceived: number;
  sha256Sent?: string;
  sha256Received?: string;
  ok: boolean;
}

interface Frames {
  rstSent: number[];
  rstReceived: number[];
  goAwaySent: number[];
  goAwayReceived: number[];
}

/**
 * Connects one of our sessions (yamux `ourRole`) to a `yamux_peer` running `goArgs`
 * (the other role), runs `fn`, closes our session, and returns the Go peer's result
 * (asserting it reported ok).
 */
async function withGoPeer(
  ourRole: Role,
  goArgs: string[],
  fn: (session: YamuxSession) => Promise<void>,
  options: YamuxOptions = {},
): Promise<PeerResult> {
  const bin = await buildGoPeer("yamux_peer");
  const goRole: Role = ourRole === "client" ? "server" : "client";
  const common = ["-yamux", goRole, "-timeout", "40s", ...goArgs];
  let go: RunningPeer;
  let conn: Deno.TcpConn;
  if (ourRole === "client") {
    go = await startPeer(bin, ["-listen", "127.0.0.1:0", ...common], { listen: true, timeoutMs: 50_000 });
    conn = await Deno.connect({ hostname: "127.0.0.1", port: go.port });
  } else {
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    go = await startPeer(bin, ["-connect", `127.0.0.1:${listener.addr.port}`, ...common], {
      timeoutMs: 50_000,
    });
    conn = await withTimeout(listener.accept(), 10_000, "Go peer connecting");
  }
  await using _go = go;
  const duplex = fromDenoConn(conn);
  const session = ourRole === "client"
    ? YamuxSession.client(duplex, options)
    : YamuxSession.server(duplex, options);
  try {
    await withTimeout(fn(session), 40_000, `scenario against yamux_peer ${goArgs.join(" ")}`);
  } catch (error) {
    await session.close();
    await go.kill();
    const exit = await go.exit();
    throw new Error(`${error}\nGo peer: ${JSON.stringify(exit.result).slice(0, 2000)}\n${exit.stderr}`, {
      cause: error,
    });
  }
  await session.close();
  const exit = await withTimeout(go.exit(), 20_000, "Go peer exit");
  await withTimeout(duplex.closed, 10_000, "TCP connection closed");
  return assertPeerOk(exit, `yamux_peer ${goArgs.join(" ")}`);
}

function isEnd(error: unknown): boolean {
  return error instanceof YamuxError && (error.code === "SESSION_CLOSED" || error.code === "CONNECTION_LOST");
}

/**
 * Accepts streams until the session ends (hashicorp closes TCP without GoAway, so the
 * end is usually CONNECTION_LOST) and runs `handle` on each; rethrows the first
 * handler error. Returns the number of streams.
 */
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
      if (isEnd(error)) break;
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

/** Drains a readable, hashing as it goes. */
async function hashReadable(
  readable: ReadableStream<Uint8Array>,
): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of readable) {
    hash.update(chunk);
    bytes += chunk.byteLength;
  }
  return { bytes, sha256: hash.digest("hex") };
}

/** Writes `data` in `chunk`-byte writes, then closes (FIN) unless `close` is false. */
async function writeAll(
  writable: WritableStream<Uint8Array>,
  data: Uint8Array,
  { chunk = 64 * KiB, close = true } = {},
): Promise<void> {
  const writer = writable.getWriter();
  try {
    for (let offset = 0; offset < data.byteLength; offset += chunk) {
      await writer.write(data.subarray(offset, offset + chunk));
    }
    if (close) await writer.close();
  } finally {
    writer.releaseLock();
  }
}

/** Opens a stream, sends `size` bytes (seed), half-closes while reading, compares the echo. */
async function echoRoundTrip(session: YamuxSession, size: number, seed: number): Promise<void> {
  const stream = await session.open();
  const data = pseudoRandomBytes(size, seed);
  const [, got] = await Promise.all([writeAll(stream.writable, data), hashReadable(stream.readable)]);
  assert.equal(got.bytes, size, `stream ${stream.id}: echoed bytes`);
  assert.equal(got.sha256, await sha256Hex(data), `stream ${stream.id}: echoed sha256`);
}

async function expectedSha(size: number, seed: number): Promise<string> {
  return await sha256Hex(pseudoRandomBytes(size, seed));
}

function reports(result: PeerResult): StreamReport[] {
  return result.streamReports as StreamReport[];
}

async function assertReset(promise: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof YamuxError, `${what}: ${error}`);
    assert.equal(error.code, "STREAM_RESET", `${what}: ${error}`);
    return true;
  });
}

/** Reads until the readable fails; returns the bytes read and the error. */
async function readUntilError(readable: ReadableStream<Uint8Array>): Promise<[number, unknown]> {
  let bytes = 0;
  try {
    for await (const chunk of readable) bytes += chunk.byteLength;
  } catch (error) {
    return [bytes, error];
  }
  return [bytes, undefined];
}

for (const role of ROLES) {
  const our = `YamuxSession (${role})`;

  // ---- echo with sha256 ----

  Deno.test({
    name: `${our} → hashicorp echo-server: 1 stream × 8 MiB, sha256`,
    ignore,
    async fn() {
      const go = await withGoPeer(role, ["-mode", "echo-server"], async (session) => {
        await echoRoundTrip(session, 8 * MiB, 1);
      });
      assert.equal(go.streams, 1);
      assert.equal(go.bytes, 8 * MiB);
    },
  });

  Deno.test({
    name: `${our} → hashicorp echo-server: 16 streams × 1 MiB, sha256`,
    ignore,
    async fn() {
      const go = await withGoPeer(role, ["-mode", "echo-server"], async (session) => {
        await Promise.all(Array.from({ length: 16 }, (_, i) => echoRoundTrip(session, MiB, i + 1)));
      });
      assert.equal(go.streams, 16);
    },
  });

  Deno.test({
    name: `hashicorp echo-client → ${our} echo server: 1 stream × 8 MiB, sha256`,
    ignore,
    async fn() {
      let served = 0;
      const go = await withGoPeer(
        role,
        ["-mode", "echo-client", "-streams", "1", "-bytes", String(8 * MiB)],
        async (
          session,
        ) => {
          served = await serveStreams(session, echo);
        },
      );
      assert.equal(served, 1);
      assert.equal(reports(go)[0]!.sha256Received, await expectedSha(8 * MiB, 1));
    },
  });

  Deno.test({
    name: `hashicorp echo-client → ${our} echo server: 16 streams × 1 MiB, sha256`,
    ignore,
    async fn() {
      let served = 0;
      const go = await withGoPeer(
        role,
        ["-mode", "echo-client", "-streams", "16", "-bytes", String(MiB)],
        async (
          session,
        ) => {
          served = await serveStreams(session, echo);
        },
      );
      assert.equal(served, 16);
      for (const r of reports(go)) assert.equal(r.sha256Received, await expectedSha(MiB, r.index + 1));
    },
  });

  // ---- one-way bulk ----

  Deno.test({
    name: `${our} → hashicorp sink: 64 MiB on one stream, sha256`,
    ignore,
    async fn() {
      const size = 64 * MiB;
      const data = pseudoRandomBytes(size, 1);
      const go = await withGoPeer(role, ["-mode", "sink", "-streams", "1"], async (session) => {
        const stream = await session.open();
        const [, back] = await Promise.all([writeAll(stream.writable, data), hashReadable(stream.readable)]);
        assert.equal(back.bytes, 0);
      });
      assert.equal(go.bytes, size);
      assert.equal(reports(go)[0]!.sha256Received, await sha256Hex(data));
    },
  });

  Deno.test({
    name: `hashicorp source → ${our}: 64 MiB on one stream, sha256`,
    ignore,
    async fn() {
      const size = 64 * MiB;
      const got: { bytes: number; sha256: string }[] = [];
      const go = await withGoPeer(role, ["-mode", "source", "-streams", "1", "-bytes", String(size)], async (
        session,
      ) => {
        await serveStreams(session, async (stream) => {
          got.push(await hashReadable(stream.readable));
          await stream.writable.close();
        });
      });
      assert.equal(got.length, 1);
      assert.equal(got[0]!.bytes, size);
      assert.equal(got[0]!.sha256, await expectedSha(size, 1));
      assert.equal(reports(go)[0]!.sha256Sent, got[0]!.sha256);
    },
  });

  // ---- many concurrent streams ----

  Deno.test({
    name: `${our} → hashicorp echo-server: 200 concurrent streams × 16 KiB`,
    ignore,
    async fn() {
      const go = await withGoPeer(role, ["-mode", "echo-server"], async (session) => {
        await Promise.all(Array.from({ length: 200 }, (_, i) => echoRoundTrip(session, 16 * KiB, i + 1)));
      });
      assert.equal(go.streams, 200);
    },
  });

  Deno.test({
    name: `hashicorp echo-client → ${our} echo server: 200 concurrent streams × 16 KiB`,
    ignore,
    async fn() {
      let served = 0;
      const go = await withGoPeer(
        role,
        ["-mode", "echo-client", "-streams", "200", "-bytes", String(16 * KiB)],
        async (session) => {
          served = await serveStreams(session, echo);
        },
      );
      assert.equal(served, 200);
      assert.equal(go.failures, 0);
    },
  });

  // ---- half-close ----

  Deno.test({
    name: `${our} half-closes, then reads hashicorp's whole echo`,
    ignore,
    async fn() {
      await withGoPeer(role, ["-mode", "echo-server"], async (session) => {
        const stream = await session.open();
        const data = pseudoRandomBytes(100_000, 5);
        await writeAll(stream.writable, data); // FIN before reading anything
        const got = await hashReadable(stream.readable);
        assert.equal(got.bytes, data.byteLength);
        assert.equal(got.sha256, await sha256Hex(data));
      });
    },
  });

  Deno.test({
    name: `${our} replies after hashicorp's FIN (the peer half-closed and keeps reading)`,
    ignore,
    async fn() {
      const go = await withGoPeer(
        role,
        ["-mode", "echo-client", "-streams", "1", "-bytes", "100000", "-half-close", "raw"],
        async (session) => {
          await serveStreams(session, async (stream) => {
            const chunks: Uint8Array[] = [];
            for await (const chunk of stream.readable) chunks.push(chunk.slice());
            const writer = stream.writable.getWriter();
            for (const chunk of chunks) await writer.write(chunk);
            await writer.close();
          });
        },
      );
      assert.equal(reports(go)[0]!.sha256Received, await expectedSha(100_000, 1));
    },
  });

  // ---- RST ----

  Deno.test({
    name: `${our}: reset() of a hashicorp-opened stream fails its Read and Write`,
    ignore,
    async fn() {
      const go = await withGoPeer(
        role,
        ["-mode", "rst", "-dir", "recv", "-opener", "go"],
        async (session) => {
          const first = await session.accept();
          const reader = first.readable.getReader();
          const { done } = await reader.read(); // the Go peer is mid-transfer
          assert.equal(done, false);
          reader.releaseLock();
          first.reset();
          await serveStreams(session, echo); // the follow-up echo stream
        },
      );
      assert.equal(go.readError, "connection reset");
      assert.equal(go.writeError, "connection reset");
    },
  });

  Deno.test({
    name: `${our}: reset() of our own stream fails hashicorp's Read and Write`,
    ignore,
    async fn() {
      const go = await withGoPeer(
        role,
        ["-mode", "rst", "-dir", "recv", "-opener", "peer"],
        async (session) => {
          const first = await session.open();
          const writer = first.writable.getWriter();
          await writer.write(pseudoRandomBytes(1000, 3));
          writer.releaseLock();
          const reader = first.readable.getReader();
          const { done } = await reader.read(); // hashicorp accepted it and is writing
          assert.equal(done, false);
          reader.releaseLock();
          first.reset();
          await echoRoundTrip(session, 4096, 9);
        },
      );
      assert.equal(go.readError, "connection reset");
      assert.equal(go.writeError, "connection reset");
    },
  });

  Deno.test({
    name: `${our}: a RST from hashicorp on a stream it opened fails our reads and writes with STREAM_RESET`,
    ignore,
    async fn() {
      const go = await withGoPeer(
        role,
        ["-mode", "rst", "-dir", "send", "-opener", "go", "-bytes", "1000"],
        async (session) => {
          const first = await session.accept();
          const [bytes, error] = await readUntilError(first.readable);
          assert.ok(bytes <= 1000);
          await assertReset(Promise.reject(error), "read after RST");
          await assertReset(first.writable.getWriter().write(new Uint8Array(10)), "write after RST");
          await serveStreams(session, echo);
        },
      );
      assert.deepEqual((go.frames as Frames).rstSent, [go.streamId]);
    },
  });

  Deno.test({
    name: `${our}: a RST from hashicorp on a stream we opened fails our reads and writes with STREAM_RESET`,
    ignore,
    async fn() {
      await withGoPeer(
        role,
        ["-mode", "rst", "-dir", "send", "-opener", "peer", "-bytes", "1000"],
        async (session) => {
          const first = await session.open();
          const writer = first.writable.getWriter();
          await writer.write(pseudoRandomBytes(1000, 4));
          writer.releaseLock();
          const [bytes, error] = await readUntilError(first.readable);
          assert.equal(bytes, 0);
          await assertReset(Promise.reject(error), "read after RST");
          await assertReset(first.writable.getWriter().write(new Uint8Array(10)), "write after RST");
          await echoRoundTrip(session, 4096, 8);
        },
      );
    },
  });

  // ---- windows, slow reader, backlog, keepalive ----

  Deno.test({
    name: `${our} → hashicorp sink with a 16 MiB window: 64 MiB, sha256`,
    ignore,
    async fn() {
      const size = 64 * MiB;
      const data = pseudoRandomBytes(size, 6);
      const go = await withGoPeer(
        role,
        ["-mode", "sink", "-streams", "1", "-window", String(16 * MiB)],
        async (
          session,
        ) => {
          const stream = await session.open();
          await Promise.all([writeAll(stream.writable, data), hashReadable(stream.readable)]);
        },
      );
      assert.equal(reports(go)[0]!.sha256Received, await sha256Hex(data));
    },
  });

  Deno.test({
    name: `hashicorp source → ${our} with maxStreamWindow 16 MiB: 64 MiB, sha256`,
    ignore,
    async fn() {
      const size = 64 * MiB;
      const got: { bytes: number; sha256: string }[] = [];
      await withGoPeer(
        role,
        ["-mode", "source", "-streams", "1", "-bytes", String(size)],
        async (session) => {
          await serveStreams(session, async (stream) => {
            got.push(await hashReadable(stream.readable));
            await stream.writable.close();
          });
        },
        { maxStreamWindow: 16 * MiB },
      );
      assert.equal(got[0]?.sha256, await expectedSha(size, 1));
    },
  });

  Deno.test({
    name: `${our} → hashicorp sink reading at 64 MiB/s: 16 MiB arrive intact, our queue stays bounded`,
    ignore,
    async fn() {
      const size = 16 * MiB;
      const data = pseudoRandomBytes(size, 7);
      let maxQueued = 0;
      const go = await withGoPeer(
        role,
        ["-mode", "sink", "-streams", "1", "-read-rate", "64"],
        async (session) => {
          const stream = await session.open();
          const writer = stream.writable.getWriter();
          for (let offset = 0; offset < size; offset += 64 * KiB) {
            await writer.write(data.subarray(offset, offset + 64 * KiB));
            maxQueued = Math.max(maxQueued, session.stats().queuedBytes);
          }
          await writer.close();
          await hashReadable(stream.readable);
        },
      );
      assert.equal(reports(go)[0]!.sha256Received, await sha256Hex(data));
      assert.ok(maxQueued <= 4 * MiB, `queued up to ${maxQueued} bytes for a 256 KiB window`);
    },
  });

  Deno.test({
    name: `${our}: hashicorp's full accept backlog refuses the third stream with RST`,
    ignore,
    async fn() {
      const go = await withGoPeer(role, ["-mode", "idle", "-backlog", "2"], async (session) => {
        const streams = [await session.open(), await session.open(), await session.open()];
        for (const s of streams) {
          const writer = s.writable.getWriter();
          await writer.write(new Uint8Array(100)).catch(() => {});
          writer.releaseLock();
        }
        const [, error] = await readUntilError(streams[2]!.readable);
        await assertReset(Promise.reject(error), "third stream");
      });
      assert.equal((go.frames as Frames).rstSent.length, 1);
    },
  });

  Deno.test({
    name: `${our} answers hashicorp's keepalive pings (20 ms interval)`,
    ignore,
    async fn() {
      const go = await withGoPeer(
        role,
        ["-mode", "accept-and-hold", "-keepalive-interval", "20ms", "-write-timeout", "2s", "-hold", "300ms"],
        async (session) => {
          assert.equal(await serveStreams(session, echo), 0);
        },
      );
      assert.equal(go.peerClosed, false); // the hold ran out: keepalive never failed
    },
  });

  // ---- ping ----

  Deno.test({
    name: `hashicorp pings ${our} 100 times`,
    ignore,
    async fn() {
      const go = await withGoPeer(role, ["-mode", "ping", "-count", "100"], async (session) => {
        assert.equal(await serveStreams(session, echo), 0);
      });
      assert.equal(go.pings, 100);
    },
  });

  Deno.test({
    name: `${our}.ping() gets hashicorp's answers`,
    ignore,
    async fn() {
      await withGoPeer(role, ["-mode", "accept-and-hold"], async (session) => {
        for (let i = 0; i < 50; i++) {
          const rtt = await session.ping();
          assert.ok(rtt >= 0 && Number.isFinite(rtt));
        }
      });
    },
  });

  // ---- GoAway ----

  Deno.test({
    name: `${our}.open() rejects with GO_AWAY after hashicorp's GoAway; the open stream finishes`,
    ignore,
    async fn() {
      const go = await withGoPeer(role, ["-mode", "goaway", "-dir", "send"], async (session) => {
        await echoRoundTrip(session, 10_000, 2); // hashicorp sends GoAway before its echo
        await assert.rejects(session.open(), (error: unknown) => {
          assert.ok(error instanceof YamuxError, String(error));
          assert.equal(error.code, "GO_AWAY");
          return true;
        });
        assert.equal(session.stats().goAwayReceived, true);
      });
      assert.equal(go.acceptedAfterGoAway, 0);
      assert.deepEqual((go.frames as Frames).goAwaySent, [0]);
    },
  });

  Deno.test({
    name: `${our}.goAway(): hashicorp's OpenStream is refused and a raw SYN gets RST`,
    ignore,
    async fn() {
      let refused = 0;
      const go = await withGoPeer(
        role,
        ["-mode", "goaway", "-dir", "recv", "-bytes", "10000"],
        async (session) => {
          const stream = await session.accept();
          const chunks: Uint8Array[] = [];
          for await (const chunk of stream.readable) chunks.push(chunk.slice());
          await session.goAway();
          const writer = stream.writable.getWriter();
          for (const chunk of chunks) await writer.write(chunk);
          await writer.close();
          assert.equal(await serveStreams(session, echo), 0);
          refused = session.stats().streamsRefused;
        },
      );
      assert.equal(go.refusedBy, "OpenStream");
      assert.equal(go.rawSynRefusedByRst, true);
      assert.deepEqual((go.frames as Frames).goAwayReceived, [0]);
      assert.ok(refused >= 1);
    },
  });
}
