import assert from "node:assert/strict";
import { fromDenoConn, Http2Connection, Http2Error, type Http2Stream, serveHttp2 } from "../../mod.ts";
import { ignoreUnless, readAll, text, utf8, withTimeout } from "../_util.ts";

const GET: [string, string][] = [[":method", "GET"], [":scheme", "http"], [":authority", "t"], [
  ":path",
  "/",
]];

async function hello(stream: Http2Stream): Promise<void> {
  stream.respond({ ":status": "200" });
  const w = stream.writable.getWriter();
  await w.write(utf8(`hello ${stream.headers.find(([n]) => n === ":path")![1]}`));
  await w.close();
}

async function connect(port: number): Promise<Http2Connection> {
  return Http2Connection.client(fromDenoConn(await Deno.connect({ hostname: "127.0.0.1", port })));
}

Deno.test("serveHttp2() serves h2c with prior knowledge and shuts down gracefully", async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  const server = serveHttp2({ hostname: "127.0.0.1", port: 0 }, async (stream) => {
    if (stream.headers.some(([n, v]) => n === ":path" && v === "/slow")) await gate;
    await hello(stream);
  });
  const client = await connect(server.addr.port);
  const fast = await client.request(GET, { endStream: true });
  assert.equal(text(await readAll(fast.readable)), "hello /");
  const slow = await client.request([...GET.slice(0, 3), [":path", "/slow"]], { endStream: true });
  await client.ping();
  assert.equal(server.connections, 1);
  // Shutdown: GOAWAY now, but the in-flight request still completes.
  const shutdown = server.shutdown();
  await withTimeout(
    (async () => {
      while (
        !(await client.request(GET, { endStream: true }).then(() => false, (e) => e instanceof Http2Error))
      ) {
        await client.ping();
      }
    })(),
    3000,
    "new requests refused",
  );
  release();
  assert.equal(text(await readAll(slow.readable)), "hello /slow");
  await withTimeout(shutdown, 5000, "shutdown");
  await withTimeout(client.closed, 5000, "client closed");
  await server.finished;
  assert.equal(server.connections, 0);
  await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: server.addr.port }));
});

Deno.test("serveHttp2() shutdown signal aborts connections that do not drain", async () => {
  const server = serveHttp2({ hostname: "127.0.0.1", port: 0 }, () => {
    // never responds
  });
  const client = await connect(server.addr.port);
  const stream = await client.request(GET, { endStream: true });
  await client.ping();
  const controller = new AbortController();
  const shutdown = server.shutdown({ signal: controller.signal });
  await client.ping();
  controller.abort(new Error("drain took too long"));
  await withTimeout(shutdown, 5000, "shutdown");
  const error = await stream.response.catch((e) => e);
  assert.ok(error instanceof Http2Error);
  await withTimeout(client.closed, 5000, "client closed");
});

Deno.test("serveHttp2() resets the stream when a handler throws", async () => {
  const errors: unknown[] = [];
  await using server = serveHttp2({ hostname: "127.0.0.1", port: 0, onError: (e) => errors.push(e) }, () => {
    throw new Error("handler bug");
  });
  await using client = await connect(server.addr.port);
  const stream = await client.request(GET, { endStream: true });
  const error = await stream.response.catch((e) => e);
  assert.equal(error.code, "INTERNAL_ERROR");
  assert.equal(error.remote, true);
  assert.equal((errors[0] as Error).message, "handler bug");
});

Deno.test("serveHttp2() checks its options", () => {
  assert.throws(() => serveHttp2({ port: 0, cert: "x" }, () => {}), TypeError);
  assert.throws(() => serveHttp2({ port: 0, maxFrameSize: 1 }, () => {}), RangeError);
});

/** Test-only TLS material committed under tests/fixtures/http2 (a throwaway CA and a leaf). */
const FIXTURES = new URL("../fixtures/http2/", import.meta.url).pathname;

Deno.test("serveHttp2() serves TLS with ALPN h2 to our client", async () => {
  const [ca, cert, key] = await Promise.all(
    ["ca.pem", "cert.pem", "key.pem"].map((f) => Deno.readTextFile(FIXTURES + f)),
  );
  await using server = serveHttp2({ hostname: "127.0.0.1", port: 0, cert: cert!, key: key! }, hello);
  const tls = await Deno.connectTls({
    hostname: "127.0.0.1",
    port: server.addr.port,
    caCerts: [ca!],
    alpnProtocols: ["h2"],
  });
  assert.equal((await tls.handshake()).alpnProtocol, "h2");
  await using client = Http2Connection.client(fromDenoConn(tls));
  const stream = await client.request([...GET.slice(0, 3), [":path", "/tls"]], { endStream: true });
  assert.equal(text(await readAll(stream.readable)), "hello /tls");
});

Deno.test({
  name: "serveHttp2() interop: curl over TLS negotiates h2 by ALPN",
  ignore: ignoreUnless("curl"),
  async fn() {
    const [cert, key] = await Promise.all(
      ["cert.pem", "key.pem"].map((f) => Deno.readTextFile(FIXTURES + f)),
    );
    await using server = serveHttp2({ hostname: "127.0.0.1", port: 0, cert: cert!, key: key! }, hello);
    const out = await new Deno.Command("curl", {
      args: [
        "-sS",
        "--http2",
        "--cacert",
        `${FIXTURES}ca.pem`,
        "-w",
        "|%{http_version}",
        `https://127.0.0.1:${server.addr.port}/curl`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    assert.equal(new TextDecoder().decode(out.stdout), "hello /curl|2");
  },
});
