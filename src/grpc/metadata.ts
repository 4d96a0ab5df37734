/**
 * gRPC custom metadata: validation, reserved headers, `-bin` base64.
 *
 * Metadata is a plain list of `[name, value]` pairs in order, names lowercase. Values
 * of names ending in `-bin` are bytes; all others are ASCII strings (0x20–0x7E).
 *
 * @module
 */

/**
 * A metadata value: bytes for `-bin` names, an ASCII string otherwise.
 *
 * @example
 * ```ts
 * import type { MetadataValue } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const text: MetadataValue = "Bearer abc";
 * const bytes: MetadataValue = new Uint8Array([1, 2]);
 * assert.equal(typeof text, "string");
 * assert.ok(bytes instanceof Uint8Array);
 * ```
 */
export type MetadataValue = string | Uint8Array;

/**
 * Custom metadata: `[name, value]` pairs, in order, names lowercase, repeats allowed.
 *
 * @example
 * ```ts
 * import { encodeMetadata, type Metadata } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const metadata: Metadata = [["x-id", "1"], ["x-id", "2"], ["trace-bin", new Uint8Array([255])]];
 * assert.deepEqual(encodeMetadata(metadata), [["x-id", "1"], ["x-id", "2"], ["trace-bin", "/w"]]);
 * ```
 */
export type Metadata = ReadonlyArray<readonly [name: string, value: MetadataValue]>;

const _NAME = /^[0-9a-z_.-]+$/;
const _ASCII_VALUE = /^[\x20-\x7e]*$/;

/**
 * Headers the gRPC and HTTP/2 layers own. Besides these, every `grpc-*` name and every
 * pseudo-header (`:…`) is reserved.
 */
const _RESERVED = new Set([
  "content-type",
  "te",
  "user-agent",
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "host",
]);

/**
 * Whether a header belongs to the protocol rather than to the application: pseudo
 * headers (`:path`), every `grpc-*` name (`grpc-status`, `grpc-timeout`, …, and the rest
 * of that prefix, reserved for gRPC's future use), `content-type`, `te`, `user-agent`,
 * and the connection-specific headers HTTP/2 forbids (`connection`, `upgrade`, …).
 *
 * @param name a lowercase header name
 * @returns `true` if applications may not send it as metadata
 *
 * @example
 * ```ts
 * import { isReservedHeader } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isReservedHeader("grpc-status"), true);
 * assert.equal(isReservedHeader(":path"), true);
 * assert.equal(isReservedHeader("gitaly-sidechannel-id"), false);
 * ```
 */
export function isReservedHeader(name: string): boolean {
  return name.startsWith(":") || name.startsWith("grpc-") || _RESERVED.has(name);
}

/**
 * Whether `name` is a valid metadata name: one or more of `0-9 a-z _ - .`.
 *
 * @param name a header name
 * @returns `true` if valid
 *
 * @example
 * ```ts
 * import { isValidMetadataName } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isValidMetadataName("trace-proto-bin"), true);
 * assert.equal(isValidMetadataName("Trace"), false);
 * ```
 */
export function isValidMetadataName(name: string): boolean {
  return _NAME.test(name);
}

/**
 * Whether `value` is a valid ASCII metadata value: printable ASCII and space only.
 *
 * @param value a header value
 * @returns `true` if valid
 *
 * @example
 * ```ts
 * import { isValidMetadataValue } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isValidMetadataValue("Bearer abc"), true);
 * assert.equal(isValidMetadataValue("caf\u00e9"), false);
 * ```
 */
export function isValidMetadataValue(value: string): boolean {
  return _ASCII_VALUE.test(value);
}

function _isBinary(name: string): boolean {
  return name.endsWith("-bin");
}

/**
 * Checks metadata an application wants to send.
 *
 * @param metadata the pairs to check
 * @throws {TypeError} For an invalid name, a reserved name (see
 * {@linkcode isReservedHeader}; `user-agent` excepted, see {@linkcode encodeMetadata}),
 * a `-bin` value that is not a `Uint8Array`, or another value that is not an ASCII
 * string.
 *
 * @example
 * ```ts
 * import { validateMetadata } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * validateMetadata([["x-id", "1"], ["trace-bin", new Uint8Array([1])]]);
 * assert.throws(() => validateMetadata([["X-Id", "1"]]), TypeError);
 * assert.throws(() => validateMetadata([["grpc-status", "0"]]), TypeError);
 * assert.throws(() => validateMetadata([["trace-bin", "AQ"]]), TypeError);
 * ```
 */
export function validateMetadata(metadata: Metadata): void {
  for (const [name, value] of metadata) {
    if (!isValidMetadataName(name)) {
      throw new TypeError(
        `Cannot send metadata: invalid name ${JSON.stringify(name)} (allowed: 0-9 a-z _ - .)`,
      );
    }
    if (name !== "user-agent" && isReservedHeader(name)) {
      throw new TypeError(`Cannot send metadata: ${JSON.stringify(name)} is reserved for the protocol`);
    }
    if (_isBinary(name)) {
      if (!(value instanceof Uint8Array)) {
        throw new TypeError(
          `Cannot send metadata: the value of ${JSON.stringify(name)} must be a Uint8Array`,
        );
      }
    } else if (typeof value !== "string" || !isValidMetadataValue(value)) {
      throw new TypeError(
        `Cannot send metadata: the value of ${JSON.stringify(name)} must be printable ASCII`,
      );
    }
  }
}

/**
 * Turns metadata into HTTP/2 header fields: validates it, base64-encodes `-bin` values
 * without padding (as gRPC recommends), and leaves out `user-agent`, which the transport
 * sets itself. Omitting `user-agent` rather than rejecting it lets a server echo
 * received metadata (which keeps `user-agent`, see {@linkcode decodeMetadata}).
 *
 * @param metadata the pairs to send
 * @returns header fields, in order
 * @throws {TypeError} As {@linkcode validateMetadata}.
 *
 * @example
 * ```ts
 * import { encodeMetadata } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(encodeMetadata([["x-id", "7"], ["trace-bin", new Uint8Array([1, 2, 3, 4])]]), [
 *   ["x-id", "7"],
 *   ["trace-bin", "AQIDBA"],
 * ]);
 * ```
 */
export function encodeMetadata(metadata: Metadata): [string, string][] {
  validateMetadata(metadata);
  const out: [string, string][] = [];
  for (const [name, value] of metadata) {
    if (name === "user-agent") continue;
    out.push([name, typeof value === "string" ? value : value.toBase64({ omitPadding: true })]);
  }
  return out;
}

/**
 * Decodes a base64 `-bin` header value: padded or unpadded, and several values joined
 * by `,` (how HTTP may combine repeated headers).
 *
 * @param value the header value
 * @returns the bytes of each comma-separated part, or `undefined` if any part is not
 * valid base64
 *
 * @example
 * ```ts
 * import { decodeBinaryHeader } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(decodeBinaryHeader("AQID"), [new Uint8Array([1, 2, 3])]);
 * assert.deepEqual(decodeBinaryHeader("AQ==,AQI"), [new Uint8Array([1]), new Uint8Array([1, 2])]);
 * assert.equal(decodeBinaryHeader("A$"), undefined);
 * ```
 */
export function decodeBinaryHeader(value: string): Uint8Array[] | undefined {
  const out: Uint8Array[] = [];
  for (const part of value.split(",")) {
    const trimmed = part.trim();
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(trimmed)) return undefined;
    try {
      out.push(Uint8Array.fromBase64(trimmed, { lastChunkHandling: "loose" }));
    } catch {
      return undefined;
    }
  }
  return out;
}

/**
 * Extracts custom metadata from received HTTP/2 header fields.
 *
 * - Reserved headers (see {@linkcode isReservedHeader}) are dropped, except
 *   `user-agent`, which is kept for the application to read.
 * - `-bin` values are base64-decoded (padded or not; comma-joined values split).
 * - Entries gRPC forbids but HTTP allows (invalid names, non-ASCII values, bad base64)
 *   are dropped: gRPC says not to fail the call for them, and dropping keeps the result
 *   safe to send back with {@linkcode encodeMetadata}.
 *
 * @param headers received header fields, names lowercase (as HTTP/2 requires)
 * @returns the metadata
 *
 * @example
 * ```ts
 * import { decodeMetadata } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const metadata = decodeMetadata([
 *   [":status", "200"],
 *   ["content-type", "application/grpc"],
 *   ["grpc-status", "0"],
 *   ["x-id", "7"],
 *   ["trace-bin", "AQID"],
 * ]);
 * assert.deepEqual(metadata, [["x-id", "7"], ["trace-bin", new Uint8Array([1, 2, 3])]]);
 * ```
 */
export function decodeMetadata(headers: Iterable<readonly [string, string]>): Metadata {
  const out: [string, MetadataValue][] = [];
  for (const [name, value] of headers) {
    if (name !== "user-agent" && isReservedHeader(name)) continue;
    if (!isValidMetadataName(name)) continue;
    if (_isBinary(name)) {
      const parts = decodeBinaryHeader(value);
      if (parts === undefined) continue;
      for (const part of parts) out.push([name, part]);
    } else if (isValidMetadataValue(value)) {
      out.push([name, value]);
    }
  }
  return out;
}

/**
 * All values of `name`, in order.
 *
 * @param metadata the metadata to search
 * @param name a lowercase name
 * @returns the values (empty if none)
 *
 * @example Gitaly reads the last `gitaly-sidechannel-id`
 * ```ts
 * import { metadataValues } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const values = metadataValues([["gitaly-sidechannel-id", "0"], ["gitaly-sidechannel-id", "3"]], "gitaly-sidechannel-id");
 * assert.equal(values.at(-1), "3");
 * ```
 */
export function metadataValues(metadata: Metadata, name: string): MetadataValue[] {
  const out: MetadataValue[] = [];
  for (const [key, value] of metadata) if (key === name) out.push(value);
  return out;
}
