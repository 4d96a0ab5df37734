/**
 * Helpers for the RPC-level tests of the Gitaly services: a storage server on a test
 * storage with clients for every transport, response collection, and git process
 * tracking by repository path (other test files run git in this process too).
 *
 * @module
 */

import {
  BackchannelClient,
  GitalyClient,
  type GitalyRepository,
  type GitalyTransport,
  GrpcClient,
  type GrpcClientOptions,
  GrpcError,
  type PackfileNegotiationStats,
  type PostUploadPackCall,
  SidechannelRegistry,
  type StorageLogEntry,
  StorageServer,
  type StorageServerOptions,
} from "../../mod.ts";
import type { RepoSpec } from "../../bench/_reference_repo.ts";
import { makeStorage, noGit, procState, type TestStorage } from "./_git.ts";
import { concat, withTimeout } from "../_util.ts";

/**
 * The three fetch transports, with the test names Gitaly uses for them: the main case
 * (`TestServer_PostUploadWithChannel`) and the prefix of the others
 * (`TestServer_PostUploadPackWithSidechannel_gitProtocol`).
 */
export const TRANSPORTS: readonly { transport: GitalyTransport; main: string; prefix: string }[] = [
  {
    transport: "sidechannel",
    main: "TestServer_PostUploadWithChannel",
    prefix: "TestServer_PostUploadPackWithSidechannel",
  },
  { transport: "v3", main: "TestServer_PostUploadV3", prefix: "TestServer_PostUploadPackV3" },
  { transport: "grpc", main: "TestServer_PostUploadPack", prefix: "TestServer_PostUploadPack" },
];

/** A storage server on a fresh test storage, and a client connected every way. */
export interface Rig {
  s: TestStorage;
  server: StorageServer;
  client: GitalyClient;
  /** The repository at `repo.git`. */
  repo: GitalyRepository;
  /** Every log entry so far. */
  log: StorageLogEntry[];
  backchannel: BackchannelClient;
  registry: SidechannelRegistry;
  grpc: GrpcClient;
  v3: GrpcClient;
  close(): Promise<void>;
}

/** Options of {@linkcode startRig}. */
export interface RigOptions {
  spec?: RepoSpec;
  server?: Partial<StorageServerOptions>;
  grpc?: GrpcClientOptions;
}

/** Starts a storage server (with a V3 port) and connects a backchannel, a plain and a V3 client. */
export async function startRig(options: RigOptions = {}): Promise<Rig> {
  const s = await makeStorage(options.spec);
  const log: StorageLogEntry[] = [];
  const server = await StorageServer.start({
    storages: s.storages,
    v3Port: 0,
    onLog: (entry) => log.push(entry),
    ...options.server,
  });
  const registry = new SidechannelRegistry();
  const backchannel = await BackchannelClient.dial({
    port: server.addr.port,
    handshakers: { sidechannel: registry },
    ...(options.grpc === undefined ? {} : { grpc: options.grpc }),
  });
  const grpc = await GrpcClient.connect({ port: server.addr.port, ...options.grpc });
  const v3 = await GrpcClient.connect({ port: server.v3Addr!.port, ...options.grpc });
  const client = new GitalyClient({ grpc, v3, backchannel: { client: backchannel, registry } });
  return {
    s,
    server,
    client,
    repo: { storageName: "default", relativePath: "repo.git" },
    log,
    backchannel,
    registry,
    grpc,
    v3,
    async close() {
      await Promise.all([backchannel.close(), grpc.close(), v3.close()]);
      await server.shutdown();
      await s.cleanup();
    },
  };
}

/** A test that gets a fresh rig (ignored without git). */
export function rigTest(name: string, fn: (rig: Rig) => Promise<void>, options: RigOptions = {}): void {
  Deno.test({
    name,
    ignore: noGit,
    async fn() {
      const rig = await startRig(options);
      try {
        await fn(rig);
      } finally {
        await rig.close();
      }
    },
  });
}

/** Reads a stream to its end or its error; returns what arrived and the error. */
export async function collect(
  readable: ReadableStream<Uint8Array>,
): Promise<{ bytes: Uint8Array; error: unknown }> {
  const chunks: Uint8Array[] = [];
  const reader = readable.getReader();
  let error: unknown = undefined;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value.slice());
    }
  } catch (e) {
    error = e;
  } finally {
    reader.releaseLock();
  }
  return { bytes: concat(chunks), error };
}

/** One fetch: the response bytes, the stream's error, and the outcome of `done`. */
export interface FetchResult {
  bytes: Uint8Array;
  bodyError: unknown;
  stats: PackfileNegotiationStats | null;
  error: GrpcError | undefined;
}

/** Runs `PostUploadPack*` with `request` as the body and waits for everything. */
export async function fetchWith(
  rig: Rig,
  request: Uint8Array,
  call: PostUploadPackCall,
  repo: GitalyRepository = rig.repo,
): Promise<FetchResult> {
  const response = rig.client.postUploadPack(repo, ReadableStream.from([request]), call);
  const { bytes, error: bodyError } = await withTimeout(collect(response.body), 30_000, "response body");
  let stats: PackfileNegotiationStats | null = null;
  let error: GrpcError | undefined;
  try {
    stats = await withTimeout(response.done, 30_000, "done");
  } catch (e) {
    if (!(e instanceof GrpcError)) throw e;
    error = e;
  }
  return { bytes, bodyError, stats, error };
}

/** Every process's parent, from `/proc/<pid>/stat` (a thread's children file misses other threads' children). */
function _parents(): Map<number, number> {
  const parents = new Map<number, number>();
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid)) continue;
    const state = procState(pid);
    if (state !== null) parents.set(pid, state.ppid);
  }
  return parents;
}

/**
 * The pids of git processes of this process working on `root` (their command line
 * names it), and their children (pack-objects).
 */
export function gitProcessesUnder(root: string): number[] {
  const parents = _parents();
  const pids: number[] = [];
  for (const [pid, ppid] of parents) {
    if (ppid !== Deno.pid) continue;
    let cmdline: string;
    try {
      cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`);
    } catch {
      continue;
    }
    if (!cmdline.includes(root)) continue;
    pids.push(pid);
    for (const [child, parent] of parents) if (parent === pid) pids.push(child);
  }
  return pids;
}

/** Waits (bounded) until none of `pids` exists, not even as a zombie; returns the survivors. */
export async function waitGone(pids: number[], ms = 10_000): Promise<number[]> {
  const deadline = performance.now() + ms;
  for (;;) {
    const alive = pids.filter((pid) => procState(pid) !== null);
    if (alive.length === 0 || performance.now() > deadline) return alive;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Waits (bounded) until `predicate` holds. */
export async function eventually(predicate: () => boolean, ms = 10_000, what = "condition"): Promise<void> {
  const deadline = performance.now() + ms;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
