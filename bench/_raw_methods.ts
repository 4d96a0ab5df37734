/**
 * The raw-codec methods the gRPC bench's client (`grpc_bench.ts`) and server
 * (`_grpc_bench_server.ts`) share.
 *
 * @module
 */

import { grpcMethod, rawCodec } from "../mod.ts";

/** `raw.Raw/Pull`: the request is a u64 byte count; the server streams that many bytes. */
export const pull = grpcMethod({
  service: "raw.Raw",
  name: "Pull",
  kind: "server_streaming",
  request: rawCodec,
  response: rawCodec,
});

/** `raw.Raw/Echo`: the reply is the request. */
export const echo = grpcMethod({
  service: "raw.Raw",
  name: "Echo",
  kind: "unary",
  request: rawCodec,
  response: rawCodec,
});
