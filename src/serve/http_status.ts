/**
 * gRPC statuses from the storage server as HTTP statuses a git client understands.
 *
 * @module
 */

import { type Status, Status as S } from "../grpc/status.ts";

const _HTTP: Readonly<Record<Status, number>> = {
  [S.OK]: 200,
  [S.CANCELLED]: 499,
  [S.UNKNOWN]: 500,
  [S.INVALID_ARGUMENT]: 400,
  [S.DEADLINE_EXCEEDED]: 504,
  [S.NOT_FOUND]: 404,
  [S.ALREADY_EXISTS]: 409,
  [S.PERMISSION_DENIED]: 403,
  [S.RESOURCE_EXHAUSTED]: 429,
  [S.FAILED_PRECONDITION]: 400,
  [S.ABORTED]: 409,
  [S.OUT_OF_RANGE]: 400,
  [S.UNIMPLEMENTED]: 501,
  [S.INTERNAL]: 500,
  [S.UNAVAILABLE]: 503,
  [S.DATA_LOSS]: 500,
  // The front failed to authenticate to its storage server: a configuration error of the
  // service, not something the git user's credentials can fix (401 would make git prompt).
  [S.UNAUTHENTICATED]: 502,
};

/**
 * The HTTP status for a gRPC status of the storage server, following Google's canonical
 * mapping (`google.rpc.Code`), except `UNAUTHENTICATED` → 502: that is the front failing
 * to authenticate to its upstream, and a 401 would make git ask the user for a password.
 *
 * git shows a 404 on `info/refs` as `fatal: repository '<url>' not found`, other
 * statuses as `The requested URL returned error: <status>`, and prints a `text/plain`
 * body before either as `remote: <line>`.
 *
 * @param code the gRPC status
 * @returns the HTTP status
 *
 * @example
 * ```ts
 * import { httpStatusFromGrpc, Status } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(httpStatusFromGrpc(Status.NOT_FOUND), 404);
 * assert.equal(httpStatusFromGrpc(Status.INVALID_ARGUMENT), 400);
 * assert.equal(httpStatusFromGrpc(Status.UNAVAILABLE), 503);
 * ```
 */
export function httpStatusFromGrpc(code: Status): number {
  return _HTTP[code] ?? 500;
}
