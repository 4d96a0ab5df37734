/**
 * Interop with peers we did not write: curl, nghttp2's h2load, and Node's node:http2 (as a
 * separate `node` process, both roles).
 */

import assert from "node:assert/strict";
import { fromDenoConn, Http2Connection, type Http2Server, type Http2Stream, serveHttp2 } from "../../mod.ts";
import { ignoreUnless, pseudoRandomBytes, readAll, sha256Hex, text, utf8, withTimeout } from "../_util.ts";

const NODE_PEER = new URL("../interop/node_http2/", import.meta.url).pathname;

/** GET anything → "hello <path>"; POST /echo → the body back, then trailers. */
async function handler(stream: Http2Stream): Promise<void> {
  const path = stream.headers.find(([n]) => n === ":path")?.[1] ?? "";
  if (path === "/echo") {
    stream.respond({ ":status": "200", "content-type": "application/octet-stream" });
    await stream.readable.pipeTo(stream.writable, { preventClose: true });
    await stream.sendTrailers({ "x-echo": "done" });
    return;
  }
  stream.respond({ ":status": "200", "content-type": "text/plain" });
  const w = stream.writable.getWriter();
  await w.write(utf8(`hello ${path}`));
  await w.close();
}

function serve(): Http2Server {
  return serveHttp2({ hostname: "127.0.0.1", port: 0, closeTimeout: 1000 }, handler);
}

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} failed (${out.code}): ${new TextDecoder().decode(out.stderr)}\n${stdout}`);
  }
  return stdout;
}

Deno.test({
  name: "serveHttp2() interop: curl --http2-prior-knowledge GET and a 64 MiB POST echo",
  ignore: ignoreUnless("curl"),
  async fn() {
    await using server = serve();
    const base = `http://127.0.0.1:${server.addr.port}`;
    const got = await run("curl", ["-sS", "--http2-prior-knowledge", "-w", "|%{http_version}", `${base}/hi`]);
    assert.equal(got, "hello /hi|2");
    const dir = await Deno.makeTempDir({ prefix: "h2curl" });
    try {
      const data = pseudoRandomBytes(64 << 20, 11);
      await Deno.writeFile(`${dir}/in.bin`, data);
      const status = await run("curl", [
        "-sS",
        "--http2-prior-knowledge",
        "--data-binary",
        `@${dir}/in.bin`,
        "-H",
        "content-type: application/octet-stream",
        "-o",
        `${dir}/out.bin`,
        "-w",
        "%{http_code} %{http_version}",
        `${base}/echo`,
      ]);
      assert.equal(status, "200 2");
      const echoed = await Deno.readFile(`${dir}/out.bin`);
      assert.equal(echoed.byteLength, data.byteLength);
      assert.equal(await sha256Hex(echoed), await sha256Hex(data));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "serveHttp2() interop: h2load 1000 requests from 10 clients all succeed",
  ignore: ignoreUnless("h2load"),
  async fn() {
    await using server = serve();
    const out = await run("h2load", [
      "-n",
      "1000",
      "-c",
      "10",
      "-m",
      "10",
      `http://127.0.0.1:${server.addr.port}/`,
    ]);
    const match =
      /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/
        .exec(out);
    assert.ok(match, out);
    assert.deepEqual(match.slice(1).map(Number), [1000, 1000, 1000, 1000, 0, 0], out);
  },
});

Deno.test({
  name: "serveHttp2() interop: node:http2 client (node process) GET and an 8 MiB echo with trailers",
  ignore: ignoreUnless("node"),
  async fn() {
    await using server = serve();
    const out = await run("node", [`${NODE_PEER}client.mjs`, String(server.addr.port), String(8 << 20)]);
    const result = JSON.parse(out);
    assert.equal(result.getStatus, 200);
    assert.equal(result.getBody, "hello /hello");
    assert.equal(result.echoStatus, 200);
    assert.equal(result.echoBytes, 8 << 20);
    assert.equal(result.echoMatch, true);
    assert.equal(result.trailers["x-echo"], "done");
  },
});

Deno.test({
  name: "Http2Connection.client() interop: against a node:http2 server (node process)",
  ignore: ignoreUnless("node"),
  async fn() {
    const child = new Deno.Command("node", {
      args: [`${NODE_PEER}server.mjs`],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    try {
      let banner = "";
      while (!banner.includes("\n")) {
        const { value, done } = await withTimeout(lines.read(), 10_000, "node server start");
        if (done) throw new Error("node server exited");
        banner += value;
      }
      const port = Number(/PORT (\d+)/.exec(banner)![1]);
      const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
      const client = Http2Connection.client(fromDenoConn(tcp));
      const authority = `127.0.0.1:${port}`;
      const get = await client.request(
        { ":method": "GET", ":scheme": "http", ":authority": authority, ":path": "/" },
        { endStream: true },
      );
      assert.equal((await get.response).find(([n]) => n === ":status")![1], "200");
      assert.equal(text(await readAll(get.readable)), "hello from node");
      const data = pseudoRandomBytes(8 << 20, 3);
      const echo = await client.request({
        ":method": "POST",
        ":scheme": "http",
        ":authority": authority,
        ":path": "/echo",
      });
      const writing = (async () => {
        const w = echo.writable.getWriter();
        for (let i = 0; i < data.length; i += 1 << 20) await w.write(data.subarray(i, i + (1 << 20)));
        await w.close();
      })();
      const [got] = await Promise.all([readAll(echo.readable), writing]);
      assert.equal(await sha256Hex(got), await sha256Hex(data));
      assert.deepEqual(await echo.trailers, [["x-node", "trailer"]]);
      assert.ok((await client.ping()) >= 0);
      await withTimeout(client.close(), 5000, "client close");
    } finally {
      lines.releaseLock();
      await child.stdout.cancel().catch(() => {});
      await child.stdin.close().catch(() => {});
      await child.status;
    }
  },
});
