/**
 * The SSH-style entry: git runs a command as its transport (`GIT_SSH_COMMAND`, or the
 * `ext::` remote helper), and the command serves `git-upload-pack` by calling
 * `SSHUploadPackWithSidechannel` on a storage server.
 *
 * @module
 */

import type { GitalyClient, GitalyRepository } from "../git/client.ts";
import { GrpcError } from "../grpc/status.ts";
import { _describe } from "./_messages.ts";
import { _ReplayBody } from "./_replay_body.ts";
import { FrontError } from "./errors.ts";
import { _checkRetryPolicy, GITALY_RETRY_POLICY, retryBackoff, type RetryPolicy } from "./retry.ts";
import { type RepositoryRoute, routeRepository } from "./route.ts";

/** What git asked the SSH-style entry to run. */
export interface SshRequest {
  /** The service: always `git-upload-pack` (anything else is refused). */
  readonly service: "git-upload-pack";
  /** The repository path as git sent it (`/group/project.git`, `project.git`). */
  readonly path: string;
  /** The host argument (`ssh` form), or `null` (`ext::` form). */
  readonly host: string | null;
  /** The port from `-p`, or `null`. */
  readonly port: number | null;
  /** `SendEnv` names from `-o SendEnv=…` (git sends `GIT_PROTOCOL`). */
  readonly sendEnv: readonly string[];
}

/** OpenSSH options that take a value, as git may pass them. */
const _WITH_VALUE = new Set(["-p", "-o", "-l", "-i", "-F", "-J", "-P", "-S", "-E", "-b", "-c", "-m"]);

/**
 * Splits a shell-quoted SSH command line the way git builds it (`git-upload-pack
 * '/path'`, with `'\''` for a quote inside).
 */
function _splitCommand(command: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end < 0) throw new FrontError("BAD_COMMAND", "Cannot parse command: unterminated quote");
      word += command.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === "\\" && i + 1 < command.length) {
      word += command[++i];
      inWord = true;
    } else if (c === " " || c === "\t") {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/**
 * Parses the arguments git passes to an SSH command, in either form:
 *
 * - `GIT_SSH_COMMAND`: `[options] host "git-upload-pack '/path'"`, options as OpenSSH's
 *   (`-p port`, `-o SendEnv=GIT_PROTOCOL`, `-4`, `-6`, …; git adds them when it takes
 *   the command for OpenSSH);
 * - `ext::<command> %S <path>`: `git-upload-pack <path>` as two arguments.
 *
 * `git upload-pack` (with a space) is accepted like `git-upload-pack`. Other services
 * (`git-receive-pack`, `git-upload-archive`) are refused.
 *
 * @param args the arguments after the program's own flags
 * @returns what git asked for
 * @throws {FrontError} `BAD_COMMAND` for anything else, `FORBIDDEN` for other services.
 *
 * @example
 * ```ts
 * import { parseSshArgs } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const ssh = parseSshArgs(["-o", "SendEnv=GIT_PROTOCOL", "-p", "2222", "git@host", "git-upload-pack '/foo.git'"]);
 * assert.equal(ssh.path, "/foo.git");
 * assert.equal(ssh.port, 2222);
 * assert.deepEqual(ssh.sendEnv, ["GIT_PROTOCOL"]);
 * assert.equal(parseSshArgs(["git-upload-pack", "foo.git"]).host, null); // ext:: form
 * assert.throws(() => parseSshArgs(["host", "git-receive-pack '/foo.git'"]), { code: "FORBIDDEN" });
 * ```
 */
export function parseSshArgs(args: readonly string[]): SshRequest {
  let port: number | null = null;
  const sendEnv: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (rest.length === 0 && arg.startsWith("-") && arg.length > 1) {
      const flag = arg.slice(0, 2);
      if (_WITH_VALUE.has(flag)) {
        const value = arg.length > 2 ? arg.slice(2) : args[++i];
        if (value === undefined) {
          throw new FrontError("BAD_COMMAND", `Cannot parse arguments: ${flag} needs a value`);
        }
        if (flag === "-p") {
          const n = Number(value);
          if (!Number.isInteger(n) || n < 1 || n > 65535) {
            throw new FrontError("BAD_COMMAND", `Cannot parse arguments: invalid port ${value}`);
          }
          port = n;
        } else if (flag === "-o") {
          const match = /^SendEnv[= ](.*)$/i.exec(value);
          if (match) sendEnv.push(...match[1]!.split(/\s+/).filter((s) => s !== ""));
        }
      }
      continue;
    }
    rest.push(arg);
  }
  let host: string | null;
  let words: string[];
  if (rest.length === 2 && /^git[- ]/.test(rest[0]!) && !rest[1]!.includes("'")) {
    host = null;
    words = [..._splitCommand(rest[0]!), rest[1]!];
  } else if (rest.length >= 2) {
    host = rest[0]!;
    words = _splitCommand(rest.slice(1).join(" "));
  } else {
    throw new FrontError("BAD_COMMAND", "Cannot parse arguments: expected a host and a git command");
  }
  if (words[0] === "git" && words.length > 1) words = [`git-${words[1]}`, ...words.slice(2)];
  const service = words[0];
  if (service !== "git-upload-pack") {
    if (service === "git-receive-pack" || service === "git-upload-archive") {
      throw new FrontError("FORBIDDEN", `Cannot serve ${service}: only git-upload-pack is supported`);
    }
    throw new FrontError("BAD_COMMAND", `Cannot serve command: ${JSON.stringify(words.join(" "))}`);
  }
  if (words.length !== 2 || words[1] === "") {
    throw new FrontError("BAD_COMMAND", "Cannot serve git-upload-pack: expected exactly one repository path");
  }
  return { service, path: words[1]!, host, port, sendEnv };
}

/**
 * The repository of an SSH request's path: leading `/` and `~/` are dropped, then the
 * path is routed like a URL path (see `routeRepository`), so `..` and friends are
 * refused.
 *
 * @param path the path from {@linkcode parseSshArgs}
 * @param storages storage names; the first is the default
 * @returns the repository
 * @throws {FrontError} `BAD_PATH`.
 *
 * @example
 * ```ts
 * import { routeSshPath } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.equal(routeSshPath("/group/project.git", ["default"]).relativePath, "group/project.git");
 * assert.equal(routeSshPath("~/foo", ["default"]).relativePath, "foo.git");
 * assert.throws(() => routeSshPath("/../etc", ["default"]), { code: "BAD_PATH" });
 * ```
 */
export function routeSshPath(path: string, storages: readonly string[]): RepositoryRoute {
  let trimmed = path;
  if (trimmed.startsWith("~/")) trimmed = trimmed.slice(2);
  while (trimmed.startsWith("/")) trimmed = trimmed.slice(1);
  if (trimmed.endsWith("/")) trimmed = trimmed.slice(0, -1);
  return routeRepository(trimmed.split("/"), storages);
}

/** The pool (or anything) that hands out clients for SSH calls; `GitalyUpstream` fits. */
export interface SshUpstream {
  /**
   * A client with a multiplexed connection.
   *
   * @param transport always `sidechannel`
   * @param options cancels connecting
   */
  client(
    transport: "sidechannel",
    options?: { signal?: AbortSignal },
  ): Promise<Pick<GitalyClient, "sshUploadPack">>;
}

/** Options for {@linkcode serveSshUploadPack}. */
export interface SshUploadPackOptions {
  /** Where the call goes. */
  upstream: SshUpstream;
  /** The repository. */
  repository: GitalyRepository;
  /** What git writes (the program's stdin). */
  stdin: ReadableStream<Uint8Array>;
  /** Where git's upload-pack output goes (the program's stdout). */
  stdout: WritableStream<Uint8Array>;
  /** Where progress and errors go (the program's stderr). */
  stderr: WritableStream<Uint8Array>;
  /**
   * The client's `GIT_PROTOCOL` (`version=2`).
   * @default {""}
   */
  gitProtocol?: string;
  /**
   * `git -c` options (`key=value`).
   * @default {[]}
   */
  gitConfigOptions?: readonly string[];
  /**
   * Retries of `UNAVAILABLE` before any output (see {@linkcode GITALY_RETRY_POLICY}).
   * @default {GITALY_RETRY_POLICY}
   */
  retry?: RetryPolicy;
  /** Stops the call. */
  signal?: AbortSignal;
}

const _enc = new TextEncoder();

/**
 * Bridges one SSH-style git-upload-pack session: `stdin` → `SSHUploadPackWithSidechannel`
 * → `stdout`, with the sideband's stderr on `stderr`. A failure is written to `stderr`
 * as `fatal: …` (git shows it); `UNAVAILABLE` before any output is retried.
 *
 * @param options the upstream, the repository, the three streams
 * @returns the exit code: 0 on success, 128 on failure (git's code for fatal errors)
 *
 * @example A storage server that is not there: exit code 128 and a message
 * ```ts
 * import { GitalyUpstream, serveSshUploadPack } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const port = probe.addr.port;
 * probe.close();
 * await using upstream = new GitalyUpstream({ port, connectTimeout: 1000 });
 * let stderr = "";
 * const code = await serveSshUploadPack({
 *   upstream,
 *   repository: { storageName: "default", relativePath: "foo.git" },
 *   stdin: new Response("").body!,
 *   stdout: new WritableStream(),
 *   stderr: new WritableStream({ write: (c) => void (stderr += new TextDecoder().decode(c)) }),
 *   retry: { maxAttempts: 1, initialBackoff: 0, maxBackoff: 0, backoffMultiplier: 1, retryableStatuses: [] },
 * });
 * assert.equal(code, 128);
 * assert.match(stderr, /^fatal: /);
 * ```
 */
export async function serveSshUploadPack(options: SshUploadPackOptions): Promise<number> {
  const retry = _checkRetryPolicy(options.retry ?? GITALY_RETRY_POLICY);
  const controller = new AbortController();
  const outer = options.signal;
  const onAbort = () => controller.abort(outer!.reason);
  if (outer?.aborted) onAbort();
  outer?.addEventListener("abort", onAbort, { once: true });
  const signal = controller.signal;
  const body = new _ReplayBody(options.stdin, 1024 * 1024);
  const out = options.stdout.getWriter();
  const err = options.stderr.getWriter();
  let wrote = false;
  const name = options.repository.relativePath;
  const fail = async (error: unknown) => {
    const text = _describe(GrpcError.from(error), { name });
    await err.write(_enc.encode(`fatal: ${text}\n`)).catch(() => {});
    return 128;
  };
  try {
    for (let attempt = 1;; attempt++) {
      let error: unknown;
      const attemptController = new AbortController();
      const stopAttempt = () => attemptController.abort(signal.reason);
      signal.addEventListener("abort", stopAttempt, { once: true });
      try {
        const client = await options.upstream.client("sidechannel", { signal });
        const call = client.sshUploadPack(options.repository, body.stream(), {
          gitProtocol: options.gitProtocol ?? "",
          gitConfigOptions: [...(options.gitConfigOptions ?? [])],
          signal: attemptController.signal,
        });
        const stderrDone = (async () => {
          for await (const chunk of call.stderr) {
            wrote = true;
            await err.write(chunk);
          }
        })();
        stderrDone.catch(() => {});
        for await (const chunk of call.stdout) {
          wrote = true;
          await out.write(chunk);
        }
        await stderrDone;
        await call.done;
        return 0;
      } catch (caught) {
        error = caught;
        attemptController.abort(caught);
      } finally {
        signal.removeEventListener("abort", stopAttempt);
      }
      const status = GrpcError.from(error);
      if (
        wrote || signal.aborted || !body.replayable || attempt >= retry.maxAttempts ||
        !retry.retryableStatuses.includes(status.code)
      ) {
        return await fail(error);
      }
      await new Promise((resolve) => setTimeout(resolve, retryBackoff(retry, attempt)));
    }
  } finally {
    outer?.removeEventListener("abort", onAbort);
    body.cancel();
    out.releaseLock();
    err.releaseLock();
  }
}
