/**
 * `git upload-pack` as a child process, streamed end to end with backpressure: the
 * request flows from a stream into git's stdin, git's stdout flows to the caller as a
 * byte stream, and nothing holds more than one chunk.
 *
 * @module
 */

import { configKeyError, type ConfigPair } from "./config_options.ts";
import { NegotiationMonitor } from "./negotiation_monitor.ts";
import { NegotiationStatsParser, type PackfileNegotiation } from "./negotiation_stats.ts";

/** Options for {@linkcode spawnUploadPack}. */
export interface UploadPackOptions {
  /**
   * Run `git upload-pack --stateless-rpc` (smart HTTP: one request, one response).
   * `false` runs the SSH flavour, `git upload-pack <repo>`: git advertises first and
   * then converses over stdin/stdout.
   * @default {true}
   */
  statelessRpc?: boolean;
  /**
   * Add `--advertise-refs`: git only prints the advertisement (smart HTTP
   * `info/refs`). Needs `statelessRpc`.
   * @default {false}
   */
  advertiseRefs?: boolean;
  /**
   * The request's `git_protocol`. Exactly `version=2` or `version=1` becomes
   * `GIT_PROTOCOL` for git; `""` is protocol v0; anything else is ignored with a
   * warning, as Gitaly does.
   * @default {""}
   */
  gitProtocol?: string;
  /**
   * Configuration for this run, passed as `git -c key=value` (see
   * `parseConfigOptions`). A key Gitaly would refuse makes the spawn fail.
   * @default {[]}
   */
  config?: readonly ConfigPair[];
  /**
   * git's input: a stream (read as git consumes it, so a slow git slows the reader), or
   * bytes. The stream is cancelled if git exits before reading it all or the run is
   * stopped.
   * @default {empty input}
   */
  stdin?: ReadableStream<Uint8Array> | Uint8Array;
  /**
   * Stops git: it is terminated (see `killGrace`) and the run ends with an `aborted`
   * failure carrying the signal's reason.
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * Milliseconds the client has to send `0009done\n` (SSH negotiation deadline, see
   * `NegotiationMonitor`); git is stopped with a `negotiation-timeout` failure
   * otherwise. `0` disables it. Gitaly uses 10 minutes for SSH and nothing for HTTP.
   * @default {0}
   */
  negotiationTimeout?: number;
  /**
   * Milliseconds to let git shut down cleanly before `SIGKILL`. Stopping first closes
   * git's stdin, drains its stdout and sends `SIGTERM` to git's children (pack-objects)
   * so that git itself reaps them; a process still alive after this grace period is
   * killed with `SIGKILL`, children first.
   * @default {1000}
   */
  killGrace?: number;
  /**
   * How many trailing bytes of git's stderr to keep for error messages.
   * @default {8192}
   */
  stderrLimit?: number;
  /**
   * Called with each chunk git writes to stderr, as it arrives (for the SSH flavour,
   * which forwards stderr on sideband 2). Must not throw; is not awaited.
   * @default {undefined}
   */
  onStderr?: (chunk: Uint8Array) => void;
  /**
   * Receives warnings, e.g. for an unknown `gitProtocol`.
   * @default {() => {}}
   */
  onWarning?: (message: string) => void;
  /**
   * The git executable.
   * @default {"git"}
   */
  gitBinary?: string;
  /**
   * Extra environment variables for git (e.g. `GIT_TRACE_PACKET`), applied last. git
   * gets only these and a minimal base: `PATH` (the parent's, when readable, else
   * `/usr/local/bin:/usr/bin:/bin`), `LANG=en_US.UTF-8`, `GIT_TERMINAL_PROMPT=0`,
   * `GIT_CONFIG_GLOBAL`, `GIT_CONFIG_SYSTEM` and `XDG_CONFIG_HOME` set to `/dev/null`
   * (Gitaly's base), and `GIT_PROTOCOL`.
   * @default {{}}
   */
  env?: Readonly<Record<string, string>>;
}

/** {@linkcode UploadPackOptions} with every default filled in. */
export interface ResolvedUploadPackOptions {
  /** See {@linkcode UploadPackOptions.statelessRpc}. */
  readonly statelessRpc: boolean;
  /** See {@linkcode UploadPackOptions.advertiseRefs}. */
  readonly advertiseRefs: boolean;
  /** See {@linkcode UploadPackOptions.gitProtocol}. */
  readonly gitProtocol: string;
  /** See {@linkcode UploadPackOptions.config}. */
  readonly config: readonly ConfigPair[];
  /** See {@linkcode UploadPackOptions.stdin}. */
  readonly stdin: ReadableStream<Uint8Array> | Uint8Array;
  /** See {@linkcode UploadPackOptions.signal}. */
  readonly signal: AbortSignal | undefined;
  /** See {@linkcode UploadPackOptions.negotiationTimeout}. */
  readonly negotiationTimeout: number;
  /** See {@linkcode UploadPackOptions.killGrace}. */
  readonly killGrace: number;
  /** See {@linkcode UploadPackOptions.stderrLimit}. */
  readonly stderrLimit: number;
  /** See {@linkcode UploadPackOptions.onStderr}. */
  readonly onStderr: ((chunk: Uint8Array) => void) | undefined;
  /** See {@linkcode UploadPackOptions.onWarning}. */
  readonly onWarning: (message: string) => void;
  /** See {@linkcode UploadPackOptions.gitBinary}. */
  readonly gitBinary: string;
  /** See {@linkcode UploadPackOptions.env}. */
  readonly env: Readonly<Record<string, string>>;
}

function _nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`Cannot run upload-pack: ${name} must be a finite number >= 0, received ${value}`);
  }
  return value;
}

/**
 * Fills in defaults and checks {@linkcode UploadPackOptions}.
 *
 * @param options the options
 * @returns the resolved options
 * @throws {RangeError} For negative or non-finite times and limits.
 * @throws {TypeError} For `advertiseRefs` without `statelessRpc`, a locked `stdin` stream, or an environment
 * variable whose name is empty or has `=` or NUL, or whose value has NUL.
 *
 * @example
 * ```ts
 * import { resolveUploadPackOptions } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const resolved = resolveUploadPackOptions({ gitProtocol: "version=2" });
 * assert.equal(resolved.statelessRpc, true);
 * assert.equal(resolved.killGrace, 1000);
 * assert.throws(() => resolveUploadPackOptions({ stderrLimit: -1 }), RangeError);
 * ```
 */
export function resolveUploadPackOptions(options: UploadPackOptions = {}): ResolvedUploadPackOptions {
  const statelessRpc = options.statelessRpc ?? true;
  const advertiseRefs = options.advertiseRefs ?? false;
  if (advertiseRefs && !statelessRpc) {
    throw new TypeError("Cannot run upload-pack: advertiseRefs needs statelessRpc");
  }
  const stderrLimit = _nonNegative("stderrLimit", options.stderrLimit ?? 8192);
  if (!Number.isInteger(stderrLimit)) {
    throw new RangeError(`Cannot run upload-pack: stderrLimit must be an integer, received ${stderrLimit}`);
  }
  if (options.stdin instanceof ReadableStream && options.stdin.locked) {
    throw new TypeError("Cannot run upload-pack: the stdin stream is locked");
  }
  const env = options.env ?? {};
  for (const [name, value] of Object.entries(env)) {
    if (name === "" || name.includes("=") || name.includes("\0") || value.includes("\0")) {
      throw new TypeError(`Cannot run upload-pack: invalid environment variable ${JSON.stringify(name)}`);
    }
  }
  return {
    statelessRpc,
    advertiseRefs,
    gitProtocol: options.gitProtocol ?? "",
    config: options.config ?? [],
    stdin: options.stdin ?? new Uint8Array(0),
    signal: options.signal,
    negotiationTimeout: _nonNegative("negotiationTimeout", options.negotiationTimeout ?? 0),
    killGrace: _nonNegative("killGrace", options.killGrace ?? 1000),
    stderrLimit,
    onStderr: options.onStderr,
    onWarning: options.onWarning ?? (() => {}),
    gitBinary: options.gitBinary ?? "git",
    env,
  };
}

/**
 * Why a run did not simply end with git's exit:
 * - `spawn`: git could not be started (or a config key was refused); `error` says why;
 * - `aborted`: the `signal` fired or {@linkcode UploadPack.kill} was called;
 * - `stdout`: git's output was not delivered: the consumer cancelled
 *   {@linkcode UploadPack.stdout} before its end, or the sink of
 *   {@linkcode UploadPack.copyStdoutTo} failed; `error` is the reason;
 * - `negotiation-timeout`: the client did not send `0009done\n` in time.
 */
export type UploadPackFailure =
  | { readonly kind: "spawn"; readonly error: unknown }
  | { readonly kind: "aborted"; readonly reason: unknown }
  | { readonly kind: "stdout"; readonly error: unknown }
  | { readonly kind: "negotiation-timeout" };

/** How an upload-pack run ended (see `postUploadPackError` and `sshUploadPackError`). */
export interface UploadPackResult {
  /** git's exit status; `null` if it never started. */
  readonly status: Deno.CommandStatus | null;
  /** Set when the run was stopped or never started; `null` when git ran to its exit. */
  readonly failure: UploadPackFailure | null;
  /** The last `stderrLimit` bytes git wrote to stderr. */
  readonly stderr: Uint8Array;
  /** How many bytes git wrote to stderr in all. */
  readonly stderrLength: number;
  /** How many request bytes were passed to git. */
  readonly stdinLength: number;
  /**
   * Why the request stream failed (git then saw the end of its input early), or `null`.
   * A failure of git's own stdin (git exited: broken pipe) is not recorded.
   */
  readonly stdinError: unknown;
  /** How many bytes of git's output were delivered to the consumer. */
  readonly stdoutLength: number;
  /** Statistics of the request, parsed as it passed. */
  readonly negotiation: PackfileNegotiation;
}

/**
 * Writes bytes somewhere with `Deno.Conn` semantics: resolves with how many bytes of
 * `p` it took, holding no reference to `p` afterwards (`Deno.Conn`, `DirectIo`).
 */
export interface ByteWriter {
  /** Writes some bytes of `p`; resolves with how many. */
  write(p: Uint8Array): Promise<number>;
}

/** A running `git upload-pack`; see {@linkcode spawnUploadPack}. */
export interface UploadPack extends AsyncDisposable {
  /** git's process id; `null` if it could not be started. */
  readonly pid: number | null;
  /**
   * git's output as a byte stream (BYOB reads land directly in the reader's buffer).
   * Backpressure reaches git: while nobody reads, git blocks on its full pipe.
   * Cancelling it stops git (a `stdout` failure unless the output was complete).
   * Read it to its end or cancel it: that releases the pipe.
   */
  readonly stdout: ReadableStream<Uint8Array>;
  /**
   * Settles once git has exited, its output has been read to the end (or dropped after
   * a stop), and its stdin and stderr are done: then no process and no pipe of this run
   * remain. Never rejects. It waits for the consumer: read `stdout` (or cancel it)
   * concurrently.
   */
  readonly result: Promise<UploadPackResult>;
  /**
   * Copies `stdout` to `sink` until its end, with backpressure. With a
   * {@linkcode ByteWriter} one 64 KiB buffer is reused for the whole copy; a
   * `WritableStream` gets a fresh buffer per chunk (it may keep chunks). The sink is
   * neither closed nor aborted; a failing sink stops git (a `stdout` failure).
   *
   * @param sink where the output goes
   * @returns the number of bytes delivered; never rejects (see `result`)
   */
  copyStdoutTo(sink: WritableStream<Uint8Array> | ByteWriter): Promise<number>;
  /**
   * Stops git (see `killGrace`); the run ends with an `aborted` failure.
   *
   * @param reason the failure's reason
   * @default reason an `AbortError` `DOMException`
   */
  kill(reason?: unknown): void;
}

/** Size of each read from git's stdout: the Linux pipe capacity. */
const _CHUNK = 64 * 1024;
/** How often the stopping sequence looks for new children of git. */
const _POLL_MS = 10;

function _basePath(): string {
  try {
    return Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin";
  } catch {
    return "/usr/local/bin:/usr/bin:/bin";
  }
}

/**
 * The environment for git: a minimal explicit base plus `GIT_PROTOCOL` and `extra`.
 * @private Also used by tests.
 */
export function _uploadPackEnv(options: ResolvedUploadPackOptions): Record<string, string> {
  const env: Record<string, string> = {
    PATH: _basePath(),
    LANG: "en_US.UTF-8",
    GIT_TERMINAL_PROMPT: "0",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_CONFIG_SYSTEM: "/dev/null",
    XDG_CONFIG_HOME: "/dev/null",
  };
  const protocol = options.gitProtocol;
  if (protocol === "version=2" || protocol === "version=1") env.GIT_PROTOCOL = protocol;
  else if (protocol !== "") options.onWarning(`invalid git protocol requested: ${JSON.stringify(protocol)}`);
  return { ...env, ...options.env };
}

/**
 * The direct children of `pid` (Linux `/proc`), or `null` when that cannot be known.
 */
function _children(pid: number): number[] | null {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`);
    return text.split(" ").filter((s) => s !== "").map(Number);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      try {
        Deno.statSync("/proc/self");
        return []; // /proc works: the process is gone
      } catch {
        return null;
      }
    }
    return null;
  }
}

function _signal(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** The last `limit` bytes of a stream of chunks. */
class _Tail {
  #chunks: Uint8Array[] = [];
  #held = 0;
  length = 0;
  readonly #limit: number;

  constructor(limit: number) {
    this.#limit = limit;
  }

  push(chunk: Uint8Array): void {
    this.length += chunk.byteLength;
    if (this.#limit === 0) return;
    const keep = chunk.byteLength > this.#limit ? chunk.slice(chunk.byteLength - this.#limit) : chunk.slice();
    this.#chunks.push(keep);
    this.#held += keep.byteLength;
    while (this.#chunks.length > 1 && this.#held - this.#chunks[0]!.byteLength >= this.#limit) {
      this.#held -= this.#chunks.shift()!.byteLength;
    }
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.#held);
    let offset = 0;
    for (const c of this.#chunks) {
      out.set(c, offset);
      offset += c.byteLength;
    }
    return out.byteLength > this.#limit ? out.slice(out.byteLength - this.#limit) : out;
  }
}

/** The implementation behind {@linkcode UploadPack}. */
class _UploadPack implements UploadPack {
  readonly pid: number | null = null;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly result: Promise<UploadPackResult>;

  readonly #options: ResolvedUploadPackOptions;
  readonly #stats = new NegotiationStatsParser();
  readonly #stderr: _Tail;
  #child: Deno.ChildProcess | null = null;
  #source: ReadableStreamBYOBReader | null = null;
  #monitor: NegotiationMonitor | null = null;
  #status: Deno.CommandStatus | null = null;
  #exited: Promise<void> = Promise.resolve();
  #failure: UploadPackFailure | null = null;
  #stopping = false;
  /** What the public stream was errored with when the run stopped. */
  #stopReason: unknown = undefined;
  /** We read git's stdout ourselves and discard it; the consumer's stream is finished. */
  #draining = false;
  #stdoutEnded = false;
  #stdoutClosed = false;
  /** The stream's pull ran at least once (so `copyStdoutTo` must go through the stream). */
  #pulled = false;
  #stdoutController: ReadableByteStreamController | null = null;
  /** Resolves once git's output has been delivered to its end, or dropped after a stop. */
  readonly #stdoutDone = Promise.withResolvers<void>();
  #stdinReader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  #stdinWriter: WritableStreamDefaultWriter<Uint8Array> | null = null;
  #stdinStopped = false;
  #stdinLength = 0;
  #stdinError: unknown = null;
  #stdoutLength = 0;
  #onAbort: (() => void) | null = null;

  constructor(repoPath: string, options: ResolvedUploadPackOptions) {
    this.#options = options;
    this.#stderr = new _Tail(options.stderrLimit);
    this.stdout = new ReadableStream({
      type: "bytes",
      autoAllocateChunkSize: _CHUNK,
      start: (controller) => {
        this.#stdoutController = controller;
      },
      pull: (controller) => this.#pull(controller),
      cancel: (reason) => this.#cancelStdout(reason),
    });

    const spawnError = this.#spawn(repoPath);
    if (spawnError !== undefined) {
      this.#failure = spawnError;
      this.#closeStdout();
      this.#stdoutDone.resolve();
      if (options.stdin instanceof ReadableStream) void options.stdin.cancel(spawnError).catch(() => {});
      this.result = Promise.resolve(this.#buildResult());
      return;
    }
    const child = this.#child!;
    this.pid = child.pid;
    this.#source = child.stdout.getReader({ mode: "byob" });
    this.#exited = child.status.then((status) => {
      this.#status = status;
      this.#onExit();
    });
    if (options.negotiationTimeout > 0) {
      this.#monitor = new NegotiationMonitor({
        timeout: options.negotiationTimeout,
        onTimeout: () => this.#stop({ kind: "negotiation-timeout" }),
      });
    }
    const signal = options.signal;
    if (signal !== undefined) {
      this.#onAbort = () => this.#stop({ kind: "aborted", reason: signal.reason });
      signal.addEventListener("abort", this.#onAbort, { once: true });
    }
    const stdin = this.#pumpStdin(child, options.stdin);
    const stderr = this.#readStderr(child);
    this.result = Promise.all([this.#exited, stdin, stderr, this.#stdoutDone.promise]).then(() =>
      this.#buildResult()
    );
  }

  /** Starts git; returns a failure instead of throwing. */
  #spawn(repoPath: string): UploadPackFailure | undefined {
    const options = this.#options;
    if (options.signal?.aborted) return { kind: "aborted", reason: options.signal.reason };
    const args: string[] = [];
    for (const { key, value } of options.config) {
      const problem = configKeyError(key);
      if (problem !== undefined) return { kind: "spawn", error: new Error(problem) };
      args.push("-c", `${key}=${value}`);
    }
    args.push("upload-pack");
    if (options.statelessRpc) args.push("--stateless-rpc");
    if (options.advertiseRefs) args.push("--advertise-refs");
    args.push("--", repoPath);
    try {
      this.#child = new Deno.Command(options.gitBinary, {
        args,
        clearEnv: true,
        env: _uploadPackEnv(options),
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      return undefined;
    } catch (error) {
      return { kind: "spawn", error };
    }
  }

  async #pull(controller: ReadableByteStreamController): Promise<void> {
    this.#pulled = true;
    const request = controller.byobRequest!;
    const view = request.view!;
    let read: ReadableStreamReadResult<Uint8Array>;
    try {
      read = await this.#source!.read(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
    } catch (error) {
      if (this.#draining) return;
      this.#stop({ kind: "stdout", error });
      return;
    }
    if (this.#draining) return; // the stream was errored or cancelled meanwhile
    if (read.done) {
      this.#stdoutEnded = true;
      this.#stdoutClosed = true;
      controller.close();
      if (read.value !== undefined) request.respondWithNewView(read.value);
      this.#stdoutDone.resolve();
      return;
    }
    this.#stdoutLength += read.value.byteLength;
    request.respondWithNewView(read.value);
  }

  /** git's output reached its end through the direct path: close the public stream. */
  #endStdout(): void {
    this.#stdoutEnded = true;
    this.#closeStdout();
    this.#stdoutDone.resolve();
  }

  #cancelStdout(reason: unknown): void {
    this.#stdoutClosed = true;
    if (this.#stdoutEnded) return;
    this.#stop({ kind: "stdout", error: reason });
  }

  /** Closes the consumer's stream (nothing to read). */
  #closeStdout(): void {
    if (this.#stdoutClosed) return;
    this.#stdoutClosed = true;
    try {
      this.#stdoutController?.close();
      this.#stdoutController?.byobRequest?.respond(0);
    } catch {
      // Already closed.
    }
  }

  async #pumpStdin(child: Deno.ChildProcess, source: ReadableStream<Uint8Array> | Uint8Array): Promise<void> {
    const writer = child.stdin.getWriter();
    this.#stdinWriter = writer;
    try {
      if (source instanceof Uint8Array) {
        if (source.byteLength > 0) {
          this.#tap(source);
          await writer.write(source);
        }
      } else {
        const reader = source.getReader();
        this.#stdinReader = reader;
        if (this.#stdinStopped) await reader.cancel().catch(() => {});
        try {
          while (true) {
            let read: ReadableStreamReadResult<Uint8Array>;
            try {
              read = await reader.read();
            } catch (error) {
              if (!this.#stdinStopped) this.#stdinError = error;
              throw error;
            }
            const { value, done } = read;
            if (done || this.#stdinStopped) break;
            if (value.byteLength === 0) continue;
            this.#tap(value);
            await writer.write(value);
          }
        } finally {
          if (this.#stdinStopped || this.#status !== null) await reader.cancel().catch(() => {});
          reader.releaseLock();
        }
      }
      await writer.close();
    } catch {
      // git stopped reading (exited: broken pipe) or the source failed: git sees the end of
      // its input; its exit status tells the rest.
      this.#stdinReader?.cancel().catch(() => {});
      await writer.abort().catch(() => {});
    }
  }

  #tap(chunk: Uint8Array): void {
    this.#stdinLength += chunk.byteLength;
    this.#stats.push(chunk);
    this.#monitor?.push(chunk);
  }

  /** Stops feeding git: cancels the source, closes git's stdin. */
  #stopStdin(): void {
    if (this.#stdinStopped) return;
    this.#stdinStopped = true;
    void this.#stdinReader?.cancel().catch(() => {});
    void this.#stdinWriter?.abort().catch(() => {});
  }

  async #readStderr(child: Deno.ChildProcess): Promise<void> {
    const onStderr = this.#options.onStderr;
    try {
      for await (const chunk of child.stderr) {
        this.#stderr.push(chunk);
        if (onStderr !== undefined) {
          try {
            onStderr(chunk);
          } catch {
            // A callback must not break the read loop.
          }
        }
      }
    } catch {
      // The pipe failed: nothing more to read.
    }
  }

  #onExit(): void {
    this.#monitor?.stop();
    if (this.#onAbort !== null) this.#options.signal?.removeEventListener("abort", this.#onAbort);
    // git reads no more: stop waiting on a client that keeps its side open.
    this.#stopStdin();
  }

  /** Stops the run: records why, stops stdin, takes over stdout, ends git. Idempotent. */
  #stop(failure: UploadPackFailure): void {
    if (this.#stopping || this.#child === null) return; // already stopping, or never started
    const exited = this.#status !== null;
    if (exited && (this.#stdoutEnded || failure.kind === "negotiation-timeout")) return;
    this.#stopping = true;
    this.#failure = failure;
    this.#stopStdin();
    const reason = failure.kind === "aborted"
      ? failure.reason
      : failure.kind === "stdout"
      ? failure.error
      : new DOMException("Negotiation timed out", "TimeoutError");
    this.#stopReason = reason;
    if (!this.#stdoutClosed) {
      this.#stdoutClosed = true;
      try {
        this.#stdoutController?.error(reason);
      } catch {
        // Already errored.
      }
    }
    if (!this.#stdoutEnded) void this.#drain();
    if (!exited) void this.#terminate();
  }

  /** Reads git's remaining output and drops it, so git can reach its cleanup. */
  async #drain(): Promise<void> {
    this.#draining = true;
    const source = this.#source;
    if (source === null) return;
    let buffer = new ArrayBuffer(_CHUNK);
    try {
      while (true) {
        const { value, done } = await source.read(new Uint8Array(buffer));
        if (done) break;
        buffer = value.buffer as ArrayBuffer;
      }
    } catch {
      // The pipe is gone.
    }
    this.#stdoutEnded = true;
    this.#stdoutDone.resolve();
  }

  /**
   * Ends git without orphaning its children: children get `SIGTERM` (git notices
   * their end and reaps them), git gets `SIGKILL` after the grace period.
   */
  async #terminate(): Promise<void> {
    const pid = this.pid!;
    const deadline = performance.now() + this.#options.killGrace;
    const signalled = new Set<number>();
    let exited = false;
    void this.#exited.then(() => (exited = true));
    while (!exited && performance.now() < deadline) {
      const children = _children(pid);
      if (children === null) {
        if (!signalled.has(pid)) _signal(pid, "SIGTERM");
        signalled.add(pid);
      } else {
        for (const child of children) {
          if (!signalled.has(child)) _signal(child, "SIGTERM");
          signalled.add(child);
        }
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#exited,
        new Promise<void>((
          resolve,
        ) => (timer = setTimeout(resolve, Math.min(_POLL_MS, this.#options.killGrace)))),
      ]);
      clearTimeout(timer);
    }
    if (exited || this.#status !== null) return;
    for (const child of _children(pid) ?? []) _signal(child, "SIGKILL");
    _signal(pid, "SIGKILL");
  }

  #buildResult(): UploadPackResult {
    return {
      status: this.#status,
      failure: this.#failure,
      stderr: this.#stderr.bytes(),
      stderrLength: this.#stderr.length,
      stdinLength: this.#stdinLength,
      stdinError: this.#stdinError,
      stdoutLength: this.#stdoutLength,
      negotiation: this.#stats.end(),
    };
  }

  async copyStdoutTo(sink: WritableStream<Uint8Array> | ByteWriter): Promise<number> {
    // Lock the public stream: from here on the copy is its only consumer.
    const lock = this.stdout.getReader({ mode: "byob" });
    const writer = sink instanceof WritableStream ? sink.getWriter() : null;
    const direct = writer === null ? sink as ByteWriter : null;
    // Fast path: nothing was read through the stream yet, so read git's pipe directly and
    // skip one stream hop per chunk. Otherwise go through the stream.
    const source = this.#pulled || this.#source === null ? null : this.#source;
    let buffer = new ArrayBuffer(_CHUNK);
    let total = 0;
    try {
      while (true) {
        if (source !== null && this.#draining) return total;
        let read: ReadableStreamReadResult<Uint8Array>;
        try {
          const view = new Uint8Array(direct !== null ? buffer : new ArrayBuffer(_CHUNK));
          read = await (source ?? lock).read(view);
        } catch (error) {
          if (source !== null) this.#stop({ kind: "stdout", error });
          return total; // stopped: the result says why
        }
        if (source !== null && this.#draining) return total;
        if (read.done) {
          if (source !== null) this.#endStdout();
          return total;
        }
        const chunk = read.value;
        if (source !== null) this.#stdoutLength += chunk.byteLength;
        try {
          if (direct !== null) {
            for (let offset = 0; offset < chunk.byteLength;) {
              const n = await direct.write(chunk.subarray(offset));
              if (!(n > 0)) throw new TypeError(`Cannot copy upload-pack output: the sink wrote ${n} bytes`);
              offset += n;
            }
            buffer = chunk.buffer as ArrayBuffer;
          } else {
            await writer!.write(chunk);
          }
        } catch (error) {
          if (source !== null) this.#stop({ kind: "stdout", error });
          else await lock.cancel(error).catch(() => {});
          return total;
        }
        total += chunk.byteLength;
      }
    } finally {
      lock.releaseLock();
      writer?.releaseLock();
    }
  }

  /** See {@linkcode _stdoutReader}. */
  _stdoutReader(): _StdoutReader {
    // Lock the public stream: from here on this reader is its only consumer.
    const lock = this.stdout.getReader({ mode: "byob" });
    const source = this.#pulled || this.#source === null ? null : this.#source;
    if (source === null) return lock;
    return {
      read: async (view) => {
        // Stopped: fail as the public stream does (errored with the reason).
        if (this.#draining) throw this.#stopReason;
        let read: ReadableStreamReadResult<Uint8Array>;
        try {
          read = await source.read(view);
        } catch (error) {
          this.#stop({ kind: "stdout", error });
          throw error;
        }
        if (this.#draining) throw this.#stopReason;
        if (read.done) {
          this.#endStdout();
        } else {
          this.#stdoutLength += read.value.byteLength;
        }
        return read;
      },
      cancel: (reason) => {
        this.#cancelStdout(reason);
        return Promise.resolve();
      },
      releaseLock: () => lock.releaseLock(),
    };
  }

  kill(reason: unknown = new DOMException("upload-pack was killed", "AbortError")): void {
    this.#stop({ kind: "aborted", reason });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#stdoutEnded) this.kill();
    await this.result;
  }
}

/** The part of a BYOB reader that {@linkcode _stdoutReader} gives. */
export interface _StdoutReader {
  /** Reads into `view` (its buffer is transferred, as with a BYOB reader). */
  read(view: Uint8Array): Promise<ReadableStreamReadResult<Uint8Array>>;
  /** Stops reading: stops git unless its output was complete. */
  cancel(reason?: unknown): Promise<void>;
  /** Unlocks `stdout`. */
  releaseLock(): void;
}

/**
 * A BYOB reader of `uploadPack.stdout` that, while nothing was read through the
 * stream, reads git's pipe directly (one Web Streams hop less per read, as in
 * `copyStdoutTo`). It locks `stdout`; a stopped run rejects reads as the stream would.
 */
export function _stdoutReader(uploadPack: UploadPack): _StdoutReader {
  return uploadPack instanceof _UploadPack
    ? uploadPack._stdoutReader()
    : uploadPack.stdout.getReader({ mode: "byob" });
}

/**
 * Starts `git upload-pack` on a repository and streams it.
 *
 * Runs `git [-c key=value]… upload-pack [--stateless-rpc [--advertise-refs]] -- <repo>`
 * with a minimal environment (see {@linkcode UploadPackOptions.env}). The request is
 * read from `stdin` only as fast as git consumes it, and parsed for negotiation
 * statistics on the way; the output is read from git only as fast as the consumer of
 * `stdout` reads it. Memory does not grow with the size of the pack.
 *
 * Stopping (abort signal, `kill()`, cancelled output, negotiation timeout) closes
 * git's stdin, keeps draining its output, sends `SIGTERM` to git's children so git
 * reaps them, and `SIGKILL`s git after `killGrace`: no process outlives the run and no
 * pipe stays open once `result` settles and `stdout` is finished.
 *
 * Never throws for run-time failures (they end up in `result.failure`), only for
 * misuse.
 *
 * Needs `--allow-run` (and `--allow-read` for `/proc`, to find git's children when
 * stopping it; without it git itself gets `SIGTERM`).
 *
 * @param repoPath the absolute path of the git directory (see `resolveRepository`)
 * @param options the flavour, request, limits and callbacks
 * @returns the running upload-pack
 * @throws {TypeError} For a relative `repoPath` or one with a NUL byte, or invalid options.
 * @throws {RangeError} For invalid limits.
 *
 * @example Advertise, then fetch everything (protocol v0, smart HTTP)
 * ```ts
 * import { encodeFlush, encodePkt, spawnUploadPack } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const git = (...args: string[]) => new Deno.Command("git", { args: ["-C", dir, ...args] }).output();
 * await git("init", "-q", "--bare");
 * const blob = new TextDecoder().decode((await new Deno.Command("git", {
 *   args: ["-C", dir, "hash-object", "-w", "--stdin"], stdin: "null",
 * }).output()).stdout).trim();
 * assert.equal(blob.length, 40);
 *
 * const uploadPack = spawnUploadPack(dir, { advertiseRefs: true });
 * const advertisement = await new Response(uploadPack.stdout).text();
 * assert.equal(advertisement, "0000"); // an empty repository advertises nothing
 * assert.equal((await uploadPack.result).status?.success, true);
 *
 * const request = new Uint8Array([...encodeFlush()]);
 * const fetch = spawnUploadPack(dir, { stdin: request });
 * await fetch.copyStdoutTo(new WritableStream());
 * const result = await fetch.result;
 * assert.equal(result.failure, null);
 * assert.equal(result.negotiation.packets, 1);
 * assert.ok(encodePkt("x").byteLength === 5);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function spawnUploadPack(repoPath: string, options: UploadPackOptions = {}): UploadPack {
  if (!repoPath.startsWith("/") || repoPath.includes("\0")) {
    throw new TypeError(
      `Cannot run upload-pack: repository path must be absolute, received ${JSON.stringify(repoPath)}`,
    );
  }
  return new _UploadPack(repoPath, resolveUploadPackOptions(options));
}
