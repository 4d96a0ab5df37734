/**
 * Self-test of the hashicorp/yamux peer (`tests/interop/yamux_peer/`): two Go processes
 * run every mode against each other, so a failure in the TypeScript interop tests can
 * be blamed on our side, not on the harness.
 */

import assert from "node:assert/strict";
import { ignoreUnless, pseudoRandomBytes, sha256Hex } from "../_util.ts";
import { buildGoPeer } from "./_go.ts";
import { assertPeerOk, type PeerExit, type PeerResult, startPeer } from "./_peer.ts";

const ignore = ignoreUnless("go");

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

/** Runs `yamux_peer -listen` and `yamux_peer -connect` against each other. */
async function goPair(listenArgs: string[], dialArgs: string[]): Promise<[PeerExit, PeerExit]> {
  const bin = await buildGoPeer("yamux_peer");
  await using listener = await startPeer(bin, ["-listen", "127.0.0.1:0", "-timeout", "20s", ...listenArgs], {
    listen: true,
    timeoutMs: 30_000,
  });
  const dialer = await startPeer(bin, [
    "-connect",
    `127.0.0.1:${listener.port}`,
    "-timeout",
    "20s",
    ...dialArgs,
  ], {
    timeoutMs: 30_000,
  });
  return await Promise.all([listener.exit(), dialer.exit()]);
}

function reports(result: PeerResult): StreamReport[] {
  return result.streamReports as StreamReport[];
}

Deno.test({
  name: "yamux_peer echo-client ↔ echo-server: 16 streams × 256 KiB, true half-close, both yamux roles",
  ignore,
  async fn() {
    for (const [serverRole, clientRole] of [["server", "client"], ["client", "server"]]) {
      const [server, client] = await goPair(
        ["-mode", "echo-server", "-yamux", serverRole!],
        ["-mode", "echo-client", "-streams", "16", "-bytes", String(256 << 10), "-yamux", clientRole!],
      );
      const c = assertPeerOk(client, "echo-client");
      assertPeerOk(server, "echo-server");
      assert.equal(reports(c).length, 16);
      for (const r of reports(c)) {
        assert.equal(r.sha256Received, await sha256Hex(pseudoRandomBytes(256 << 10, r.index + 1)));
      }
      assert.equal(server.result.streams, 16);
    }
  },
});

Deno.test({
  name: "yamux_peer source → sink: 3 streams, sha256 matches pseudoRandomBytes()",
  ignore,
  async fn() {
    const size = 1_000_003;
    const [sink, source] = await goPair(["-mode", "sink"], [
      "-mode",
      "source",
      "-streams",
      "3",
      "-bytes",
      String(size),
    ]);
    assertPeerOk(source, "source");
    const s = assertPeerOk(sink, "sink");
    assert.equal(s.bytes, 3 * size);
    const want = await Promise.all([1, 2, 3].map((seed) => sha256Hex(pseudoRandomBytes(size, seed))));
    assert.deepEqual(reports(s).map((r) => r.sha256Received).sort(), want.sort());
  },
});

Deno.test({
  name: "yamux_peer ping reports p50/p99 RTT",
  ignore,
  async fn() {
    const [, pinger] = await goPair(["-mode", "accept-and-hold"], ["-mode", "ping", "-count", "50"]);
    const r = assertPeerOk(pinger, "ping");
    assert.equal(r.pings, 50);
    assert.ok(typeof r.p50Us === "number" && typeof r.p99Us === "number");
  },
});

Deno.test({
  name: "yamux_peer rst: an injected RST fails the peer's Read and Write, the session survives",
  ignore,
  async fn() {
    for (const [senderOpener, receiverOpener] of [["go", "peer"], ["peer", "go"]]) {
      const [receiver, sender] = await goPair(
        ["-mode", "rst", "-dir", "recv", "-opener", receiverOpener!],
        ["-mode", "rst", "-dir", "send", "-opener", senderOpener!, "-bytes", "1000"],
      );
      assertPeerOk(sender, `rst send (opener ${senderOpener})`);
      const r = assertPeerOk(receiver, `rst recv (opener ${receiverOpener})`);
      assert.equal(r.readError, "connection reset");
      assert.equal(r.writeError, "connection reset");
      assert.deepEqual((r.frames as Frames).rstReceived, [r.streamId]);
    }
  },
});

Deno.test({
  name: "yamux_peer goaway: OpenStream after the peer's GoAway is refused, a raw SYN gets RST",
  ignore,
  async fn() {
    const [sender, receiver] = await goPair(["-mode", "goaway", "-dir", "send"], [
      "-mode",
      "goaway",
      "-dir",
      "recv",
      "-bytes",
      "10000",
    ]);
    const s = assertPeerOk(sender, "goaway send");
    const r = assertPeerOk(receiver, "goaway recv");
    assert.equal(r.refusedBy, "OpenStream");
    assert.equal(r.rawSynRefusedByRst, true);
    assert.deepEqual((s.frames as Frames).goAwaySent, [0]);
    assert.equal(s.acceptedAfterGoAway, 0);
  },
});

Deno.test({
  name: "yamux_peer idle -backlog 2 refuses the third stream with RST",
  ignore,
  async fn() {
    const [idle, source] = await goPair(["-mode", "idle", "-backlog", "2"], [
      "-mode",
      "source",
      "-streams",
      "3",
      "-bytes",
      "10",
      "-timeout",
      "1s",
    ]);
    assert.equal(source.result.ok, false); // two streams are never closed by the idle peer
    assert.equal((assertPeerOk(idle, "idle").frames as Frames).rstSent.length, 1);
  },
});
