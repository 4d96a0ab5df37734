/**
 * A hand-driven yamux peer for byte-level tests: writes arbitrary frames, reads and
 * decodes what our session sends.
 */

import {
  ByteReader,
  decodeHeader,
  type DuplexConn,
  duplexPair,
  encodeHeader,
  FLAG_ACK,
  FLAG_SYN,
  type FrameHeader,
  HEADER_SIZE,
  TYPE_DATA,
  TYPE_PING,
  type YamuxOptions,
  YamuxSession,
} from "../../mod.ts";

/** A decoded frame with its payload (Data frames only). */
export interface RawFrame extends FrameHeader {
  payload: Uint8Array;
}

/** The raw side of a pipe whose other end runs one of our sessions. */
export class RawPeer {
  readonly conn: DuplexConn;
  readonly #reader: ByteReader;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;

  constructor(conn: DuplexConn) {
    this.conn = conn;
    this.#reader = new ByteReader(conn.readable);
    this.#writer = conn.writable.getWriter();
  }

  /** Writes one frame (header + optional payload). */
  async send(
    type: number,
    flags: number,
    streamId: number,
    length: number,
    payload?: Uint8Array,
  ): Promise<void> {
    const header = encodeHeader(type, flags, streamId, length);
    if (payload === undefined) {
      await this.#writer.write(header);
    } else {
      const out = new Uint8Array(HEADER_SIZE + payload.byteLength);
      out.set(header);
      out.set(payload, HEADER_SIZE);
      await this.#writer.write(out);
    }
  }

  /**
   * Pings our session and waits for the pong: every frame sent before has been processed.
   * Frames read meanwhile are returned.
   */
  async sync(value = 0x5a5a): Promise<RawFrame[]> {
    await this.send(TYPE_PING, FLAG_SYN, 0, value);
    const seen: RawFrame[] = [];
    for (;;) {
      const frame = await this.next();
      if (frame === null) throw new Error("Stream ended before the pong");
      if (frame.type === TYPE_PING && frame.flags === FLAG_ACK && frame.length === value) return seen;
      seen.push(frame);
    }
  }

  /** Writes raw bytes. */
  async sendBytes(bytes: Uint8Array): Promise<void> {
    await this.#writer.write(bytes);
  }

  /** Reads the next frame, or null at end of stream. */
  async next(): Promise<RawFrame | null> {
    if (!(await this.#reader.fill(HEADER_SIZE))) return null;
    const header = decodeHeader(this.#reader.peek(HEADER_SIZE));
    this.#reader.skip(HEADER_SIZE);
    const payload = header.type === TYPE_DATA && header.length > 0
      ? await this.#reader.readExactly(header.length)
      : new Uint8Array(0);
    return { ...header, payload };
  }

  /** Reads frames until one matches, returning it; throws at end of stream. */
  async until(match: (f: RawFrame) => boolean, limit = 100_000): Promise<RawFrame> {
    for (let i = 0; i < limit; i++) {
      const frame = await this.next();
      if (frame === null) throw new Error("Stream ended before the expected frame");
      if (match(frame)) return frame;
    }
    throw new Error("Expected frame not seen");
  }

  /** Reads all frames until the end of stream. */
  async rest(): Promise<RawFrame[]> {
    const out: RawFrame[] = [];
    for (let f = await this.next(); f !== null; f = await this.next()) out.push(f);
    return out;
  }

  /** Closes the raw side. */
  async close(): Promise<void> {
    await this.#writer.close().catch(() => {});
    await this.conn.close();
  }
}

/** Our session on one end of a pipe, a raw peer on the other. */
export function sessionWithRawPeer(
  role: "client" | "server",
  options: YamuxOptions = {},
): { session: YamuxSession; peer: RawPeer } {
  const [a, b] = duplexPair();
  const session = role === "client" ? YamuxSession.client(a, options) : YamuxSession.server(a, options);
  return { session, peer: new RawPeer(b) };
}
