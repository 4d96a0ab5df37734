/**
 * The far end of `yamux_bench.ts`, run as a separate process so each side has a core.
 * Prints its port on the first stdout line, then serves loopback TCP connections whose
 * first byte picks the protocol:
 *
 * - `r`: raw sink: read to EOF, reply with the byte count (u64 BE), close.
 * - `p`: raw echo until EOF.
 * - `y` + u32 BE window in KiB: a yamux server (our implementation).
 * - `c`: a yamux server from `@chainsafe/libp2p-yamux` (default window).
 *
 * On a yamux stream the first byte picks the service: `s` sink (reply with the count,
 * then FIN), `e` echo until FIN, `g` + u64 BE length: send that many bytes, then FIN.
 *
 * @module
 */

// deno-lint-ignore-file no-console
import { yamux } from "@chainsafe/libp2p-yamux";
import { fromDenoConn, YamuxSession, type YamuxStream } from "../mod.ts";
import { DenoMessageStream, toBytes } from "../tests/interop/_message_stream.ts";
import { readFull, writeAll } from "./_io.ts";

const CHUNK = 64 * 1024;
const buffers: Uint8Array[] = [];

function u64(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

async function yamuxStream(stream: YamuxStream): Promise<void> {
  const [mode] = await readFull(stream, 1);
  // Buffers come from a small pool: allocating one per stream costs more than echoing.
  const buf = buffers.pop() ?? new Uint8Array(64 * 1024);
  try {
    if (mode === 0x73 /* s */) {
      let n = 0;
      for (let k = await stream.read(buf); k !== null; k = await stream.read(buf)) n += k;
      await stream.write(u64(n));
    } else if (mode === 0x65 /* e */) {
      for (let k = await stream.read(buf); k !== null; k = await stream.read(buf)) {
        await stream.write(buf.subarray(0, k));
      }
    } else if (mode === 0x67 /* g */) {
      const total = Number(new DataView((await readFull(stream, 8)).buffer).getBigUint64(0));
      const chunk = new Uint8Array(CHUNK);
      for (let sent = 0; sent < total; sent += CHUNK) {
        await stream.write(chunk.subarray(0, Math.min(CHUNK, total - sent)));
      }
    }
    await stream.closeWrite();
  } finally {
    buffers.push(buf);
  }
}

async function handle(raw: Deno.TcpConn): Promise<void> {
  raw.setNoDelay(true);
  const [mode] = await readFull(raw, 1);
  if (mode === 0x72 /* r */) {
    const buf = new Uint8Array(256 * 1024);
    let n = 0;
    for (let k = await raw.read(buf); k !== null; k = await raw.read(buf)) n += k;
    await writeAll(raw, u64(n));
    raw.close();
  } else if (mode === 0x70 /* p */) {
    const buf = new Uint8Array(64 * 1024);
    for (let k = await raw.read(buf); k !== null; k = await raw.read(buf)) {
      await writeAll(raw, buf.subarray(0, k));
    }
    raw.close();
  } else if (mode === 0x79 /* y */) {
    const window = new DataView((await readFull(raw, 4)).buffer).getUint32(0) * 1024;
    const session = YamuxSession.server(fromDenoConn(raw), { maxStreamWindow: window, keepAliveInterval: 0 });
    for await (const stream of session) void yamuxStream(stream).catch(() => stream.reset());
  } else if (mode === 0x63 /* c */) {
    const transport = new DenoMessageStream(raw, "inbound");
    type Factory = ReturnType<ReturnType<typeof yamux>>;
    const factory: Factory = yamux()();
    const muxer = factory.createStreamMuxer(
      transport as unknown as Parameters<Factory["createStreamMuxer"]>[0],
    );
    muxer.addEventListener("stream", (evt) => {
      const stream = evt.detail;
      void (async () => {
        let mode = -1;
        let n = 0;
        for await (const chunk of stream) {
          const bytes = toBytes(chunk);
          if (mode < 0) {
            mode = bytes[0]!;
            n += bytes.byteLength - 1;
            if (mode === 0x65 && bytes.byteLength > 1) stream.send(bytes.subarray(1));
            continue;
          }
          n += bytes.byteLength;
          if (mode === 0x65 && !stream.send(bytes)) await stream.onDrain();
        }
        if (mode === 0x73) stream.send(u64(n));
        await stream.close();
      })().catch(() => stream.abort(new Error("peer failed")));
    });
    await transport.closed;
  } else {
    raw.close();
  }
}

const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
console.log(listener.addr.port);
for await (const conn of listener) void handle(conn).catch(() => {});
