/**
 * sidechannel: move big byte streams beside gRPC, fast, with bounded memory.
 *
 * Yamux multiplexing, Gitaly's backchannel and sidechannel, HTTP/2 + gRPC with a raw
 * codec, and git upload-pack over all of them, on Web Streams.
 *
 * @example An in-memory duplex pair
 * ```ts
 * import { duplexPair } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = duplexPair();
 * const writer = a.writable.getWriter();
 * await writer.write(new Uint8Array([42]));
 * const { value } = await b.readable.getReader().read();
 * assert.deepEqual(value, new Uint8Array([42]));
 * ```
 *
 * @module
 */

// Streams: the duplex shapes and helpers every layer builds on.
export type { Duplex, DuplexConn } from "./src/streams/duplex.ts";
export { ByteReader, type ByteReaderOptions, UnexpectedEofError } from "./src/streams/byte_reader.ts";
export { duplexPair, type DuplexPairOptions } from "./src/streams/duplex_pair.ts";
export { type DenoConnLike, type DenoConnOptions, fromDenoConn } from "./src/streams/deno_conn.ts";
export { FairQueue, type FairQueueOptions } from "./src/streams/fair_queue.ts";
