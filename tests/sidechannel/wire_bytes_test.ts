/**
 * The bytes on the wire of one sidechannel call, checked against gitaly.md §2.5: the
 * magic, yamux SYN/ACK window deltas, the sidechannel preamble, `ok`, pkt framing and
 * FINs, and the id in the HTTP/2 request headers.
 */

import assert from "node:assert/strict";
import {
  BackchannelClient,
  BackchannelServer,
  callWithSidechannel,
  type DirectIo,
  type DuplexConn,
  duplexPair,
  HpackDecoder,
  openSidechannelForCall,
  SidechannelRegistry,
} from "../../mod.ts";
import { concat, readAll, text, utf8 } from "../_util.ts";
import { SC, sidechannelServer } from "./_harness.ts";

/** A duplex that records everything written through it. */
function tap(inner: DuplexConn & DirectIo, log: Uint8Array[]): DuplexConn & DirectIo {
  return {
    readable: inner.readable,
    writable: inner.writable,
    closed: inner.closed,
    close: () => inner.close(),
    reset: (reason?: unknown) => inner.reset(reason),
    read: (p) => inner.read(p),
    write: (p) => {
      log.push(p.slice());
      return inner.write(p);
    },
    closeWrite: () => inner.closeWrite(),
  };
}

interface Frame {
  type: number;
  flags: number;
  stream: number;
  length: number;
  payload: Uint8Array;
  /** The 12 header bytes as hex, grouped like gitaly.md: `00 01 0001 00000001 00000000`. */
  hex: string;
}

function parseYamux(bytes: Uint8Array): Frame[] {
  const frames: Frame[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at < bytes.byteLength) {
    assert.ok(at + 12 <= bytes.byteLength, "truncated yamux header");
    const h = bytes.subarray(at, at + 12);
    const hexOf = (a: number, b: number) =>
      [...h.subarray(a, b)].map((x) => x.toString(16).padStart(2, "0")).join("");
    const type = view.getUint8(at + 1);
    const length = view.getUint32(at + 8);
    const payloadLength = type === 0 ? length : 0;
    frames.push({
      type,
      flags: view.getUint16(at + 2),
      stream: view.getUint32(at + 4),
      length,
      payload: bytes.subarray(at + 12, at + 12 + payloadLength),
      hex: `${hexOf(0, 1)} ${hexOf(1, 2)} ${hexOf(2, 4)} ${hexOf(4, 8)} ${hexOf(8, 12)}`,
    });
    assert.equal(view.getUint8(at), 0, "yamux version");
    at += 12 + payloadLength;
  }
  return frames;
}

function streamData(frames: Frame[], stream: number): Uint8Array {
  return concat(frames.filter((f) => f.stream === stream && f.type === 0).map((f) => f.payload));
}

/** The request headers of the first HTTP/2 HEADERS frame in a client's stream-1 bytes. */
function firstRequestHeaders(h2: Uint8Array): [string, string][] {
  const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  assert.equal(text(h2.subarray(0, 24)), preface);
  const decoder = new HpackDecoder();
  let at = 24;
  while (at < h2.byteLength) {
    const length = (h2[at]! << 16) | (h2[at + 1]! << 8) | h2[at + 2]!;
    const type = h2[at + 3]!;
    const flags = h2[at + 4]!;
    let payload = h2.subarray(at + 9, at + 9 + length);
    if (type === 1) {
      if (flags & 0x8) payload = payload.subarray(1, payload.byteLength - payload[0]!);
      if (flags & 0x20) payload = payload.subarray(5);
      return decoder.decode(payload);
    }
    at += 9 + length;
  }
  throw new Error("no HEADERS frame");
}

Deno.test("sidechannel wire bytes of one call match gitaly.md §2.5", async () => {
  const up: Uint8Array[] = []; // client → server
  const down: Uint8Array[] = []; // server → client
  const [a, b] = duplexPair();
  const server = sidechannelServer({
    custom: async (_request, call) => {
      const conn = await openSidechannelForCall(call);
      assert.equal(text(await readAll(conn.readable)), "hello");
      await conn.write(utf8("world"));
      await conn.close();
      return new Uint8Array(0);
    },
  });
  const backchannel = new BackchannelServer(server);
  const served = backchannel.serveConnection(tap(b, down));
  const registry = new SidechannelRegistry();
  // A few registrations first, so the id on the wire is not 0.
  for (let i = 0; i < 5; i++) await assert.rejects(registry.register(() => {}).close());
  const client = await BackchannelClient.connect(tap(a, up), { handshakers: { sidechannel: registry } });
  const { peer } = await served;
  let response = "";
  await callWithSidechannel(registry, async (conn) => {
    await conn.write(utf8("hello"));
    await conn.closeWrite();
    response = text(await readAll(conn.readable));
  }, (metadata) => client.grpc.unary(SC.custom, new Uint8Array(0), { metadata }));
  assert.equal(response, "world");
  await client.close();
  await peer!.closed;

  const upBytes = concat(up);
  const downBytes = concat(down);
  // 1. The magic, alone, before any yamux frame.
  assert.equal(text(up[0]!), "backchannel");
  assert.deepEqual([...upBytes.subarray(0, 11)], [
    0x62,
    0x61,
    0x63,
    0x6b,
    0x63,
    0x68,
    0x61,
    0x6e,
    0x6e,
    0x65,
    0x6c,
  ]);
  const upFrames = parseYamux(upBytes.subarray(11));
  const downFrames = parseYamux(downBytes);

  // 2. Stream 1: the client's SYN (256 KiB window: delta 0), the server's ACK (16 MiB: 0x00FC0000).
  assert.equal(upFrames[0]!.hex, "00 01 0001 00000001 00000000");
  assert.ok(downFrames.some((f) => f.hex === "00 01 0002 00000001 00fc0000"), "server ACK of stream 1");

  // 3. The sidechannel stream: the server's SYN with its window, the client's ACK.
  const syn = downFrames.find((f) => (f.flags & 1) !== 0 && f.stream !== 0)!;
  assert.equal(syn.stream, 2);
  assert.equal(syn.hex, "00 01 0001 00000002 00fc0000");
  assert.ok(upFrames.some((f) => f.hex === "00 01 0002 00000002 00000000"), "client ACK of stream 2");

  // 4. Server → client on stream 2: "sidechannel" + int64 BE id 5, then the raw response, then FIN.
  const serverData = streamData(downFrames, 2);
  assert.deepEqual(
    [...serverData.subarray(0, 19)],
    [...utf8("sidechannel"), 0, 0, 0, 0, 0, 0, 0, 5],
  );
  assert.equal(text(serverData.subarray(19)), "world");
  const serverFin = downFrames.filter((f) => f.stream === 2 && (f.flags & 4) !== 0);
  assert.deepEqual(serverFin.map((f) => f.hex), ["00 01 0004 00000002 00000000"]);
  const lastServerData = downFrames.findLastIndex((f) => f.stream === 2 && f.type === 0);
  assert.ok(downFrames.indexOf(serverFin[0]!) > lastServerData, "FIN after the data");

  // 5. Client → server on stream 2: "ok", the pkt-framed request, "0000"; then its FIN.
  assert.equal(text(streamData(upFrames, 2)), "ok0009hello0000");
  assert.ok(upFrames.some((f) => f.hex === "00 01 0004 00000002 00000000"), "client FIN of stream 2");
  assert.ok(!upFrames.concat(downFrames).some((f) => f.stream === 2 && (f.flags & 8) !== 0), "no RST");

  // 6. The call on stream 1 carries gitaly-sidechannel-id: 5.
  const headers = firstRequestHeaders(streamData(upFrames, 1));
  assert.ok(headers.some(([k, v]) => k === ":path" && v === "/sc.Test/Custom"));
  assert.deepEqual(headers.filter(([k]) => k === "gitaly-sidechannel-id"), [["gitaly-sidechannel-id", "5"]]);
});
