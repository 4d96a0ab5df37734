/**
 * What the front needs from its storage server: the calls of a `GitalyClient`, behind
 * an interface so a pool (or a test double) can supply them.
 *
 * @module
 */

import type { GitalyClient, GitalyTransport } from "../git/client.ts";

/** The Gitaly calls the front makes (a `GitalyClient` has them). */
export type GitUpstreamClient = Pick<GitalyClient, "infoRefsUploadPack" | "postUploadPack">;

/** Where the front gets its clients: a connection pool such as `GitalyUpstream`. */
export interface GitUpstream {
  /**
   * A client whose connections are up for `transport` (connecting or reconnecting as
   * needed).
   *
   * @param transport the transport the call will use
   * @param options cancels connecting
   * @returns the client
   * @throws {GrpcError} `UNAVAILABLE` when the storage server cannot be reached.
   */
  client(transport: GitalyTransport, options?: { signal?: AbortSignal }): Promise<GitUpstreamClient>;
}
