/**
 * What the Gitaly services (`registerSmartHttpService`, `registerSshService`) need to
 * know: where the storages are and how to run git.
 *
 * @module
 */

import { GrpcKey } from "../grpc/values.ts";
import type { ConfigPair } from "./config_options.ts";
import type { Storages } from "./storage.ts";

/**
 * The configuration Gitaly gives every `git upload-pack` it runs, before the request's
 * own `git_config_options` (which come later and so win): partial clones
 * (`uploadpack.allowFilter`), fetching any reachable object by id
 * (`uploadpack.allowAnySHA1InWant`), and GitLab's internal references hidden
 * (`uploadpack.hideRefs` for `refs/keep-around/`, `refs/remotes/`, `refs/tmp/`).
 * Gitaly's pack tuning (`pack.windowMemory`, `pack.threads`, …) is left out.
 *
 * @example
 * ```ts
 * import { GITALY_UPLOAD_PACK_CONFIG } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(GITALY_UPLOAD_PACK_CONFIG[0], { key: "uploadpack.allowFilter", value: "true" });
 * assert.ok(GITALY_UPLOAD_PACK_CONFIG.some((c) => c.key === "uploadpack.hideRefs" && c.value === "refs/tmp/"));
 * ```
 */
export const GITALY_UPLOAD_PACK_CONFIG: readonly ConfigPair[] = Object.freeze([
  Object.freeze({ key: "uploadpack.allowFilter", value: "true" }),
  Object.freeze({ key: "uploadpack.allowAnySHA1InWant", value: "true" }),
  Object.freeze({ key: "uploadpack.hideRefs", value: "refs/keep-around/" }),
  Object.freeze({ key: "uploadpack.hideRefs", value: "refs/remotes/" }),
  Object.freeze({ key: "uploadpack.hideRefs", value: "refs/tmp/" }),
]);

/**
 * Options for `registerSmartHttpService` and `registerSshService`.
 *
 * @example
 * ```ts
 * import { type GitalyServiceOptions, GrpcServer, registerSmartHttpService, registerSshService } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const options: GitalyServiceOptions = {
 *   storages: { default: "/var/opt/gitaly/repositories" },
 *   negotiationTimeout: 60_000,
 *   sidechannelWriteBuffer: 256 * 1024,
 * };
 * const server = registerSshService(registerSmartHttpService(new GrpcServer(), options), options);
 * assert.ok(server.paths.includes("/gitaly.SmartHTTPService/PostUploadPackV3"));
 * assert.ok(server.paths.includes("/gitaly.SSHService/SSHUploadPackWithSidechannel"));
 * ```
 */
export interface GitalyServiceOptions {
  /** Storage names and their root directories (Gitaly's `[[storage]]` entries). */
  storages: Storages;
  /**
   * Configuration for every git process, before each request's `git_config_options`.
   * @default {GITALY_UPLOAD_PACK_CONFIG}
   */
  config?: readonly ConfigPair[];
  /**
   * Milliseconds an `SSHUploadPackWithSidechannel` client has to finish negotiating
   * (send `0009done\n`, or a flush that ends the conversation); the RPC then fails with
   * `DEADLINE_EXCEEDED`. Gitaly's `[timeout] upload_pack_negotiation`. `0` disables it.
   * Smart HTTP has no such timer, as in Gitaly.
   * @default {600000}
   */
  negotiationTimeout?: number;
  /**
   * Milliseconds a stopped git gets to exit before `SIGKILL` (see `spawnUploadPack`).
   * @default {1000}
   */
  killGrace?: number;
  /**
   * The git executable.
   * @default {"git"}
   */
  gitBinary?: string;
  /**
   * Extra environment variables for every git process (e.g. `GIT_TRACE_PACKET`).
   * @default {{}}
   */
  env?: Readonly<Record<string, string>>;
  /**
   * Receives warnings (an unknown `git_protocol`, …).
   * @default {() => {}}
   */
  onWarning?: (message: string) => void;
  /**
   * `PostUploadPackWithSidechannel`: git's output is gathered into a buffer of this
   * size and written to the sidechannel when full, at the end, or after
   * `flushInterval`. One copy, but git's pipe delivers its output in pieces of 64 KiB
   * and less, and one yamux frame and socket write per piece costs both ends far more
   * CPU than the copy (see `bench/transport_bench.ts`). `0` writes every piece as it is
   * read, without a copy (Gitaly's 64 KiB copy buffer).
   * @default {262144}
   */
  sidechannelWriteBuffer?: number;
  /**
   * V3, plain streaming and the sidechannel's write buffer: milliseconds git's output
   * may wait in a partly filled buffer before it is sent anyway, so that progress and
   * keep-alive packets reach the client while git is busy.
   * @default {50}
   */
  flushInterval?: number;
}

/** {@linkcode GitalyServiceOptions} with defaults filled in. */
export interface _ResolvedServiceOptions {
  readonly storages: Storages;
  readonly config: readonly ConfigPair[];
  readonly negotiationTimeout: number;
  readonly killGrace: number;
  readonly gitBinary: string;
  readonly env: Readonly<Record<string, string>>;
  readonly onWarning: (message: string) => void;
  readonly flushInterval: number;
  readonly sidechannelWriteBuffer: number;
  /** Told about every git process, with a promise that settles once it is reaped. */
  readonly track: (reaped: Promise<unknown>) => void;
}

function _ms(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(
      `Cannot register Gitaly service: ${name} must be a finite number >= 0, received ${value}`,
    );
  }
  return value;
}

function _bufferSize(value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 64 * 1024 * 1024) {
    throw new RangeError(
      `Cannot register Gitaly service: sidechannelWriteBuffer must be an integer 0-67108864, received ${value}`,
    );
  }
  return value;
}

/** Checks the options and fills in defaults; `track` learns about every git process. */
export function _resolveServiceOptions(
  options: GitalyServiceOptions,
  track: (reaped: Promise<unknown>) => void = () => {},
): _ResolvedServiceOptions {
  if (typeof options !== "object" || options === null || typeof options.storages !== "object") {
    throw new TypeError("Cannot register Gitaly service: storages are required");
  }
  return {
    storages: options.storages,
    config: options.config ?? GITALY_UPLOAD_PACK_CONFIG,
    negotiationTimeout: _ms("negotiationTimeout", options.negotiationTimeout ?? 600_000),
    killGrace: _ms("killGrace", options.killGrace ?? 1000),
    gitBinary: options.gitBinary ?? "git",
    env: options.env ?? {},
    onWarning: options.onWarning ?? (() => {}),
    flushInterval: _ms("flushInterval", options.flushInterval ?? 50),
    sidechannelWriteBuffer: _bufferSize(options.sidechannelWriteBuffer ?? 256 * 1024),
    track,
  };
}

/**
 * What a Gitaly handler tells the storage server's log about its call: filled in by the
 * handler as it runs, read by the logging interceptor at the end.
 */
export interface _RpcInfo {
  /** The repository, once the request is parsed. */
  repository?: { storageName: string; relativePath: string };
  /** How the bytes travelled. */
  transport?: "grpc" | "sidechannel" | "v3";
  /** Bytes of git's output sent to the client. */
  bytesOut: number;
  /** Bytes of the request given to git. */
  bytesIn: number;
}

/** The key of {@linkcode _RpcInfo} in `call.values`. */
export const _RPC_INFO: GrpcKey<_RpcInfo> = new GrpcKey<_RpcInfo>("gitaly-rpc-info");
