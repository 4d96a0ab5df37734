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
