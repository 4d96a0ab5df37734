/**
 * The two shapes every transport in this module speaks.
 *
 * A {@linkcode Duplex} is the minimum a component needs to run over something: a byte
 * source and a byte sink. A {@linkcode DuplexConn} adds the lifecycle of a `Deno.Conn`,
 * which is what components hand back to their users (yamux streams, sidechannels, the
 * TCP adapter), so one duplex can be the transport of the next layer.
 *
 * @module
 */

/**
 * A pair of byte streams: what every component in this module runs over.
 *
 * Anything with these two properties works: `Deno.Conn`, a TLS connection, a yamux
 * stream, a sidechannel, or an in-memory pipe from {@linkcode duplexPair}.
 *
 * Closing `writable` is a half-close: the peer reads end-of-stream, while `readable`
 * keeps delivering until the peer closes its side.
 *
 * @example A TransformStream is a loopback duplex
 * ```ts
 * import type { Duplex } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const loop: Duplex = new TransformStream<Uint8Array, Uint8Array>();
 * const writer = loop.writable.getWriter();
 * void writer.write(new Uint8Array([1, 2, 3]));
 * const { value } = await loop.readable.getReader().read();
 * assert.deepEqual(value, new Uint8Array([1, 2, 3]));
 * ```
 */
export interface Duplex {
  /** Bytes from the peer. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the peer; `close()` half-closes. */
  readonly writable: WritableStream<Uint8Array>;
}

/**
 * Direct I/O with `Deno.Conn` semantics, which a duplex may offer beside its streams.
 *
 * - `read(p)` fills `p` with up to `p.length` bytes and resolves with the count, or with
 *   `null` at end-of-stream; it rejects on failure (never a clean `null` for a truncation).
 * - `write(p)` writes some of `p` and resolves with the count (callers loop); once it
 *   resolves, the duplex holds no reference to `p`, so the caller may reuse the buffer.
 * - `closeWrite()` half-closes.
 *
 * Components use these methods when a duplex has them: they skip the Web Streams
 * machinery per chunk, which matters at gigabytes per second. A duplex must be consumed
 * through one interface only: its streams, or these methods. `Deno.TcpConn`, the
 * adapters from {@linkcode fromDenoConn} and yamux streams offer them.
 *
 * @example Detecting direct I/O
 * ```ts
 * import { duplexPair, hasDirectIo } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const [a] = duplexPair();
 * assert.equal(hasDirectIo(a), true);
 * assert.equal(hasDirectIo(new TransformStream()), false);
 * ```
 */
export interface DirectIo {
  /** Reads up to `p.length` bytes into `p`; `null` at end-of-stream. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes some bytes of `p`; resolves with how many. */
  write(p: Uint8Array): Promise<number>;
  /** Half-closes the writing direction. */
  closeWrite(): Promise<void>;
}

/**
 * Whether a duplex offers {@linkcode DirectIo}.
 *
 * @param duplex any object
 * @returns true if it has `read`, `write` and `closeWrite` methods
 */
export function hasDirectIo<T extends object>(duplex: T): duplex is T & DirectIo {
  const d = duplex as Partial<DirectIo>;
  return typeof d.read === "function" && typeof d.write === "function" && typeof d.closeWrite === "function";
}

/**
 * A {@linkcode Duplex} with the lifecycle of a `Deno.Conn`.
 *
 * - `closed` settles once both directions are finished (or the connection was closed or
 *   reset); it never rejects, so it is safe to leave unobserved.
 * - `close()` ends both directions gracefully: buffered data already accepted by
 *   `writable` is still delivered where the transport allows it.
 * - `reset(reason)` ends both directions at once and discards what is buffered; the peer
 *   sees an error, never a clean end-of-stream.
 *
 * @example Closing one end of an in-memory pair
 * ```ts
 * import { duplexPair } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = duplexPair();
 * await a.close();
 * const { done } = await b.readable.getReader().read();
 * assert.equal(done, true);
 * await a.closed;
 * ```
 */
export interface DuplexConn extends Duplex {
  /** Settles when the connection is finished in both directions. Never rejects. */
  readonly closed: Promise<void>;
  /** Ends both directions gracefully. Idempotent. */
  close(): Promise<void>;
  /** Aborts both directions at once; the peer observes an error. Idempotent. */
  reset(reason?: unknown): void;
}
