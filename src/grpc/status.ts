/**
 * gRPC status codes, the error that carries one, and the mappings from HTTP/2.
 *
 * @module
 */

import type { Metadata } from "./metadata.ts";

/**
 * The gRPC status codes (`grpc-status`), 0–16.
 *
 * @example
 * ```ts
 * import { Status, statusName } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(Status.UNAVAILABLE, 14);
 * assert.equal(statusName(Status.UNAVAILABLE), "UNAVAILABLE");
 * ```
 */
export const Status = {
  /** Success. */
  OK: 0,
  /** The call was cancelled, typically by the caller. */
  CANCELLED: 1,
  /** Unknown error, e.g. an error without a status. */
  UNKNOWN: 2,
  /** The client sent an invalid argument. */
  INVALID_ARGUMENT: 3,
  /** The deadline expired before the call completed. */
  DEADLINE_EXCEEDED: 4,
  /** A requested entity was not found. */
  NOT_FOUND: 5,
  /** The entity a client tried to create already exists. */
  ALREADY_EXISTS: 6,
  /** The caller may not run the operation. */
  PERMISSION_DENIED: 7,
  /** A resource (quota, message size, memory) is exhausted. */
  RESOURCE_EXHAUSTED: 8,
  /** The system is not in a state the operation requires. */
  FAILED_PRECONDITION: 9,
  /** The operation was aborted, typically by a concurrency conflict. */
  ABORTED: 10,
  /** The operation went past the valid range. */
  OUT_OF_RANGE: 11,
  /** The method is not implemented or not supported. */
  UNIMPLEMENTED: 12,
  /** An internal invariant broke (includes protocol errors). */
  INTERNAL: 13,
  /** The service is unavailable, usually transiently: retry with backoff. */
  UNAVAILABLE: 14,
  /** Unrecoverable data loss or corruption. */
  DATA_LOSS: 15,
  /** The request lacks valid authentication credentials. */
  UNAUTHENTICATED: 16,
} as const;

/**
 * One of the {@linkcode Status} codes.
 *
 * @example
 * ```ts
 * import { GrpcError, Status } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const code: Status = Status.NOT_FOUND;
 * assert.equal(new GrpcError(code).code, 5);
 * ```
 */
export type Status = typeof Status[keyof typeof Status];

const _NAMES: readonly string[] = Object.keys(Status);

/**
 * Whether `value` is a status code 0–16.
 *
 * @param value anything
 * @returns `true` for an integer 0–16
 *
 * @example
 * ```ts
 * import { isStatus } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isStatus(16), true);
 * assert.equal(isStatus(17), false);
 * ```
 */
export function isStatus(value: unknown): value is Status {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= 16;
}

/**
 * The name of a status code, as in {@linkcode Status}; `"CODE_<n>"` for others.
 *
 * @param code a status code
 * @returns e.g. `"NOT_FOUND"`
 *
 * @example
 * ```ts
 * import { Status, statusName } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(statusName(Status.NOT_FOUND), "NOT_FOUND");
 * assert.equal(statusName(42), "CODE_42");
 * ```
 */
export function statusName(code: number): string {
  return isStatus(code) ? _NAMES[code]! : `CODE_${code}`;
}

/**
 * Options for {@linkcode GrpcError}.
 *
 * @example
 * ```ts
 * import { GrpcError, type GrpcErrorOptions, Status } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const options: GrpcErrorOptions = { metadata: [["x-retry-after", "5"]], cause: new Error("disk full") };
 * const error = new GrpcError(Status.RESOURCE_EXHAUSTED, "no space", options);
 * assert.deepEqual(error.metadata, [["x-retry-after", "5"]]);
 * assert.ok(error.cause instanceof Error);
 * ```
 */
export interface GrpcErrorOptions {
  /**
   * Trailers (or headers of a Trailers-Only response) that came with the status.
   * @default {[]}
   */
  metadata?: Metadata;
  /**
   * The raw `grpc-status-details-bin` value (a serialized `google.rpc.Status`), passed
   * through undecoded.
   * @default {undefined}
   */
  statusDetailsBin?: Uint8Array;
  /**
   * The underlying error.
   * @default {undefined}
   */
  cause?: unknown;
}

/**
 * A call that ended with a non-OK gRPC status (or a local failure mapped to one).
 *
 * `message` is `"<code> <NAME>: <details>"`; `details` keeps the status message alone.
 *
 * @example
 * ```ts
 * import { GrpcError, Status } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const error = new GrpcError(Status.NOT_FOUND, "no such repository", {
 *   metadata: [["x-request-id", "42"]],
 * });
 * assert.equal(error.code, Status.NOT_FOUND);
 * assert.equal(error.details, "no such repository");
 * assert.equal(error.message, "5 NOT_FOUND: no such repository");
 * assert.deepEqual(error.metadata, [["x-request-id", "42"]]);
 * ```
 */
export class GrpcError extends Error {
  /** The status code. */
  readonly code: Status;
  /** The status message (`grpc-message`, percent-decoded), possibly empty. */
  readonly details: string;
  /** Trailers that came with the status. */
  readonly metadata: Metadata;
  /** The raw `grpc-status-details-bin` value, if the peer sent one. */
  declare readonly statusDetailsBin?: Uint8Array;

  /**
   * Creates the error.
   *
   * @param code the status code; must not be `OK`
   * @param details the status message
   * @param options trailers, status details and cause
   * @throws {RangeError} For `OK` or a code outside 1–16.
   */
  constructor(code: Status, details = "", options: GrpcErrorOptions = {}) {
    if (!isStatus(code) || code === Status.OK) {
      throw new RangeError(`Cannot create GrpcError: code must be 1-16, received ${code}`);
    }
    super(
      details === "" ? `${code} ${statusName(code)}` : `${code} ${statusName(code)}: ${details}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "GrpcError";
    this.code = code;
    this.details = details;
    this.metadata = options.metadata ?? [];
    if (options.statusDetailsBin !== undefined) this.statusDetailsBin = options.statusDetailsBin;
  }

  /**
   * Turns anything thrown into a `GrpcError`.
   *
   * - a `GrpcError` is returned as is;
   * - an `AbortError` (an aborted signal, a cancelled stream) becomes `CANCELLED`;
   * - a `TimeoutError` (`AbortSignal.timeout()`) becomes `DEADLINE_EXCEEDED`;
   * - anything else becomes `fallback`, with the original as `cause`.
   *
   * @param reason what was thrown
   * @param fallback the code for errors that carry none
   * @returns a `GrpcError`
   *
   * @example
   * ```ts
   * import { GrpcError, Status } from "@sidechannel/transport";
   * import assert from "node:assert/strict";
   *
   * const timeout = new DOMException("signal timed out", "TimeoutError");
   * assert.equal(GrpcError.from(timeout).code, Status.DEADLINE_EXCEEDED);
   * assert.equal(GrpcError.from(new Error("boom")).code, Status.UNKNOWN);
   * assert.equal(GrpcError.from("boom", Status.INTERNAL).details, "boom");
   * ```
   */
  static from(reason: unknown, fallback: Status = Status.UNKNOWN): GrpcError {
    if (reason instanceof GrpcError) return reason;
    const name = reason instanceof Error || reason instanceof DOMException ? reason.name : undefined;
    const message = reason instanceof Error || reason instanceof DOMException
      ? reason.message
      : String(reason);
    if (name === "AbortError") return new GrpcError(Status.CANCELLED, message, { cause: reason });
    if (name === "TimeoutError") return new GrpcError(Status.DEADLINE_EXCEEDED, message, { cause: reason });
    const code = fallback === Status.OK ? Status.UNKNOWN : fallback;
    return new GrpcError(code, message, { cause: reason });
  }
}

/**
 * The status a client synthesizes for an HTTP response without `grpc-status`, per
 * gRPC's `http-grpc-status-mapping.md`. Use it only when `grpc-status` is missing; a
 * server must never map the other way with it.
 *
 * 400 and 431 → `INTERNAL`, 401 → `UNAUTHENTICATED`, 403 → `PERMISSION_DENIED`,
 * 404 → `UNIMPLEMENTED`, 429/502/503/504 → `UNAVAILABLE`, everything else (200
 * included) → `UNKNOWN`. 1xx responses are informational: skip them, do not map them.
 *
 * @param httpStatus the `:status` of the response
 * @returns the gRPC status to report
 *
 * @example
 * ```ts
 * import { Status, statusFromHttp } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(statusFromHttp(503), Status.UNAVAILABLE);
 * assert.equal(statusFromHttp(404), Status.UNIMPLEMENTED);
 * assert.equal(statusFromHttp(200), Status.UNKNOWN);
 * ```
 */
export function statusFromHttp(httpStatus: number): Status {
  switch (httpStatus) {
    case 400:
    case 431:
      return Status.INTERNAL;
    case 401:
      return Status.UNAUTHENTICATED;
    case 403:
      return Status.PERMISSION_DENIED;
    case 404:
      return Status.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return Status.UNAVAILABLE;
    default:
      return Status.UNKNOWN;
  }
}

/**
 * The status for a stream reset by its peer with an HTTP/2 `RST_STREAM` error code,
 * per gRPC's `PROTOCOL-HTTP2.md` ("Errors").
 *
 * `REFUSED_STREAM` (7) → `UNAVAILABLE` (nothing was processed: safe to retry),
 * `CANCEL` (8) → `CANCELLED`, `ENHANCE_YOUR_CALM` (11) → `RESOURCE_EXHAUSTED`,
 * `INADEQUATE_SECURITY` (12) → `PERMISSION_DENIED`, all others (`NO_ERROR` included,
 * since a finished call must carry an explicit status) → `INTERNAL`.
 *
 * @param errorCode the HTTP/2 error code
 * @returns the gRPC status to report
 *
 * @example
 * ```ts
 * import { Status, statusFromHttp2Error } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(statusFromHttp2Error(7), Status.UNAVAILABLE);
 * assert.equal(statusFromHttp2Error(8), Status.CANCELLED);
 * assert.equal(statusFromHttp2Error(0), Status.INTERNAL);
 * ```
 */
export function statusFromHttp2Error(errorCode: number): Status {
  switch (errorCode) {
    case 0x7:
      return Status.UNAVAILABLE;
    case 0x8:
      return Status.CANCELLED;
    case 0xb:
      return Status.RESOURCE_EXHAUSTED;
    case 0xc:
      return Status.PERMISSION_DENIED;
    default:
      return Status.INTERNAL;
  }
}
