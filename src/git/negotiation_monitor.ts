/**
 * The SSH negotiation deadline: the client must finish negotiating (send `0009done\n`)
 * within a time limit, or git is stopped (Gitaly's `pktline.ReadMonitor`).
 *
 * @module
 */

import { PktScanner } from "../pktline/scanner.ts";

/** Options for {@linkcode NegotiationMonitor}. */
export interface NegotiationMonitorOptions {
  /**
   * Milliseconds from construction until `onTimeout` runs unless `done` was seen.
   * Gitaly's default (`[timeout] upload_pack_negotiation`) is 10 minutes.
   * @default {600000}
   */
  timeout?: number;
  /**
   * Called once when the deadline passes first. Must not throw.
   * @default {() => {}}
   */
  onTimeout?: () => void;
}

/** Where a {@linkcode NegotiationMonitor} stands. */
export type NegotiationMonitorState = "waiting" | "done" | "timed-out" | "stopped";

const _DONE = new TextEncoder().encode("done\n");

function _isDone(payload: Uint8Array): boolean {
  if (payload.byteLength !== _DONE.byteLength) return false;
  for (let i = 0; i < _DONE.byteLength; i++) if (payload[i] !== _DONE[i]) return false;
  return true;
}

/**
 * Watches request bytes for the `0009done\n` packet and calls `onTimeout` if it has
 * not appeared in time.
 *
 * This mitigates use-after-check races: access is checked when the RPC starts, so a
 * client must not hold a negotiation open indefinitely. The rules are Gitaly's:
 * - the deadline runs from construction; seeing a packet exactly `0009done\n` stops it;
 * - malformed pkt-line framing stops it too (git itself will then fail);
 * - a flush does not stop it: a client that sends only a flush (nothing wanted) makes
 *   git exit by itself, and the caller then calls {@linkcode NegotiationMonitor.stop};
 * - after `done`, later bytes are not scanned.
 *
 * @example
 * ```ts
 * import { encodeFlush, encodePkt, NegotiationMonitor } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * let timedOut = false;
 * const monitor = new NegotiationMonitor({ timeout: 60_000, onTimeout: () => (timedOut = true) });
 * monitor.push(encodePkt(`want ${"a".repeat(40)}\n`));
 * monitor.push(encodeFlush());
 * assert.equal(monitor.state, "waiting");
 * monitor.push(encodePkt("done\n"));
 * assert.equal(monitor.state, "done");
 * assert.equal(timedOut, false);
 * ```
 */
export class NegotiationMonitor {
  #scanner: PktScanner | null = new PktScanner();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #state: NegotiationMonitorState = "waiting";

  /**
   * Starts the deadline.
   *
   * @param options the timeout and its callback
   * @throws {RangeError} For a timeout that is not a finite number >= 0.
   */
  constructor(options: NegotiationMonitorOptions = {}) {
    const timeout = options.timeout ?? 600_000;
    if (!Number.isFinite(timeout) || timeout < 0) {
      throw new RangeError(
        `Cannot create NegotiationMonitor: timeout must be a finite number >= 0, received ${timeout}`,
      );
    }
    const onTimeout = options.onTimeout ?? (() => {});
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#state !== "waiting") return;
      this.#state = "timed-out";
      this.#scanner = null;
      onTimeout();
    }, timeout);
  }

  /** `waiting`, `done` (seen in time), `timed-out`, or `stopped`. */
  get state(): NegotiationMonitorState {
    return this.#state;
  }

  /**
   * Scans more request bytes. Keeps a reference to an incomplete trailing packet until
   * the rest arrives: do not modify pushed bytes.
   *
   * @param chunk the next bytes the client sent
   */
  push(chunk: Uint8Array): void {
    const scanner = this.#scanner;
    if (scanner === null || this.#state !== "waiting") return;
    scanner.push(chunk);
    try {
      for (let pkt = scanner.next(); pkt !== undefined; pkt = scanner.next()) {
        if (pkt.kind === "data" && _isDone(pkt.payload)) {
          this.#finish("done");
          return;
        }
      }
    } catch {
      // Broken framing: git will fail on it; Gitaly stops the timer here too.
      this.#finish("stopped");
    }
  }

  /** Stops the deadline (git exited, or the call ended). Idempotent. */
  stop(): void {
    if (this.#state === "waiting") this.#finish("stopped");
  }

  #finish(state: NegotiationMonitorState): void {
    this.#state = state;
    this.#scanner = null;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
