/**
 * The gRPC `content-type`: `application/grpc[+<subtype>][;params]`.
 *
 * @module
 */

/**
 * The `content-type` of a gRPC call without a subtype (protobuf implied).
 *
 * @example
 * ```ts
 * import { GRPC_CONTENT_TYPE, parseGrpcContentType } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(GRPC_CONTENT_TYPE, "application/grpc");
 * assert.equal(parseGrpcContentType(GRPC_CONTENT_TYPE), "proto");
 * ```
 */
export const GRPC_CONTENT_TYPE = "application/grpc";

const _SUBTYPE = /^[a-z0-9!#$&^_.-]+$/;

/**
 * Parses a `content-type` header of a gRPC call and returns the codec subtype.
 *
 * The media type is matched case-insensitively; parameters after `;` are ignored. A bare
 * `application/grpc` means protobuf, so it gives `"proto"`. Anything else (including
 * `application/grpc-web` and `application/grpcx`) gives `undefined`: a server answers
 * that with HTTP 415, a client treats the response as not gRPC.
 *
 * @param value the header value
 * @returns the subtype, lower-cased (`"proto"`, `"raw"`, `"json"`, …), or `undefined`
 *
 * @example
 * ```ts
 * import { parseGrpcContentType } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseGrpcContentType("application/grpc"), "proto");
 * assert.equal(parseGrpcContentType("application/grpc+raw"), "raw");
 * assert.equal(parseGrpcContentType("Application/GRPC+proto; charset=utf-8"), "proto");
 * assert.equal(parseGrpcContentType("application/grpc-web"), undefined);
 * assert.equal(parseGrpcContentType("text/html"), undefined);
 * ```
 */
export function parseGrpcContentType(value: string): string | undefined {
  if (value === GRPC_CONTENT_TYPE) return "proto"; // what nearly every peer sends
  const semicolon = value.indexOf(";");
  const media = (semicolon === -1 ? value : value.slice(0, semicolon)).trim().toLowerCase();
  if (media === GRPC_CONTENT_TYPE) return "proto";
  if (!media.startsWith(GRPC_CONTENT_TYPE + "+")) return undefined;
  const subtype = media.slice(GRPC_CONTENT_TYPE.length + 1);
  return _SUBTYPE.test(subtype) ? subtype : undefined;
}

/**
 * Formats the `content-type` of a gRPC call for a codec subtype.
 *
 * @param subtype the codec name (`"proto"`, `"raw"`); omit for bare `application/grpc`
 * @returns the header value
 * @throws {TypeError} For a subtype that is not a lowercase token.
 *
 * @example
 * ```ts
 * import { formatGrpcContentType } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatGrpcContentType(), "application/grpc");
 * assert.equal(formatGrpcContentType("raw"), "application/grpc+raw");
 * ```
 */
export function formatGrpcContentType(subtype?: string): string {
  if (subtype === undefined || subtype === "") return GRPC_CONTENT_TYPE;
  if (!_SUBTYPE.test(subtype)) {
    throw new TypeError(`Cannot format content-type: invalid subtype ${JSON.stringify(subtype)}`);
  }
  return `${GRPC_CONTENT_TYPE}+${subtype}`;
}
