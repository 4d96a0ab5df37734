/**
 * listenmux: route an accepted connection by the 11 bytes it starts with (Gitaly's
 * `internal/grpc/listenmux`).
 *
 * @module
 */

import type { DirectIo, DuplexConn } from "../streams/duplex.ts";
import { _Cursor, _ReplayConn, _withDeadline } from "./_io.ts";
import { BackchannelError } from "./errors.ts";

/** Every listenmux magic is exactly this many bytes. */
export const MAGIC_LENGTH = 11;

/**
 * The magic a backchannel client writes first on its connection, `backchannel`
 * (`62 61 63 6b 63 68 61 6e 6e 65 6c`).
 */
export const BACKCHANNEL_MAGIC = "backchannel";

/**
 * Handshakers by magic: each key is an 11-byte ASCII string (`"backchannel"`,
 * `"sidechannel"`), each value whatever the caller dispatches to.
 */
export type ListenmuxTable<H> = ReadonlyMap<string, H> | Readonly<Record<string, H>>;

/** Options for {@linkcode listenmux}. */
export interface ListenmuxOptions {
  /**
   * How long to wait for the first 11 bytes (or the end of the stream) before giving up
   * and resetting the connection. Gitaly's listener runs under grpc-go's connection
   * timeout, 120 s. 0 waits forever.
   * @default {120000}
   */
  timeout?: number;
  /** Aborting stops the wait and resets the connection; the call rejects with the reason. */
  signal?: AbortSignal;
}

/**
 * What {@linkcode listenmux} decided.
 *
 * - `matched`: the connection started with `magic`; `conn` continues right after it.
 * - `plain`: no magic matched; `conn` replays the peeked bytes, then continues with the
 *   original connection (for a plain gRPC server).
 *
 * Either way `conn` offers direct I/O and keeps the original's backpressure.
 */
export type ListenmuxResult<H> =
  | {
    readonly kind: "matched";
    readonly magic: string;
    readonly handshaker: H;
    readonly conn: DuplexConn & DirectIo;
  }
  | { readonly kind: "plain"; readonly conn: DuplexConn & DirectIo };

function _latin1(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += String.fromCharCode(b);
  return out;
}

/**
 * Validates a handshaker table and indexes it by the magic's bytes (as latin1).
 *
 * @throws {RangeError} If a magic is not 11 bytes.
 */
export function _entries<H>(table: ListenmuxTable<H>): Map<string, H> {
  const entries = table instanceof Map ? [...table.entries()] : Object.entries(table as Record<string, H>);
  const byKey = new Map<string, H>();
  const encoder = new TextEncoder();
  for (const [magic, handshaker] of entries) {
    const bytes = encoder.encode(magic);
    if (bytes.byteLength !== MAGIC_LENGTH) {
      throw new RangeError(
        `Cannot route connection: magic ${
          JSON.stringify(magic)
        } is ${bytes.byteLength} bytes, not ${MAGIC_LENGTH}`,
      );
    }
    byKey.set(_latin1(bytes), handshaker);
  }
  return byKey;
}

/**
 * Peeks at the first 11 bytes of an accepted connection and routes it: to the
 * handshaker whose magic matches exactly, or back to the caller as a plain connection
 * that replays those bytes (Gitaly's listenmux). An HTTP/2 preface never matches, so
 * one port serves plain gRPC clients and backchannel clients.
 *
 * Like Gitaly, it reads *up to* 11 bytes: a connection that ends sooner is plain (its
 * server then sees the short input and the end). Nothing beyond the 11 bytes is read.
 *
 * @param conn the accepted connection; owned by the result from now on
 * @param handshakers the table of magics
 * @param options timeout and abort signal
 * @returns the routing decision
 * @throws {RangeError} If a magic is not 11 bytes.
 * @throws {BackchannelError} `HANDSHAKE` if reading fails or times out (the connection is reset).
 *
 * @example Route a backchannel client and a plain client
 * ```ts
 * import { duplexPair, listenmux } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const table = { backchannel: "yamux server" };
 *
 * const [client, server] = duplexPair();
 * await client.write(new TextEncoder().encode("backchannel+more"));
 * const muxed = await listenmux(server, table);
 * assert.equal(muxed.kind, "matched");
 * assert.equal(muxed.kind === "matched" && muxed.handshaker, "yamux server");
 * const rest = new Uint8Array(5);
 * assert.equal(await muxed.conn.read(rest), 5); // "+more": right after the magic
 *
 * const [client2, server2] = duplexPair();
 * await client2.write(new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
 * await client2.closeWrite();
 * const plain = await listenmux(server2, table);
 * assert.equal(plain.kind, "plain");
 * const replayed = await new Response(plain.conn.readable).text();
 * assert.equal(replayed, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
 * ```
 */
export async function listenmux<H>(
  conn: DuplexConn,
  handshakers: ListenmuxTable<H>,
  options: ListenmuxOptions = {},
): Promise<ListenmuxResult<H>> {
  const table = _entries(handshakers);
  const timeout = options.timeout ?? 120_000;
  if (!Number.isInteger(timeout) || timeout < 0) {
    throw new RangeError(
      `Cannot route connection: timeout must be a non-negative integer, received ${timeout}`,
    );
  }
  const cursor = new _Cursor(conn);
  const peeked = new Uint8Array(MAGIC_LENGTH);
  let got: number;
  try {
    got = await _withDeadline(
      timeout,
      options.signal,
      (reason) => conn.reset(reason),
      () => cursor.readFull(peeked),
    );
  } catch (error) {
    conn.reset(error);
    if (options.signal?.aborted && error === options.signal.reason) throw error;
    throw new BackchannelError("HANDSHAKE", "Cannot route connection: peek network stream failed", {
      cause: error,
    });
  }
  const key = _latin1(peeked);
  if (got === MAGIC_LENGTH && table.has(key)) {
    const matched = cursor.passthrough ? conn as DuplexConn & DirectIo : new _ReplayConn(conn, cursor);
    return { kind: "matched", magic: key, handshaker: table.get(key)!, conn: matched };
  }
  cursor.unread(peeked.subarray(0, got));
  return { kind: "plain", conn: new _ReplayConn(conn, cursor) };
}
