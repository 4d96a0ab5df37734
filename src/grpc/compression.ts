/**
 * Per-message compression (`grpc-encoding`), with a limit on the decompressed size.
 *
 * @module
 */

import { GrpcError, Status } from "./status.ts";

/**
 * A `grpc-encoding` codec: compresses one message at a time, no shared context.
 *
 * @example
 * ```ts
 * import type { Compression } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * // A do-nothing encoding, for illustration.
 * const none: Compression = {
 *   name: "none",
 *   compress: (bytes) => Promise.resolve(bytes),
 *   decompress: (bytes) => Promise.resolve(bytes),
 * };
 * assert.deepEqual(await none.decompress(await none.compress(new Uint8Array([1])), 10), new Uint8Array([1]));
 * ```
 */
export interface Compression {
  /** The `grpc-encoding` token, e.g. `"gzip"`. */
  readonly name: string;
  /**
   * Compresses one message.
   *
   * @param bytes the message
   * @returns the compressed bytes
   */
  compress(bytes: Uint8Array): Promise<Uint8Array>;
  /**
   * Decompresses one message.
   *
   * @param bytes the compressed message
   * @param maxBytes the largest decompressed size accepted
   * @returns the message
   * @throws {GrpcError} `RESOURCE_EXHAUSTED` once the output passes `maxBytes` (decoding
   * stops there: a small "zip bomb" never inflates in memory), `INTERNAL` for corrupt
   * input.
   */
  decompress(bytes: Uint8Array, maxBytes: number): Promise<Uint8Array>;
}

async function _collect(
  readable: ReadableStream<Uint8Array>,
  maxBytes: number,
  what: string,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = readable.getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw new GrpcError(
          Status.RESOURCE_EXHAUSTED,
          `Cannot ${what} message: decompressed size exceeds the limit of ${maxBytes} bytes`,
        );
      }
      chunks.push(value);
    }
  } catch (error) {
    if (error instanceof GrpcError) throw error;
    throw new GrpcError(Status.INTERNAL, `Cannot ${what} message: ${String(error)}`, { cause: error });
  } finally {
    reader.releaseLock();
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

function _run(
  bytes: Uint8Array,
  transform: { readable: ReadableStream<Uint8Array>; writable: WritableStream<BufferSource> },
  maxBytes: number,
  what: string,
): Promise<Uint8Array> {
  const writer = transform.writable.getWriter();
  // Errors surface on the readable side; the writer's promises only need observing.
  writer.write(bytes as Uint8Array<ArrayBuffer>).catch(() => {});
  writer.close().catch(() => {});
  return _collect(transform.readable, maxBytes, what);
}

/**
 * gzip (`grpc-encoding: gzip`) on the platform's `CompressionStream` and
 * `DecompressionStream`.
 *
 * @example
 * ```ts
 * import { gzipCompression } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const message = new TextEncoder().encode("hello ".repeat(100));
 * const compressed = await gzipCompression.compress(message);
 * assert.ok(compressed.byteLength < message.byteLength);
 * assert.deepEqual(await gzipCompression.decompress(compressed, 1024), message);
 * await assert.rejects(gzipCompression.decompress(compressed, 100));
 * ```
 */
export const gzipCompression: Compression = {
  name: "gzip",
  compress(bytes) {
    return _run(bytes, new CompressionStream("gzip"), Number.POSITIVE_INFINITY, "compress");
  },
  decompress(bytes, maxBytes) {
    return _run(bytes, new DecompressionStream("gzip"), maxBytes, "decompress");
  },
};
