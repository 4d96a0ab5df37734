/**
 * A fixed-window event counter for flood defences. Pure: the caller passes the time.
 *
 * @module
 */

import type { Http2RateLimit } from "./options.ts";

/** Counts events per interval; `hit()` is false once the limit is exceeded. */
export class _RateLimit {
  readonly #count: number;
  readonly #interval: number;
  #start = -Infinity;
  #seen = 0;

  constructor(limit: Http2RateLimit) {
    this.#count = limit.count;
    this.#interval = limit.intervalMs;
  }

  /**
   * Records one event.
   *
   * @param now the current time in milliseconds
   * @returns false if this event exceeds the limit
   */
  hit(now: number): boolean {
    if (now - this.#start >= this.#interval) {
      this.#start = now;
      this.#seen = 0;
    }
    this.#seen++;
    return this.#seen <= this.#count;
  }
}
