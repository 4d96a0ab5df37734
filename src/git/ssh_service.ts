/**
 * Gitaly's `SSHService.SSHUploadPackWithSidechannel`: `git upload-pack` in its
 * conversational (SSH) form over a sidechannel, stdout and stderr multiplexed as
 * sideband-64k.
 *
 * @module
 */

import { create } from "@bufbuild/protobuf";
import type { GrpcServerCall } from "../grpc/call.ts";
import type { GrpcServer } from "../grpc/server.ts";
import { GrpcError, Status } from "../grpc/status.ts";
import { MAX_SIDEBAND_DATA } from "../pktline/pktline.ts";
import { encodeSideband } from "../pktline/sideband.ts";
import type { SidechannelServerConn } from "../sidechannel/conn.ts";
import { _SSH } from "./_gitaly_methods.ts";
import { _gitOptions, _openSidechannel, _rpcInfo, _spawn, _validate } from "./_service_common.ts";
import { sshUploadPackError } from "./errors.ts";
import {
  type SSHUploadPackWithSidechannelRequest,
  type SSHUploadPackWithSidechannelResponse,
  SSHUploadPackWithSidechannelResponseSchema,
} from "./gen/ssh_pb.ts";
import { negotiationStatsToProto } from "./negotiation_stats.ts";
import {
  type _ResolvedServiceOptions,
  _resolveServiceOptions,
  type GitalyServiceOptions,
} from "./service_options.ts";

/** Band of git's stdout and of its stderr (Gitaly's `stream.BandStdout`, `BandStderr`). */
const _STDOUT = 1;
const _STDERR = 2;
const _HEX = new TextEncoder().encode("0123456789abcdef");

/**
 * Writes to the sidechannel one packet at a time, in the order they were queued: the
 * one writer both bands share. The first failure sticks and fails every later write.
 */
class _OrderedWriter {
  readonly #conn: SidechannelServerConn;
  #tail: Promise<void> = Promise.resolve();
  #error: unknown = undefined;

  constructor(conn: SidechannelServerConn) {
    this.#conn = conn;
  }

  /** Queues `packet`; resolves when it was written. The caller keeps `packet` intact until then. */
  write(packet: Uint8Array): Promise<void> {
    const written = this.#tail.then(async () => {
      if (this.#error !== undefined) throw this.#error;
      try {
        await this.#conn.write(packet);
      } catch (error) {
        this.#error ??= error;
        throw error;
      }
    });
    this.#tail = written.catch(() => {});
    return written;
  }

  /** Resolves once everything queued so far was written or failed. */
  drain(): Promise<void> {
    return this.#tail;
  }
}

/** Writes the sideband header for `length` data bytes on `band` into `packet[0..5)`. */
function _sidebandHeader(packet: Uint8Array, band: number, length: number): void {
  const size = length + 5;
  packet[0] = _HEX[(size >> 12) & 0xf]!;
  packet[1] = _HEX[(size >> 8) & 0xf]!;
  packet[2] = _HEX[(size >> 4) & 0xf]!;
  packet[3] = _HEX[size & 0xf]!;
  packet[4] = band;
}

async function _sshUploadPackWithSidechannel(
  options: _ResolvedServiceOptions,
  request: SSHUploadPackWithSidechannelRequest,
  call: GrpcServerCall,
): Promise<SSHUploadPackWithSidechannelResponse> {
  const info = _rpcInfo(call, "sidechannel");
  const { repo, config } = await _validate(options, info, request);
  const conn = await _openSidechannel(call, "opening sidechannel", false);
  try {
    const writer = new _OrderedWriter(conn);
    const uploadPack = _spawn(options, repo.path, {
      ..._gitOptions(options, call, request, config),
      statelessRpc: false,
      stdin: conn.readable,
      negotiationTimeout: options.negotiationTimeout,
      onStderr: (chunk) => void writer.write(encodeSideband(_STDERR, chunk)).catch(() => {}),
    });
    // Band 1: read git's stdout straight into a packet buffer behind a 5-byte header.
    const reader = uploadPack.stdout.getReader({ mode: "byob" });
    let buffer = new ArrayBuffer(5 + MAX_SIDEBAND_DATA);
    try {
      for (;;) {
        const { value, done } = await reader.read(new Uint8Array(buffer, 5, MAX_SIDEBAND_DATA));
        if (done) break;
        buffer = value.buffer as ArrayBuffer;
        const packet = new Uint8Array(buffer, 0, 5 + value.byteLength);
        _sidebandHeader(packet, _STDOUT, value.byteLength);
        await writer.write(packet);
      }
    } catch (error) {
      // The client went away (a failed write): stop git; its result says why.
      await reader.cancel(error).catch(() => {});
    } finally {
      reader.releaseLock();
    }
    const result = await uploadPack.result;
    await writer.drain();
    info.bytesIn = result.stdinLength;
    info.bytesOut = result.stdoutLength;
    const error = sshUploadPackError(result);
    if (error !== undefined) throw error;
    try {
      await conn.closeWrite();
    } catch (cause) {
      throw new GrpcError(Status.INTERNAL, `close sidechannel: ${(cause as Error).message}`, { cause });
    }
    return create(SSHUploadPackWithSidechannelResponseSchema, {
      packfileNegotiationStatistics: negotiationStatsToProto(result.negotiation),
    });
  } finally {
    await conn.close().catch(() => {});
  }
}

/**
 * Registers Gitaly's `gitaly.SSHService.SSHUploadPackWithSidechannel` on a gRPC server.
 *
 * The call carries the repository, config options and protocol; the client's stdin
 * (git's pkt-lines, framed as sidechannel chunks up to `0000`) feeds
 * `git upload-pack <repo>` (the conversational SSH form, not stateless), and the
 * response on the sidechannel is sideband-64k: band 1 git's stdout, band 2 its stderr,
 * written by one writer in the order git produced them. The response message carries
 * the negotiation statistics (partial ones when the request did not parse, as in
 * Gitaly).
 *
 * Gitaly's errors: validation → `INVALID_ARGUMENT`/`NOT_FOUND`; the sidechannel cannot
 * be opened → `INTERNAL` `opening sidechannel: …` (Gitaly's message has a typo,
 * `opennig`; this one does not); the client has not sent `0009done\n` within
 * `negotiationTimeout` → `DEADLINE_EXCEEDED` `running upload-pack: waiting for
 * negotiation: context canceled`; git's stderr exactly `fatal: the remote end hung up
 * unexpectedly\n`, or the client gone while git writes → `CANCELLED` `running
 * upload-pack: user canceled the request`; other failures → `INTERNAL` `running
 * upload-pack: cmd wait: exit status 128, stderr: "…"` (see `sshUploadPackError`).
 *
 * Stdout is read into a packet buffer behind its header and written without a copy;
 * stderr chunks (progress, errors: small) are queued as they arrive. A client that
 * goes away stops git, which is reaped before the handler returns.
 *
 * @param server the gRPC server
 * @param options the storages, how to run git, the negotiation timeout
 * @returns the server, for chaining
 * @throws {TypeError} If the method already has a handler, or without storages.
 * @throws {RangeError} For negative times.
 *
 * @example A protocol v2 `ls-refs` over the SSH RPC
 * ```ts
 * import { GitalyClient, GrpcServer, registerSshService, serveBackchannel, BackchannelClient, SidechannelRegistry } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await new Deno.Command("git", { args: ["init", "-q", "--bare", `${root}/a.git`] }).output();
 * const server = registerSshService(new GrpcServer(), { storages: { default: root } });
 * await using listener = serveBackchannel({ hostname: "127.0.0.1", port: 0 }, server);
 * const registry = new SidechannelRegistry();
 * await using conn = await BackchannelClient.dial({ port: listener.addr.port, handshakers: { sidechannel: registry } });
 * const client = new GitalyClient({ backchannel: { client: conn, registry } });
 *
 * const stdin = ReadableStream.from([new TextEncoder().encode("0014command=ls-refs\n0000")]);
 * const call = client.sshUploadPack({ storageName: "default", relativePath: "a.git" }, stdin, { gitProtocol: "version=2" });
 * const [stdout, stderr, stats] = await Promise.all([new Response(call.stdout).text(), new Response(call.stderr).text(), call.done]);
 * assert.ok(stdout.startsWith("000eversion 2\n"));
 * assert.equal(stderr, "");
 * assert.equal(stats.packets, 2);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export function registerSshService(server: GrpcServer, options: GitalyServiceOptions): GrpcServer {
  return _registerSsh(server, _resolveServiceOptions(options));
}

/** {@linkcode registerSshService} with resolved options (the storage server tracks git). */
export function _registerSsh(server: GrpcServer, resolved: _ResolvedServiceOptions): GrpcServer {
  return server.handle(
    _SSH.sSHUploadPackWithSidechannel,
    (request, call) => _sshUploadPackWithSidechannel(resolved, request, call),
  );
}
