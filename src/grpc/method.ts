/**
 * Method descriptors: what a call needs to know about the method it calls or serves.
 *
 * @module
 */

import { type Codec, protobufCodec, type ProtobufSchema } from "./codec.ts";

/**
 * The four call shapes of gRPC: how many messages go each way.
 *
 * @example
 * ```ts
 * import { grpcMethod, type GrpcMethodKind, rawCodec } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const kind: GrpcMethodKind = "server_streaming";
 * const pull = grpcMethod({ service: "raw.Raw", name: "Pull", kind, request: rawCodec, response: rawCodec });
 * assert.equal(pull.kind, "server_streaming");
 * ```
 */
export type GrpcMethodKind = "unary" | "server_streaming" | "client_streaming" | "bidi_streaming";

const _KINDS: ReadonlySet<string> = new Set([
  "unary",
  "server_streaming",
  "client_streaming",
  "bidi_streaming",
]);
const _NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const _SERVICE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

/**
 * One method of a service, with the codecs of its messages.
 *
 * The codecs decide how messages are read and written, whatever content-subtype the
 * peer announces: grpc-go's `ForceCodec` sends a raw method as bare `application/grpc`.
 *
 * @typeParam I the request message type
 * @typeParam O the response message type
 * @typeParam K the call shape
 *
 * @example A raw-bytes method
 * ```ts
 * import { grpcMethod, type GrpcMethod, rawCodec } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const echo: GrpcMethod<Uint8Array, Uint8Array, "unary"> = grpcMethod({
 *   service: "raw.Raw",
 *   name: "Echo",
 *   kind: "unary",
 *   request: rawCodec,
 *   response: rawCodec,
 * });
 * assert.equal(echo.path, "/raw.Raw/Echo");
 * ```
 */
export interface GrpcMethod<I, O, K extends GrpcMethodKind = GrpcMethodKind> {
  /** The request path, `/<package>.<Service>/<Method>`. */
  readonly path: string;
  /** The fully-qualified service name, e.g. `grpc.testing.TestService`. */
  readonly service: string;
  /** The method name, e.g. `UnaryCall`. */
  readonly name: string;
  /** The call shape. */
  readonly kind: K;
  /** Encodes requests (client) and decodes them (server). */
  readonly requestCodec: Codec<I>;
  /** Encodes responses (server) and decodes them (client). */
  readonly responseCodec: Codec<O>;
}

/**
 * Options for {@linkcode grpcMethod}.
 *
 * @example
 * ```ts
 * import { grpcMethod, type GrpcMethodInit, rawCodec } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const init: GrpcMethodInit<Uint8Array, Uint8Array, "unary"> = {
 *   service: "raw.Raw",
 *   name: "Echo",
 *   kind: "unary",
 *   request: rawCodec,
 *   response: rawCodec,
 * };
 * assert.equal(grpcMethod(init).path, "/raw.Raw/Echo");
 * ```
 */
export interface GrpcMethodInit<I, O, K extends GrpcMethodKind> {
  /** The fully-qualified service name, e.g. `gitaly.SmartHTTPService`. */
  service: string;
  /** The method name, e.g. `PostUploadPackV3`. */
  name: string;
  /** The call shape. */
  kind: K;
  /** The request codec. */
  request: Codec<I>;
  /** The response codec. */
  response: Codec<O>;
}

/**
 * Describes a method by hand: any codecs, e.g. {@linkcode rawCodec} both ways for a
 * byte pipe like Gitaly's PostUploadPackV3.
 *
 * @typeParam I the request message type
 * @typeParam O the response message type
 * @typeParam K the call shape
 * @param init service, name, kind and codecs
 * @returns the method
 * @throws {TypeError} For an invalid service or method name or an unknown kind.
 *
 * @example
 * ```ts
 * import { grpcMethod, rawCodec } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const v3 = grpcMethod({
 *   service: "gitaly.SmartHTTPService",
 *   name: "PostUploadPackV3",
 *   kind: "bidi_streaming",
 *   request: rawCodec,
 *   response: rawCodec,
 * });
 * assert.equal(v3.path, "/gitaly.SmartHTTPService/PostUploadPackV3");
 * assert.throws(() => grpcMethod({ ...v3, name: "a/b", request: rawCodec, response: rawCodec }), TypeError);
 * ```
 */
export function grpcMethod<I, O, K extends GrpcMethodKind>(
  init: GrpcMethodInit<I, O, K>,
): GrpcMethod<I, O, K> {
  if (!_SERVICE.test(init.service)) {
    throw new TypeError(`Cannot describe method: invalid service name ${JSON.stringify(init.service)}`);
  }
  if (!_NAME.test(init.name)) {
    throw new TypeError(`Cannot describe method: invalid method name ${JSON.stringify(init.name)}`);
  }
  if (!_KINDS.has(init.kind)) {
    throw new TypeError(`Cannot describe method: unknown kind ${JSON.stringify(init.kind)}`);
  }
  return Object.freeze({
    path: `/${init.service}/${init.name}`,
    service: init.service,
    name: init.name,
    kind: init.kind,
    requestCodec: init.request,
    responseCodec: init.response,
  });
}

/**
 * A method as `protoc-gen-es` v2 generates it (`DescMethod` of `@bufbuild/protobuf` v2),
 * described by the members this module uses.
 *
 * @typeParam I the request message type
 * @typeParam O the response message type
 * @typeParam K the call shape
 *
 * @example
 * ```ts
 * import { protobufMethod, type ProtobufMethodDesc } from "@sidechannel/transport";
 * import { StringValueSchema } from "@bufbuild/protobuf/wkt";
 * import type { StringValue } from "@bufbuild/protobuf/wkt";
 * import assert from "node:assert/strict";
 *
 * // Generated code provides these (e.g. `TestService.method.unaryCall`).
 * const desc: ProtobufMethodDesc<StringValue, StringValue, "unary"> = {
 *   kind: "rpc",
 *   name: "Echo",
 *   methodKind: "unary",
 *   parent: { typeName: "demo.EchoService" },
 *   input: StringValueSchema,
 *   output: StringValueSchema,
 * };
 * assert.equal(protobufMethod(desc).path, "/demo.EchoService/Echo");
 * ```
 */
export interface ProtobufMethodDesc<I, O, K extends GrpcMethodKind> {
  /** Always `"rpc"`. */
  readonly kind: "rpc";
  /** The method name, e.g. `UnaryCall`. */
  readonly name: string;
  /** The call shape. */
  readonly methodKind: K;
  /** The service the method belongs to. */
  readonly parent: { readonly typeName: string };
  /** The request schema. */
  readonly input: ProtobufSchema<I>;
  /** The response schema. */
  readonly output: ProtobufSchema<O>;
}

/**
 * Describes a generated protobuf method, with {@linkcode protobufCodec} both ways.
 *
 * @typeParam I the request message type, inferred
 * @typeParam O the response message type, inferred
 * @typeParam K the call shape, inferred
 * @param desc a generated method, e.g. `TestService.method.unaryCall`
 * @returns the method
 *
 * @example
 * ```ts
 * import { protobufMethod } from "@sidechannel/transport";
 * import { create } from "@bufbuild/protobuf";
 * import { StringValueSchema } from "@bufbuild/protobuf/wkt";
 * import assert from "node:assert/strict";
 *
 * // Generated code has these: `SmartHTTPService.method.postUploadPackWithSidechannel`.
 * const desc = {
 *   kind: "rpc",
 *   name: "Echo",
 *   methodKind: "unary",
 *   parent: { typeName: "demo.EchoService" },
 *   input: StringValueSchema,
 *   output: StringValueSchema,
 * } as const;
 * const method = protobufMethod(desc);
 * assert.equal(method.path, "/demo.EchoService/Echo");
 * assert.equal(method.kind, "unary");
 * const bytes = method.requestCodec.encode(create(StringValueSchema, { value: "hi" }));
 * assert.equal(method.responseCodec.decode(bytes).value, "hi");
 * ```
 */
export function protobufMethod<I, O, K extends GrpcMethodKind>(
  desc: ProtobufMethodDesc<I, O, K>,
): GrpcMethod<I, O, K> {
  return grpcMethod({
    service: desc.parent.typeName,
    name: desc.name,
    kind: desc.methodKind,
    request: protobufCodec(desc.input),
    response: protobufCodec(desc.output),
  });
}

/**
 * The {@linkcode GrpcMethod}s of a generated service, keyed like its `method` record.
 *
 * @typeParam M the service's `method` record
 *
 * @example
 * ```ts
 * import { protobufMethods, type ProtobufMethods } from "@sidechannel/transport";
 * import { StringValueSchema } from "@bufbuild/protobuf/wkt";
 * import assert from "node:assert/strict";
 *
 * const parent = { typeName: "demo.EchoService" };
 * const method = {
 *   echo: { kind: "rpc", name: "Echo", methodKind: "unary", parent, input: StringValueSchema, output: StringValueSchema },
 * } as const;
 * const methods: ProtobufMethods<typeof method> = protobufMethods({ method });
 * assert.equal(methods.echo.kind, "unary");
 * ```
 */
// deno-lint-ignore no-explicit-any
export type ProtobufMethods<M extends Record<string, ProtobufMethodDesc<any, any, GrpcMethodKind>>> = {
  readonly [K in keyof M]: M[K] extends ProtobufMethodDesc<infer I, infer O, infer Kind>
    ? GrpcMethod<I, O, Kind>
    : never;
};

/**
 * Describes every method of a generated protobuf service (`GenService` of
 * `@bufbuild/protobuf` v2).
 *
 * @typeParam M the service's `method` record, inferred
 * @param service a generated service, e.g. `SmartHTTPService`
 * @returns its methods, keyed by local name (`postUploadPackWithSidechannel`)
 *
 * @example
 * ```ts
 * import { protobufMethods } from "@sidechannel/transport";
 * import { StringValueSchema } from "@bufbuild/protobuf/wkt";
 * import assert from "node:assert/strict";
 *
 * // Generated services have this shape, e.g. `SSHService` from Gitaly's ssh.proto.
 * const parent = { typeName: "demo.EchoService" };
 * const service = {
 *   method: {
 *     echo: { kind: "rpc", name: "Echo", methodKind: "unary", parent, input: StringValueSchema, output: StringValueSchema },
 *     watch: { kind: "rpc", name: "Watch", methodKind: "server_streaming", parent, input: StringValueSchema, output: StringValueSchema },
 *   },
 * } as const;
 * const methods = protobufMethods(service);
 * assert.equal(methods.watch.path, "/demo.EchoService/Watch");
 * assert.equal(methods.watch.kind, "server_streaming");
 * ```
 */
// deno-lint-ignore no-explicit-any
export function protobufMethods<M extends Record<string, ProtobufMethodDesc<any, any, GrpcMethodKind>>>(
  service: { readonly method: M },
): ProtobufMethods<M> {
  const out: Record<string, GrpcMethod<unknown, unknown>> = {};
  for (const [key, desc] of Object.entries(service.method)) out[key] = protobufMethod(desc);
  return out as ProtobufMethods<M>;
}
