/**
 * gRPC's standard interop service (`grpc.testing.TestService`) and the raw-bytes
 * service of the Go peer (`raw.Raw`, see `tests/interop/grpc_peer/README.md`), on our
 * GrpcServer.
 *
 * @module
 */

import { create } from "@bufbuild/protobuf";
import { createHash } from "node:crypto";
import {
  GrpcError,
  grpcMethod,
  GrpcServer,
  type GrpcServerCall,
  type GrpcServerOptions,
  protobufMethods,
  rawCodec,
  type Status,
} from "../../../mod.ts";
import { EmptySchema } from "../gen/grpc/testing/empty_pb.ts";
import {
  type EchoStatus,
  type ResponseParameters,
  SimpleResponseSchema,
  StreamingInputCallResponseSchema,
  type StreamingOutputCallResponse,
  StreamingOutputCallResponseSchema,
} from "../gen/grpc/testing/messages_pb.ts";
import { TestService, UnimplementedService } from "../gen/grpc/testing/test_pb.ts";

/** The TestService methods. */
export const TEST = protobufMethods(TestService);
/** The UnimplementedService methods (never served). */
export const UNIMPLEMENTED = protobufMethods(UnimplementedService);

/** The raw.Raw methods of the Go peer. */
export const RAW = {
  echo: grpcMethod({
    service: "raw.Raw",
    name: "Echo",
    kind: "unary",
    request: rawCodec,
    response: rawCodec,
  }),
  pull: grpcMethod({
    service: "raw.Raw",
    name: "Pull",
    kind: "server_streaming",
    request: rawCodec,
    response: rawCodec,
  }),
  push: grpcMethod({
    service: "raw.Raw",
    name: "Push",
    kind: "client_streaming",
    request: rawCodec,
    response: rawCodec,
  }),
  bidi: grpcMethod({
    service: "raw.Raw",
    name: "Bidi",
    kind: "bidi_streaming",
    request: rawCodec,
    response: rawCodec,
  }),
} as const;

const INITIAL = "x-grpc-test-echo-initial";
const TRAILING = "x-grpc-test-echo-trailing-bin";

function echoMetadata(call: GrpcServerCall): void {
  for (const [name, value] of call.requestMetadata) {
    if (name === INITIAL) call.responseHeader.push([name, value]);
    else if (name === TRAILING) call.responseTrailer.push([name, value]);
  }
}

function echoStatus(status: EchoStatus | undefined): void {
  if (status !== undefined && status.code !== 0) throw new GrpcError(status.code as Status, status.message);
}

function sleepMicros(us: number, signal: AbortSignal): Promise<void> {
  if (us <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, us / 1000);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

async function* responses(
  parameters: ResponseParameters[],
  call: GrpcServerCall,
): AsyncGenerator<StreamingOutputCallResponse> {
  for (const p of parameters) {
    await sleepMicros(p.intervalUs, call.signal);
    if (p.size < 0) throw new GrpcError(3 as Status, `negative payload size ${p.size}`);
    yield create(StreamingOutputCallResponseSchema, { payload: { body: new Uint8Array(p.size) } });
  }
}

/**
 * A streaming xorshift32 that yields the bytes of `pseudoRandomBytes(total, seed)`
 * from `tests/_util.ts` in `chunk`-byte pieces (`chunk` a multiple of 4).
 */
export function* prngChunks(total: number, seed: number, chunk: number): Generator<Uint8Array> {
  let x = seed >>> 0 || 1;
  const wordsEnd = total - (total % 4);
  for (let pos = 0; pos < total;) {
    const n = Math.min(chunk, total - pos);
    const out = new Uint8Array(n);
    const words = Math.max(0, Math.min(n, wordsEnd - pos)) >>> 2;
    const view = new DataView(out.buffer);
    for (let i = 0; i < words; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      view.setUint32(i * 4, x >>> 0, true);
    }
    for (let i = words * 4; i < n; i++) out[i] = (pos + i) & 0xff;
    pos += n;
    yield out;
  }
}

/** Options for {@linkcode interopServer}. */
export interface InteropServerOptions extends GrpcServerOptions {
  /** Size of raw Pull messages. */
  chunk?: number;
}

/** A GrpcServer with TestService and raw.Raw. */
export function interopServer(options: InteropServerOptions = {}): GrpcServer {
  const chunk = options.chunk ?? 64 << 10;
  return new GrpcServer(options)
    .handle(TEST.emptyCall, (_request, call) => {
      echoMetadata(call);
      return create(EmptySchema);
    })
    .handle(TEST.unaryCall, (request, call) => {
      echoMetadata(call);
      echoStatus(request.responseStatus);
      if (request.responseSize < 0) {
        throw new GrpcError(3 as Status, `negative payload size ${request.responseSize}`);
      }
      return create(SimpleResponseSchema, { payload: { body: new Uint8Array(request.responseSize) } });
    })
    .handle(TEST.cacheableUnaryCall, (request, call) => {
      echoMetadata(call);
      return create(SimpleResponseSchema, { payload: { body: new Uint8Array(request.responseSize) } });
    })
    .handle(TEST.streamingOutputCall, async function* (request, call) {
      echoMetadata(call);
      yield* responses(request.responseParameters, call);
      echoStatus(request.responseStatus);
    })
    .handle(TEST.streamingInputCall, async (requests, call) => {
      echoMetadata(call);
      let total = 0;
      for await (const request of requests) total += request.payload?.body.byteLength ?? 0;
      return create(StreamingInputCallResponseSchema, { aggregatedPayloadSize: total });
    })
    .handle(TEST.fullDuplexCall, async function* (requests, call) {
      echoMetadata(call);
      for await (const request of requests) {
        echoStatus(request.responseStatus);
        yield* responses(request.responseParameters, call);
      }
    })
    .handle(TEST.halfDuplexCall, async function* (requests, call) {
      echoMetadata(call);
      const all = await Array.fromAsync(requests);
      for (const request of all) {
        echoStatus(request.responseStatus);
        yield* responses(request.responseParameters, call);
      }
    })
    .handle(RAW.echo, (request, call) => {
      echoMetadata(call);
      return request;
    })
    .handle(RAW.pull, (request, call) => {
      if (request.byteLength !== 8) {
        throw new GrpcError(3 as Status, `Pull wants an 8-byte length, got ${request.byteLength} bytes`);
      }
      echoMetadata(call);
      const total = Number(new DataView(request.buffer, request.byteOffset, 8).getBigUint64(0));
      return prngChunks(total, 1, chunk);
    })
    .handle(RAW.push, async (requests, call) => {
      echoMetadata(call);
      const hash = createHash("sha256");
      let total = 0;
      for await (const message of requests) {
        total += message.byteLength;
        hash.update(message);
      }
      const out = new Uint8Array(40);
      new DataView(out.buffer).setBigUint64(0, BigInt(total));
      out.set(hash.digest(), 8);
      return out;
    })
    .handle(RAW.bidi, async function* (requests, call) {
      echoMetadata(call);
      for await (const message of requests) yield message;
    });
}
