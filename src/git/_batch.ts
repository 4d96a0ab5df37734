/**
 * Batches git's output into larger messages for the message-based transports (plain
 * gRPC streaming, PostUploadPackV3).
 *
 * @module
 */

import type { _StdoutReader } from "./upload_pack.ts";

/** Size of each read from git's pipe (the Linux pipe capacity). */
const _READ = 64 * 1024;

/** Options of {@linkcode _batchOutput}. */
export interface _BatchOptions {
  /** Bytes kept free in front of each batch (for a message header written in place). */
  headroom: number;
  /** Size of the first batch. */
  initial: number;
  /** Largest batch: each full batch doubles the size up to this. */
  max: number;
  /**
   * Milliseconds buffered bytes may wait for more before the partial batch is yielded;
   * 0 waits until the batch is full or the output ends.
   */
  flushInterval: number;
}

const _TIMEOUT = Symbol("timeout");

/**
 * Reads `output` and yields its bytes in batches: a batch goes out when it is full, when
 * the output ends, or when bytes have waited `flushInterval` ms while git is silent
 * (so progress and keep-alive packets are not held back).
 *
 * Each yielded array is `headroom` free bytes followed by the batch; it is a view of a
 * buffer that is reused once the consumer asks for the next batch. Reads go into one
 * reused 64 KiB buffer and are copied into the batch (one copy per byte: a pending read
 * owns its buffer, so only a separate read buffer lets a partial batch leave while
 * git's next bytes are awaited).
 *
 * Stopping early (`return()` on the generator) cancels `output`.
 *
 * @param output git's stdout: a byte stream, or a reader of it (`_stdoutReader`, which
 * reads git's pipe without the stream); released when the generator finishes
 * @param options sizes and the flush interval
 */
export async function* _batchOutput(
  output: ReadableStream<Uint8Array> | _StdoutReader,
  options: _BatchOptions,
): AsyncGenerator<Uint8Array, void, undefined> {
  const { headroom, max, flushInterval } = options;
  const reader = output instanceof ReadableStream ? output.getReader({ mode: "byob" }) : output;
  let size = options.initial;
  let batch = new Uint8Array(headroom + size);
  let filled = 0;
  let readBuffer = new ArrayBuffer(_READ);
  let pending: Promise<ReadableStreamReadResult<Uint8Array>> | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timeout: Promise<typeof _TIMEOUT> | null = null;
  let ended = false;
  const disarm = () => {
    clearTimeout(timer);
    timer = undefined;
    timeout = null;
  };
  try {
    for (;;) {
      pending ??= reader.read(new Uint8Array(readBuffer));
      const result = timeout === null ? await pending : await Promise.race([pending, timeout]);
      if (result === _TIMEOUT) {
        disarm();
        yield batch.subarray(0, headroom + filled);
        filled = 0;
        continue;
      }
      pending = null;
      if (result.done) {
        ended = true;
        disarm();
        if (filled > 0) yield batch.subarray(0, headroom + filled);
        return;
      }
      readBuffer = result.value.buffer as ArrayBuffer;
      let data = result.value;
      while (data.byteLength > 0) {
        const n = Math.min(size - filled, data.byteLength);
        batch.set(n === data.byteLength ? data : data.subarray(0, n), headroom + filled);
        filled += n;
        data = data.subarray(n);
        if (filled === size) {
          disarm();
          yield batch;
          filled = 0;
          if (size < max) {
            size = Math.min(size * 2, max);
            batch = new Uint8Array(headroom + size);
          }
        }
      }
      if (filled > 0 && timeout === null && flushInterval > 0) {
        timeout = new Promise((resolve) => (timer = setTimeout(resolve, flushInterval, _TIMEOUT)));
      }
    }
  } finally {
    disarm();
    if (!ended) {
      pending?.catch(() => {});
      await reader.cancel().catch(() => {});
    }
    reader.releaseLock();
  }
}
