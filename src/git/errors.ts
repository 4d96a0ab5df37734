/**
 * Errors of the git layer, and Gitaly's mapping of upload-pack failures to gRPC
 * statuses (codes and message shapes), as functions the RPC services use.
 *
 * @module
 */

import { GrpcError, Status } from "../grpc/status.ts";
import { _goExitText, _goQuote } from "./_go.ts";
import type { UploadPackResult } from "./upload_pack.ts";

/**
 * What went wrong, as a stable string callers can switch on.
 *
 * - `INVALID_NEGOTIATION`: a packfile negotiation request that Gitaly's parser refuses
 *   (a `want` without an object id, capabilities announced twice, a malformed
 *   `have`/`shallow`/`deepen`/`filter` line, or broken pkt-line framing).
 */
export type GitErrorCode = "INVALID_NEGOTIATION";

/**
 * An error of the git layer that is not (yet) a gRPC status.
 *
 * @example
 * ```ts
 * import { GitError, NegotiationStatsParser } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const parser = new NegotiationStatsParser();
 * parser.push(new TextEncoder().encode("0009want\n"));
 * parser.end();
 * assert.ok(parser.error instanceof GitError);
 * assert.equal(parser.error.code, "INVALID_NEGOTIATION");
 * ```
 */
export class GitError extends Error {
  /** What went wrong. */
  readonly code: GitErrorCode;

  /**
   * Creates the error.
   *
   * @param code what went wrong
   * @param message "Cannot <action>: <reason>"
   * @param options the `cause`, if any
   */
  constructor(code: GitErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "GitError";
    this.code = code;
  }
}

function _message(cause: unknown): string {
  if (cause instanceof GrpcError) return cause.details;
  if (cause instanceof Error || cause instanceof DOMException) return cause.message;
  return String(cause);
}

/**
 * How a process ended, in the words of Go's `exec.ExitError`, which Gitaly puts into
 * its messages: `exit status 128`, or `signal: killed` when a signal ended it.
 *
 * @param status the process status
 * @returns the text
 *
 * @example
 * ```ts
 * import { formatExitStatus } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatExitStatus({ success: false, code: 128, signal: null }), "exit status 128");
 * assert.equal(formatExitStatus({ success: false, code: 137, signal: "SIGKILL" }), "signal: killed");
 * ```
 */
export function formatExitStatus(status: Deno.CommandStatus): string {
  return _goExitText(status);
}

/**
 * Smart HTTP: git could not be started (Gitaly: `FAILED_PRECONDITION`
 * `running upload-pack: spawning upload-pack: <cause>`).
 *
 * @param cause why the spawn failed
 * @returns the status to end the RPC with
 *
 * @example
 * ```ts
 * import { Status, uploadPackSpawnError } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const error = uploadPackSpawnError(new Error("no git"));
 * assert.equal(error.code, Status.FAILED_PRECONDITION);
 * assert.equal(error.details, "running upload-pack: spawning upload-pack: no git");
 * ```
 */
export function uploadPackSpawnError(cause: unknown): GrpcError {
  return new GrpcError(
    Status.FAILED_PRECONDITION,
    `running upload-pack: spawning upload-pack: ${_message(cause)}`,
    {
      cause,
    },
  );
}

/**
 * Smart HTTP: git's output could not be delivered to the client (Gitaly:
 * `FAILED_PRECONDITION` `running upload-pack: copying stdout from upload-pack: <cause>`).
 *
 * @param cause why the copy failed
 * @returns the status to end the RPC with
 *
 * @example
 * ```ts
 * import { Status, uploadPackCopyError } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const error = uploadPackCopyError(new Error("broken pipe"));
 * assert.equal(error.code, Status.FAILED_PRECONDITION);
 * assert.equal(error.details, "running upload-pack: copying stdout from upload-pack: broken pipe");
 * ```
 */
export function uploadPackCopyError(cause: unknown): GrpcError {
  return new GrpcError(
    Status.FAILED_PRECONDITION,
    `running upload-pack: copying stdout from upload-pack: ${_message(cause)}`,
    { cause },
  );
}

/**
 * Smart HTTP: git exited unsuccessfully (Gitaly: `FAILED_PRECONDITION`
 * `running upload-pack: waiting for upload-pack: exit status 128`).
 *
 * @param status how git ended
 * @returns the status to end the RPC with
 *
 * @example
 * ```ts
 * import { Status, uploadPackWaitError } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const error = uploadPackWaitError({ success: false, code: 128, signal: null });
 * assert.equal(error.code, Status.FAILED_PRECONDITION);
 * assert.equal(error.details, "running upload-pack: waiting for upload-pack: exit status 128");
 * ```
 */
export function uploadPackWaitError(status: Deno.CommandStatus): GrpcError {
  return new GrpcError(
    Status.FAILED_PRECONDITION,
    `running upload-pack: waiting for upload-pack: ${_goExitText(status)}`,
  );
}

/**
 * The outcome of a smart-HTTP upload-pack (`PostUploadPack*`) as Gitaly reports it:
 * `undefined` for success, else the status to end the RPC with.
 *
 * - not started → {@linkcode uploadPackSpawnError};
 * - aborted through its signal → the signal's reason as a status
 *   (`CANCELLED`, `DEADLINE_EXCEEDED` for a timeout, a `GrpcError` reason as is);
 * - output not delivered (stdout cancelled, sink failed) → {@linkcode uploadPackCopyError};
 * - negotiation timeout → `DEADLINE_EXCEEDED` (as for SSH; Gitaly has no such timer
 *   for HTTP, see {@linkcode sshUploadPackError});
 * - non-zero exit → {@linkcode uploadPackWaitError}, **except** when the request had a
 *   `deepen`, `deepen-since` or `deepen-not` line and parsed cleanly: then git is
 *   expected to exit non-zero after sending the shallow lines, and it is a success.
 *
 * @param result the finished upload-pack
 * @returns the error status, or `undefined` for success
 *
 * @example
 * ```ts
 * import { postUploadPackError, spawnUploadPack, Status } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await new Deno.Command("git", { args: ["init", "--bare", "-q", dir] }).output();
 * const uploadPack = spawnUploadPack(dir, { stdin: new TextEncoder().encode("0009garbage") });
 * await uploadPack.stdout.cancel();
 * const error = postUploadPackError(await uploadPack.result);
 * assert.ok(error !== undefined);
 * assert.ok(error.code === Status.FAILED_PRECONDITION);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function postUploadPackError(result: UploadPackResult): GrpcError | undefined {
  const failure = result.failure;
  if (failure !== null) {
    switch (failure.kind) {
      case "spawn":
        return uploadPackSpawnError(failure.error);
      case "aborted":
        return GrpcError.from(failure.reason, Status.CANCELLED);
      case "stdout":
        return uploadPackCopyError(failure.error);
      case "negotiation-timeout":
        return _negotiationTimeout();
    }
  }
  const status = result.status;
  if (status === null || status.success) return undefined;
  if (result.negotiation.error === null && result.negotiation.deepen !== "") return undefined;
  return uploadPackWaitError(status);
}

function _negotiationTimeout(): GrpcError {
  return new GrpcError(
    Status.DEADLINE_EXCEEDED,
    "running upload-pack: waiting for negotiation: context canceled",
  );
}

/** git's complaint when its input ends in the middle of a conversation. */
const _HUNG_UP = "fatal: the remote end hung up unexpectedly\n";

/**
 * The outcome of an SSH upload-pack (`SSHUploadPackWithSidechannel`) as Gitaly reports
 * it: `undefined` for success, else the status to end the RPC with.
 *
 * - not started → `INTERNAL` `running upload-pack: starting command: <cause>`;
 * - aborted through its signal → the signal's reason as a status (`CANCELLED`, …);
 * - negotiation timeout (no `0009done\n` in time) → `DEADLINE_EXCEEDED`
 *   `running upload-pack: waiting for negotiation: context canceled`;
 * - output not delivered → `CANCELLED` `running upload-pack: user canceled the request`
 *   (the client went away; Gitaly sees git die of the broken pipe);
 * - non-zero exit with stderr exactly `fatal: the remote end hung up unexpectedly\n` →
 *   `CANCELLED` `running upload-pack: user canceled the request`;
 * - other non-zero exits → `INTERNAL`
 *   `running upload-pack: cmd wait: exit status 128, stderr: "<stderr, Go-quoted>"`.
 *
 * The stderr in the message is the captured tail (see `stderrLimit`); when git wrote
 * more than that, the message holds the last bytes only and the exact-match test
 * above fails, as it would in Gitaly for such output.
 *
 * @param result the finished upload-pack
 * @returns the error status, or `undefined` for success
 *
 * @example
 * ```ts
 * import { spawnUploadPack, sshUploadPackError, Status } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await new Deno.Command("git", { args: ["init", "--bare", "-q", dir] }).output();
 * // A client that sends half a packet and hangs up.
 * const uploadPack = spawnUploadPack(dir, {
 *   statelessRpc: false,
 *   stdin: new TextEncoder().encode("0011agent"),
 * });
 * await uploadPack.stdout.pipeTo(new WritableStream());
 * const error = sshUploadPackError(await uploadPack.result);
 * assert.equal(error?.code, Status.CANCELLED);
 * assert.equal(error?.details, "running upload-pack: user canceled the request");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function sshUploadPackError(result: UploadPackResult): GrpcError | undefined {
  const failure = result.failure;
  if (failure !== null) {
    switch (failure.kind) {
      case "spawn":
        return new GrpcError(
          Status.INTERNAL,
          `running upload-pack: starting command: ${_message(failure.error)}`,
          {
            cause: failure.error,
          },
        );
      case "aborted":
        return GrpcError.from(failure.reason, Status.CANCELLED);
      case "negotiation-timeout":
        return _negotiationTimeout();
      case "stdout":
        return new GrpcError(Status.CANCELLED, "running upload-pack: user canceled the request", {
          cause: failure.error,
        });
    }
  }
  const status = result.status;
  if (status === null || status.success) return undefined;
  const stderr = result.stderr;
  if (result.stderrLength === stderr.byteLength && new TextDecoder().decode(stderr) === _HUNG_UP) {
    return new GrpcError(Status.CANCELLED, "running upload-pack: user canceled the request");
  }
  return new GrpcError(
    Status.INTERNAL,
    `running upload-pack: cmd wait: ${_goExitText(status)}, stderr: ${_goQuote(stderr)}`,
  );
}

/**
 * The outcome of an info/refs advertisement (`InfoRefsUploadPack`) as Gitaly reports
 * it: `undefined` for success; `INTERNAL` `cmd: <cause>` when git could not start,
 * `INTERNAL` `wait: exit status 128` when it failed; the abort reason as a status when
 * aborted; {@linkcode uploadPackCopyError}'s cause as `INTERNAL` when the output was
 * not consumed.
 *
 * @param result the finished `upload-pack --advertise-refs`
 * @returns the error status, or `undefined` for success
 *
 * @example
 * ```ts
 * import { infoRefsError, spawnUploadPack, Status } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const missing = await Deno.makeTempDir(); // not a git repository
 * const uploadPack = spawnUploadPack(missing, { advertiseRefs: true });
 * await uploadPack.stdout.pipeTo(new WritableStream());
 * const error = infoRefsError(await uploadPack.result);
 * assert.equal(error?.code, Status.INTERNAL);
 * assert.equal(error?.details, "wait: exit status 128");
 * await Deno.remove(missing);
 * ```
 */
export function infoRefsError(result: UploadPackResult): GrpcError | undefined {
  const failure = result.failure;
  if (failure !== null) {
    switch (failure.kind) {
      case "spawn":
        return new GrpcError(Status.INTERNAL, `cmd: ${_message(failure.error)}`, { cause: failure.error });
      case "aborted":
        return GrpcError.from(failure.reason, Status.CANCELLED);
      case "stdout":
        return new GrpcError(Status.INTERNAL, `wait: ${_message(failure.error)}`, { cause: failure.error });
      case "negotiation-timeout":
        return _negotiationTimeout();
    }
  }
  const status = result.status;
  if (status === null || status.success) return undefined;
  return new GrpcError(Status.INTERNAL, `wait: ${_goExitText(status)}`);
}
