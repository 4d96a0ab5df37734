/**
 * The HPACK dynamic table (RFC 7541 §2.3.2, §4): a FIFO of fields, newest first, bounded by
 * a size in octets.
 *
 * @module
 */

/** Octets an entry adds to the table size beyond its name and value (§4.1). */
export const ENTRY_OVERHEAD = 32;

/**
 * The size of the entry `name: value` (§4.1): octets of both plus 32. Strings hold one char
 * per octet, so octets are `length`.
 *
 * @param name the field name
 * @param value the field value
 * @returns the entry size in octets
 */
export function entrySize(name: string, value: string): number {
  return name.length + value.length + ENTRY_OVERHEAD;
}

/**
 * Dynamic table as a ring buffer. Index 0 is the newest entry (HPACK index 62); eviction drops
 * the oldest. Inserting or evicting is O(1) amortized; the ring grows by doubling and never
 * holds more than `maxSize / 32` entries.
 */
export class DynamicTable {
  #names: string[] = new Array<string>(16).fill("");
  #values: string[] = new Array<string>(16).fill("");
  #mask = 15;
  /** Ring slot of the newest entry. */
  #head = 0;
  #length = 0;
  #size = 0;
  #maxSize: number;
  /** Entries ever inserted: gives each entry a stable sequence number. */
  #inserted = 0;
  readonly #onEvict: ((name: string, value: string, sequence: number) => void) | undefined;

  /**
   * Creates an empty table.
   *
   * @param maxSize the maximum size in octets
   * @param onEvict called for each evicted entry with its sequence number (see
   *   {@linkcode DynamicTable.add}), oldest first
   */
  constructor(maxSize: number, onEvict?: (name: string, value: string, sequence: number) => void) {
    this.#maxSize = maxSize;
    this.#onEvict = onEvict;
  }

  /** Number of entries. */
  get length(): number {
    return this.#length;
  }

  /** Sum of the entry sizes in octets. */
  get size(): number {
    return this.#size;
  }

  /** The maximum size in octets. */
  get maxSize(): number {
    return this.#maxSize;
  }

  /** Sequence number the next inserted entry gets; the newest present one has this minus 1. */
  get inserted(): number {
    return this.#inserted;
  }

  /**
   * Changes the maximum size, evicting the oldest entries until the table fits (§4.3).
   *
   * @param maxSize the new maximum in octets
   */
  setMaxSize(maxSize: number): void {
    this.#maxSize = maxSize;
    this.#evictTo(maxSize);
  }

  /**
   * Inserts `name: value` as the newest entry, first evicting the oldest entries until it fits.
   * An entry larger than the maximum size empties the table and is not inserted (§4.4).
   *
   * @param name the field name
   * @param value the field value
   * @returns the entry's sequence number (0 for the first insertion, then 1, 2, …), or -1 if
   *   it was too large to insert
   */
  add(name: string, value: string): number {
    const size = entrySize(name, value);
    if (size > this.#maxSize) {
      this.#evictTo(0);
      return -1;
    }
    this.#evictTo(this.#maxSize - size);
    if (this.#length === this.#mask + 1) this.#grow();
    this.#head = (this.#head - 1) & this.#mask;
    this.#names[this.#head] = name;
    this.#values[this.#head] = value;
    this.#length++;
    this.#size += size;
    return this.#inserted++;
  }

  /**
   * The name of entry `index` (0 = newest); the caller checked `index < length`.
   *
   * @param index 0-based position, newest first
   * @returns the name
   */
  name(index: number): string {
    return this.#names[(this.#head + index) & this.#mask]!;
  }

  /**
   * The value of entry `index` (0 = newest); the caller checked `index < length`.
   *
   * @param index 0-based position, newest first
   * @returns the value
   */
  value(index: number): string {
    return this.#values[(this.#head + index) & this.#mask]!;
  }

  #evictTo(target: number): void {
    while (this.#size > target) {
      const slot = (this.#head + this.#length - 1) & this.#mask;
      const name = this.#names[slot]!;
      const value = this.#values[slot]!;
      // Drop references so evicted strings can be collected.
      this.#names[slot] = "";
      this.#values[slot] = "";
      this.#length--;
      this.#size -= entrySize(name, value);
      this.#onEvict?.(name, value, this.#inserted - this.#length - 1);
    }
  }

  #grow(): void {
    const capacity = (this.#mask + 1) * 2;
    const names = new Array<string>(capacity).fill("");
    const values = new Array<string>(capacity).fill("");
    for (let i = 0; i < this.#length; i++) {
      names[i] = this.name(i);
      values[i] = this.value(i);
    }
    this.#names = names;
    this.#values = values;
    this.#mask = capacity - 1;
    this.#head = 0;
  }
}
