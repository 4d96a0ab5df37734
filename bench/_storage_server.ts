/**
 * The server side of `bench/transport_bench.ts`, run as a subprocess so that its CPU
 * time and peak memory can be read from `/proc/<pid>` without the client's share:
 *
 *     deno run -A bench/_storage_server.ts <storage root> <repository> [http2 options JSON]
 *
 * Serves a StorageServer (gRPC + backchannel on one port, V3 on a second one) for the
 * storage `bench` at `<storage root>`, a second one with `sidechannelWriteBuffer: 0`,
 * and the baseline on a fourth port: a connection
 * sends a request and half-closes, the server runs `git upload-pack --stateless-rpc` on
 * `<repository>` through `Deno.Command` with it and copies git's stdout to the socket
 * (one reused 64 KiB buffer, BYOB reads), then closes. Prints one JSON line with the
 * ports and its pid, and serves until stdin closes.
 *
 * @module
 */

import { StorageServer } from "../mod.ts";

const [root, repository] = Deno.args;
if (root === undefined || repository === undefined) {
  throw new TypeError("usage: _storage_server.ts <storage root> <repository>");
}
const server = await StorageServer.start({
  storages: { bench: root },
  hostname: "127.0.0.1",
  port: 0,
  v3Port: 0,
});
/** The same, writing each read of git's pipe to the sidechannel on its own (as Gitaly does). */
const unbuffered = await StorageServer.start({
  storages: { bench: root },
  hostname: "127.0.0.1",
  port: 0,
  sidechannelWriteBuffer: 0,
});

const env = {
  PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_CONFIG_SYSTEM: "/dev/null",
  LANG: "en_US.UTF-8",
};

/** The baseline: git's stdout straight to the socket. */
async function direct(conn: Deno.TcpConn): Promise<void> {
  try {
    const parts: Uint8Array[] = [];
    const scratch = new Uint8Array(4096);
    for (let n = await conn.read(scratch); n !== null; n = await conn.read(scratch)) {
      parts.push(scratch.slice(0, n));
    }
    const request = new Uint8Array(parts.reduce((sum, p) => sum + p.byteLength, 0));
    parts.reduce((offset, p) => (request.set(p, offset), offset + p.byteLength), 0);
    const child = new Deno.Command("git", {
      args: ["upload-pack", "--stateless-rpc", repository!],
      env,
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(request);
    await writer.close();
    const reader = child.stdout.getReader({ mode: "byob" });
    let buffer = new ArrayBuffer(64 * 1024);
    for (;;) {
      const { value, done } = await reader.read(new Uint8Array(buffer));
      if (done) break;
      for (let offset = 0; offset < value.byteLength;) offset += await conn.write(value.subarray(offset));
      buffer = value.buffer as ArrayBuffer;
    }
    await child.status;
  } finally {
    try {
      conn.close();
    } catch {
      // closed by the client
    }
  }
}

const directListener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
void (async () => {
  for await (const conn of directListener) void direct(conn).catch(() => {});
})();

Deno.stdout.writeSync(
  new TextEncoder().encode(
    JSON.stringify({
      pid: Deno.pid,
      port: server.addr.port,
      v3Port: server.v3Addr!.port,
      unbufferedPort: unbuffered.addr.port,
      directPort: (directListener.addr as Deno.NetAddr).port,
    }) + "\n",
  ),
);
for await (const _ of Deno.stdin.readable) {
  // serve until the parent closes our stdin
}
directListener.close();
await Promise.all([server, unbuffered].map((s) => s.shutdown({ signal: AbortSignal.timeout(5000) })));
