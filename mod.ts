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
export { type DirectIo, type Duplex, type DuplexConn, hasDirectIo } from "./src/streams/duplex.ts";
export {
  ByteReader,
  type ByteReaderOptions,
  type DirectReader,
  type LeasedBytes,
  UnexpectedEofError,
} from "./src/streams/byte_reader.ts";
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

// gRPC: calls, servers and clients over HTTP/2 (any duplex), interceptors.
export {
  type GrpcCall,
  type GrpcCallStats,
  type GrpcInterceptor,
  type GrpcMetadataList,
  type GrpcNext,
  type GrpcPeer,
  type GrpcServerCall,
} from "./src/grpc/call.ts";
export { GrpcKey, GrpcValues } from "./src/grpc/values.ts";
export {
  type GrpcMethod,
  grpcMethod,
  type GrpcMethodInit,
  type GrpcMethodKind,
  protobufMethod,
  type ProtobufMethodDesc,
  type ProtobufMethods,
  protobufMethods,
} from "./src/grpc/method.ts";
export {
  type GrpcFallback,
  type GrpcHandler,
  GrpcServer,
  type GrpcServerOptions,
} from "./src/grpc/server.ts";
export { serveGrpc, serveGrpcConnection, type ServeGrpcConnectionOptions } from "./src/grpc/serve.ts";
export {
  type GrpcCallOptions,
  GrpcClient,
  type GrpcClientOptions,
  type GrpcConnectOptions,
  type GrpcStreamCall,
} from "./src/grpc/client.ts";
export {
  concurrencyLimitInterceptor,
  type ConcurrencyLimitOptions,
  type GrpcLogEntry,
  type GrpcMethodMetrics,
  GrpcMetrics,
  loggingInterceptor,
  tokenAuthInterceptor,
  type TokenAuthOptions,
} from "./src/grpc/interceptors.ts";

// Yamux: hashicorp-compatible multiplexing.
export {
  decodeHeader,
  describeHeader,
  encodeHeader,
  encodeHeaderInto,
  FLAG_ACK,
  FLAG_FIN,
  FLAG_RST,
  FLAG_SYN,
  type FrameHeader,
  GO_AWAY_INTERNAL_ERROR,
  GO_AWAY_NORMAL,
  GO_AWAY_PROTOCOL_ERROR,
  HEADER_SIZE,
  INITIAL_STREAM_WINDOW,
  MAX_UINT32,
  TYPE_DATA,
  TYPE_GO_AWAY,
  TYPE_PING,
  TYPE_WINDOW_UPDATE,
  YAMUX_VERSION,
} from "./src/yamux/frame.ts";
export {
  YamuxError,
  type YamuxErrorCode,
  type YamuxErrorOptions,
  type YamuxViolation,
} from "./src/yamux/errors.ts";
export {
  DEFAULT_YAMUX_OPTIONS,
  type ResolvedYamuxOptions,
  resolveYamuxOptions,
  type YamuxOptions,
} from "./src/yamux/options.ts";
export { type YamuxCallOptions, YamuxSession, type YamuxSessionStats } from "./src/yamux/session.ts";
export { YamuxStream, type YamuxStreamState } from "./src/yamux/stream.ts";

// HTTP/2: HPACK header compression (RFC 7541).
export {
  type HpackEncodeOptions,
  HpackEncoder,
  type HpackEncoderOptions,
} from "./src/http2/hpack/encoder.ts";
export { HpackDecoder, type HpackDecoderOptions } from "./src/http2/hpack/decoder.ts";
export { HpackError, type HpackErrorCode } from "./src/http2/hpack/errors.ts";

// HTTP/2: connections and streams (RFC 9113), both roles over any duplex.
export { Http2Error, type Http2ErrorCode, type Http2ErrorOptions } from "./src/http2/errors.ts";
export {
  type Http2ConnectionOptions,
  type Http2RateLimit,
  type ResolvedHttp2Options,
  resolveHttp2Options,
} from "./src/http2/options.ts";
export type { Http2Headers, Http2HeadersInit } from "./src/http2/headers.ts";
export {
  Http2Connection,
  type Http2ConnectionStats,
  type Http2RequestOptions,
  type Http2Settings,
  type Http2WaitOptions,
} from "./src/http2/connection.ts";
export type {
  Http2RespondOptions,
  Http2Stream,
  Http2StreamState,
  Http2TrailersOptions,
} from "./src/http2/stream.ts";
export {
  type Http2ConnectionInfo,
  type Http2Handler,
  type Http2Server,
  type Http2ShutdownOptions,
  serveHttp2,
  type ServeHttp2Options,
} from "./src/http2/server.ts";

// Sidechannel: Gitaly's sidechannels (framing, registry and waiters, server open).
export { SidechannelError, type SidechannelErrorCode } from "./src/sidechannel/errors.ts";
export {
  decodeSidechannelId,
  encodeSidechannelPreamble,
  formatSidechannelId,
  frameSidechannelChunks,
  parseSidechannelId,
  SIDECHANNEL_CONFIRMATION,
  SIDECHANNEL_ID_METADATA,
  SIDECHANNEL_MAGIC,
  SIDECHANNEL_MAX_CHUNK,
  SIDECHANNEL_PREAMBLE_LENGTH,
} from "./src/sidechannel/wire.ts";
export { SidechannelClientConn, SidechannelServerConn } from "./src/sidechannel/conn.ts";
export {
  type SidechannelCallback,
  type SidechannelHandshakeOptions,
  SidechannelRegistry,
  type SidechannelRegistryOptions,
  SidechannelWaiter,
} from "./src/sidechannel/registry.ts";
export { openSidechannel, type OpenSidechannelOptions, type StreamOpener } from "./src/sidechannel/open.ts";
export {
  callWithSidechannel,
  openSidechannelForCall,
  sidechannelErrorInterceptor,
} from "./src/sidechannel/call.ts";
export {
  SIDECHANNEL_DOWNSTREAM,
  sidechannelProxyInterceptor,
  type SidechannelProxyOptions,
  spliceSidechannels,
  type SpliceSidechannelsOptions,
} from "./src/sidechannel/proxy.ts";

// Backchannel: listenmux routing, the multiplexed (yamux) handshakes of both roles.
export { BackchannelError, type BackchannelErrorCode } from "./src/backchannel/errors.ts";
export {
  BACKCHANNEL_MAGIC,
  listenmux,
  type ListenmuxOptions,
  type ListenmuxResult,
  type ListenmuxTable,
  MAGIC_LENGTH,
} from "./src/backchannel/listenmux.ts";
export {
  BACKCHANNEL_CLIENT,
  BACKCHANNEL_CLIENT_YAMUX_OPTIONS,
  BackchannelClient,
  type BackchannelClientOptions,
  type BackchannelDialOptions,
  type StreamHandshaker,
} from "./src/backchannel/client.ts";
export {
  BACKCHANNEL_PEER,
  BACKCHANNEL_SERVER_YAMUX_OPTIONS,
  type BackchannelConnInfo,
  type BackchannelListener,
  BackchannelPeer,
  BackchannelRegistry,
  BackchannelServer,
  type BackchannelServerOptions,
  getBackchannelPeer,
  serveBackchannel,
  type ServeBackchannelOptions,
} from "./src/backchannel/server.ts";

// git: the storage-server core of Gitaly's upload-pack (repositories, git processes, statistics, errors).
export {
  type RepositoryLocation,
  type ResolvedRepository,
  resolveRepository,
  type Storages,
} from "./src/git/storage.ts";
export { configKeyError, type ConfigPair, parseConfigOptions } from "./src/git/config_options.ts";
export {
  NegotiationStatsParser,
  negotiationStatsToProto,
  type PackfileNegotiation,
  type PackfileNegotiationStatisticsMessage,
  parsePackfileNegotiation,
} from "./src/git/negotiation_stats.ts";
export {
  NegotiationMonitor,
  type NegotiationMonitorOptions,
  type NegotiationMonitorState,
} from "./src/git/negotiation_monitor.ts";
export {
  type ByteWriter,
  type ResolvedUploadPackOptions,
  resolveUploadPackOptions,
  spawnUploadPack,
  type UploadPack,
  type UploadPackFailure,
  type UploadPackOptions,
  type UploadPackResult,
} from "./src/git/upload_pack.ts";
export { type InfoRefsOptions, infoRefsUploadPack, UPLOAD_PACK_SERVICE_HEADER } from "./src/git/info_refs.ts";
export {
  formatExitStatus,
  GitError,
  type GitErrorCode,
  infoRefsError,
  postUploadPackError,
  sshUploadPackError,
  uploadPackCopyError,
  uploadPackSpawnError,
  uploadPackWaitError,
} from "./src/git/errors.ts";
export { GITALY_UPLOAD_PACK_CONFIG, type GitalyServiceOptions } from "./src/git/service_options.ts";
export { registerSmartHttpService } from "./src/git/smarthttp_service.ts";
export { registerSshService } from "./src/git/ssh_service.ts";
export {
  GitalyClient,
  type GitalyConnections,
  type GitalyRepository,
  type GitalyTransport,
  type PackfileNegotiationStats,
  type PostUploadPackCall,
  type PostUploadPackResponse,
  type SshUploadPackResponse,
  type UploadPackCall,
} from "./src/git/client.ts";
export { type StorageLogEntry, StorageServer, type StorageServerOptions } from "./src/git/storage_server.ts";

// serve: the front (Workhorse's role): smart HTTP for git clients, upstream pool and transports, SSH entry.
export { FrontError, type FrontErrorCode } from "./src/serve/errors.ts";
export {
  type GitHttpRoute,
  parseGitHttpRequest,
  type RepositoryRoute,
  routeRepository,
} from "./src/serve/route.ts";
export { GITALY_RETRY_POLICY, retryBackoff, type RetryPolicy } from "./src/serve/retry.ts";
export { httpStatusFromGrpc } from "./src/serve/http_status.ts";
export type { GitUpstream, GitUpstreamClient } from "./src/serve/upstream_types.ts";
export {
  GitalyUpstream,
  type GitalyUpstreamOptions,
  type GitalyUpstreamStats,
  type UpstreamAddress,
} from "./src/serve/upstream.ts";
export { type FrontLogEntry, GitHttpFront, type GitHttpFrontOptions } from "./src/serve/front.ts";
export { GitHttpServer, type GitHttpServerOptions } from "./src/serve/http_server.ts";
export {
  parseSshArgs,
  routeSshPath,
  serveSshUploadPack,
  type SshRequest,
  type SshUploadPackOptions,
  type SshUpstream,
} from "./src/serve/ssh.ts";
