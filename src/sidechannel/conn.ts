/**
 * The two ends of an established sidechannel: the client's (framed writes, raw reads)
 * and the server's (framed reads, raw writes). Gitaly `internal/grpc/sidechannel/conn.go`.
 *
 * @module
 */

import { _asDirect, _byteReadable, _byteWritable, _writeAll } from "../backchannel/_io.ts";
import type { DirectIo, DuplexConn } from "../streams/duplex.ts";
import { _wrapIoError, SidechannelError } from "./errors.ts";
import { _parseChunkHeader, _writeChunkHeader, SIDECHANNEL_MAX_CHUNK } from "./wire.ts";

/** Chunks up to this size are sent in one write with their header (one copy, one frame). */
const _COALESCE_BYTES = 8 * 1024;
const _FLUSH = new Uint8Array([0x30, 0x30, 0x30, 0x30]);

/**
 * The client's end of a sidechannel (Gitaly's `ClientConn`).
 *
 * - Writes are framed: each chunk of at most {@linkcode SIDECHANNEL_MAX_CHUNK} bytes
 *   goes after a `%04x` header of its length + 4; empty writes send nothing.
 * - `closeWrite()` (or closing `writable`) sends `0000` once: the server reads
 *   end-of-stream. Later writes fail with `HALF_CLOSED`. The stream itself stays open,
 *   so the response keeps arriving (Gitaly's yamux cannot half-close, hence the framing).
 * - Reads are raw bytes from the server, up to its end (the yamux FIN). A server or
 *   connection that fails first makes reads reject (`RESET`, `CONNECTION_LOST`), never
 *   end cleanly. Quirk, deliberately not reproduced (gitaly.md §2.6, §6.6): with
 *   hashicorp/yamux a dying session force-closes its streams and reads see a clean
 *   EOF, so a truncated response shows only in the RPC status; here the truncation is
 *   an error on the sidechannel itself.
 * - `close()` closes the stream (FIN) *without* `0000`: a server still reading sees
 *   `UNEXPECTED_EOF`, so a truncated request never looks complete.
 *
 * Offers {@linkcode DirectIo}; use either it or the streams, not both. Errors are
 * {@linkcode SidechannelError}s.
 *
 * @example Frames on the wire, over an in-memory pair
 * ```ts
 * import { duplexPair, SidechannelClientConn } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = duplexPair();
 * const conn = new SidechannelClientConn(a);
 * await conn.write(new TextEncoder().encode("hello"));
 * await conn.closeWrite();
 * await assert.rejects(conn.write(new Uint8Array(1)), { code: "HALF_CLOSED" });
 * await conn.close();
 * assert.equal(await new Response(b.readable).text(), "0009hello0000");
 * ```
 */
export class SidechannelClientConn implements DuplexConn, DirectIo {
  /** Raw bytes from the server, to its end. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the server, framed; closing it sends `0000`. */
  readonly writable: WritableStream<Uint8Array>;
  /** Settles when the stream underneath is finished. Never rejects. */
  readonly closed: Promise<void>;
  readonly #inner: DuplexConn & DirectIo;
  readonly #header = new Uint8Array(4);
  #halfClosed = false;
  #closeWrite: Promise<void> | null = null;
  #writing: Promise<unknown> | null = null;

  /**
   * Wraps a stream on which the handshake is done (`ok` sent).
   *
   * @param inner the stream; owned from now on
   */
  constructor(inner: DuplexConn) {
    const direct = _asDirect(inner);
    this.#inner = direct;
    this.closed = direct.closed;
    this.readable = _byteReadable((p) => this.read(p), (reason) => direct.readable.cancel(reason));
    this.writable = _byteWritable((p) => this.write(p), () => this.closeWrite(), (r) => this.reset(r));
  }

  /**
   * Reads raw bytes from the server.
   *
   * @param p destination
   * @returns bytes read, or `null` once the server has closed its side
   * @throws {SidechannelError} `RESET`, `CONNECTION_LOST` or `CLOSED`.
   */
  async read(p: Uint8Array): Promise<number | null> {
    try {
      return await this.#inner.read(p);
    } catch (error) {
      throw _wrapIoError(error, "read from sidechannel");
    }
  }

  /**
   * Writes all of `p`, framed; resolves once it is handed to the connection.
   *
   * @param p bytes to send
   * @returns `p.length`
   * @throws {SidechannelError} `HALF_CLOSED` after `closeWrite()`; `RESET`, `CONNECTION_LOST`, `CLOSED`.
   */
  async write(p: Uint8Array): Promise<number> {
    this.#checkWritable();
    if (p.byteLength === 0) return 0;
    while (this.#writing !== null) await this.#writing.catch(() => {});
    this.#checkWritable();
    const pending = this.#writeFramed(p);
    this.#writing = pending;
    try {
      await pending;
    } catch (error) {
      throw _wrapIoError(error, "write to sidechannel");
    } finally {
      if (this.#writing === pending) this.#writing = null;
    }
    return p.byteLength;
  }

  /**
   * Sends `0000` after everything written before: the server reads end-of-stream. Reading
   * goes on. Idempotent.
   */
  closeWrite(): Promise<void> {
    if (this.#closeWrite !== null) return this.#closeWrite;
    this.#halfClosed = true;
    this.#closeWrite = (async () => {
      while (this.#writing !== null) await this.#writing.catch(() => {});
      try {
        await _writeAll(this.#inner, _FLUSH);
      } catch (error) {
        throw _wrapIoError(error, "half-close sidechannel");
      }
    })();
    return this.#closeWrite;
  }

  /** Closes the stream (FIN, no `0000`) and stops reading. Idempotent. */
  async close(): Promise<void> {
    this.#halfClosed = true;
    await this.#inner.close();
  }

  /**
   * Aborts both directions at once (yamux RST): the server's reads and writes fail.
   *
   * @param reason kept as the cause
   */
  reset(reason?: unknown): void {
    this.#halfClosed = true;
    this.#inner.reset(reason);
  }

  #checkWritable(): void {
    if (this.#halfClosed) {
      throw new SidechannelError("HALF_CLOSED", "Cannot write: write into a half-closed sidechannel");
    }
  }

  async #writeFramed(p: Uint8Array): Promise<void> {
    for (let offset = 0; offset < p.byteLength; offset += SIDECHANNEL_MAX_CHUNK) {
      const chunk = p.subarray(offset, offset + SIDECHANNEL_MAX_CHUNK);
      if (chunk.byteLength <= _COALESCE_BYTES) {
        const packet = new Uint8Array(4 + chunk.byteLength);
        _writeChunkHeader(packet, 0, chunk.byteLength);
        packet.set(chunk, 4);
        await _writeAll(this.#inner, packet);
      } else {
        _writeChunkHeader(this.#header, 0, chunk.byteLength);
        await _writeAll(this.#inner, this.#header);
        await _writeAll(this.#inner, chunk);
      }
    }
  }
}

/**
 * The server's end of a sidechannel (Gitaly's `ServerConn`).
 *
 * - Reads de-frame the client's packets with Gitaly's rules: `0000` ends the stream
 *   (nothing after it is read); `0004` is an empty packet; `0001`–`0003`, non-hex
 *   headers and lengths above 65520 fail with `INVALID_HEADER`; a stream that ends
 *   before `0000`, or inside a header or packet, fails with `UNEXPECTED_EOF`. Errors
 *   are sticky. Payload bytes are read straight into the caller's buffer.
 * - Writes are raw bytes to the client, passed through to the stream unchanged;
 *   `closeWrite()` (or closing `writable`) sends the yamux FIN, the client's
 *   end-of-stream.
 * - A client that hung up makes writes fail with `RESET` (its close timeout resets the
 *   stream) or `CONNECTION_LOST`.
 *
 * Offers {@linkcode DirectIo}; use either it or the streams, not both. Errors are
 * {@linkcode SidechannelError}s.
 *
 * @example Gitaly's `TestServerRead` cases
 * ```ts
 * import { duplexPair, SidechannelServerConn } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * async function serverRead(input: string): Promise<string> {
 *   const [a, b] = duplexPair();
 *   await a.write(new TextEncoder().encode(input));
 *   await a.closeWrite();
 *   return await new Response(new SidechannelServerConn(b).readable).text();
 * }
 * assert.equal(await serverRead("0009hello0008this0009world0000"), "hellothisworld");
 * assert.equal(await serverRead("0009hello0000trashtrash"), "hello");
 * assert.equal(await serverRead("00040000"), "");
 * await assert.rejects(serverRead("0009hello"), { code: "UNEXPECTED_EOF" });
 * await assert.rejects(serverRead("0002"), { code: "INVALID_HEADER" });
 * ```
 */
export class SidechannelServerConn implements DuplexConn, DirectIo {
  /** The client's bytes, de-framed, up to its `0000`. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Raw bytes to the client; closing it sends FIN. */
  readonly writable: WritableStream<Uint8Array>;
  /** Settles when the stream underneath is finished. Never rejects. */
  readonly closed: Promise<void>;
  readonly #inner: DuplexConn & DirectIo;
  readonly #header = new Uint8Array(4);
  #remaining = 0;
  #eof = false;
  #error: SidechannelError | null = null;

  /**
   * Wraps a stream on which the handshake is done (`ok` received).
   *
   * @param inner the stream; owned from now on
   */
  constructor(inner: DuplexConn) {
    const direct = _asDirect(inner);
    this.#inner = direct;
    this.closed = direct.closed;
    this.readable = _byteReadable((p) => this.read(p), (reason) => direct.readable.cancel(reason));
    this.writable = _byteWritable((p) => this.write(p), () => this.closeWrite(), (r) => this.reset(r));
  }

  /**
   * Reads the client's next bytes, de-framed.
   *
   * @param p destination
   * @returns bytes read, or `null` once the client's `0000` arrived
   * @throws {SidechannelError} `INVALID_HEADER`, `UNEXPECTED_EOF`, `RESET`, `CONNECTION_LOST`, `CLOSED`.
   */
  async read(p: Uint8Array): Promise<number | null> {
    if (this.#error !== null) throw this.#error;
    if (this.#eof) return null;
    if (p.byteLength === 0) return 0;
    try {
      while (this.#remaining === 0) {
        const length = await this.#readHeader();
        if (length === 0) {
          this.#eof = true;
          return null;
        }
        this.#remaining = length - 4;
      }
      const want = Math.min(p.byteLength, this.#remaining);
      const n = await this.#inner.read(want === p.byteLength ? p : p.subarray(0, want));
      if (n === null) {
        throw new SidechannelError(
          "UNEXPECTED_EOF",
          `Cannot read sidechannel: the stream ended ${this.#remaining} bytes before the end of a packet`,
        );
      }
      this.#remaining -= n;
      return n;
    } catch (error) {
      this.#error = _wrapIoError(error, "read from sidechannel");
      throw this.#error;
    }
  }

  /**
   * Writes all of `p`, raw; resolves once it is handed to the connection.
   *
   * @param p bytes to send
   * @returns `p.length`
   * @throws {SidechannelError} `RESET` if the client hung up, `CONNECTION_LOST`, `CLOSED`.
   */
  async write(p: Uint8Array): Promise<number> {
    try {
      let written = await this.#inner.write(p);
      while (written < p.byteLength) written += await this.#inner.write(p.subarray(written));
      return written;
    } catch (error) {
      throw _wrapIoError(error, "write to sidechannel");
    }
  }

  /** Sends FIN after everything written before: the client reads end-of-stream. */
  async closeWrite(): Promise<void> {
    try {
      await this.#inner.closeWrite();
    } catch (error) {
      throw _wrapIoError(error, "close sidechannel");
    }
  }

  /** Closes the stream gracefully (FIN after what was written) and stops reading. */
  async close(): Promise<void> {
    await this.#inner.close();
  }

  /**
   * Aborts both directions at once (yamux RST).
   *
   * @param reason kept as the cause
   */
  reset(reason?: unknown): void {
    this.#inner.reset(reason);
  }

  /** Reads one 4-byte header; returns the packet length. */
  async #readHeader(): Promise<number> {
    const h = this.#header;
    let got = 0;
    while (got < 4) {
      const n = await this.#inner.read(got === 0 ? h : h.subarray(got));
      if (n === null) {
        throw new SidechannelError(
          "UNEXPECTED_EOF",
          got === 0
            ? "Cannot read sidechannel: the stream ended before the closing 0000"
            : `Cannot read sidechannel: incomplete length prefix (${got} bytes)`,
        );
      }
      got += n;
    }
    return _parseChunkHeader(h);
  }
}
