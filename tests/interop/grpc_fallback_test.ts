/**
 * curl and nghttp2's h2load against a gRPC port's fallback handler (plain HTTP/2
 * requests sharing the port with gRPC), and curl speaking raw gRPC to it.
 */

import assert from "node:assert/strict";
import { encodeEnvelope, serveGrpc } from "../../mod.ts";
import { concat, ignoreUnless, pseudoRandomBytes, sha256Hex } from "../_util.ts";
import { interopServer } from "./grpc_testing/services.ts";

function server() {
  const grpc = interopServer({
    fallback: (request) => {
      const url = new URL(request.url);
      if (url.pathname === "/echo") {
        return new Response(request.body, { headers: { "content-type": "application/octet-stream" } });
      }
      return new Response(`fallback ${request.method} ${url.pathname}`, {
        headers: { "content-type": "text/plain" },
      });
    },
  });
  return serveGrpc({ hostname: "127.0.0.1", port: 0 }, grpc);
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
  name: "curl --http2-prior-knowledge: GET and a 32 MiB POST echo through the fallback, and a raw gRPC call",
  ignore: ignoreUnless("curl"),
  async fn() {
    await using listener = server();
    const base = `http://127.0.0.1:${listener.addr.port}`;
    assert.equal(
      await run("curl", ["-sS", "--http2-prior-knowledge", "-w", "|%{http_version}", `${base}/hi`]),
      "fallback GET /hi|2",
    );
    const dir = await Deno.makeTempDir({ prefix: "grpc_curl" });
    try {
      const data = pseudoRandomBytes(32 << 20, 8);
      await Deno.writeFile(`${dir}/in.bin`, data);
      const status = await run("curl", [
        "-sS",
        "--http2-prior-knowledge",
        "--data-binary",
        `@${dir}/in.bin`,
        "-o",
        `${dir}/out.bin`,
        "-w",
        "%{http_code}",
        `${base}/echo`,
      ]);
      assert.equal(status, "200");
      assert.equal(await sha256Hex(await Deno.readFile(`${dir}/out.bin`)), await sha256Hex(data));
      // A gRPC unary call by hand: the response body is the echoed envelope.
      const envelope = concat(encodeEnvelope(new TextEncoder().encode("raw over curl")));
      await Deno.writeFile(`${dir}/call.bin`, envelope);
      await run("curl", [
        "-sS",
        "--http2-prior-knowledge",
        "-H",
        "content-type: application/grpc+raw",
        "-H",
        "te: trailers",
        "--data-binary",
        `@${dir}/call.bin`,
        "-o",
        `${dir}/reply.bin`,
        `${base}/raw.Raw/Echo`,
      ]);
      assert.deepEqual(await Deno.readFile(`${dir}/reply.bin`), envelope);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "h2load: 2,000 fallback requests from 10 clients and 2,000 gRPC unary calls all succeed",
  ignore: ignoreUnless("h2load"),
  async fn() {
    await using listener = server();
    const url = `http://127.0.0.1:${listener.addr.port}`;
    const summary =
      /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/;
    const plain = await run("h2load", ["-n", "2000", "-c", "10", "-m", "10", `${url}/`]);
    assert.deepEqual(summary.exec(plain)?.slice(1).map(Number), [2000, 2000, 2000, 2000, 0, 0], plain);
    const dir = await Deno.makeTempDir({ prefix: "grpc_h2load" });
    try {
      await Deno.writeFile(`${dir}/call.bin`, concat(encodeEnvelope(new Uint8Array(100))));
      const grpc = await run("h2load", [
        "-n",
        "2000",
        "-c",
        "4",
        "-m",
        "16",
        "-d",
        `${dir}/call.bin`,
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
        `${url}/raw.Raw/Echo`,
      ]);
      assert.deepEqual(summary.exec(grpc)?.slice(1).map(Number), [2000, 2000, 2000, 2000, 0, 0], grpc);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
