/**
 * The HTTP/2 error type: one class for every failure of a connection or stream.
 *
 * @module
 */

/**
 * The error codes of RFC 9113 §7, by name.
 *
 * @example Codes of stream resets
 * ```ts
 * import { duplexPair, Http2Connection, type Http2ErrorCode } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = duplexPair();
 * const client = Http2Connection.client(a);
 * const server = Http2Connection.server(b);
 * const stream = await client.request(
 *   { ":method": "GET", ":scheme": "http", ":authority": "x", ":path": "/" },
 *   { endStream: true },
 * );
 * const code: Http2ErrorCode = "REFUSED_STREAM";
 * (await server.accept()).reset(code);
 * const error = await stream.response.catch((e) => e);
 * assert.equal(error.code, "REFUSED_STREAM");
 * await client.close();
 * await server.closed;
 * ```
 *
 * - `NO_ERROR` graceful shutdown; `PROTOCOL_ERROR` a generic protocol violation;
 *   `INTERNAL_ERROR` an unexpected internal failure (also used here when the transport
 *   is lost); `FLOW_CONTROL_ERROR` a flow-control violation; `SETTINGS_TIMEOUT` SETTINGS
 *   not acknowledged in time; `STREAM_CLOSED` a frame on a half-closed stream;
 *   `FRAME_SIZE_ERROR` a frame of invalid size; `REFUSED_STREAM` the stream was not
 *   processed and may be retried; `CANCEL` the stream is no longer needed;
 *   `COMPRESSION_ERROR` header compression state lost; `CONNECT_ERROR` the tunnel of a
 *   CONNECT request failed; `ENHANCE_YOUR_CALM` the peer is generating excessive load;
 *   `INADEQUATE_SECURITY` TLS requirements not met; `HTTP_1_1_REQUIRED` use HTTP/1.1.
 */
export type Http2ErrorCode =
  | "NO_ERROR"
  | "PROTOCOL_ERROR"
  | "INTERNAL_ERROR"
  | "FLOW_CONTROL_ERROR"
  | "SETTINGS_TIMEOUT"
  | "STREAM_CLOSED"
  | "FRAME_SIZE_ERROR"
  | "REFUSED_STREAM"
  | "CANCEL"
  | "COMPRESSION_ERROR"
  | "CONNECT_ERROR"
  | "ENHANCE_YOUR_CALM"
  | "INADEQUATE_SECURITY"
  | "HTTP_1_1_REQUIRED";

/** The names of RFC 9113 §7, indexed by their numeric value. */
const _NAMES: readonly Http2ErrorCode[] = [
  "NO_ERROR",
  "PROTOCOL_ERROR",
  "INTERNAL_ERROR",
  "FLOW_CONTROL_ERROR",
  "SETTINGS_TIMEOUT",
  "STREAM_CLOSED",
  "FRAME_SIZE_ERROR",
  "REFUSED_STREAM",
  "CANCEL",
  "COMPRESSION_ERROR",
  "CONNECT_ERROR",
  "ENHANCE_YOUR_CALM",
  "INADEQUATE_SECURITY",
  "HTTP_1_1_REQUIRED",
];

/**
 * The name of a numeric error code. Unknown codes map to `INTERNAL_ERROR`, as RFC 9113
 * §7 allows ("Unknown or unsupported error codes MUST NOT trigger any special behavior").
 *
 * @param value the 32-bit code from a RST_STREAM or GOAWAY frame
 * @returns the name
 */
export function errorCodeName(value: number): Http2ErrorCode {
  return _NAMES[value] ?? "INTERNAL_ERROR";
}

/**
 * The numeric value of an error code name.
 *
 * @param code the name
 * @returns the 32-bit value sent on the wire
 */
export function errorCodeValue(code: Http2ErrorCode): number {
  const value = _NAMES.indexOf(code);
  if (value < 0) throw new TypeError(`Cannot encode error code: unknown name ${code}`);
  return value;
}

/**
 * Options for {@linkcode Http2Error}.
 *
 * @example
 * ```ts
 * import { Http2Error, type Http2ErrorOptions } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const options: Http2ErrorOptions = { streamId: 1, remote: true };
 * assert.equal(new Http2Error("CANCEL", "Cannot read: cancelled", options).streamId, 1);
 * ```
 */
export interface Http2ErrorOptions {
  /** The stream this error concerns; absent for connection errors. */
  streamId?: number;
  /**
   * True if the peer reported the error (RST_STREAM or GOAWAY).
   * @default {false}
   */
  remote?: boolean;
  /** The underlying error, if any. */
  cause?: unknown;
  /** The raw numeric code when it differs from the name (unknown codes from a peer). */
  errorCode?: number;
}

/**
 * A failure of an HTTP/2 connection or stream.
 *
 * `code` is the RFC 9113 name; `remote` tells whether the peer sent it (RST_STREAM or
 * GOAWAY) or this side detected it; `streamId` is set for stream errors and absent for
 * connection errors. A lost transport (end-of-stream, reset, keep-alive timeout) is a
 * local connection error with code `INTERNAL_ERROR` and the transport error as `cause`;
 * streams the peer refused before processing (REFUSED_STREAM, or above a GOAWAY's
 * last-stream-id) are safe to retry.
 *
 * @example Inspect a code
 * ```ts
 * import { Http2Error } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const error = new Http2Error("REFUSED_STREAM", "Cannot open stream: refused by peer", {
 *   streamId: 3,
 *   remote: true,
 * });
 * assert.equal(error.code, "REFUSED_STREAM");
 * assert.equal(error.errorCode, 7);
 * assert.equal(error.streamId, 3);
 * assert.ok(error.remote);
 * ```
 */
export class Http2Error extends Error {
  /** The RFC 9113 §7 error name. */
  readonly code: Http2ErrorCode;
  /** The numeric error code, as on the wire. */
  readonly errorCode: number;
  /** The stream of a stream error; `undefined` for a connection error. */
  readonly streamId: number | undefined;
  /** True if the peer sent this error via RST_STREAM or GOAWAY. */
  readonly remote: boolean;

  /**
   * Creates the error.
   *
   * @param code the RFC 9113 error name
   * @param message "Cannot <action>: <reason>"
   * @param options stream, origin and cause
   */
  constructor(code: Http2ErrorCode, message: string, options: Http2ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "Http2Error";
    this.code = code;
    this.errorCode = options.errorCode ?? errorCodeValue(code);
    this.streamId = options.streamId;
    this.remote = options.remote ?? false;
  }
}
