/**
 * Typed values attached to a call or a connection: where interceptors and transports
 * leave information for handlers (an authenticated principal, a backchannel peer id,
 * the yamux session a call arrived on).
 *
 * @module
 */

/**
 * A typed key for {@linkcode GrpcValues}. Keys compare by identity: create one per
 * piece of information, at module level, and share it between producer and consumer.
 *
 * @typeParam T the type of the value stored under this key
 *
 * @example
 * ```ts
 * import { GrpcKey } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const PEER_ID = new GrpcKey<bigint>("backchannel-peer-id");
 * assert.equal(PEER_ID.name, "backchannel-peer-id");
 * assert.notEqual(PEER_ID, new GrpcKey<bigint>("backchannel-peer-id"));
 * ```
 */
export class GrpcKey<T> {
  /** A description, for debugging; two keys with the same name are still distinct. */
  readonly name: string;
  /** Type brand for `T`; never set at run time. */
  declare readonly _type?: T;

  /**
   * Creates a key.
   *
   * @param name a description
   */
  constructor(name: string) {
    this.name = name;
  }
}

/**
 * A small typed map from {@linkcode GrpcKey}s to values.
 *
 * @example
 * ```ts
 * import { GrpcKey, GrpcValues } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const USER = new GrpcKey<string>("user");
 * const values = new GrpcValues().set(USER, "alice");
 * assert.equal(values.get(USER), "alice");
 * assert.equal(values.has(USER), true);
 * assert.equal(values.delete(USER), true);
 * assert.equal(values.get(USER), undefined);
 * ```
 */
export class GrpcValues {
  readonly #map = new Map<GrpcKey<unknown>, unknown>();

  /**
   * The value stored under `key`.
   *
   * @typeParam T the key's value type
   * @param key the key
   * @returns the value, or `undefined`
   */
  get<T>(key: GrpcKey<T>): T | undefined {
    return this.#map.get(key) as T | undefined;
  }

  /**
   * Stores `value` under `key`.
   *
   * @typeParam T the key's value type
   * @param key the key
   * @param value the value
   * @returns this map, for chaining
   */
  set<T>(key: GrpcKey<T>, value: T): this {
    this.#map.set(key, value);
    return this;
  }

  /**
   * Whether a value is stored under `key`.
   *
   * @param key the key
   * @returns `true` if present
   */
  has(key: GrpcKey<unknown>): boolean {
    return this.#map.has(key);
  }

  /**
   * Removes the value under `key`.
   *
   * @param key the key
   * @returns `true` if there was one
   */
  delete(key: GrpcKey<unknown>): boolean {
    return this.#map.delete(key);
  }
}
