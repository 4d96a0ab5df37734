/**
 * Yamux session options and their single validation step.
 *
 * @module
 */

import { INITIAL_STREAM_WINDOW, MAX_UINT32 } from "./frame.ts";

/** Options for {@linkcode YamuxSession}. All times in milliseconds. */
export interface YamuxOptions {
  /**
   * Receive window granted to the peer per stream. Anything above the protocol's 256 KiB
   * is granted with a window update on SYN/ACK. Bounds memory per stream (a slow reader
   * buffers at most this much) and throughput per stream (one window per round trip).
   * Gitaly's server uses 16 MiB; its clients 256 KiB.
   * @default {262144}
   */
  maxStreamWindow?: number;
  /**
   * Inbound streams waiting for `accept()`; a SYN beyond this is refused with RST, so a
   * peer cannot queue unbounded work. Gitaly's server uses 1.
   * @default {256}
   */
  acceptBacklog?: number;
  /**
   * Interval between keepalive pings; 0 disables them. The session ends with
   * `KEEPALIVE_TIMEOUT` if nothing at all arrives within `connectionWriteTimeout` after a
   * ping (any frame proves the peer alive, so a busy link never times out).
   * @default {30000}
   */
  keepAliveInterval?: number;
  /**
   * Safety valve: a single transport write that takes longer than this ends the session
   * (the peer stopped reading), and it bounds how long `ping()` waits for its reply.
   * @default {10000}
   */
  connectionWriteTimeout?: number;
  /**
   * An opened stream whose ACK does not arrive within this ends the session with
   * `TIMEOUT` (the peer is not processing streams; hashicorp's behaviour). 0 disables.
   * @default {75000}
   */
  streamOpenTimeout?: number;
  /**
   * After our FIN, how long to wait for the peer's FIN before resetting the stream. Keeps
   * a peer that never closes from pinning a stream forever. Gitaly's sidechannel clients
   * use 1000. 0 disables.
   * @default {300000}
   */
  streamCloseTimeout?: number;
  /**
   * Open streams allowed at once, both directions together. An inbound SYN beyond it is
   * refused with RST; `open()` beyond it rejects with `TOO_MANY_STREAMS`.
   * @default {1024}
   */
  maxConcurrentStreams?: number;
  /**
   * Largest data payload we put in one frame. Also the fair scheduler's quantum: a frame
   * is what one stream sends per round-robin turn, so smaller frames mean lower latency
   * for other streams, larger ones fewer headers. Must not exceed `maxStreamWindow`
   * semantics of the peer (frames are always cut to the peer's current window as well).
   * @default {65536}
   */
  maxFrameSize?: number;
}

/** {@linkcode YamuxOptions} with every field filled. */
export type ResolvedYamuxOptions = Required<YamuxOptions>;

/** Defaults for {@linkcode YamuxOptions}. */
export const DEFAULT_YAMUX_OPTIONS: Readonly<ResolvedYamuxOptions> = Object.freeze({
  maxStreamWindow: INITIAL_STREAM_WINDOW,
  acceptBacklog: 256,
  keepAliveInterval: 30_000,
  connectionWriteTimeout: 10_000,
  streamOpenTimeout: 75_000,
  streamCloseTimeout: 300_000,
  maxConcurrentStreams: 1024,
  maxFrameSize: 65536,
});

function _checkInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `Cannot create yamux session: ${name} must be an integer in [${min}, ${max}], received ${value}`,
    );
  }
}

/**
 * Fills defaults and validates. Throws `RangeError` on a bad value.
 *
 * @param options user options
 * @returns complete options
 *
 * @example
 * ```ts
 * import { resolveYamuxOptions } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const options = resolveYamuxOptions({ maxStreamWindow: 16 * 1024 * 1024, keepAliveInterval: 0 });
 * assert.equal(options.acceptBacklog, 256);
 * assert.throws(() => resolveYamuxOptions({ maxStreamWindow: 1024 }), RangeError);
 * ```
 */
export function resolveYamuxOptions(options: YamuxOptions = {}): ResolvedYamuxOptions {
  const resolved: ResolvedYamuxOptions = { ...DEFAULT_YAMUX_OPTIONS };
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (!(key in DEFAULT_YAMUX_OPTIONS)) {
      throw new TypeError(`Cannot create yamux session: unknown option "${key}"`);
    }
    (resolved as Record<string, number>)[key] = value as number;
  }
  const day = 86_400_000;
  _checkInteger("maxStreamWindow", resolved.maxStreamWindow, INITIAL_STREAM_WINDOW, 0x7fff_ffff);
  _checkInteger("acceptBacklog", resolved.acceptBacklog, 1, 1 << 20);
  _checkInteger("keepAliveInterval", resolved.keepAliveInterval, 0, day);
  _checkInteger("connectionWriteTimeout", resolved.connectionWriteTimeout, 1, day);
  _checkInteger("streamOpenTimeout", resolved.streamOpenTimeout, 0, day);
  _checkInteger("streamCloseTimeout", resolved.streamCloseTimeout, 0, day);
  _checkInteger("maxConcurrentStreams", resolved.maxConcurrentStreams, 1, MAX_UINT32 >>> 1);
  _checkInteger("maxFrameSize", resolved.maxFrameSize, 1, 16 * 1024 * 1024);
  return resolved;
}
