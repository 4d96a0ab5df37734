/**
 * A request body that can be sent again: what was read is kept (up to a limit) so a
 * retried attempt replays it before reading on.
 *
 * @module
 */

/** @private Request-body replay for retries. */
export class _ReplayBody {
  readonly #limit: number;
  #reader: ReadableStreamDefaultReader<Uint8Array> | null;
  #chunks: Uint8Array[] = [];
  #kept = 0;
  #length = 0;
  #overflow = false;
  #ended = false;
  #error: unknown = undefined;
  #failed = false;
  #generation = 0;
  #reading: Promise<void> | null = null;

  /**
   * @param source the body (`null`: empty)
   * @param limit bytes kept for replay; beyond that the body can no longer be replayed
   */
  constructor(source: ReadableStream<Uint8Array> | null, limit: number) {
    this.#reader = source?.getReader() ?? null;
    this.#limit = limit;
    if (source === null) this.#ended = true;
  }

  /** Whether a new attempt can still get the whole body. */
  get replayable(): boolean {
    return !this.#overflow;
  }

  /** Bytes read from the source so far. */
  get length(): number {
    return this.#length;
  }

  /** Whether the source has ended. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * The body for a new attempt: the kept bytes, then the rest of the source. An older
   * attempt's stream stops (errors) once a newer one exists.
   */
  stream(): ReadableStream<Uint8Array> {
    if (this.#overflow) {
      throw new TypeError("Cannot replay request body: more than the replay limit was read");
    }
    const generation = ++this.#generation;
    let index = 0;
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (generation !== this.#generation) {
          controller.error(
            new DOMException("Cannot read request body: a newer attempt took it", "AbortError"),
          );
          return;
        }
        if (index < this.#chunks.length) {
          controller.enqueue(this.#chunks[index++]!);
          return;
        }
        await this.#readMore();
        if (generation !== this.#generation) {
          controller.error(
            new DOMException("Cannot read request body: a newer attempt took it", "AbortError"),
          );
          return;
        }
        if (this.#failed) {
          controller.error(this.#error);
          return;
        }
        if (index < this.#chunks.length) {
          controller.enqueue(this.#chunks[index++]!);
        } else if (this.#ended) {
          controller.close();
        } else if (this.#overflow && this.#pending !== null) {
          const chunk = this.#pending;
          this.#pending = null;
          controller.enqueue(chunk);
        }
      },
    }, { highWaterMark: 0 });
  }

  /** A chunk read past the limit, handed to the current attempt without being kept. */
  #pending: Uint8Array | null = null;

  #readMore(): Promise<void> {
    this.#reading ??= (async () => {
      try {
        const { value, done } = await this.#reader!.read();
        if (done) {
          this.#ended = true;
          return;
        }
        this.#length += value.byteLength;
        if (!this.#overflow && this.#kept + value.byteLength <= this.#limit) {
          this.#chunks.push(value);
          this.#kept += value.byteLength;
        } else {
          this.#overflow = true;
          this.#chunks = [];
          this.#pending = value;
        }
      } catch (error) {
        this.#failed = true;
        this.#error = error;
      } finally {
        this.#reading = null;
      }
    })();
    return this.#reading;
  }

  /** Releases the source. */
  cancel(reason?: unknown): void {
    this.#generation++;
    this.#chunks = [];
    if (!this.#ended) void this.#reader?.cancel(reason).catch(() => {});
  }
}
