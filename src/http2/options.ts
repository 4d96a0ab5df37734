/**
 * Options of an HTTP/2 connection, their defaults and the reasons for them.
 *
 * @module
 */

import {
  DEFAULT_HEADER_TABLE_SIZE,
  DEFAULT_INITIAL_WINDOW_SIZE,
  DEFAULT_MAX_FRAME_SIZE,
  MAX_MAX_FRAME_SIZE,
  MAX_WINDOW_SIZE,
} from "./frame.ts";

/**
 * At most `count` events per `intervalMs` milliseconds (a fixed-window counter).
 *
 * @example Allow 1000 resets a second
 * ```ts
 * import { type Http2RateLimit, resolveHttp2Options } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const resetRateLimit: Http2RateLimit = { count: 1000, intervalMs: 1000 };
 * assert.deepEqual(resolveHttp2Options({ resetRateLimit }).resetRateLimit, resetRateLimit);
 * ```
 */
export interface Http2RateLimit {
  /** Events allowed per interval. */
  count: number;
  /** Length of the interval in milliseconds. */
  intervalMs: number;
}

/**
 * Options for {@linkcode Http2Connection}; every field is optional.
 *
 * @example Bulk-transfer tuning
 * ```ts
 * import { duplexPair, Http2Connection, type Http2ConnectionOptions } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const options: Http2ConnectionOptions = {
 *   initialWindowSize: 8 << 20,
 *   connectionWindowSize: 64 << 20,
 *   maxFrameSize: 65536,
 * };
 * const [a, b] = duplexPair();
 * const client = Http2Connection.client(a, options);
 * const server = Http2Connection.server(b, options);
 * await client.ping();
 * assert.equal(client.remoteSettings.initialWindowSize, 8 << 20);
 * assert.equal(client.remoteSettings.maxFrameSize, 65536);
 * await client.close();
 * await server.closed;
 * ```
 */
export interface Http2ConnectionOptions {
  /**
   * SETTINGS_INITIAL_WINDOW_SIZE we advertise: bytes the peer may send on one stream
   * before we grant more. Up to 2^31-1. Window updates are sent as the application
   * reads, so this is also the most one stream buffers. 1 MiB keeps a single stream at
   * ~1 GB/s with 1 ms of round trip (the bandwidth-delay product), while 100 open
   * streams still cannot exceed the connection window.
   * @default {1048576}
   */
  initialWindowSize?: number;
  /**
   * Connection receive window: bytes buffered across all streams before the peer must
   * wait; granted with a WINDOW_UPDATE on stream 0 right after the preface. 16 streams
   * at full speed fit; memory per connection stays bounded by it.
   * @default {16777216}
   */
  connectionWindowSize?: number;
  /**
   * SETTINGS_MAX_FRAME_SIZE we advertise: the largest frame payload we accept
   * (16384..16777215). The RFC minimum keeps per-frame buffers small; DATA speed does
   * not depend on it much.
   * @default {16384}
   */
  maxFrameSize?: number;
  /**
   * Cap on the DATA frames we send; the effective size is min(this, peer's
   * SETTINGS_MAX_FRAME_SIZE). 64 KiB amortises the 9-byte header and per-frame work
   * without holding the wire long when several streams share it.
   * @default {65536}
   */
  maxSendFrameSize?: number;
  /**
   * SETTINGS_MAX_CONCURRENT_STREAMS we advertise: streams the peer may have open at
   * once; more are refused with RST_STREAM(REFUSED_STREAM), which clients retry. Above
   * the RFC's recommended minimum of 100, leaving room for gRPC multiplexing.
   * @default {256}
   */
  maxConcurrentStreams?: number;
  /**
   * SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce on decoding (name + value +
   * 32 per field, RFC 9113 §6.5.2). 64 KiB fits large cookies and gRPC metadata.
   * @default {65536}
   */
  maxHeaderListSize?: number;
  /**
   * SETTINGS_HEADER_TABLE_SIZE we advertise: the HPACK dynamic table the peer's encoder
   * may use against our decoder. The RFC default.
   * @default {4096}
   */
  headerTableSize?: number;
  /**
   * Cap on the dynamic table our encoder uses, even if the peer allows more.
   * @default {4096}
   */
  maxEncoderTableSize?: number;
  /**
   * Huffman-code header strings we send when shorter.
   * @default {true}
   */
  huffman?: boolean;
  /**
   * Milliseconds to wait for a PING acknowledgement (`ping()` and keep-alive).
   * @default {20000}
   */
  pingTimeout?: number;
  /**
   * Send a PING after this many milliseconds without receiving anything; if it is not
   * acknowledged within `pingTimeout`, the connection is considered lost. 0 disables.
   * Off by default: most peers (and our own writer) keep busy connections alive.
   * @default {0}
   */
  keepAliveInterval?: number;
  /**
   * Close the connection gracefully after this many milliseconds with no open streams.
   * 0 disables.
   * @default {0}
   */
  idleTimeout?: number;
  /**
   * Milliseconds the peer has to acknowledge our SETTINGS before GOAWAY(SETTINGS_TIMEOUT).
   * @default {10000}
   */
  settingsTimeout?: number;
  /**
   * Milliseconds to flush final frames and wait for the peer to close once the
   * connection is finished (after GOAWAY and the last stream); then the transport is
   * closed regardless.
   * @default {2000}
   */
  closeTimeout?: number;
  /**
   * A stream whose send window the peer keeps at zero (or the connection window) for
   * this many milliseconds while we have data to send is reset with CANCEL: a peer that
   * never reads must not pin our memory forever. 0 disables.
   * @default {60000}
   */
  sendStallTimeout?: number;
  /**
   * Largest field block (HEADERS plus CONTINUATION fragments, before END_HEADERS) we
   * buffer. Beyond it: GOAWAY(ENHANCE_YOUR_CALM) (CONTINUATION flood, CVE-2024-27316).
   * @default {2 * maxHeaderListSize}
   */
  maxHeaderBlockSize?: number;
  /**
   * Most CONTINUATION frames in one field block. Honest peers need one per 16 KiB;
   * more is a flood: GOAWAY(ENHANCE_YOUR_CALM).
   * @default {32}
   */
  maxContinuationFrames?: number;
  /**
   * Most control frames (ACKs, RST_STREAM, WINDOW_UPDATE, ...) waiting to be written. A
   * peer that floods PING or SETTINGS without reading our answers (CVE-2019-9512,
   * -9515) hits this: GOAWAY(ENHANCE_YOUR_CALM).
   * @default {1000}
   */
  maxQueuedControlFrames?: number;
  /**
   * RST_STREAM frames we accept from a client (server role). More is a rapid-reset
   * attack (CVE-2023-44487): GOAWAY(ENHANCE_YOUR_CALM). Cancelling 200 requests a second
   * is far beyond browsers and gRPC deadlines.
   * @default {{ count: 200, intervalMs: 1000 }}
   */
  resetRateLimit?: Http2RateLimit;
  /**
   * Empty DATA frames without END_STREAM we accept (CVE-2019-9518). Honest peers have
   * no reason to send them: GOAWAY(ENHANCE_YOUR_CALM) beyond this.
   * @default {{ count: 100, intervalMs: 1000 }}
   */
  emptyFrameRateLimit?: Http2RateLimit;
}

/**
 * {@linkcode Http2ConnectionOptions} with every default filled in and checked.
 *
 * @example
 * ```ts
 * import { resolveHttp2Options, type ResolvedHttp2Options } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const resolved: ResolvedHttp2Options = resolveHttp2Options();
 * assert.equal(resolved.maxConcurrentStreams, 256);
 * assert.equal(resolved.initialWindowSize, 1 << 20);
 * ```
 */
export type ResolvedHttp2Options = Required<Http2ConnectionOptions>;

function _integer(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `Cannot create HTTP/2 connection: ${name} must be an integer in [${min}, ${max}], received ${value}`,
    );
  }
  return value;
}

function _rate(name: string, value: Http2RateLimit): Http2RateLimit {
  if (typeof value !== "object" || value === null) {
    throw new TypeError(`Cannot create HTTP/2 connection: ${name} must be { count, intervalMs }`);
  }
  return {
    count: _integer(`${name}.count`, value.count, 1, Number.MAX_SAFE_INTEGER),
    intervalMs: _integer(`${name}.intervalMs`, value.intervalMs, 1, Number.MAX_SAFE_INTEGER),
  };
}

/**
 * Fills in defaults and checks every option.
 *
 * @param options user options
 * @returns a complete, validated copy
 * @throws {RangeError} If a value is out of range or options contradict each other.
 *
 * @example Defaults
 * ```ts
 * import { resolveHttp2Options } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const options = resolveHttp2Options({ initialWindowSize: 4 << 20 });
 * assert.equal(options.initialWindowSize, 4 << 20);
 * assert.equal(options.maxFrameSize, 16384);
 * assert.throws(() => resolveHttp2Options({ maxFrameSize: 1000 }), RangeError);
 * ```
 */
export function resolveHttp2Options(options: Http2ConnectionOptions = {}): ResolvedHttp2Options {
  const maxHeaderListSize = _integer("maxHeaderListSize", options.maxHeaderListSize ?? 65536, 1024, 2 ** 30);
  const resolved: ResolvedHttp2Options = {
    initialWindowSize: _integer(
      "initialWindowSize",
      options.initialWindowSize ?? 1 << 20,
      1,
      MAX_WINDOW_SIZE,
    ),
    connectionWindowSize: _integer(
      "connectionWindowSize",
      options.connectionWindowSize ?? 16 << 20,
      DEFAULT_INITIAL_WINDOW_SIZE,
      MAX_WINDOW_SIZE,
    ),
    maxFrameSize: _integer(
      "maxFrameSize",
      options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
      DEFAULT_MAX_FRAME_SIZE,
      MAX_MAX_FRAME_SIZE,
    ),
    maxSendFrameSize: _integer(
      "maxSendFrameSize",
      options.maxSendFrameSize ?? 65536,
      DEFAULT_MAX_FRAME_SIZE,
      MAX_MAX_FRAME_SIZE,
    ),
    maxConcurrentStreams: _integer(
      "maxConcurrentStreams",
      options.maxConcurrentStreams ?? 256,
      0,
      2 ** 31 - 1,
    ),
    maxHeaderListSize,
    headerTableSize: _integer(
      "headerTableSize",
      options.headerTableSize ?? DEFAULT_HEADER_TABLE_SIZE,
      0,
      2 ** 30,
    ),
    maxEncoderTableSize: _integer(
      "maxEncoderTableSize",
      options.maxEncoderTableSize ?? DEFAULT_HEADER_TABLE_SIZE,
      0,
      2 ** 30,
    ),
    huffman: options.huffman ?? true,
    pingTimeout: _integer("pingTimeout", options.pingTimeout ?? 20_000, 1, 2 ** 31 - 1),
    keepAliveInterval: _integer("keepAliveInterval", options.keepAliveInterval ?? 0, 0, 2 ** 31 - 1),
    idleTimeout: _integer("idleTimeout", options.idleTimeout ?? 0, 0, 2 ** 31 - 1),
    settingsTimeout: _integer("settingsTimeout", options.settingsTimeout ?? 10_000, 1, 2 ** 31 - 1),
    closeTimeout: _integer("closeTimeout", options.closeTimeout ?? 2000, 1, 2 ** 31 - 1),
    sendStallTimeout: _integer("sendStallTimeout", options.sendStallTimeout ?? 60_000, 0, 2 ** 31 - 1),
    maxHeaderBlockSize: _integer(
      "maxHeaderBlockSize",
      options.maxHeaderBlockSize ?? 2 * maxHeaderListSize,
      1024,
      2 ** 31 - 1,
    ),
    maxContinuationFrames: _integer("maxContinuationFrames", options.maxContinuationFrames ?? 32, 0, 1 << 20),
    maxQueuedControlFrames: _integer(
      "maxQueuedControlFrames",
      options.maxQueuedControlFrames ?? 1000,
      16,
      1 << 24,
    ),
    resetRateLimit: _rate("resetRateLimit", options.resetRateLimit ?? { count: 200, intervalMs: 1000 }),
    emptyFrameRateLimit: _rate(
      "emptyFrameRateLimit",
      options.emptyFrameRateLimit ?? { count: 100, intervalMs: 1000 },
    ),
  };
  if (typeof resolved.huffman !== "boolean") {
    throw new TypeError("Cannot create HTTP/2 connection: huffman must be a boolean");
  }
  if (resolved.maxHeaderBlockSize < Math.min(resolved.maxHeaderListSize, 16384)) {
    throw new RangeError(
      "Cannot create HTTP/2 connection: maxHeaderBlockSize must hold a field block of maxHeaderListSize (or 16384)",
    );
  }
  return resolved;
}
