/**
 * Errors of the front: requests it refuses before asking the storage server.
 *
 * @module
 */

/**
 * Why the front refused a request:
 * - `BAD_PATH`: the repository path is malformed or tries to leave the storage (`..`,
 *   `.`, empty segments, encoded `/`, NUL or control characters) → HTTP 400;
 * - `NOT_FOUND`: not a smart-HTTP upload-pack URL (dumb HTTP files, unknown paths) → 404;
 * - `METHOD_NOT_ALLOWED`: the URL is right, the method is not → 405;
 * - `FORBIDDEN`: a service the front does not offer (`git-receive-pack`, dumb HTTP) → 403;
 * - `UNSUPPORTED_ENCODING`: a request body in an encoding other than gzip → 415;
 * - `BAD_COMMAND`: an SSH command line that is not `git-upload-pack '<path>'`.
 */
export type FrontErrorCode =
  | "BAD_PATH"
  | "NOT_FOUND"
  | "METHOD_NOT_ALLOWED"
  | "FORBIDDEN"
  | "UNSUPPORTED_ENCODING"
  | "BAD_COMMAND";

const _STATUS: Readonly<Record<FrontErrorCode, number>> = {
  BAD_PATH: 400,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  FORBIDDEN: 403,
  UNSUPPORTED_ENCODING: 415,
  BAD_COMMAND: 400,
};

/**
 * A request the front refuses itself; `status` is the HTTP status it answers with.
 *
 * @example
 * ```ts
 * import { FrontError } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const error = new FrontError("BAD_PATH", "Cannot serve repository: path escapes the storage");
 * assert.equal(error.status, 400);
 * assert.equal(error.name, "FrontError");
 * ```
 */
export class FrontError extends Error {
  /** What went wrong. */
  readonly code: FrontErrorCode;
  /** The HTTP status for this code. */
  readonly status: number;

  /**
   * Creates the error.
   *
   * @param code what went wrong
   * @param message "Cannot <action>: <reason>"
   * @param options the cause
   */
  constructor(code: FrontErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FrontError";
    this.code = code;
    this.status = _STATUS[code];
  }
}
