/**
 * Yamux echo across loopback TCP: one server, one client, several concurrent streams,
 * sha256-checked, with throughput and ping RTT printed.
 *
 *     deno task demo [--streams 4] [--mib 64] [--window-kib 4096]
 *
 * @module
 */

// deno-lint-ignore-file no-console
import { fromDenoConn, YamuxSession, type YamuxStream } from "../mod.ts";

function flag(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  const value = i >= 0 ? Number(Deno.args[i + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`--${name} must be a positive number`);
  return value;
}

const streams = flag("streams", 4);
const mib = flag("mib", 64);
const windowKiB = flag("window-kib", 4096);
const options = { maxStreamWindow: windowKiB * 1024, keepAliveInterval: 0 };

async function hex(data: ArrayBuffer): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

// Server: echo every stream until the peer half-closes.
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const serving = (async () => {
  const session = YamuxSession.server(fromDenoConn(await listener.accept()), options);
  const echoes: Promise<void>[] = [];
  for await (const stream of session) {
    echoes.push((async () => {
      const buf = new Uint8Array(256 * 1024);
      for (let n = await stream.read(buf); n !== null; n = await stream.read(buf)) {
        await stream.write(buf.subarray(0, n));
      }
      await stream.closeWrite();
    })());
  }
  await Promise.all(echoes);
})();

// Client: N streams, each sends `mib` MiB of pseudo-random data and checks the echo.
const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
const client = YamuxSession.client(fromDenoConn(conn), options);
const size = mib * 1024 * 1024;
const data = new Uint8Array(size);
crypto.getRandomValues(data.subarray(0, Math.min(size, 65536)));
for (let i = 65536; i < size; i += 65536) data.copyWithin(i, 0, Math.min(65536, size - i));
const expected = await hex(data.buffer);

async function run(stream: YamuxStream): Promise<string> {
  const sending = (async () => {
    for (let i = 0; i < size; i += 65536) await stream.write(data.subarray(i, i + 65536));
    await stream.closeWrite();
  })();
  const echoed = new Uint8Array(size);
  let got = 0;
  for (
    let n = await stream.read(echoed.subarray(got));
    n !== null;
    n = await stream.read(echoed.subarray(got))
  ) {
    got += n;
    if (got === size) break;
  }
  await sending;
  if (got !== size) throw new Error(`stream ${stream.id}: echoed ${got} of ${size} bytes`);
  return await hex(echoed.buffer);
}

const t0 = performance.now();
const digests = await Promise.all(
  Array.from({ length: streams }, async () => await run(await client.open())),
);
const seconds = (performance.now() - t0) / 1000;
const rtts: number[] = [];
for (let i = 0; i < 200; i++) rtts.push(await client.ping());
rtts.sort((a, b) => a - b);
const ok = digests.every((d) => d === expected);

console.log(`yamux echo over loopback TCP: ${streams} streams × ${mib} MiB, window ${windowKiB} KiB`);
console.log(`  sha256 of every echo matches: ${ok} (${expected}…)`);
console.log(
  `  ${(2 * streams * mib / seconds).toFixed(0)} MiB/s moved (both directions) in ${seconds.toFixed(2)} s`,
);
console.log(`  ping RTT p50 ${(rtts[100]! * 1000).toFixed(0)} µs, p99 ${(rtts[198]! * 1000).toFixed(0)} µs`);
console.log(`  session stats: ${JSON.stringify(client.stats())}`);

await client.close();
await serving;
listener.close();
if (!ok) Deno.exit(1);
