/**
 * A `Deno.Conn` as a {@linkcode DuplexConn} with TCP half-close.
 *
 * @module
 */

import type { DirectIo, DuplexConn } from "./duplex.ts";

/** Options for {@linkcode fromDenoConn}. */
export interface DenoConnOptions {
  /**
   * Size of the buffers the readable allocates for default (non-BYOB) reads.
   * @default {65536}
   */
  readChunkSize?: number;
  /**
   * Disable Nagle's algorithm on TCP connections, so small control frames leave at once.
   * @default {true}
   */
  noDelay?: boolean;
}

/** The methods of a `Deno.Conn` this adapter uses. */
export type DenoConnLike = Pick<Deno.Conn, "read" | "write" | "close"> & {
  closeWrite?: () => Promise<void>;
  setNoDelay?: (noDelay?: boolean) => void;
};

function _isClosedResourceError(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted;
}

class _DenoConnDuplex implements DuplexConn, DirectIo {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  readonly closed: Promise<void>;
  readonly #conn: DenoConnLike;
  #closing = false;
  #closedConn = false;
  #readEnded!: () => void;
  #writeEnded!: () => void;

  constructor(conn: DenoConnLike, chunkSize: number) {
    this.#conn = conn;
    const readEnded = new Promise<void>((resolve) => this.#readEnded = resolve);
    const writeEnded = new Promise<void>((resolve) => this.#writeEnded = resolve);
    this.closed = Promise.all([readEnded, writeEnded]).then(() => this.#closeConn());
    this.readable = new ReadableStream({
      type: "bytes",
      autoAllocateChunkSize: chunkSize,
      pull: async (controller) => {
        const request = controller.byobRequest!;
        const view = request.view!;
        let n: number | null;
        try {
          n = await conn.read(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
        } catch (error) {
          this.#readEnded();
          if (this.#closing && _isClosedResourceError(error)) {
            controller.close();
            request.respond(0);
          } else {
            controller.error(error);
          }
          return;
        }
        if (n === null) {
          this.#readEnded();
          controller.close();
          request.respond(0);
        } else {
          request.respond(n);
        }
      },
      cancel: () => {
        this.#readEnded();
      },
    });
    this.writable = new WritableStream<Uint8Array>({
      write: async (chunk) => {
        let offset = 0;
        while (offset < chunk.byteLength) {
          offset += await conn.write(chunk.subarray(offset));
        }
      },
      close: async () => {
        try {
          await conn.closeWrite?.();
        } catch (error) {
          if (!(error instanceof Deno.errors.NotConnected) && !_isClosedResourceError(error)) throw error;
        } finally {
          this.#writeEnded();
        }
      },
      abort: () => {
        this.#writeEnded();
        this.#closeConn();
      },
    });
  }

  async read(p: Uint8Array): Promise<number | null> {
    let n: number | null;
    try {
      n = await this.#conn.read(p);
    } catch (error) {
      this.#readEnded();
      if (this.#closing && _isClosedResourceError(error)) return null;
      throw error;
    }
    if (n === null) this.#readEnded();
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    return this.#conn.write(p);
  }

  async closeWrite(): Promise<void> {
    try {
      await this.#conn.closeWrite?.();
    } catch (error) {
      if (!(error instanceof Deno.errors.NotConnected) && !_isClosedResourceError(error)) throw error;
    } finally {
      this.#writeEnded();
    }
  }

  close(): Promise<void> {
    this.#closing = true;
    this.#readEnded();
    this.#writeEnded();
    this.#closeConn();
    return this.closed;
  }

  reset(_reason?: unknown): void {
    void this.close();
  }

  #closeConn(): void {
    if (this.#closedConn) return;
    this.#closedConn = true;
    this.#closing = true;
    try {
      this.#conn.close();
    } catch (error) {
      if (!_isClosedResourceError(error)) throw error;
    }
  }
}

/**
 * Adapts a `Deno.Conn` (TCP, TLS or Unix) to a {@linkcode DuplexConn} with
 * {@linkcode DirectIo}.
 *
 * Unlike `conn.writable`, closing the returned `writable` is a half-close
 * (`conn.closeWrite()`): the peer reads end-of-stream while this side keeps reading.
 * The connection is closed once both directions are finished. The readable is a byte
 * stream reading straight into the caller's buffer (BYOB), the fastest path Deno has.
 *
 * @param conn the connection; the adapter owns it from now on
 * @param options tuning
 * @returns the duplex
 *
 * @example Half-close over loopback TCP
 * ```ts
 * import { fromDenoConn } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const accepted = listener.accept().then(async (raw) => {
 *   const conn = fromDenoConn(raw);
 *   await conn.readable.pipeTo(conn.writable); // echo until the client's FIN
 * });
 * const client = fromDenoConn(await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }));
 * const writer = client.writable.getWriter();
 * await writer.write(new TextEncoder().encode("hello"));
 * await writer.close(); // FIN; the reply still arrives
 * const reply = new Uint8Array(await new Response(client.readable).arrayBuffer());
 * assert.equal(new TextDecoder().decode(reply), "hello");
 * await accepted;
 * await client.closed;
 * ```
 */
export function fromDenoConn(conn: DenoConnLike, options: DenoConnOptions = {}): DuplexConn & DirectIo {
  const chunkSize = options.readChunkSize ?? 64 * 1024;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) {
    throw new RangeError(
      `Cannot adapt connection: readChunkSize must be a positive integer, received ${chunkSize}`,
    );
  }
  if (options.noDelay ?? true) {
    try {
      conn.setNoDelay?.(true);
    } catch {
      // Not a TCP socket (Unix, or TLS before the handshake): nothing to tune.
    }
  }
  return new _DenoConnDuplex(conn, chunkSize);
}
