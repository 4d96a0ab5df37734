/**
 * Gitaly's `SmartHTTPService` for `git upload-pack`: the advertisement
 * (`InfoRefsUploadPack`) and the fetch over three transports (`PostUploadPack`, plain gRPC
 * streaming; `PostUploadPackWithSidechannel`; `PostUploadPackV3`, raw HTTP/2).
 *
 * @module
 */

import { create } from "@bufbuild/protobuf";
import type { GrpcServerCall } from "../grpc/call.ts";
import type { GrpcServer } from "../grpc/server.ts";
import { GrpcError, Status } from "../grpc/status.ts";
import { _batchOutput } from "./_batch.ts";
import {
  _DATA_HEADER_ROOM,
  _decodeV3Header,
  _encodeDataMessageInPlace,
  _POST_UPLOAD_PACK_SERVER,
  _POST_UPLOAD_PACK_V3,
  _SMART_HTTP,
} from "./_gitaly_methods.ts";
import { _gitOptions, _openSidechannel, _rpcInfo, _spawn, _validate } from "./_service_common.ts";
import { infoRefsError, postUploadPackError, uploadPackCopyError } from "./errors.ts";
import { PackfileNegotiationStatisticsSchema } from "./gen/packfile_pb.ts";
import {
  type InfoRefsRequest,
  type InfoRefsResponse,
  InfoRefsResponseSchema,
  type PostUploadPackRequest,
  type PostUploadPackWithSidechannelRequest,
  type PostUploadPackWithSidechannelResponse,
  PostUploadPackWithSidechannelResponseSchema,
} from "./gen/smarthttp_pb.ts";
import { UPLOAD_PACK_SERVICE_HEADER } from "./info_refs.ts";
import { negotiationStatsToProto } from "./negotiation_stats.ts";
import {
  type _ResolvedServiceOptions,
  _resolveServiceOptions,
  type GitalyServiceOptions,
} from "./service_options.ts";
import { _stdoutReader, type UploadPack, type UploadPackResult } from "./upload_pack.ts";

/** Plain streaming: Gitaly's `streamio` message size. */
const _STREAM_MESSAGE = 128 * 1024;
/** V3: the first response buffer; each full one doubles, up to {@linkcode _V3_MAX}. */
const _V3_INITIAL = 64 * 1024;
/**
 * V3: the largest response message, as the sidechannel's write buffer. 1 MiB messages
 * cost ~10 % more server CPU per byte in `bench/transport_bench.ts` (likely because a
 * message as large as a client's default 1 MiB stream window waits for a
 * WINDOW_UPDATE once per message).
 */
const _V3_MAX = 256 * 1024;

async function* _infoRefs(
  options: _ResolvedServiceOptions,
  request: InfoRefsRequest,
  call: GrpcServerCall,
): AsyncGenerator<InfoRefsResponse> {
  const info = _rpcInfo(call, "grpc");
  const { repo, config } = await _validate(options, info, request);
  const uploadPack = _spawn(options, repo.path, {
    ..._gitOptions(options, call, request, config),
    advertiseRefs: true,
  });
  let result: UploadPackResult | undefined;
  let complete = false;
  try {
    info.bytesOut += UPLOAD_PACK_SERVICE_HEADER.byteLength;
    yield create(InfoRefsResponseSchema, { data: UPLOAD_PACK_SERVICE_HEADER });
    for await (const chunk of uploadPack.stdout) {
      info.bytesOut += chunk.byteLength;
      yield create(InfoRefsResponseSchema, { data: chunk });
    }
    complete = true;
  } finally {
    if (!complete) uploadPack.kill(new GrpcError(Status.CANCELLED, "the advertisement was not read"));
    result = await uploadPack.result;
  }
  const error = infoRefsError(result);
  if (error !== undefined) throw error;
}

/**
 * Streams git's output as batches from {@linkcode _batchOutput}, then reports the
 * result. Stopping early (the client went away) stops git; git is reaped either way
 * before the generator finishes.
 */
async function* _streamOutput(
  uploadPack: UploadPack,
  batches: AsyncGenerator<Uint8Array, void, undefined>,
  encode: (batch: Uint8Array) => Uint8Array,
  done: (result: UploadPackResult) => void,
): AsyncGenerator<Uint8Array, void, undefined> {
  let complete = false;
  try {
    for await (const batch of batches) yield encode(batch);
    complete = true;
  } finally {
    if (!complete) {
      uploadPack.kill(new GrpcError(Status.CANCELLED, "running upload-pack: the response was not read"));
    }
    done(await uploadPack.result);
  }
}

/** `ReadableStream` of the `data` of request messages after the first (skipping empty ones). */
function _dataStream<T>(
  reader: ReadableStreamDefaultReader<T>,
  data: (message: T) => Uint8Array,
  first?: Uint8Array,
): ReadableStream<Uint8Array> {
  let head = first !== undefined && first.byteLength > 0 ? first : undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (head !== undefined) {
        controller.enqueue(head);
        head = undefined;
        return;
      }
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          controller.close();
          return;
        }
        const bytes = data(value);
        if (bytes.byteLength > 0) {
          controller.enqueue(bytes);
          return;
        }
      }
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

async function _first<T>(reader: ReadableStreamDefaultReader<T>, method: string): Promise<T> {
  const { value, done } = await reader.read();
  if (done) {
    throw new GrpcError(Status.INVALID_ARGUMENT, `${method}: the client sent no request message`);
  }
  return value;
}

function _postUploadPack(
  options: _ResolvedServiceOptions,
): (requests: ReadableStream<PostUploadPackRequest>, call: GrpcServerCall) => AsyncGenerator<Uint8Array> {
  return async function* (requests, call) {
    const info = _rpcInfo(call, "grpc");
    const reader = requests.getReader();
    const first = await _first(reader, "PostUploadPack");
    if (first.data.byteLength > 0) throw new GrpcError(Status.INVALID_ARGUMENT, "non-empty Data");
    const { repo, config } = await _validate(options, info, first);
    const uploadPack = _spawn(options, repo.path, {
      ..._gitOptions(options, call, first, config),
      stdin: _dataStream(reader, (m) => m.data),
    });
    let result: UploadPackResult | undefined;
    yield* _streamOutput(
      uploadPack,
      _batchOutput(_stdoutReader(uploadPack), {
        headroom: _DATA_HEADER_ROOM,
        initial: _STREAM_MESSAGE,
        max: _STREAM_MESSAGE,
        flushInterval: options.flushInterval,
      }),
      (batch) =>
        batch.subarray(
          _encodeDataMessageInPlace(batch, _DATA_HEADER_ROOM, batch.byteLength - _DATA_HEADER_ROOM),
        ),
      (r) => {
        result = r;
        info.bytesIn = r.stdinLength;
        info.bytesOut = r.stdoutLength;
      },
    );
    const error = postUploadPackError(result!);
    if (error !== undefined) throw error;
  };
}

function _postUploadPackV3(
  options: _ResolvedServiceOptions,
): (requests: ReadableStream<Uint8Array>, call: GrpcServerCall) => AsyncGenerator<Uint8Array> {
  return async function* (requests, call) {
    const info = _rpcInfo(call, "v3");
    const reader = requests.getReader();
    const header = _decodeV3Header(await _first(reader, "PostUploadPackV3"));
    const { repo, config } = await _validate(options, info, header);
    const uploadPack = _spawn(options, repo.path, {
      ..._gitOptions(options, call, header, config),
      stdin: _dataStream(reader, (m) => m, header.data),
    });
    let result: UploadPackResult | undefined;
    yield* _streamOutput(
      uploadPack,
      _batchOutput(_stdoutReader(uploadPack), {
        headroom: 0,
        initial: _V3_INITIAL,
        max: _V3_MAX,
        flushInterval: options.flushInterval,
      }),
      (batch) => batch,
      (r) => {
        result = r;
        info.bytesIn = r.stdinLength;
        info.bytesOut = r.stdoutLength;
      },
    );
    const error = postUploadPackError(result!);
    if (error !== undefined) throw error;
  };
}

/** Smart HTTP statistics: Gitaly reports empty ones when the request did not parse. */
function _stats(result: UploadPackResult) {
  return result.negotiation.error === null
    ? negotiationStatsToProto(result.negotiation)
    : create(PackfileNegotiationStatisticsSchema);
}

async function _postUploadPackWithSidechannel(
  options: _ResolvedServiceOptions,
  request: PostUploadPackWithSidechannelRequest,
  call: GrpcServerCall,
): Promise<PostUploadPackWithSidechannelResponse> {
  const info = _rpcInfo(call, "sidechannel");
  const { repo, config } = await _validate(options, info, request);
  const conn = await _openSidechannel(call, "open sidechannel", true);
  try {
    const uploadPack = _spawn(options, repo.path, {
      ..._gitOptions(options, call, request, config),
      stdin: conn.readable,
    });
    if (options.sidechannelWriteBuffer === 0) {
      await uploadPack.copyStdoutTo(conn);
    } else {
      const size = options.sidechannelWriteBuffer;
      const batches = _batchOutput(_stdoutReader(uploadPack), {
        headroom: 0,
        initial: size,
        max: size,
        flushInterval: options.flushInterval,
      });
      for (;;) {
        const { value, done } = await batches.next();
        if (done) break;
        try {
          await conn.write(value);
        } catch (error) {
          // The client went away: stop git, as a failed copy (Gitaly's status).
          uploadPack.kill(uploadPackCopyError(error));
          await batches.return();
          break;
        }
      }
    }
    const result = await uploadPack.result;
    info.bytesIn = result.stdinLength;
    info.bytesOut = result.stdoutLength;
    const error = postUploadPackError(result);
    if (error !== undefined) throw error;
    try {
      await conn.closeWrite();
    } catch (cause) {
      throw new GrpcError(Status.INTERNAL, `close sidechannel connection: ${(cause as Error).message}`, {
        cause,
      });
    }
    return create(PostUploadPackWithSidechannelResponseSchema, {
      packfileNegotiationStatistics: _stats(result),
    });
  } finally {
    await conn.close().catch(() => {});
  }
}

/**
 * Registers Gitaly's `gitaly.SmartHTTPService` upload-pack methods on a gRPC server.
 *
 * - `InfoRefsUploadPack` (server stream of `data`): the service announcement, then
 *   `git upload-pack --stateless-rpc --advertise-refs` (see `infoRefsUploadPack`).
 * - `PostUploadPack` (bidi, protobuf `data` both ways): the first message carries the
 *   repository, config options and protocol, and must have no `data`
 *   (`INVALID_ARGUMENT` `non-empty Data`); later messages are git's stdin. git's stdout
 *   goes out in messages of up to 128 KiB (Gitaly's `streamio` size), each built
 *   around the bytes in place. Removed from Gitaly in 2023; the slow baseline.
 * - `PostUploadPackWithSidechannel` (unary): git's stdin and stdout travel over the
 *   call's sidechannel (framed request up to `0000`, raw response, then FIN); the
 *   response carries the negotiation statistics (empty when the request did not parse,
 *   as in Gitaly). git's output goes to the sidechannel in writes of up to 256 KiB (see
 *   `sidechannelWriteBuffer`), or copy-free as it is read from git's pipe.
 * - `PostUploadPackV3` (bidi, `application/grpc+raw`): the first request message is
 *   an encoded `PostUploadPackV3Request`, the later ones git's stdin; responses are
 *   git's stdout in buffers of 64 KiB doubling up to 256 KiB, and the status comes in the
 *   trailers. Unlike the proof of concept, a partly filled buffer also goes out after
 *   `flushInterval` ms without new output, so progress and keep-alive packets are not
 *   held back while git counts objects (`flushInterval: 0` restores the POC's
 *   behaviour).
 *
 * Errors are Gitaly's: validation → `INVALID_ARGUMENT` (`NOT_FOUND`,
 * `FAILED_PRECONDITION` as `resolveRepository` reports them); sidechannel open →
 * `UNAVAILABLE` (handshake, clients retry) or `INTERNAL` `open sidechannel: …`; git →
 * `postUploadPackError` (`FAILED_PRECONDITION` `running upload-pack: waiting for
 * upload-pack: exit status 128`, a `deepen` request exempt). All transports use the same
 * mapping (the V3 proof of concept used `UNAVAILABLE` for git failures; clients retry
 * `UNAVAILABLE`, so this does not follow it).
 *
 * Every path streams with backpressure end to end and holds at most one buffer per
 * call; a client that goes away (cancel, reset, lost connection) stops its git process,
 * and every handler returns only after git has been reaped.
 *
 * @param server the gRPC server
 * @param options the storages and how to run git
 * @returns the server, for chaining
 * @throws {TypeError} If a method already has a handler, or without storages.
 * @throws {RangeError} For negative times.
 *
 * @example Serve a repository's advertisement and fetch it back
 * ```ts
 * import { duplexPair, GitalyClient, GrpcClient, GrpcServer, registerSmartHttpService, serveGrpcConnection } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await new Deno.Command("git", { args: ["init", "-q", "--bare", `${root}/a.git`] }).output();
 * const server = registerSmartHttpService(new GrpcServer(), { storages: { default: root } });
 * const [a, b] = duplexPair();
 * serveGrpcConnection(b, server);
 * await using grpc = new GrpcClient(a);
 * const client = new GitalyClient({ grpc });
 * const repo = { storageName: "default", relativePath: "a.git" };
 * const advertisement = await new Response(client.infoRefsUploadPack(repo)).text();
 * assert.equal(advertisement, "001e# service=git-upload-pack\n00000000");
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export function registerSmartHttpService(server: GrpcServer, options: GitalyServiceOptions): GrpcServer {
  return _registerSmartHttp(server, _resolveServiceOptions(options));
}

/** {@linkcode registerSmartHttpService} with resolved options (the storage server tracks git). */
export function _registerSmartHttp(server: GrpcServer, resolved: _ResolvedServiceOptions): GrpcServer {
  return server
    .handle(_SMART_HTTP.infoRefsUploadPack, (request, call) => _infoRefs(resolved, request, call))
    .handle(_POST_UPLOAD_PACK_SERVER, _postUploadPack(resolved))
    .handle(
      _SMART_HTTP.postUploadPackWithSidechannel,
      (request, call) => _postUploadPackWithSidechannel(resolved, request, call),
    )
    .handle(_POST_UPLOAD_PACK_V3, _postUploadPackV3(resolved));
}
