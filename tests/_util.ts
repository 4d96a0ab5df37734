/**
 * Shared test helpers: transports, byte utilities, peer discovery.
 *
 * @module
 */

import { type DuplexConn, duplexPair, fromDenoConn } from "../mod.ts";

/** A connected pair of duplexes plus a cleanup function. */
export interface ConnPair {
  /** The dialing side. */
  client: DuplexConn;
  /** The accepting side. */
  server: DuplexConn;
  /** Closes both ends and any listener. */
  close(): Promise<void>;
}

/** A transport factory, named for test titles. */
export interface Transport {
  /** "pipe" or "tcp". */
  name: string;
  /** Creates a fresh connected pair. */
  pair(): Promise<ConnPair>;
}

/** In-memory pipe pair. */
export const pipeTransport: Transport = {
  name: "pipe",
  pair() {
    const [client, server] = duplexPair();
    return Promise.resolve({
      client,
      server,
      async close() {
        client.reset();
        server.reset();
        await Promise.all([client.closed, server.closed]);
      },
    });
  },
};

/** Loopback TCP pair on 127.0.0.1. */
export const tcpTransport: Transport = {
  name: "tcp",
  async pair() {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const [rawServer, rawClient] = await Promise.all([
      listener.accept(),
      Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    ]);
    listener.close();
    const client = fromDenoConn(rawClient);
    const server = fromDenoConn(rawServer);
    return {
      client,
      server,
      async close() {
        await Promise.all([client.close(), server.close()]);
      },
    };
  },
};

/** Both transports, for matrix tests. */
export const transports: Transport[] = [pipeTransport, tcpTransport];

/** Concatenates byte arrays. */
export function concat(chunks: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const c of chunks) length += c.byteLength;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}

/** Reads a stream to its end and returns all bytes. */
export async function readAll(readable: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return concat(await Array.fromAsync(readable));
}

/** UTF-8 encode. */
export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** UTF-8 decode. */
export function text(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

/** Deterministic pseudo-random bytes (xorshift32), fast enough for hundreds of MiB. */
export function pseudoRandomBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  const words = new Uint32Array(out.buffer, 0, length >>> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  for (let i = words.length * 4; i < length; i++) out[i] = i & 0xff;
  return out;
}

/** Hex SHA-256 of some bytes. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Rejects after `ms` unless `promise` settles first; the timer never leaks. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what = "operation"): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** True if `cmd` can be run (found on PATH). */
export function hasCommand(cmd: string): boolean {
  try {
    const out = new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null", stderr: "null" })
      .outputSync();
    return out.success;
  } catch {
    return false;
  }
}

/**
 * Whether an interop test that needs `tools` should be ignored. When the tools are
 * missing and `SIDECHANNEL_REQUIRE_INTEROP=1` (CI), this throws instead, so CI never
 * silently skips interop.
 */
export function ignoreUnless(...tools: string[]): boolean {
  const missing = tools.filter((t) => !hasCommand(t));
  if (missing.length === 0) return false;
  if (Deno.env.get("SIDECHANNEL_REQUIRE_INTEROP") === "1") {
    throw new Error(`Interop tools missing but required: ${missing.join(", ")}`);
  }
  return true;
}
