/**
 * Method descriptors of the Gitaly RPCs this package serves and calls, and small
 * protobuf helpers shared by the services and the client. Private: the public API takes
 * and returns plain values, never generated message types.
 *
 * @module
 */

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { protobufCodec } from "../grpc/codec.ts";
import { type Codec, rawCodec } from "../grpc/codec.ts";
import { grpcMethod, protobufMethods } from "../grpc/method.ts";
import { GrpcError, Status } from "../grpc/status.ts";
import type { PackfileNegotiationStatistics } from "./gen/packfile_pb.ts";
import { type Repository, RepositorySchema } from "./gen/shared_pb.ts";
import {
  PostUploadPackRequestSchema,
  PostUploadPackV3RequestSchema,
  SmartHTTPService,
} from "./gen/smarthttp_pb.ts";
import { SSHService } from "./gen/ssh_pb.ts";

/** The generated methods of `gitaly.SmartHTTPService`, protobuf both ways. */
export const _SMART_HTTP = protobufMethods(SmartHTTPService);

/** The generated methods of `gitaly.SSHService`. */
export const _SSH = protobufMethods(SSHService);

/**
 * A codec for responses that are already encoded protobuf messages (the server builds
 * `PostUploadPackResponse{data}` around git's output in place, without a copy).
 */
const _preEncoded: Codec<Uint8Array> = { name: "proto", encode: (v) => v, decode: (v) => v };

/**
 * Server side of `PostUploadPack`: protobuf requests, pre-encoded protobuf responses
 * (see {@linkcode _encodeDataMessageInPlace}).
 */
export const _POST_UPLOAD_PACK_SERVER = grpcMethod({
  service: "gitaly.SmartHTTPService",
  name: "PostUploadPack",
  kind: "bidi_streaming",
  request: protobufCodec(PostUploadPackRequestSchema),
  response: _preEncoded,
});

/**
 * `PostUploadPackV3` with the raw codec both ways (`application/grpc+raw`): the first
 * request message is an encoded `PostUploadPackV3Request`, the rest are git's stdin;
 * responses are git's stdout.
 */
export const _POST_UPLOAD_PACK_V3 = grpcMethod({
  service: "gitaly.SmartHTTPService",
  name: "PostUploadPackV3",
  kind: "bidi_streaming",
  request: rawCodec,
  response: rawCodec,
});

/** The fields of a V3 header message (`PostUploadPackV3Request` without `data`). */
export interface _V3Header {
  repository?: Repository | undefined;
  gitConfigOptions: string[];
  gitProtocol: string;
  data: Uint8Array;
}

/** Decodes the first V3 message. */
export function _decodeV3Header(bytes: Uint8Array): _V3Header {
  try {
    return fromBinary(PostUploadPackV3RequestSchema, bytes);
  } catch (error) {
    throw new GrpcError(Status.INTERNAL, `Cannot decode gitaly.PostUploadPackV3Request: ${String(error)}`, {
      cause: error,
    });
  }
}

/** Encodes the first V3 message. */
export function _encodeV3Header(
  header: { repository: Repository; gitConfigOptions: string[]; gitProtocol: string },
): Uint8Array {
  return toBinary(PostUploadPackV3RequestSchema, create(PostUploadPackV3RequestSchema, header));
}

/** A generated `Repository` from the client's plain description. */
export function _repositoryMessage(
  repo: { storageName: string; relativePath: string; glRepository?: string; glProjectPath?: string },
): Repository {
  return create(RepositorySchema, {
    storageName: repo.storageName,
    relativePath: repo.relativePath,
    glRepository: repo.glRepository ?? "",
    glProjectPath: repo.glProjectPath ?? "",
  });
}

/** Room reserved in front of a data chunk for the protobuf tag and length of field 1. */
export const _DATA_HEADER_ROOM = 4;

/**
 * Writes the tag (field 1, length-delimited) and the varint length of the `length`
 * bytes that start at `buffer[end]`, right before them, and returns where the message
 * starts. `length` must be below 2^21 (a 3-byte varint).
 */
export function _encodeDataMessageInPlace(buffer: Uint8Array, end: number, length: number): number {
  let varint = 1;
  if (length >= 1 << 7) varint = 2;
  if (length >= 1 << 14) varint = 3;
  const start = end - 1 - varint;
  buffer[start] = 0x0a;
  let value = length;
  for (let i = 0; i < varint; i++) {
    buffer[start + 1 + i] = (value & 0x7f) | (i < varint - 1 ? 0x80 : 0);
    value >>>= 7;
  }
  return start;
}

/** Statistics as the public API reports them: plain numbers. */
export interface _PlainStats {
  payloadSize: number;
  packets: number;
  caps: string[];
  wants: number;
  haves: number;
  shallows: number;
  deepen: string;
  filter: string;
}

/** The plain form of a received `PackfileNegotiationStatistics` (empty when unset). */
export function _plainStats(message: PackfileNegotiationStatistics | undefined): _PlainStats {
  return {
    payloadSize: Number(message?.payloadSize ?? 0n),
    packets: Number(message?.packets ?? 0n),
    caps: [...(message?.caps ?? [])],
    wants: Number(message?.wants ?? 0n),
    haves: Number(message?.haves ?? 0n),
    shallows: Number(message?.shallows ?? 0n),
    deepen: message?.deepen ?? "",
    filter: message?.filter ?? "",
  };
}
