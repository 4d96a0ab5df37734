/**
 * Many deadlines, one timer: per-stream open and close timeouts without a `setTimeout`
 * per stream (timers cost more than the rest of opening a stream).
 *
 * @module
 */

interface _Entry {
  at: number;
  fire: () => void;
}

/**
 * Deadlines keyed by `K`. One timer is armed for the earliest deadline; when it fires,
 * every expired entry fires and the timer is re-armed for the next one. Disarming is a
 * map deletion: a timer whose entry went away simply finds nothing to do.
 */
export class _Deadlines<K> {
  readonly #entries = new Map<K, _Entry>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #closed = false;

  /** Number of armed deadlines. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Arms (or re-arms) the deadline of `key`.
   *
   * @param key what the deadline belongs to
   * @param ms time from now
   * @param fire called once when it expires
   */
  arm(key: K, ms: number, fire: () => void): void {
    if (this.#closed) return;
    const at = performance.now() + ms;
    this.#entries.set(key, { at, fire });
    if (at < this.#timerAt) this.#schedule(at);
  }

  /**
   * Disarms the deadline of `key`, if any.
   *
   * @param key what the deadline belongs to
   */
  disarm(key: K): void {
    this.#entries.delete(key);
  }

  /** Disarms everything and stops the timer for good. */
  close(): void {
    this.#closed = true;
    this.#entries.clear();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #schedule(at: number): void {
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#run(), Math.max(0, at - performance.now()));
  }

  #run(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    const due: _Entry[] = [];
    for (const [key, entry] of this.#entries) {
      if (entry.at <= now) {
        this.#entries.delete(key);
        due.push(entry);
      } else if (entry.at < next) {
        next = entry.at;
      }
    }
    if (next < Infinity && !this.#closed) this.#schedule(next);
    for (const entry of due) entry.fire();
  }
}
