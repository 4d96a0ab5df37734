/**
 * A pure fair scheduler for frames that share one connection.
 *
 * @module
 */

/** Options for {@linkcode FairQueue}. */
export interface FairQueueOptions {
  /**
   * Bytes a flow may send per round-robin visit (deficit round robin). About one frame:
   * small enough that no flow holds the wire for long, large enough that a full frame
   * goes out in one visit.
   * @default {65536}
   */
  quantum?: number;
}

interface _Flow<T> {
  key: number;
  items: T[];
  sizes: number[];
  head: number;
  deficit: number;
  bytes: number;
  /** True while this flow is in the active ring. */
  active: boolean;
}

/**
 * Strict-priority control lane plus deficit round robin over data flows.
 *
 * - `pushControl()` items always leave first, in FIFO order. Use it for pings, window
 *   updates, stream open/close/reset and connection errors: they must never wait behind
 *   bulk data.
 * - `push(key, item, size)` queues data on flow `key` (a stream id). Flows are served
 *   round robin; each visit grants `quantum` bytes of credit, so every backlogged flow
 *   gets an equal byte share whatever its frame sizes, and a waiting frame waits at most
 *   one quantum per other active flow.
 *
 * No I/O and no timers: a session's writer loop pops from it. Costs are O(1) per item
 * plus O(active flows) when a flow joins or leaves the ring.
 *
 * @typeParam T the queued item (typically a frame plus its completion callback)
 *
 * @example Control first, then data round robin
 * ```ts
 * import { FairQueue } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const q = new FairQueue<string>({ quantum: 10 });
 * q.push(1, "a1", 10);
 * q.push(1, "a2", 10);
 * q.push(3, "b1", 10);
 * q.pushControl("ping", 12);
 * assert.deepEqual([q.pop(), q.pop(), q.pop(), q.pop()], ["ping", "a1", "b1", "a2"]);
 * assert.equal(q.pop(), undefined);
 * ```
 */
export class FairQueue<T> {
  readonly #quantum: number;
  #control: T[] = [];
  #controlSizes: number[] = [];
  #controlHead = 0;
  #flows = new Map<number, _Flow<T>>();
  #ring: _Flow<T>[] = [];
  #cursor = 0;
  /** Whether the flow under the cursor already received its quantum this visit. */
  #visiting = false;
  #bytes = 0;
  #length = 0;

  /**
   * Creates an empty queue.
   *
   * @param options scheduling parameters
   */
  constructor(options: FairQueueOptions = {}) {
    const quantum = options.quantum ?? 65536;
    if (!Number.isInteger(quantum) || quantum < 1) {
      throw new RangeError(
        `Cannot create FairQueue: quantum must be a positive integer, received ${quantum}`,
      );
    }
    this.#quantum = quantum;
  }

  /** Number of queued items, control and data. */
  get length(): number {
    return this.#length;
  }

  /** Sum of the sizes of all queued items. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Number of flows with queued data. */
  get activeFlows(): number {
    return this.#ring.length;
  }

  /**
   * Queues a control item; it leaves before any data.
   *
   * @param item the item
   * @param size its size in bytes (for accounting)
   */
  pushControl(item: T, size = 0): void {
    this.#control.push(item);
    this.#controlSizes.push(size);
    this.#bytes += size;
    this.#length++;
  }

  /**
   * Queues a data item on a flow. Items of one flow leave in order.
   *
   * @param key the flow (stream id)
   * @param item the item
   * @param size its size in bytes; what fairness is measured in
   */
  push(key: number, item: T, size: number): void {
    let flow = this.#flows.get(key);
    if (flow === undefined) {
      flow = { key, items: [], sizes: [], head: 0, deficit: 0, bytes: 0, active: false };
      this.#flows.set(key, flow);
    }
    flow.items.push(item);
    flow.sizes.push(size);
    flow.bytes += size;
    this.#bytes += size;
    this.#length++;
    if (!flow.active) {
      flow.active = true;
      // Join just behind the cursor: the newcomer waits one full round, like a new arrival
      // at the back of the line.
      if (this.#ring.length === 0) {
        this.#ring.push(flow);
        this.#cursor = 0;
        this.#visiting = false;
      } else {
        this.#ring.splice(this.#cursor, 0, flow);
        this.#cursor++;
      }
    }
  }

  /**
   * Takes the next item: control first, then data by deficit round robin.
   *
   * @returns the item, or `undefined` when empty
   */
  pop(): T | undefined {
    if (this.#controlHead < this.#control.length) {
      const item = this.#control[this.#controlHead]!;
      this.#bytes -= this.#controlSizes[this.#controlHead]!;
      this.#length--;
      this.#controlHead++;
      if (this.#controlHead === this.#control.length) {
        this.#control = [];
        this.#controlSizes = [];
        this.#controlHead = 0;
      } else if (this.#controlHead > 1024 && this.#controlHead * 2 > this.#control.length) {
        this.#control = this.#control.slice(this.#controlHead);
        this.#controlSizes = this.#controlSizes.slice(this.#controlHead);
        this.#controlHead = 0;
      }
      return item;
    }
    // Each pass over the ring adds a quantum to every flow, so a flow whose head is larger
    // than the quantum is served after ceil(size / quantum) rounds; the loop terminates.
    for (;;) {
      if (this.#ring.length === 0) return undefined;
      if (this.#cursor >= this.#ring.length) this.#cursor = 0;
      const flow = this.#ring[this.#cursor]!;
      if (!this.#visiting) {
        flow.deficit += this.#quantum;
        this.#visiting = true;
      }
      const size = flow.sizes[flow.head]!;
      if (size <= flow.deficit) {
        flow.deficit -= size;
        return this.#take(flow);
      }
      this.#cursor++;
      this.#visiting = false;
    }
  }

  /**
   * Queued bytes of one flow.
   *
   * @param key the flow
   * @returns bytes queued on it
   */
  bytesOf(key: number): number {
    return this.#flows.get(key)?.bytes ?? 0;
  }

  /**
   * Removes a flow and returns its queued items (for example to reject their writers
   * when the stream is reset).
   *
   * @param key the flow
   * @returns the removed items, oldest first
   */
  remove(key: number): T[] {
    const flow = this.#flows.get(key);
    if (flow === undefined) return [];
    this.#flows.delete(key);
    const items = flow.items.slice(flow.head);
    this.#bytes -= flow.bytes;
    this.#length -= items.length;
    if (flow.active) this.#leaveRing(flow);
    return items;
  }

  /**
   * Removes everything, control and data.
   *
   * @returns all queued items, control items first
   */
  clear(): T[] {
    const out = this.#control.slice(this.#controlHead);
    for (const flow of this.#flows.values()) out.push(...flow.items.slice(flow.head));
    this.#control = [];
    this.#controlSizes = [];
    this.#controlHead = 0;
    this.#flows.clear();
    this.#ring = [];
    this.#cursor = 0;
    this.#visiting = false;
    this.#bytes = 0;
    this.#length = 0;
    return out;
  }

  #take(flow: _Flow<T>): T {
    const item = flow.items[flow.head]!;
    const size = flow.sizes[flow.head]!;
    flow.head++;
    flow.bytes -= size;
    this.#bytes -= size;
    this.#length--;
    if (flow.head === flow.items.length) {
      // Drained: leave the ring; an idle flow keeps no credit (DRR rule).
      flow.items = [];
      flow.sizes = [];
      flow.head = 0;
      flow.deficit = 0;
      this.#flows.delete(flow.key);
      this.#leaveRing(flow);
    } else if (flow.head > 64 && flow.head * 2 > flow.items.length) {
      flow.items = flow.items.slice(flow.head);
      flow.sizes = flow.sizes.slice(flow.head);
      flow.head = 0;
    }
    return item;
  }

  #leaveRing(flow: _Flow<T>): void {
    flow.active = false;
    const index = this.#ring.indexOf(flow);
    if (index < 0) return;
    this.#ring.splice(index, 1);
    if (index < this.#cursor) {
      this.#cursor--;
    } else if (index === this.#cursor) {
      this.#visiting = false;
    }
    if (this.#cursor >= this.#ring.length) this.#cursor = 0;
  }
}
