/**
 * Message codecs: how a call turns its values into message bytes and back.
 *
 * Who maps what: a codec throws `GrpcError(INTERNAL)` when it cannot encode or decode,
 * the status grpc-go uses on both sides. The call layer passes that error on as is: a
 * client fails the call with it (a response it cannot decode), a server ends the call
 * with it as the status (a request it cannot decode).
 *
 * @module
 */

import { type DescMessage, fromBinary, type Message, toBinary } from "@bufbuild/protobuf";
import { GrpcError, Status } from "./status.ts";

/**
 * Encodes values of type `T` to message bytes and back.
 *
 * @typeParam T the application-side message type
 *
 * @example
 * ```ts
 * import type { Codec } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const utf8: Codec<string> = {
 *   name: "utf8",
 *   encode: (value) => new TextEncoder().encode(value),
 *   decode: (bytes) => new TextDecoder().decode(bytes),
 * };
 * assert.equal(utf8.decode(utf8.encode("h\u00e9")), "h\u00e9");
 * ```
 */
export interface Codec<T> {
  /** The content-subtype, as in `application/grpc+<name>` (`"proto"`, `"raw"`). */
  readonly name: string;
  /**
   * Serializes one message.
   *
   * @param value the message
   * @returns its bytes
   * @throws {GrpcError} `INTERNAL` if it cannot be encoded.
   */
  encode(value: T): Uint8Array;
  /**
   * Parses one message.
   *
   * @param bytes the message bytes (may share memory with the transport's buffers)
   * @returns the message
   * @throws {GrpcError} `INTERNAL` if the bytes are not a valid message.
   */
  decode(bytes: Uint8Array): T;
}

/**
 * The identity codec, `application/grpc+raw`: messages are the bytes themselves, never
 * copied in either direction. Gitaly's PostUploadPackV3 proof of concept registers a
 * codec of this name to stream pack data without protobuf framing.
 *
 * @example
 * ```ts
 * import { rawCodec } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const chunk = new Uint8Array([1, 2, 3]);
 * assert.equal(rawCodec.name, "raw");
 * assert.equal(rawCodec.encode(chunk), chunk); // the same object
 * assert.equal(rawCodec.decode(chunk), chunk);
 * ```
 */
export const rawCodec: Codec<Uint8Array> = {
  name: "raw",
  encode(value) {
    return value;
  },
  decode(bytes) {
    return bytes;
  },
};

/**
 * A message schema as `protoc-gen-es` v2 generates it (`GenMessage<T>`, a
 * `DescMessage` of `@bufbuild/protobuf` v2), described by the few members this module
 * relies on, so its public API does not expose `@bufbuild/protobuf`'s types.
 *
 * @typeParam T the message type the schema describes
 *
 * @example
 * ```ts
 * import { protobufCodec, type ProtobufSchema } from "@sidechannel/transport";
 * import { type StringValue, StringValueSchema } from "@bufbuild/protobuf/wkt";
 * import assert from "node:assert/strict";
 *
 * const schema: ProtobufSchema<StringValue> = StringValueSchema;
 * assert.equal(schema.typeName, "google.protobuf.StringValue");
 * assert.equal(protobufCodec(schema).name, "proto");
 * ```
 */
export interface ProtobufSchema<T> {
  /** Always `"message"`. */
  readonly kind: "message";
  /** The fully-qualified message name, e.g. `"gitaly.Repository"`. */
  readonly typeName: string;
  /**
   * The compile-time brand generated schemas carry (it does not exist at run time);
   * `protobufCodec()` infers the message type `T` from it.
   */
  readonly $codegenv2: { readonly a: T };
}

/**
 * A protobuf codec for one message schema (`@bufbuild/protobuf` v2), named `"proto"`.
 *
 * @typeParam T the message type, inferred from the schema
 * @param schema a generated message schema, e.g. `PostUploadPackWithSidechannelRequestSchema`
 * @returns a codec for messages of that schema
 *
 * @example
 * ```ts
 * import { protobufCodec } from "@sidechannel/transport";
 * import { create } from "@bufbuild/protobuf";
 * import { StringValueSchema } from "@bufbuild/protobuf/wkt";
 * import assert from "node:assert/strict";
 *
 * const codec = protobufCodec(StringValueSchema);
 * const bytes = codec.encode(create(StringValueSchema, { value: "hi" }));
 * assert.deepEqual(bytes, new Uint8Array([0x0a, 2, 0x68, 0x69]));
 * assert.equal(codec.decode(bytes).value, "hi");
 * assert.throws(() => codec.decode(new Uint8Array([0x0a, 9])));
 * ```
 */
export function protobufCodec<T>(schema: ProtobufSchema<T>): Codec<T> {
  const desc = schema as unknown as DescMessage;
  return {
    name: "proto",
    encode(value) {
      try {
        return toBinary(desc, value as Message);
      } catch (error) {
        throw new GrpcError(Status.INTERNAL, `Cannot encode ${schema.typeName}: ${String(error)}`, {
          cause: error,
        });
      }
    },
    decode(bytes) {
      try {
        return fromBinary(desc, bytes) as T;
      } catch (error) {
        throw new GrpcError(Status.INTERNAL, `Cannot decode ${schema.typeName}: ${String(error)}`, {
          cause: error,
        });
      }
    },
  };
}
