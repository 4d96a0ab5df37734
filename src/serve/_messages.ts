/**
 * The texts git users see for failed calls (HTTP bodies, SSH stderr).
 *
 * @module
 */

import { type GrpcError, Status, statusName } from "../grpc/status.ts";

/**
 * The text git shows for a failed call.
 *
 * @param error the call's status
 * @param repository the repository's display name
 */
export function _describe(error: GrpcError, repository: { readonly name: string }): string {
  switch (error.code) {
    case Status.NOT_FOUND:
      return `Repository not found: ${repository.name} (${error.details || "not found"})`;
    case Status.UNAVAILABLE:
      return `The storage server is unavailable, try again later (${error.details})`;
    case Status.UNAUTHENTICATED:
      return `The front could not authenticate to the storage server (${error.details})`;
    default:
      return `Cannot serve ${repository.name}: ${statusName(error.code)}${
        error.details === "" ? "" : `: ${error.details}`
      }`;
  }
}
