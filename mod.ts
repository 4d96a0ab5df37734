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

// pktline: git pkt-line framing and sideband-64k, with Gitaly's rules.
export { PktlineError, type PktlineErrorCode } from "./src/pktline/errors.ts";
export {
  DELIM_PKT,
  encodeDelim,
  encodeFlush,
  encodePkt,
  encodePktHeader,
  encodeResponseEnd,
  FLUSH_PKT,
  isFlush,
  MAX_PKT_DATA,
  MAX_PKT_SIZE,
  MAX_SIDEBAND_DATA,
  type Pkt,
  pktData,
  pktPayload,
  RESPONSE_END_PKT,
} from "./src/pktline/pktline.ts";
export { PktScanner, readPkts, type ReadPktsOptions } from "./src/pktline/scanner.ts";
export {
  Band,
  demuxSideband,
  type DemuxSidebandOptions,
  encodeSideband,
  parseSideband,
  SidebandDecoderStream,
  type SidebandDecoderStreamOptions,
  SidebandEncoderStream,
  type SidebandPacket,
} from "./src/pktline/sideband.ts";

// gRPC: wire pieces (status, metadata, envelopes, codecs), no I/O.
export { type Codec, protobufCodec, type ProtobufSchema, rawCodec } from "./src/grpc/codec.ts";
export { type Compression, gzipCompression } from "./src/grpc/compression.ts";
export { formatGrpcContentType, GRPC_CONTENT_TYPE, parseGrpcContentType } from "./src/grpc/content_type.ts";
export {
  encodeEnvelope,
  encodeEnvelopeHeader,
  type Envelope,
  ENVELOPE_HEADER_SIZE,
  EnvelopeDecoder,
  type EnvelopeDecoderOptions,
  FLAG_COMPRESSED,
  MAX_ENVELOPE_LENGTH,
  type ResolvedEnvelopeDecoderOptions,
  resolveEnvelopeDecoderOptions,
  writeEnvelopeHeader,
} from "./src/grpc/envelope.ts";
export { decodeGrpcMessage, encodeGrpcMessage } from "./src/grpc/message_encoding.ts";
export {
  decodeBinaryHeader,
  decodeMetadata,
  encodeMetadata,
  isReservedHeader,
  isValidMetadataName,
  isValidMetadataValue,
  type Metadata,
  type MetadataValue,
  metadataValues,
  validateMetadata,
} from "./src/grpc/metadata.ts";
export {
  GrpcError,
  type GrpcErrorOptions,
  isStatus,
  Status,
  statusFromHttp,
  statusFromHttp2Error,
  statusName,
} from "./src/grpc/status.ts";
export { formatGrpcTimeout, parseGrpcTimeout } from "./src/grpc/timeout.ts";
