/**
 * A promise created only when someone asks for it. Private to the module.
 *
 * @module
 */

const _noop = () => {};

/**
 * A promise created only when someone asks for it: settling before that is kept and
 * costs no allocation. A rejection nobody looks at is never an unhandled rejection.
 *
 * @internal
 */
export class _Lazy<T> {
  #outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
  #resolvers: PromiseWithResolvers<T> | undefined;

  /** The promise (created on first access). */
  get promise(): Promise<T> {
    if (this.#resolvers === undefined) {
      this.#resolvers = Promise.withResolvers<T>();
      this.#resolvers.promise.catch(_noop);
      const outcome = this.#outcome;
      if (outcome?.ok === true) this.#resolvers.resolve(outcome.value);
      else if (outcome?.ok === false) this.#resolvers.reject(outcome.error);
    }
    return this.#resolvers.promise;
  }

  /** Fulfils the promise, unless it was settled before. */
  resolve(value: T): void {
    if (this.#outcome !== undefined) return;
    this.#outcome = { ok: true, value };
    this.#resolvers?.resolve(value);
  }

  /** Rejects the promise, unless it was settled before. */
  reject(error: unknown): void {
    if (this.#outcome !== undefined) return;
    this.#outcome = { ok: false, error };
    this.#resolvers?.reject(error);
  }
}
