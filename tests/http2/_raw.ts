/**
 * A hand-driven HTTP/2 peer for tests: writes crafted frames to a raw duplex and reads
 * what our connection answers, frame by frame.
 *
 * @module
 */

import { ByteReader, type DuplexConn, duplexPair } from "../../mod.ts";
import { errorCodeName, type Http2ErrorCode } from "../../src/http2/errors.ts";
import {
  CONNECTION_PREFACE,
  decodeFrameHeader,
  encodeContinuation,
  encodeHeaders,
  encodeSettings,
  FRAME_HEADER_SIZE,
  FrameFlag,
  type FrameHeader,
  FrameType,
} from "../../src/http2/frame.ts";
import { HpackDecoder } from "../../src/http2/hpack/decoder.ts";
import { HpackEncoder } from "../../src/http2/hpack/encoder.ts";
import { Http2Connection, type Http2ConnectionOptions } from "../../mod.ts";
import { withTimeout } from "../_util.ts";

/** One frame as read off the wire. */
export interface RawFrame extends FrameHeader {
  payload: Uint8Array;
  /** The decoded field block, on the frame that ends a HEADERS block. */
  headers?: [string, string][];
}

/** The request headers tests use. */
export const GET: [string, string][] = [
  [":method", "GET"],
  [":scheme", "http"],
  [":authority", "test"],
  [":path", "/"],
];

/** A raw peer on one end of a duplex. */
export class RawPeer {
  readonly conn: DuplexConn;
  readonly reader: ByteReader;
  readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly encoder = new HpackEncoder();
  readonly decoder = new HpackDecoder();
  /** Every frame read so far. */
  readonly seen: RawFrame[] = [];
  #block: Uint8Array[] = [];

  constructor(conn: DuplexConn) {
    this.conn = conn;
    this.reader = new ByteReader(conn.readable);
    this.writer = conn.writable.getWriter();
  }

  /** Writes bytes (frames) as one chunk. */
  async send(...frames: Uint8Array[]): Promise<void> {
    let n = 0;
    for (const f of frames) n += f.byteLength;
    const out = new Uint8Array(n);
    let at = 0;
    for (const f of frames) {
      out.set(f, at);
      at += f.byteLength;
    }
    await this.writer.write(out);
  }

  /** Reads the next frame, or `null` at end of stream (or on a reset transport). */
  async next(timeoutMs = 5000): Promise<RawFrame | null> {
    const read = async (): Promise<RawFrame | null> => {
      try {
        if (!(await this.reader.fill(FRAME_HEADER_SIZE))) return null;
        const header = decodeFrameHeader(this.reader.peek(FRAME_HEADER_SIZE));
        this.reader.skip(FRAME_HEADER_SIZE);
        const payload = header.length > 0 ? await this.reader.readExactly(header.length) : new Uint8Array(0);
        const frame: RawFrame = { ...header, payload };
        // Decode every field block in order, so the HPACK table stays in sync.
        if (header.type === FrameType.HEADERS || header.type === FrameType.CONTINUATION) {
          this.#block.push(payload);
          if (header.flags & FrameFlag.END_HEADERS) {
            const size = this.#block.reduce((n, b) => n + b.byteLength, 0);
            const block = new Uint8Array(size);
            let at = 0;
            for (const b of this.#block) {
              block.set(b, at);
              at += b.byteLength;
            }
            this.#block = [];
            frame.headers = this.decoder.decode(block);
          }
        }
        this.seen.push(frame);
        return frame;
      } catch (error) {
        if (error instanceof Error && error.name === "HpackError") throw error;
        return null;
      }
    };
    return await withTimeout(read(), timeoutMs, "raw peer read");
  }

  /** Reads frames until one matches; throws at end of stream. */
  async until(match: (f: RawFrame) => boolean, timeoutMs = 5000): Promise<RawFrame> {
    for (;;) {
      const frame = await this.next(timeoutMs);
      if (frame === null) throw new Error("raw peer: stream ended before the expected frame");
      if (match(frame)) return frame;
    }
  }

  /** Reads until GOAWAY and returns its last-stream-id and code name. */
  async goAway(): Promise<{ lastStreamId: number; code: Http2ErrorCode }> {
    const f = await this.until((f) => f.type === FrameType.GOAWAY);
    const view = new DataView(f.payload.buffer, f.payload.byteOffset);
    return { lastStreamId: view.getUint32(0) & 0x7fffffff, code: errorCodeName(view.getUint32(4)) };
  }

  /** Reads until RST_STREAM on `streamId` and returns its code name. */
  async reset(streamId: number): Promise<Http2ErrorCode> {
    const f = await this.until((f) => f.type === FrameType.RST_STREAM && f.streamId === streamId);
    return errorCodeName(new DataView(f.payload.buffer, f.payload.byteOffset).getUint32(0));
  }

  /** Reads until a HEADERS frame on `streamId` and decodes its block (no CONTINUATION). */
  async headers(streamId: number): Promise<{ list: [string, string][]; endStream: boolean }> {
    const f = await this.until((f) => f.type === FrameType.HEADERS && f.streamId === streamId);
    return { list: f.headers!, endStream: (f.flags & FrameFlag.END_STREAM) !== 0 };
  }

  /** A HEADERS frame with END_HEADERS, HPACK-encoded by this peer. */
  headersFrame(streamId: number, list: Iterable<readonly [string, string]>, endStream = false): Uint8Array {
    return encodeHeaders(streamId, this.encoder.encode(list), { endStream });
  }

  /** HEADERS split into `parts` pieces with CONTINUATION frames. */
  headersWithContinuation(
    streamId: number,
    list: Iterable<readonly [string, string]>,
    parts: number,
  ): Uint8Array[] {
    const block = this.encoder.encode(list);
    const size = Math.ceil(block.byteLength / parts);
    const frames = [encodeHeaders(streamId, block.subarray(0, size), { endHeaders: false })];
    for (let at = size; at < block.byteLength; at += size) {
      frames.push(encodeContinuation(streamId, block.subarray(at, at + size), at + size >= block.byteLength));
    }
    return frames;
  }

  /** Acts as a client: preface + SETTINGS, then reads the server SETTINGS and ACKs it. */
  async startAsClient(settings: [number, number][] = []): Promise<void> {
    await this.send(CONNECTION_PREFACE, encodeSettings(settings));
    await this.until((f) => f.type === FrameType.SETTINGS && (f.flags & FrameFlag.ACK) === 0);
    await this.send(encodeSettings([], true));
  }

  /** Acts as a server: SETTINGS, then reads the client preface and SETTINGS and ACKs them. */
  async startAsServer(settings: [number, number][] = []): Promise<void> {
    await this.send(encodeSettings(settings));
    const preface = await this.reader.readExactly(CONNECTION_PREFACE.byteLength);
    if (!preface.every((b, i) => b === CONNECTION_PREFACE[i])) throw new Error("raw peer: bad preface");
    await this.until((f) => f.type === FrameType.SETTINGS && (f.flags & FrameFlag.ACK) === 0);
    await this.send(encodeSettings([], true));
  }

  /** Closes the raw end. */
  async close(): Promise<void> {
    try {
      this.writer.releaseLock();
    } catch {
      // fine
    }
    await this.conn.close().catch(() => {});
  }
}

/** Our server on one end, a raw client peer on the other (already past the handshake). */
export async function rawClient(
  options: Http2ConnectionOptions = {},
  highWaterMark = 65536,
): Promise<{ server: Http2Connection; peer: RawPeer }> {
  const [a, b] = duplexPair({ highWaterMark });
  const server = Http2Connection.server(a, { closeTimeout: 500, ...options });
  const peer = new RawPeer(b);
  await peer.startAsClient();
  return { server, peer };
}

/** Our client on one end, a raw server peer on the other (already past the handshake). */
export async function rawServer(
  options: Http2ConnectionOptions = {},
  settings: [number, number][] = [],
): Promise<{ client: Http2Connection; peer: RawPeer }> {
  const [a, b] = duplexPair();
  const client = Http2Connection.client(a, { closeTimeout: 500, ...options });
  const peer = new RawPeer(b);
  await peer.startAsServer(settings);
  return { client, peer };
}

/** Ends a raw test: closes the peer and waits for our side to finish. */
export async function finish(conn: Http2Connection, peer: RawPeer): Promise<void> {
  await peer.close();
  await withTimeout(conn.closed, 5000, "connection closed");
}
