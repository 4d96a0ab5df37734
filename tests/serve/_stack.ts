/**
 * A whole stack for the serve tests: a storage root with a generated repository, a
 * StorageServer (with a separate V3 port), a GitalyUpstream pool, and one front per
 * transport on loopback.
 *
 * @module
 */

import { type GeneratedRepo, generateRepo, SMALL_SPEC } from "../../bench/_reference_repo.ts";
import {
  type FrontLogEntry,
  type GitalyTransport,
  GitalyUpstream,
  type GitalyUpstreamOptions,
  type GitHttpFrontOptions,
  type StorageLogEntry,
  StorageServer,
  type StorageServerOptions,
} from "../../mod.ts";
import { git, type RunningFront, serveFront } from "./_harness.ts";

/** The transports, in test order. */
export const TRANSPORTS: readonly GitalyTransport[] = ["sidechannel", "v3", "grpc"];

/** A running stack. */
export interface Stack {
  /** The storage root (storage `default`). */
  root: string;
  /** The generated repository, served as `repo.git`. */
  repo: GeneratedRepo;
  server: StorageServer;
  upstream: GitalyUpstream;
  /** Front request logs, all transports. */
  logs: FrontLogEntry[];
  /** Storage server RPC logs. */
  rpcs: StorageLogEntry[];
  /** One front per transport. */
  fronts: Record<GitalyTransport, RunningFront>;
  /** A fresh directory for clones. */
  scratch(name: string): Promise<string>;
  close(): Promise<void>;
}

/** Starts a stack. */
export async function startStack(
  options: {
    server?: Partial<StorageServerOptions>;
    upstream?: Partial<GitalyUpstreamOptions>;
    front?: Partial<GitHttpFrontOptions>;
    allowFilter?: boolean;
  } = {},
): Promise<Stack> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "sidechannel-serve-" }));
  const repo = await generateRepo(`${root}/repo.git`, SMALL_SPEC);
  if (options.allowFilter ?? true) await git(["-C", repo.path, "config", "uploadpack.allowFilter", "true"]);
  const rpcs: StorageLogEntry[] = [];
  const server = await StorageServer.start({
    storages: { default: root },
    v3Port: 0,
    onLog: (e) => rpcs.push(e),
    ...options.server,
  });
  const upstream = new GitalyUpstream({
    port: server.addr.port,
    v3: { port: server.v3Addr!.port },
    ...options.upstream,
  });
  const logs: FrontLogEntry[] = [];
  const fronts = {} as Record<GitalyTransport, RunningFront>;
  for (const transport of TRANSPORTS) {
    fronts[transport] = serveFront({ upstream, transport, onLog: (e) => logs.push(e), ...options.front });
  }
  const scratchRoot = await Deno.makeTempDir({ prefix: "sidechannel-clones-" });
  let n = 0;
  return {
    root,
    repo,
    server,
    upstream,
    logs,
    rpcs,
    fronts,
    scratch: (name) => Promise.resolve(`${scratchRoot}/${n++}-${name}`),
    async close() {
      for (const front of Object.values(fronts)) await front.close();
      await upstream.close();
      await server.shutdown();
      await Deno.remove(root, { recursive: true });
      await Deno.remove(scratchRoot, { recursive: true });
    },
  };
}

/** A test step that may leave pooled connections open (the stack owns them). */
export function step(
  t: Deno.TestContext,
  name: string,
  fn: () => Promise<void>,
): Promise<boolean> {
  return t.step({ name, fn, sanitizeOps: false, sanitizeResources: false });
}
