/**
 * The server side of the sidechannel handshake: open a stream toward the client and
 * claim the call's sidechannel (Gitaly `OpenSidechannel`).
 *
 * @module
 */

import { _asDirect, _readFull, _withDeadline, _writeAll } from "../backchannel/_io.ts";
import type { DuplexConn } from "../streams/duplex.ts";
import { SidechannelServerConn } from "./conn.ts";
import { SidechannelError } from "./errors.ts";
import { encodeSidechannelPreamble, SIDECHANNEL_CONFIRMATION } from "./wire.ts";

/**
 * Anything that opens streams toward the client: a server-side {@linkcode YamuxSession}.
 */
export interface StreamOpener {
  /** Opens a new stream. */
  open(options?: { signal?: AbortSignal }): Promise<DuplexConn>;
}

/** Options for {@linkcode openSidechannel}. */
export interface OpenSidechannelOptions {
  /**
   * Bound on writing the magic and id and reading `ok` (Gitaly's `sidechannelTimeout`,
   * 5 s). A client that stays silent fails the open with `HANDSHAKE` (retryable).
   * 0 disables it.
   * @default {5000}
   */
  timeout?: number;
  /** Aborting resets the stream; the call rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Opens the sidechannel for `id` toward the client: a new stream, `sidechannel` + the id
 * as a big-endian int64, then exactly `ok` back, all within `timeout`.
 *
 * Failures to open the stream, write, or read the answer (end of stream, reset,
 * timeout) are `HANDSHAKE` errors, which are retryable and map to `UNAVAILABLE`
 * (Gitaly's `RetryableError`: a client reconnecting after a restart should retry). Any
 * other answer is `BAD_CONFIRMATION`, not retryable. On failure the stream is reset.
 *
 * @param session opens the stream (the peer's yamux session)
 * @param id the call's sidechannel id (see {@linkcode parseSidechannelId})
 * @param options timeout and abort signal
 * @returns the server's end of the sidechannel
 * @throws {SidechannelError} `HANDSHAKE` or `BAD_CONFIRMATION`.
 * @throws {RangeError} If `id` is not an int64.
 *
 * @example Open a sidechannel to a yamux client that registered a waiter
 * ```ts
 * import {
 *   duplexPair,
 *   listenmux,
 *   openSidechannel,
 *   SidechannelRegistry,
 *   YamuxSession,
 * } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = duplexPair();
 * await using client = YamuxSession.client(a);
 * await using server = YamuxSession.server(b);
 * const registry = new SidechannelRegistry();
 * const waiter = registry.register(async (conn) => {
 *   await conn.write(new TextEncoder().encode("hello"));
 *   await conn.closeWrite();
 * });
 * // The client dispatches server-opened streams by their magic.
 * void (async () => {
 *   const routed = await listenmux(await client.accept(), { sidechannel: registry });
 *   if (routed.kind === "matched") await routed.handshaker.handshake(routed.conn);
 * })();
 *
 * const conn = await openSidechannel(server, waiter.id);
 * assert.equal(await new Response(conn.readable).text(), "hello");
 * await conn.close();
 * await waiter.close();
 * ```
 */
export async function openSidechannel(
  session: StreamOpener,
  id: bigint | number,
  options: OpenSidechannelOptions = {},
): Promise<SidechannelServerConn> {
  const preamble = encodeSidechannelPreamble(id);
  const { signal } = options;
  const timeout = options.timeout ?? 5000;
  if (!Number.isInteger(timeout) || timeout < 0) {
    throw new RangeError(
      `Cannot open sidechannel: timeout must be a non-negative integer, received ${timeout}`,
    );
  }
  signal?.throwIfAborted();
  let stream: DuplexConn;
  try {
    stream = await session.open(signal === undefined ? {} : { signal });
  } catch (error) {
    if (signal?.aborted && error === signal.reason) throw error;
    throw new SidechannelError("HANDSHAKE", "Cannot open sidechannel: open stream failed", { cause: error });
  }
  const direct = _asDirect(stream);
  let stage = "write magic bytes";
  const answer = new Uint8Array(2);
  let got = 0;
  try {
    got = await _withDeadline(timeout, signal, (reason) => stream.reset(reason), async () => {
      await _writeAll(direct, preamble);
      stage = "receive confirmation";
      return await _readFull(direct, answer);
    });
  } catch (error) {
    stream.reset(error);
    if (signal?.aborted && error === signal.reason) throw error;
    throw new SidechannelError("HANDSHAKE", `Cannot open sidechannel: ${stage} failed`, { cause: error });
  }
  if (got < 2) {
    stream.reset();
    throw new SidechannelError("HANDSHAKE", "Cannot open sidechannel: receive confirmation: EOF");
  }
  if (
    answer[0] !== SIDECHANNEL_CONFIRMATION.charCodeAt(0) ||
    answer[1] !== SIDECHANNEL_CONFIRMATION.charCodeAt(1)
  ) {
    stream.reset();
    throw new SidechannelError(
      "BAD_CONFIRMATION",
      `Cannot open sidechannel: expected ok, got ${
        JSON.stringify(String.fromCharCode(answer[0]!, answer[1]!))
      }`,
    );
  }
  return new SidechannelServerConn(direct);
}
