import assert from "node:assert/strict";
import { YamuxError, type YamuxOptions, YamuxSession, type YamuxStream } from "../../mod.ts";
import { pseudoRandomBytes, readAll, sha256Hex, text, transports, utf8, withTimeout } from "../_util.ts";

/** Runs `fn` with a client and server session over a fresh pair of `transport`. */
async function withSessions(
  transport: (typeof transports)[number],
  fn: (client: YamuxSession, server: YamuxSession) => Promise<void>,
  options: { client?: YamuxOptions; server?: YamuxOptions } = {},
): Promise<void> {
  const pair = await transport.pair();
  const client = YamuxSession.client(pair.client, { keepAliveInterval: 0, ...options.client });
  const server = YamuxSession.server(pair.server, { keepAliveInterval: 0, ...options.server });
  try {
    await withTimeout(fn(client, server), 20_000, "session test body");
  } finally {
    await Promise.all([client.close(), server.close()]);
    await pair.close();
  }
}

async function writeAll(stream: YamuxStream, data: Uint8Array, chunk = 65536, close = true): Promise<void> {
  const writer = stream.writable.getWriter();
  for (let i = 0; i < data.length; i += chunk) await writer.write(data.subarray(i, i + chunk));
  if (close) await writer.close();
  writer.releaseLock();
}

function echo(server: YamuxSession): Promise<void> {
  return (async () => {
    for await (const stream of server) void stream.readable.pipeTo(stream.writable).catch(() => {});
  })();
}

for (const transport of transports) {
  const t = transport.name;

  Deno.test(`YamuxSession echoes one stream with half-close (${t})`, async () => {
    await withSessions(transport, async (client, server) => {
      const serving = echo(server);
      const stream = await client.open();
      assert.equal(stream.id, 1);
      const data = pseudoRandomBytes(3 * 1024 * 1024 + 17, 2);
      const [, got] = await Promise.all([writeAll(stream, data), readAll(stream.readable)]);
      assert.equal(await sha256Hex(got), await sha256Hex(data));
      await stream.closed;
      assert.equal(stream.state, "closed");
      await client.close();
      await serving;
    });
  });

  Deno.test(`YamuxSession runs 50 concurrent streams with distinct data (${t})`, async () => {
    await withSessions(transport, async (client, server) => {
      void echo(server);
      const results = await Promise.all(Array.from({ length: 50 }, async (_, i) => {
        const stream = await client.open();
        const data = pseudoRandomBytes(20_000 + i * 1000, i + 1);
        const [, got] = await Promise.all([writeAll(stream, data, 7000), readAll(stream.readable)]);
        return (await sha256Hex(got)) === (await sha256Hex(data));
      }));
      assert.deepEqual(results, new Array(50).fill(true));
      assert.equal(client.stats().streamsOpened, 50);
      assert.equal(server.stats().streamsAccepted, 50);
    });
  });

  Deno.test(`YamuxSession: the server opens streams too, with even ids (${t})`, async () => {
    await withSessions(transport, async (client, server) => {
      const accepted = client.accept();
      const s1 = await server.open();
      const s2 = await server.open();
      assert.deepEqual([s1.id, s2.id], [2, 4]);
      const c1 = await accepted;
      assert.equal(c1.id, 2);
      await writeAll(s1, utf8("from server"));
      assert.equal(text(await readAll(c1.readable)), "from server");
    });
  });

  Deno.test(`YamuxStream keeps reading after its own half-close (${t})`, async () => {
    await withSessions(transport, async (client, server) => {
      const stream = await client.open();
      await stream.closeWrite();
      assert.equal(stream.state, "localClose");
      const inbound = await server.accept();
      assert.equal(text(await readAll(inbound.readable)), "");
      await writeAll(inbound, utf8("still flowing"));
      assert.equal(text(await readAll(stream.readable)), "still flowing");
      await stream.closed;
      assert.equal(stream.state, "closed");
      await assert.rejects(
        stream.write(utf8("late")),
        (e: unknown) => e instanceof YamuxError && e.code === "STREAM_CLOSED",
      );
    });
  });

  Deno.test(`YamuxStream direct read()/write() carry bytes like the streams (${t})`, async () => {
    await withSessions(transport, async (client, server) => {
      const stream = await client.open();
      const data = pseudoRandomBytes(1_000_000, 5);
      const sending = (async () => {
        for (let i = 0; i < data.length; i += 40_000) await stream.write(data.subarray(i, i + 40_000));
        await stream.closeWrite();
      })();
      const inbound = await server.accept();
      const buf = new Uint8Array(1_000_000 + 10);
      let n = 0;
      for (;;) {
        const k = await inbound.read(buf.subarray(n));
        if (k === null) break;
        n += k;
      }
      await sending;
      assert.equal(n, data.length);
      assert.deepEqual(buf.subarray(0, n), data);
    });
  });

  Deno.test(`YamuxSession.ping() measures a round trip (${t})`, async () => {
    await withSessions(transport, async (client, server) => {
      const rtts = [await client.ping(), await server.ping(), await client.ping()];
      for (const rtt of rtts) assert.ok(rtt >= 0 && rtt < 5000);
      assert.equal(typeof client.stats().lastPingRttMs, "number");
    });
  });

  Deno.test(`YamuxStream.reset() fails the peer's reads with a remote STREAM_RESET (${t})`, async () => {
    await withSessions(transport, async (client, server) => {
      const stream = await client.open();
      await stream.write(utf8("partial"));
      const inbound = await server.accept();
      stream.reset();
      assert.equal(stream.state, "reset");
      const error = await readAll(inbound.readable).catch((e) => e);
      assert.ok(error instanceof YamuxError);
      assert.equal(error.code, "STREAM_RESET");
      assert.equal(error.remote, true);
      await assert.rejects(
        stream.write(utf8("x")),
        (e: unknown) => e instanceof YamuxError && e.code === "STREAM_RESET",
      );
      // The session is unaffected.
      void echo(server);
      const other = await client.open();
      await writeAll(other, utf8("ok"));
      assert.equal(text(await readAll(other.readable)), "ok");
    });
  });

  Deno.test(`YamuxSession: a peer's GoAway refuses new opens but keeps streams (${t})`, async () => {
    await withSessions(transport, async (client, server) => {
      const stream = await client.open();
      const inbound = await server.accept();
      await server.goAway();
      await withTimeout(
        (async () => {
          while (!client.stats().goAwayReceived) await client.ping();
        })(),
        5000,
        "GoAway arrival",
      );
      await assert.rejects(
        client.open(),
        (e: unknown) => e instanceof YamuxError && e.code === "GO_AWAY" && e.remote,
      );
      // Existing streams continue both ways.
      await writeAll(stream, utf8("after goaway"));
      assert.equal(text(await readAll(inbound.readable)), "after goaway");
      await writeAll(inbound, utf8("reply"));
      assert.equal(text(await readAll(stream.readable)), "reply");
    });
  });

  Deno.test(`YamuxSession: after our GoAway, the peer's new streams are reset (${t})`, async () => {
    await withSessions(transport, async (client, server) => {
      await server.goAway();
      await client.ping(); // the GoAway is ahead of the pong
      const late = await client.open().catch((e) => e);
      // Either open() already knows about the GoAway, or the SYN is refused with RST.
      if (late instanceof YamuxError) {
        assert.equal(late.code, "GO_AWAY");
      } else {
        const error = await readAll(late.readable).catch((e) => e);
        assert.equal(error.code, "STREAM_RESET");
      }
    });
  });

  Deno.test(`YamuxSession.close() flushes written data and FIN before closing (${t})`, async () => {
    await withSessions(transport, async (client, server) => {
      const data = pseudoRandomBytes(200_000, 9);
      const stream = await client.open();
      const writer = stream.writable.getWriter();
      await writer.write(data); // fits the initial window: queued without waiting
      await writer.close();
      const inbound = await server.accept();
      await client.close();
      assert.deepEqual(await readAll(inbound.readable), data);
      await server.closed;
    });
  });

  Deno.test(`YamuxSession.close() fails unfinished streams with SESSION_CLOSED, never a clean end (${t})`, async () => {
    await withSessions(transport, async (client, server) => {
      const stream = await client.open();
      await stream.write(utf8("no fin"));
      const inbound = await server.accept();
      const reader = inbound.readable.getReader();
      assert.equal(text((await reader.read()).value!), "no fin");
      await client.close();
      await assert.rejects(
        reader.read(),
        (e: unknown) => e instanceof YamuxError && e.code === "SESSION_CLOSED",
      );
      await assert.rejects(stream.write(utf8("x")), (e: unknown) => e instanceof YamuxError);
      await assert.rejects(
        client.open(),
        (e: unknown) => e instanceof YamuxError && e.code === "SESSION_CLOSED",
      );
      await assert.rejects(
        client.accept(),
        (e: unknown) => e instanceof YamuxError && e.code === "SESSION_CLOSED",
      );
      assert.equal(client.error, undefined);
    });
  });

  Deno.test(`YamuxSession iteration ends quietly when the session closes (${t})`, async () => {
    await withSessions(transport, async (client, server) => {
      const seen: number[] = [];
      const iterating = (async () => {
        for await (const s of server) seen.push(s.id);
      })();
      await client.open();
      await client.open();
      await client.ping();
      await server.close();
      await iterating;
      assert.deepEqual(seen, [1, 3]);
    });
  });

  Deno.test(`YamuxSession: a slow reader buffers at most one window (${t})`, async () => {
    const window = 512 * 1024;
    await withSessions(transport, async (client, server) => {
      const stream = await client.open();
      const inbound = server.accept();
      const data = pseudoRandomBytes(8 * 1024 * 1024, 4);
      let written = 0;
      const writing = (async () => {
        for (let i = 0; i < data.length; i += 65536) {
          await stream.write(data.subarray(i, i + 65536));
          written += 65536;
        }
        await stream.closeWrite();
      })();
      const peer = await inbound;
      // Nobody reads: the writer must stall at the window.
      await withTimeout(
        (async () => {
          while (peer.buffered < window) await client.ping();
        })(),
        5000,
        "window filling",
      );
      for (let i = 0; i < 5; i++) await client.ping();
      assert.equal(peer.buffered, window);
      assert.ok(written <= window + 65536, `wrote ${written} without a reader`);
      assert.equal(stream.sendWindow, 0);
      // Now read slowly; memory never exceeds the window.
      const reader = peer.readable.getReader({ mode: "byob" });
      let got = 0;
      let buf = new Uint8Array(100_000);
      let peak = 0;
      for (;;) {
        peak = Math.max(peak, peer.buffered);
        const { value, done } = await reader.read(buf);
        if (done) break;
        got += value!.byteLength;
        buf = new Uint8Array(value!.buffer);
      }
      await writing;
      assert.equal(got, data.length);
      assert.ok(peak <= window, `peak buffered ${peak}`);
    }, { client: { maxStreamWindow: window }, server: { maxStreamWindow: window } });
  });

  Deno.test(`YamuxSession: a FIN shares one transport write with the next stream's SYN and data (${t})`, async () => {
    await withSessions(transport, async (client, server) => {
      void echo(server);
      const first = await client.open();
      await first.write(utf8("a"));
      const reply = new Uint8Array(1);
      assert.equal(await first.read(reply), 1);
      const before = client.stats().transportWrites;
      await first.closeWrite(); // settles once the FIN is queued
      const second = await client.open();
      await second.write(utf8("b"));
      assert.equal(await second.read(reply), 1);
      assert.equal(text(reply), "b");
      assert.equal(client.stats().transportWrites - before, 1, "FIN, SYN and data in one write");
      assert.equal(await first.read(reply), null, "the first stream still ends cleanly");
    });
  });

  Deno.test(`YamuxSession gathers bulk chunks into large transport writes (${t})`, async () => {
    const window = 16 * 1024 * 1024;
    await withSessions(transport, async (client, server) => {
      const received = (async () => {
        const stream = await server.accept();
        return (await readAll(stream.readable)).byteLength;
      })();
      const stream = await client.open();
      const total = 4 * 1024 * 1024;
      const before = client.stats().transportWrites;
      await writeAll(stream, pseudoRandomBytes(total, 9), 65536);
      assert.equal(await received, total);
      const writes = client.stats().transportWrites - before;
      // 64 chunks of 64 KiB; about 256 KiB go out per write (one write per chunk without gathering).
      assert.ok(writes <= 40, `${writes} transport writes for 64 chunks`);
    }, { client: { maxStreamWindow: window }, server: { maxStreamWindow: window } });
  });

  Deno.test(`YamuxSession grants a larger window with the SYN/ACK delta (${t})`, async () => {
    const window = 4 * 1024 * 1024;
    await withSessions(transport, async (client, server) => {
      const stream = await client.open();
      const inbound = await server.accept();
      await client.ping();
      assert.equal(stream.sendWindow, window);
      assert.equal((await server.open()).sendWindow, 262144 + 0); // client grants only 256 KiB
      await stream.write(new Uint8Array(window)); // whole window without any reader
      await client.ping();
      assert.equal(inbound.buffered, window);
    }, { server: { maxStreamWindow: window } });
  });

  Deno.test(`YamuxSession shares the connection fairly between bulk streams (${t})`, async () => {
    await withSessions(transport, async (client, server) => {
      const count = 8;
      const perStream = 4 * 1024 * 1024;
      const received = new Array<number>(count).fill(0);
      let firstDone = -1;
      const readers = (async () => {
        const tasks: Promise<void>[] = [];
        for (let i = 0; i < count; i++) {
          const s = await server.accept();
          const index = (s.id - 1) / 2;
          tasks.push((async () => {
            const buf = new Uint8Array(65536);
            for (;;) {
              const n = await s.read(buf);
              if (n === null) break;
              received[index]! += n;
            }
            if (firstDone < 0) firstDone = index;
          })());
        }
        await Promise.all(tasks);
      })();
      const snapshot: number[] = [];
      const chunk = new Uint8Array(65536);
      await Promise.all(Array.from({ length: count }, async () => {
        const s = await client.open();
        for (let sent = 0; sent < perStream; sent += chunk.length) await s.write(chunk);
        if (snapshot.length === 0) snapshot.push(...received);
        await s.closeWrite();
      }));
      await readers;
      const mean = snapshot.reduce((a, b) => a + b, 0) / count;
      for (const bytes of snapshot) {
        assert.ok(
          Math.abs(bytes - mean) <= 0.1 * mean + 65536 * 2,
          `share ${bytes} vs mean ${mean}: ${snapshot}`,
        );
      }
    }, { client: { maxStreamWindow: 1 << 20 }, server: { maxStreamWindow: 1 << 20 } });
  });

  Deno.test(`YamuxSession.accept() and open() honour an AbortSignal (${t})`, async () => {
    await withSessions(transport, async (client, server) => {
      const controller = new AbortController();
      const pending = server.accept({ signal: controller.signal });
      controller.abort(new Error("stop waiting"));
      await assert.rejects(pending, /stop waiting/);
      await assert.rejects(
        client.open({ signal: AbortSignal.abort() }),
        (e: unknown) => (e as Error).name === "AbortError",
      );
      // Opens block at acceptBacklog un-ACKed SYNs... here one slot, one waiting opener.
      const ping = client.ping({ signal: AbortSignal.abort() });
      await assert.rejects(ping);
    });
  });
}
