/**
 * Sideband-64k: several byte streams multiplexed over pkt-lines, one band byte each.
 *
 * Each packet is `%04x`(length) + band byte + up to {@linkcode MAX_SIDEBAND_DATA}
 * bytes. Git uses band 1 for pack data, 2 for progress and 3 for fatal errors;
 * Gitaly's SSH upload-pack uses band 1 for stdout and 2 for stderr. Encoders accept
 * any band 0–255, as Gitaly's `SidebandWriter` does.
 *
 * @module
 */

import { PktlineError } from "./errors.ts";
import { _writeHex4, MAX_SIDEBAND_DATA, type Pkt } from "./pktline.ts";
import { PktScanner, readPkts } from "./scanner.ts";

/**
 * Git's sideband channels.
 *
 * @example
 * ```ts
 * import { Band } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(Band.DATA, 1);
 * assert.equal(Band.PROGRESS, 2);
 * assert.equal(Band.ERROR, 3);
 * ```
 */
export const Band = {
  /** Pack data; Gitaly's SSH upload-pack: git's stdout. */
  DATA: 1,
  /** Progress messages; Gitaly's SSH upload-pack: git's stderr. */
  PROGRESS: 2,
  /** A fatal error message; the stream ends after it. */
  ERROR: 3,
} as const;

/** One of the {@linkcode Band} values. */
export type Band = typeof Band[keyof typeof Band];

/** One demultiplexed sideband packet. */
export interface SidebandPacket {
  /** The band byte, 0–255. */
  readonly band: number;
  /** The bytes after the band byte; may be empty, may share memory with the input. */
  readonly data: Uint8Array;
}

function _checkBand(band: number): void {
  if (!Number.isInteger(band) || band < 0 || band > 255) {
    throw new RangeError(`Cannot encode sideband: band must be an integer 0-255, received ${band}`);
  }
}

/**
 * Encodes `data` on `band` as sideband-64k packets, split every
 * {@linkcode MAX_SIDEBAND_DATA} bytes, all in one new buffer.
 *
 * Empty input gives empty output (no packet), as in Gitaly.
 *
 * @param band the band byte, 0–255
 * @param data the bytes to send on that band
 * @returns the packets, concatenated
 * @throws {RangeError} For a band outside 0–255.
 *
 * @example Gitaly's `TestSidebandWriter_boundaries` vectors
 * ```ts
 * import { encodeSideband } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const out = encodeSideband(1, new TextEncoder().encode("x"));
 * assert.deepEqual(out, new TextEncoder().encode("0006\x01x"));
 * const split = encodeSideband(0xfd, new Uint8Array(65516));
 * assert.equal(split.byteLength, 65520 + 6);
 * assert.equal(new TextDecoder().decode(split.subarray(65520, 65524)), "0006");
 * ```
 */
export function encodeSideband(band: number, data: Uint8Array): Uint8Array {
  _checkBand(band);
  const packets = Math.ceil(data.byteLength / MAX_SIDEBAND_DATA);
  const out = new Uint8Array(data.byteLength + packets * 5);
  let offset = 0;
  for (let start = 0; start < data.byteLength; start += MAX_SIDEBAND_DATA) {
    const chunk = data.subarray(start, start + MAX_SIDEBAND_DATA);
    _writeHex4(out, offset, chunk.byteLength + 5);
    out[offset + 4] = band;
    out.set(chunk, offset + 5);
    offset += chunk.byteLength + 5;
  }
  return out;
}

/**
 * Splits a decoded packet into band and data (Gitaly's `EachSidebandPacket` rule).
 *
 * @param pkt a packet from {@linkcode PktScanner} or {@linkcode readPkts}
 * @returns the band and a view of the data after it
 * @throws {PktlineError} `INVALID_SIDEBAND` for a packet without a band byte: any
 * special packet (`0000`–`0003`) or an empty data packet (`0004`).
 *
 * @example
 * ```ts
 * import { parseSideband, PktlineError } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const { band, data } = parseSideband({ kind: "data", payload: new Uint8Array([2, 0x68, 0x69]) });
 * assert.equal(band, 2);
 * assert.equal(new TextDecoder().decode(data), "hi");
 * assert.throws(() => parseSideband({ kind: "data", payload: new Uint8Array() }), PktlineError);
 * ```
 */
export function parseSideband(pkt: Pkt): SidebandPacket {
  if (pkt.kind !== "data" || pkt.payload.byteLength === 0) {
    throw new PktlineError(
      "INVALID_SIDEBAND",
      `Cannot demultiplex sideband: invalid sideband packet "${_describe(pkt)}"`,
    );
  }
  return { band: pkt.payload[0]!, data: pkt.payload.subarray(1) };
}

function _describe(pkt: Pkt): string {
  switch (pkt.kind) {
    case "data":
      return "0004";
    case "flush":
      return "0000";
    case "delim":
      return "0001";
    case "response-end":
      return "0002";
    case "reserved":
      return "0003";
  }
}

function _unexpectedBand(band: number): PktlineError {
  return new PktlineError("UNEXPECTED_BAND", `Cannot demultiplex sideband: unexpected band: ${band}`);
}

/**
 * Encodes every chunk written to it as sideband-64k packets on one band.
 *
 * @example
 * ```ts
 * import { SidebandEncoderStream } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const source = ReadableStream.from([new TextEncoder().encode("hi")]);
 * const chunks = await Array.fromAsync(source.pipeThrough(new SidebandEncoderStream(2)));
 * assert.deepEqual(chunks, [new TextEncoder().encode("0007\x02hi")]);
 * ```
 */
export class SidebandEncoderStream extends TransformStream<Uint8Array, Uint8Array> {
  /**
   * Creates the stream.
   *
   * @param band the band byte, 0–255
   * @throws {RangeError} For a band outside 0–255.
   */
  constructor(band: number) {
    _checkBand(band);
    super({
      transform(chunk, controller) {
        if (chunk.byteLength > 0) controller.enqueue(encodeSideband(band, chunk));
      },
    });
  }
}

/** Options for {@linkcode SidebandDecoderStream}. */
export interface SidebandDecoderStreamOptions {
  /**
   * The bands the reader expects; a packet on any other band errors the stream with
   * `UNEXPECTED_BAND`. All 256 bands pass when omitted.
   * @default {undefined}
   */
  bands?: Iterable<number>;
}

/**
 * Decodes a sideband-64k byte stream into {@linkcode SidebandPacket}s.
 *
 * Errors the stream with a {@linkcode PktlineError}: the pkt-line errors of
 * {@linkcode PktScanner}, `INVALID_SIDEBAND` for a packet without a band byte
 * (including a flush, as in Gitaly), `UNEXPECTED_BAND` for a band outside
 * `options.bands`. Packet data may be views of the input chunks.
 *
 * @example
 * ```ts
 * import { SidebandDecoderStream } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const input = ReadableStream.from([new TextEncoder().encode("0008\x01bar0008\x02baz")]);
 * const packets = await Array.fromAsync(input.pipeThrough(new SidebandDecoderStream()));
 * assert.deepEqual(packets.map((p) => [p.band, new TextDecoder().decode(p.data)]), [
 *   [1, "bar"],
 *   [2, "baz"],
 * ]);
 * ```
 */
export class SidebandDecoderStream extends TransformStream<Uint8Array, SidebandPacket> {
  /**
   * Creates the stream.
   *
   * @param options the expected bands
   */
  constructor(options: SidebandDecoderStreamOptions = {}) {
    const allowed = options.bands === undefined ? null : new Set(options.bands);
    const scanner = new PktScanner();
    const drain = (controller: TransformStreamDefaultController<SidebandPacket>) => {
      for (let pkt = scanner.next(); pkt !== undefined; pkt = scanner.next()) {
        const packet = parseSideband(pkt);
        if (allowed !== null && !allowed.has(packet.band)) throw _unexpectedBand(packet.band);
        controller.enqueue(packet);
      }
    };
    super({
      transform(chunk, controller) {
        scanner.push(chunk);
        drain(controller);
      },
      flush() {
        scanner.end();
      },
    });
  }
}

/** Options for {@linkcode demuxSideband}. */
export interface DemuxSidebandOptions {
  /**
   * Stops demultiplexing: the input is cancelled, the outputs aborted, and the promise
   * rejects with the signal's reason.
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/**
 * Copies each band of a sideband-64k stream to its own writable, like Gitaly's
 * `stream.ProxyPktLine` response side.
 *
 * Writes are awaited one at a time, so a slow output slows the input (backpressure).
 * On success every output is closed; on failure every output is aborted with the error
 * and the input cancelled. Outputs receive views of the input chunks: they must not
 * transfer (detach) the buffers they are given.
 *
 * @param readable the multiplexed byte stream
 * @param outputs one writable per expected band
 * @param options an abort signal
 * @returns resolves once the input ended and every output closed
 * @throws {PktlineError} `UNEXPECTED_BAND` for a band without an output, and the
 * errors of {@linkcode SidebandDecoderStream}.
 *
 * @example Stdout and stderr of Gitaly's SSH upload-pack
 * ```ts
 * import { Band, demuxSideband, encodeSideband } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const text = (s: string) => new TextEncoder().encode(s);
 * const input = ReadableStream.from([encodeSideband(1, text("pack")), encodeSideband(2, text("warn"))]);
 * const stdout: string[] = [];
 * const stderr: string[] = [];
 * const sink = (into: string[]) =>
 *   new WritableStream<Uint8Array>({ write: (c) => void into.push(new TextDecoder().decode(c)) });
 * await demuxSideband(input, { [Band.DATA]: sink(stdout), [Band.PROGRESS]: sink(stderr) });
 * assert.deepEqual([stdout, stderr], [["pack"], ["warn"]]);
 * ```
 */
export async function demuxSideband(
  readable: ReadableStream<Uint8Array>,
  outputs: Readonly<Record<number, WritableStream<Uint8Array>>>,
  options: DemuxSidebandOptions = {},
): Promise<void> {
  const writers = new Map<number, WritableStreamDefaultWriter<Uint8Array>>();
  const { signal } = options;
  signal?.throwIfAborted();
  for (const [key, writable] of Object.entries(outputs)) writers.set(Number(key), writable.getWriter());
  // Aborting never waits: a sink stuck in a write would hold the abort forever.
  const abortAll = (reason: unknown) => {
    for (const w of writers.values()) void w.abort(reason).catch(() => {});
  };
  let onAbort: (() => void) | undefined;
  const aborted = signal === undefined ? undefined : new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  aborted?.catch(() => {});
  try {
    for await (const pkt of readPkts(readable, options)) {
      const { band, data } = parseSideband(pkt);
      const writer = writers.get(band);
      if (writer === undefined) throw _unexpectedBand(band);
      if (data.byteLength === 0) continue;
      // A write blocked on a slow output must not outlive an abort.
      await (aborted === undefined ? writer.write(data) : Promise.race([writer.write(data), aborted]));
    }
    const closing = Promise.all([...writers.values()].map((w) => w.close()));
    await (aborted === undefined ? closing : Promise.race([closing, aborted]));
  } catch (error) {
    const reason = signal?.aborted ? signal.reason : error;
    abortAll(reason);
    throw reason;
  } finally {
    if (onAbort !== undefined) signal!.removeEventListener("abort", onAbort);
    for (const writer of writers.values()) writer.releaseLock();
  }
}
