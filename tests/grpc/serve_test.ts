/**
 * serveGrpc() on TCP and TLS, GrpcClient.connect(), the shared port with the fallback,
 * graceful shutdown.
 */

import assert from "node:assert/strict";
import {
  fromDenoConn,
  GrpcClient,
  type GrpcPeer,
  GrpcServer,
  Http2Connection,
  type Http2Headers,
  serveGrpc,
  Status,
} from "../../mod.ts";
import { pseudoRandomBytes, readAll, sha256Hex, text, utf8, withTimeout } from "../_util.ts";
import { grpcError, grpcPair, grpcTransports, RAW, type RawLog, rawServer, until } from "./_setup.ts";

const FIXTURES = new URL("../fixtures/http2/", import.meta.url).pathname;

/** GET → "hello <path>", POST /echo → the body back, /fail → throws, /slow → waits for abort. */
function fallbackServer(aborted: unknown[] = []): GrpcServer {
  return rawServer({
    fallback: async (request, peer) => {
      const url = new URL(request.url);
      if (url.pathname === "/echo") {
        return new Response(request.body, {
          headers: { "content-type": "application/octet-stream", "x-m": request.method },
        });
      }
      if (url.pathname === "/fail") throw new Error("fallback failed");
      if (url.pathname === "/slow") {
        await new Promise((resolve) => request.signal.addEventListener("abort", resolve, { once: true }));
        aborted.push(request.signal.reason);
        return new Response(null, { status: 499 });
      }
      if (url.pathname === "/nobody") return new Response(null, { status: 204 });
      return new Response(`hello ${url.pathname}${url.search} from ${peer.secure ? "tls" : "h2c"}`, {
        headers: { "content-type": "text/plain", "set-cookie": "a=1", "x-host": url.host },
      });
    },
    onError: () => {},
  });
}

async function request(
  client: Http2Connection,
  headers: [string, string][],
  body?: Uint8Array,
): Promise<{ headers: Http2Headers; body: Uint8Array }> {
  const stream = await client.request(
    [[":scheme", "http"], [":authority", "example.test:1234"], ...headers],
    { endStream: body === undefined },
  );
  const writing = body === undefined ? Promise.resolve() : (async () => {
    const w = stream.writable.getWriter();
    for (let i = 0; i < body.byteLength; i += 100_000) await w.write(body.subarray(i, i + 100_000));
    await w.close();
  })();
  const [response, data] = await Promise.all([stream.response, readAll(stream.readable), writing]);
  return { headers: response, body: data };
}

const get = (headers: Http2Headers, name: string) => headers.find(([k]) => k === name)?.[1];

Deno.test("serveGrpc() shares one h2c port between gRPC calls and a Request/Response fallback", async () => {
  await using listener = serveGrpc({ hostname: "127.0.0.1", port: 0 }, fallbackServer());
  const { port } = listener.addr;
  await using grpc = await GrpcClient.connect({ hostname: "127.0.0.1", port });
  assert.deepEqual(await grpc.unary(RAW.echo, utf8("grpc")), utf8("grpc"));
  const conn = Http2Connection.client(fromDenoConn(await Deno.connect({ hostname: "127.0.0.1", port })));
  try {
    const hello = await request(conn, [[":method", "GET"], [":path", "/hi?x=1"]]);
    assert.equal(get(hello.headers, ":status"), "200");
    assert.equal(get(hello.headers, "content-type"), "text/plain");
    assert.equal(get(hello.headers, "set-cookie"), "a=1");
    assert.equal(get(hello.headers, "x-host"), "example.test:1234");
    assert.equal(text(hello.body), "hello /hi?x=1 from h2c");
    const data = pseudoRandomBytes(8 << 20, 4);
    const echo = await request(conn, [[":method", "POST"], [":path", "/echo"]], data);
    assert.equal(get(echo.headers, "x-m"), "POST");
    assert.equal(await sha256Hex(echo.body), await sha256Hex(data));
    const failed = await request(conn, [[":method", "GET"], [":path", "/fail"]]);
    assert.equal(get(failed.headers, ":status"), "500");
    const empty = await request(conn, [[":method", "GET"], [":path", "/nobody"]]);
    assert.equal(get(empty.headers, ":status"), "204");
    assert.equal(empty.body.byteLength, 0);
  } finally {
    await conn.close();
  }
});

Deno.test("The fallback's request.signal aborts when the client resets the stream", async () => {
  const aborted: unknown[] = [];
  const pair = await grpcPair(grpcTransports[0]!, fallbackServer(aborted));
  try {
    const stream = await pair.client.connection.request(
      [[":method", "GET"], [":scheme", "http"], [":authority", "x"], [":path", "/slow"]],
      { endStream: true },
    );
    await pair.client.connection.ping();
    stream.reset("CANCEL");
    await until(() => aborted.length === 1, "the fallback's abort");
    assert.equal((aborted[0] as DOMException).name, "AbortError");
  } finally {
    await pair.close();
  }
});

Deno.test("serveGrpc() serves TLS with ALPN h2; GrpcClient.connect() dials it; peers see addresses", async () => {
  const [ca, cert, key] = await Promise.all(
    ["ca.pem", "cert.pem", "key.pem"].map((f) => Deno.readTextFile(FIXTURES + f)),
  );
  const log: RawLog = { signals: [], peers: [] as GrpcPeer[], aborted: [] };
  await using listener = serveGrpc(
    { hostname: "127.0.0.1", port: 0, cert: cert!, key: key! },
    rawServer({}, log),
  );
  await using client = await GrpcClient.connect({
    hostname: "127.0.0.1",
    port: listener.addr.port,
    tls: { caCerts: [ca!] },
  });
  const data = pseudoRandomBytes(1 << 20, 2);
  assert.deepEqual(await client.unary(RAW.echo, data), data);
  const peer = log.peers[0]!;
  assert.equal(peer.secure, true);
  assert.equal((peer.localAddr as Deno.NetAddr).port, listener.addr.port);
  assert.equal((peer.remoteAddr as Deno.NetAddr).hostname, "127.0.0.1");
  // An untrusted certificate fails the dial with UNAVAILABLE.
  const error = await grpcError(
    GrpcClient.connect({ hostname: "127.0.0.1", port: listener.addr.port, tls: true }),
  );
  assert.equal(error.code, Status.UNAVAILABLE);
});

Deno.test("GrpcClient.connect() to a closed port fails with UNAVAILABLE", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  assert.equal((await grpcError(GrpcClient.connect({ port }))).code, Status.UNAVAILABLE);
});

Deno.test("serveGrpc() shutdown lets an open call finish, then refuses new connections", async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  const server = new GrpcServer().handle(RAW.echo, async (request) => {
    await gate;
    return request;
  });
  const listener = serveGrpc({ hostname: "127.0.0.1", port: 0 }, server);
  const client = await GrpcClient.connect({ port: listener.addr.port });
  const call = client.unary(RAW.echo, utf8("in flight"));
  await client.connection.ping();
  const shutdown = listener.shutdown();
  release();
  assert.deepEqual(await call, utf8("in flight"));
  await withTimeout(shutdown, 5000, "shutdown");
  await client.closed;
  assert.equal(listener.connections, 0);
  await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }));
});

Deno.test("serveGrpc() validates its options", () => {
  assert.throws(() => serveGrpc({ port: 0, cert: "x" }, new GrpcServer()), TypeError);
  assert.throws(() => serveGrpc({ port: 0, initialWindowSize: -1 }, new GrpcServer()), RangeError);
});

Deno.test("GrpcServer.handle() refuses a second handler for a path; options are validated", () => {
  const server = new GrpcServer().handle(RAW.echo, (r) => r);
  assert.throws(() => server.handle(RAW.echo, (r) => r), TypeError);
  assert.deepEqual(server.paths, ["/raw.Raw/Echo"]);
  assert.throws(() => new GrpcServer({ maxReceiveMessageBytes: -1 }), RangeError);
  assert.throws(() => new GrpcServer({ maxSendMessageBytes: 2 ** 32 }), RangeError);
  assert.throws(() => new GrpcServer({ fallback: "no" as never }), TypeError);
  const a = new TransformStream<Uint8Array, Uint8Array>();
  assert.throws(() => new GrpcClient(a, { maxReceiveMessageBytes: 1.5 }), RangeError);
  assert.throws(() => new GrpcClient(a, { scheme: "ftp" as never }), TypeError);
});
