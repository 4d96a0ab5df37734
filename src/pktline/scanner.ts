/**
 * An incremental pkt-line splitter with Gitaly's rules, and a stream reader on top.
 *
 * @module
 */

import { PktlineError } from "./errors.ts";
import { _parseHex4, _quote, MAX_PKT_SIZE, type Pkt } from "./pktline.ts";

const _FLUSH: Pkt = Object.freeze({ kind: "flush" });
const _DELIM: Pkt = Object.freeze({ kind: "delim" });
const _RESPONSE_END: Pkt = Object.freeze({ kind: "response-end" });
const _RESERVED: Pkt = Object.freeze({ kind: "reserved" });
const _SPECIAL: readonly Pkt[] = [_FLUSH, _DELIM, _RESPONSE_END, _RESERVED];

/** Compact the chunk list once this many consumed entries pile up at its head. */
const _COMPACT_AFTER = 64;

/**
 * Splits bytes into packets as they arrive, in any chunking, without I/O.
 *
 * Rules (those of Gitaly's `pktLineSplitter`, `internal/git/pktline`):
 * - a packet needs its 4-byte length prefix: four hex digits, either case;
 * - lengths 0–3 are the 4-byte special packets `0000`..`0003` (see {@linkcode Pkt});
 * - a length above {@linkcode MAX_PKT_SIZE} (65520) fails with `INVALID_LENGTH`;
 * - at the end ({@linkcode PktScanner.end}), 1–3 leftover bytes fail with
 *   `INCOMPLETE_PREFIX` and a truncated packet with `UNEXPECTED_EOF`.
 *
 * One deliberate difference: Gitaly parses the prefix with Go's `strconv.ParseInt`,
 * which also takes a sign, so it reads `+fff` as 4095 and `-000` as a flush (and
 * rejects `-fff` only because it is negative). Git's own reader accepts hex digits
 * only, and every writer (git, Gitaly, this module) formats `%04x`, so a sign can only
 * come from a corrupt or hostile peer: this scanner rejects any sign with
 * `INVALID_LENGTH`.
 *
 * Errors are sticky: once `next()` or `end()` threw, they throw the same error again.
 *
 * Memory and copies: pushed chunks are kept by reference, never copied. A payload that
 * lies within one chunk is returned as a view of it; one that spans chunks is copied
 * into a new buffer. So payloads may share memory with the pushed chunks and with each
 * other: do not modify pushed chunks, and copy a payload before transferring its
 * buffer. The scanner holds what was pushed and not yet returned; pull-driven callers
 * (like {@linkcode readPkts}) push only when `next()` returned `undefined`, which keeps
 * that below one packet plus one chunk.
 *
 * @example Feed bytes in any chunking, pull packets
 * ```ts
 * import { PktScanner } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const scanner = new PktScanner();
 * const input = new TextEncoder().encode("0009hello00000001");
 * const kinds: string[] = [];
 * for (const byte of input) {
 *   scanner.push(new Uint8Array([byte]));
 *   for (let pkt = scanner.next(); pkt; pkt = scanner.next()) {
 *     kinds.push(pkt.kind === "data" ? new TextDecoder().decode(pkt.payload) : pkt.kind);
 *   }
 * }
 * scanner.end();
 * assert.deepEqual(kinds, ["hello", "flush", "delim"]);
 * ```
 */
export class PktScanner {
  #chunks: Uint8Array[] = [];
  /** Index of the first live chunk in `#chunks`. */
  #head = 0;
  /** Bytes of `#chunks[#head]` already consumed. */
  #offset = 0;
  #buffered = 0;
  #error: PktlineError | null = null;
  #ended = false;

  /** Bytes pushed and not yet returned as packets. */
  get buffered(): number {
    return this.#buffered;
  }

  /**
   * Adds bytes. Keeps a reference to `chunk`: do not modify it afterwards.
   *
   * @param chunk the next bytes of the stream
   * @throws {TypeError} After {@linkcode PktScanner.end}.
   */
  push(chunk: Uint8Array): void {
    if (this.#ended) throw new TypeError("Cannot push to PktScanner: it has ended");
    if (chunk.byteLength === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.byteLength;
  }

  /**
   * Returns the next complete packet, or `undefined` until more bytes are pushed.
   *
   * @returns the packet, or `undefined` if none is complete yet
   * @throws {PktlineError} `INVALID_LENGTH` for a bad length prefix.
   */
  next(): Pkt | undefined {
    if (this.#error !== null) throw this.#error;
    if (this.#buffered < 4) return undefined;
    const length = this.#peekLength();
    if (length < 4) {
      this.#skip(4);
      return _SPECIAL[length]!;
    }
    if (this.#buffered < length) return undefined;
    this.#skip(4);
    return { kind: "data", payload: this.#take(length - 4) };
  }

  /**
   * Declares the end of the input and checks nothing is left over.
   *
   * Call it once `next()` has returned `undefined`.
   *
   * @throws {PktlineError} `INCOMPLETE_PREFIX` for 1–3 leftover bytes,
   * `UNEXPECTED_EOF` for a truncated packet, `INVALID_LENGTH` for a bad prefix.
   * @throws {TypeError} If a complete packet is still buffered (call `next()` first).
   */
  end(): void {
    if (this.#error !== null) throw this.#error;
    this.#ended = true;
    if (this.#buffered === 0) return;
    if (this.#buffered < 4) {
      throw this.#fail(
        "INCOMPLETE_PREFIX",
        `Cannot split pkt-lines: incomplete length prefix on ${_quote(this.#peek(this.#buffered))}`,
      );
    }
    const length = this.#peekLength();
    if (length < 4 || length <= this.#buffered) {
      throw new TypeError("Cannot end PktScanner: a complete packet is buffered; call next() first");
    }
    throw this.#fail(
      "UNEXPECTED_EOF",
      `Cannot split pkt-lines: stream ended ${this.#buffered} bytes into a ${length}-byte packet`,
    );
  }

  #fail(code: "INVALID_LENGTH" | "INCOMPLETE_PREFIX" | "UNEXPECTED_EOF", message: string): PktlineError {
    this.#error = new PktlineError(code, message);
    return this.#error;
  }

  /** Parses the buffered length prefix; needs 4 buffered bytes. Throws on a bad one. */
  #peekLength(): number {
    const chunk = this.#chunks[this.#head]!;
    const o = this.#offset;
    const prefix = chunk.byteLength - o >= 4 ? chunk.subarray(o, o + 4) : this.#peek(4);
    const length = _parseHex4(prefix[0]!, prefix[1]!, prefix[2]!, prefix[3]!);
    if (length < 0) {
      throw this.#fail("INVALID_LENGTH", `Cannot split pkt-lines: invalid length prefix ${_quote(prefix)}`);
    }
    if (length > MAX_PKT_SIZE) {
      throw this.#fail(
        "INVALID_LENGTH",
        `Cannot split pkt-lines: length ${length} exceeds the maximum of ${MAX_PKT_SIZE}`,
      );
    }
    return length;
  }

  /** Copies the first `n` buffered bytes without consuming them. */
  #peek(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    let offset = this.#offset;
    for (let i = this.#head; filled < n; i++) {
      const chunk = this.#chunks[i]!;
      const k = Math.min(n - filled, chunk.byteLength - offset);
      out.set(chunk.subarray(offset, offset + k), filled);
      filled += k;
      offset = 0;
    }
    return out;
  }

  /** Consumes `n` buffered bytes, returned as a view when they lie in one chunk. */
  #take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    const chunk = this.#chunks[this.#head]!;
    if (chunk.byteLength - this.#offset >= n) {
      const view = chunk.subarray(this.#offset, this.#offset + n);
      this.#skip(n);
      return view;
    }
    const out = this.#peek(n);
    this.#skip(n);
    return out;
  }

  #skip(n: number): void {
    this.#buffered -= n;
    let left = n;
    while (left > 0) {
      const chunk = this.#chunks[this.#head]!;
      const available = chunk.byteLength - this.#offset;
      if (available > left) {
        this.#offset += left;
        return;
      }
      left -= available;
      this.#head++;
      this.#offset = 0;
    }
    if (this.#head === this.#chunks.length) {
      this.#chunks.length = 0;
      this.#head = 0;
    } else if (this.#head >= _COMPACT_AFTER && this.#head * 2 >= this.#chunks.length) {
      this.#chunks.splice(0, this.#head);
      this.#head = 0;
    }
  }
}

/** Options for {@linkcode readPkts}. */
export interface ReadPktsOptions {
  /**
   * Stops reading: the stream is cancelled and the iteration throws the signal's reason.
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/**
 * Reads packets from a byte stream until it ends.
 *
 * Reads a chunk only when no complete packet is buffered, so memory stays below one
 * packet plus one chunk. The stream is locked while iterating; it is cancelled if the
 * iteration stops early, fails, or is aborted. Payloads may be views of the stream's
 * chunks (see {@linkcode PktScanner}).
 *
 * @param readable the byte stream
 * @param options an abort signal
 * @returns an async iterator of packets
 * @throws {PktlineError} For malformed input or input that ends inside a packet.
 *
 * @example
 * ```ts
 * import { readPkts } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode("0008NAK\n0000");
 * const kinds = [];
 * for await (const pkt of readPkts(ReadableStream.from([bytes.subarray(0, 3), bytes.subarray(3)]))) {
 *   kinds.push(pkt.kind === "data" ? new TextDecoder().decode(pkt.payload) : pkt.kind);
 * }
 * assert.deepEqual(kinds, ["NAK\n", "flush"]);
 * ```
 */
export async function* readPkts(
  readable: ReadableStream<Uint8Array>,
  options: ReadPktsOptions = {},
): AsyncGenerator<Pkt, void, undefined> {
  const { signal } = options;
  signal?.throwIfAborted();
  const scanner = new PktScanner();
  const reader = readable.getReader();
  let finished = false;
  let failure: unknown = undefined;
  const onAbort = () => void reader.cancel(signal!.reason).catch(() => {});
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    while (true) {
      const pkt = scanner.next();
      if (pkt !== undefined) {
        yield pkt;
        continue;
      }
      const { value, done } = await reader.read();
      signal?.throwIfAborted();
      if (done) {
        finished = true;
        scanner.end();
        return;
      }
      scanner.push(value);
    }
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (!finished) await reader.cancel(failure).catch(() => {});
    reader.releaseLock();
  }
}
