import assert from "node:assert/strict";
import { duplexPair, Http2Connection, YamuxSession } from "../../mod.ts";
import { pseudoRandomBytes, readAll, sha256Hex, withTimeout } from "../_util.ts";

const POST: [string, string][] = [[":method", "POST"], [":scheme", "http"], [":authority", "t"], [
  ":path",
  "/echo",
]];

async function echo(server: Http2Connection): Promise<void> {
  const handlers: Promise<void>[] = [];
  for await (const stream of server) {
    handlers.push((async () => {
      stream.respond({ ":status": "200" });
      await stream.readable.pipeTo(stream.writable, { preventClose: true });
      await stream.sendTrailers({ "grpc-status": "0" });
    })());
  }
  await Promise.all(handlers);
}

async function roundTrip(client: Http2Connection, size: number, seed: number): Promise<void> {
  const data = pseudoRandomBytes(size, seed);
  const stream = await client.request(POST);
  const writing = (async () => {
    const w = stream.writable.getWriter();
    for (let i = 0; i < size; i += 100_000) await w.write(data.subarray(i, i + 100_000));
    await w.close();
  })();
  const [got] = await Promise.all([readAll(stream.readable), writing]);
  assert.equal(await sha256Hex(got), await sha256Hex(data));
  assert.deepEqual(await stream.trailers, [["grpc-status", "0"]]);
}

Deno.test("Http2Connection runs over yamux streams in both directions (Gitaly backchannel shape)", async () => {
  const [a, b] = duplexPair();
  const muxClient = YamuxSession.client(a);
  const muxServer = YamuxSession.server(b);
  // Forward: the yamux client dials gRPC-over-HTTP/2 to the yamux server.
  const forwardAccepted = muxServer.accept();
  const forward = Http2Connection.client(await muxClient.open());
  const forwardServer = Http2Connection.server(await forwardAccepted);
  // Backchannel: the yamux server dials back over the same connection.
  const backAccepted = muxClient.accept();
  const back = Http2Connection.client(await muxServer.open());
  const backServer = Http2Connection.server(await backAccepted);
  const serving = [echo(forwardServer), echo(backServer)];
  await Promise.all([
    roundTrip(forward, 3 << 20, 1),
    roundTrip(back, 3 << 20, 2),
    roundTrip(forward, 100_000, 3),
    roundTrip(back, 100_000, 4),
  ]);
  await withTimeout(Promise.all([forward.close(), back.close(), ...serving]), 5000, "http2 close");
  await withTimeout(Promise.all([forwardServer.closed, backServer.closed]), 5000, "servers closed");
  await withTimeout(Promise.all([muxClient.close(), muxServer.closed]), 5000, "yamux close");
});
