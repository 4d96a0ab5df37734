/**
 * Random frames against both roles: whatever arrives, the connection answers or closes
 * with a typed error, never an unhandled rejection (run with --trace-leaks).
 */

import assert from "node:assert/strict";
import { duplexPair, Http2Connection } from "../../mod.ts";
import {
  CONNECTION_PREFACE,
  encodeSettings,
  FRAME_HEADER_SIZE,
  writeFrameHeader,
} from "../../src/http2/frame.ts";
import { withTimeout } from "../_util.ts";
import { RawPeer } from "./_raw.ts";

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function randomFrame(next: () => number, peer: RawPeer): Uint8Array {
  const pick = next();
  if (pick < 0.15) {
    // A plausible request, so streams exist for the other frames to hit.
    const id = 1 + 2 * Math.floor(next() * 20);
    const block = peer.encoder.encode([[":method", "POST"], [":scheme", "http"], [":authority", "f"], [
      ":path",
      "/",
    ]]);
    const out = new Uint8Array(FRAME_HEADER_SIZE + block.byteLength);
    writeFrameHeader(out, 0, {
      length: block.byteLength,
      type: 1,
      flags: 4 | (next() < 0.3 ? 1 : 0),
      streamId: id,
    });
    out.set(block, FRAME_HEADER_SIZE);
    return out;
  }
  const type = Math.floor(next() * 11);
  const length = next() < 0.8 ? Math.floor(next() * 24) : Math.floor(next() * 20000);
  const out = new Uint8Array(FRAME_HEADER_SIZE + length);
  for (let i = FRAME_HEADER_SIZE; i < out.length; i++) out[i] = Math.floor(next() * 256);
  writeFrameHeader(out, 0, {
    length,
    type,
    flags: Math.floor(next() * 256),
    streamId: next() < 0.3 ? 0 : Math.floor(next() * 42),
  });
  return out;
}

for (const role of ["server", "client"] as const) {
  Deno.test(`Http2Connection (${role}) survives random frames without unhandled errors`, async () => {
    const outcomes = new Map<string, number>();
    for (let seed = 1; seed <= 60; seed++) {
      const next = rng(seed * 7919);
      const [a, b] = duplexPair();
      const conn = role === "server"
        ? Http2Connection.server(a, { closeTimeout: 100, settingsTimeout: 500 })
        : Http2Connection.client(a, { closeTimeout: 100, settingsTimeout: 500 });
      const peer = new RawPeer(b);
      const draining = (async () => {
        while ((await peer.next(3000).catch(() => null)) !== null) {
          // read everything our side writes
        }
      })();
      if (role === "server") {
        void (async () => {
          for await (const s of conn) {
            s.readable.pipeTo(s.writable).catch(() => {});
            s.respond({ ":status": "200" });
          }
        })();
        await peer.send(CONNECTION_PREFACE);
      } else {
        for (let i = 0; i < 3; i++) {
          conn.request({ ":method": "GET", ":scheme": "http", ":authority": "f", ":path": "/" })
            .then((s) => s.response)
            .catch(() => {});
        }
      }
      const frames = [encodeSettings([])];
      for (let i = 0; i < 30; i++) frames.push(randomFrame(next, peer));
      await peer.send(...frames).catch(() => {});
      await peer.send(new Uint8Array(0)).catch(() => {});
      try {
        peer.writer.releaseLock();
      } catch {
        // fine
      }
      await b.writable.close().catch(() => {});
      await withTimeout(conn.closed, 5000, `seed ${seed} closed`);
      await peer.close();
      await draining;
      const code = conn.error?.code ?? "clean";
      outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
    }
    // Most random inputs are protocol violations; all ended in a typed way.
    assert.ok([...outcomes.keys()].every((k) => k === "clean" || /^[A-Z_]+$/.test(k)), [...outcomes].join());
  });
}
