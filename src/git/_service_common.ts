/**
 * Steps every Gitaly upload-pack handler shares: request validation, the per-call log
 * record, git's options, opening the sidechannel with Gitaly's error codes.
 *
 * @module
 */

import type { GrpcServerCall } from "../grpc/call.ts";
import { GrpcError, Status } from "../grpc/status.ts";
import { openSidechannelForCall } from "../sidechannel/call.ts";
import type { SidechannelServerConn } from "../sidechannel/conn.ts";
import { SidechannelError } from "../sidechannel/errors.ts";
import { type ConfigPair, parseConfigOptions } from "./config_options.ts";
import { type _ResolvedServiceOptions, _RPC_INFO, type _RpcInfo } from "./service_options.ts";
import { type RepositoryLocation, type ResolvedRepository, resolveRepository } from "./storage.ts";
import { spawnUploadPack, type UploadPack, type UploadPackOptions } from "./upload_pack.ts";

/** The fields of every upload-pack request message. */
export interface _UploadPackRequest {
  readonly repository?: RepositoryLocation | undefined;
  readonly gitConfigOptions: readonly string[];
  readonly gitProtocol: string;
}

/** The call's log record (created on first use, so handlers work without the storage server). */
export function _rpcInfo(call: GrpcServerCall, transport: _RpcInfo["transport"]): _RpcInfo {
  let info = call.values.get(_RPC_INFO);
  if (info === undefined) {
    info = { bytesIn: 0, bytesOut: 0 };
    call.values.set(_RPC_INFO, info);
  }
  if (transport !== undefined) info.transport = transport;
  return info;
}

/**
 * Validates a request as Gitaly does before doing anything else: the repository
 * (`INVALID_ARGUMENT` / `NOT_FOUND` / `FAILED_PRECONDITION` from `resolveRepository`),
 * then the config options (`INVALID_ARGUMENT` for one without `=`). Returns git's
 * configuration: the server's, then the request's.
 */
export async function _validate(
  options: _ResolvedServiceOptions,
  info: _RpcInfo,
  request: _UploadPackRequest,
): Promise<{ repo: ResolvedRepository; config: ConfigPair[] }> {
  const repository = request.repository;
  if (repository !== undefined) {
    info.repository = {
      storageName: repository.storageName ?? "",
      relativePath: repository.relativePath ?? "",
    };
  }
  const repo = await resolveRepository(options.storages, repository);
  const config = [...options.config, ...parseConfigOptions(request.gitConfigOptions)];
  return { repo, config };
}

/** Starts git (see `spawnUploadPack`) and lets the server track it until it is reaped. */
export function _spawn(options: _ResolvedServiceOptions, path: string, spawn: UploadPackOptions): UploadPack {
  const uploadPack = spawnUploadPack(path, spawn);
  options.track(uploadPack.result);
  return uploadPack;
}

/** The options of `spawnUploadPack` every handler passes. */
export function _gitOptions(
  options: _ResolvedServiceOptions,
  call: GrpcServerCall,
  request: _UploadPackRequest,
  config: ConfigPair[],
): UploadPackOptions {
  return {
    gitProtocol: request.gitProtocol,
    config,
    signal: call.signal,
    killGrace: options.killGrace,
    gitBinary: options.gitBinary,
    env: options.env,
    onWarning: options.onWarning,
  };
}

/**
 * Opens the call's sidechannel; failures become Gitaly's statuses: a handshake that did
 * not complete (the client may retry) → `UNAVAILABLE` `<prefix>: …`, anything else →
 * `INTERNAL` `<prefix>: …`. `retryable` is false for SSH, which Gitaly maps to `INTERNAL`
 * in every case.
 */
export async function _openSidechannel(
  call: GrpcServerCall,
  prefix: string,
  retryable: boolean,
): Promise<SidechannelServerConn> {
  try {
    return await openSidechannelForCall(call);
  } catch (error) {
    if (error instanceof SidechannelError) {
      const code = retryable && error.retryable ? Status.UNAVAILABLE : Status.INTERNAL;
      throw new GrpcError(code, `${prefix}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}
