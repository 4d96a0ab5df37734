/**
 * The front (Workhorse's role): git's smart HTTP for upload-pack, served by calling a
 * Gitaly-style storage server over a selectable transport.
 *
 * @module
 */

import { GrpcError } from "../grpc/status.ts";
import { _describe } from "./_messages.ts";
import { _ReplayBody } from "./_replay_body.ts";
import { FrontError } from "./errors.ts";
import { httpStatusFromGrpc } from "./http_status.ts";
import { _checkRetryPolicy, GITALY_RETRY_POLICY, retryBackoff, type RetryPolicy } from "./retry.ts";
import { _rawPathAndQuery, type GitHttpRoute, parseGitHttpRequest } from "./route.ts";
import type { GitalyTransport, UploadPackCall } from "../git/client.ts";
import type { GitUpstream } from "./upstream_types.ts";

/** One finished request, as {@linkcode GitHttpFrontOptions.onLog} receives it. */
export interface FrontLogEntry {
  /** The HTTP method. */
  readonly method: string;
  /** The path as sent (without the query). */
  readonly path: string;
  /** `info-refs`, `upload-pack`, or `null` for a request that matched no route. */
  readonly service: GitHttpRoute["service"] | null;
  /** The repository (`storage:path` outside the default storage), or `null`. */
  readonly repository: string | null;
  /** The transport to the storage server. */
  readonly transport: GitalyTransport;
  /** The `Git-Protocol` header (`version=2`), `""` when absent. */
  readonly gitProtocol: string;
  /** The HTTP status sent. */
  readonly status: number;
  /** Request body bytes (after gzip decoding) passed upstream. */
  readonly bytesIn: number;
  /** Response body bytes sent to the client. */
  readonly bytesOut: number;
  /** Milliseconds from the request to the end of the response body. */
  readonly durationMs: number;
  /** Calls made to the storage server (retries included); 0 when refused locally. */
  readonly attempts: number;
  /**
   * How the response ended: `ok`, `error` (the status tells, or the body was cut after a
   * failure upstream), `cancelled` (the client went away), `aborted` (the front stopped it).
   */
  readonly outcome: "ok" | "error" | "cancelled" | "aborted";
  /** What went wrong, if anything. */
  readonly error?: string;
}

/** Options for {@linkcode GitHttpFront}. */
export interface GitHttpFrontOptions {
  /** Where upload-pack calls go (a {@linkcode GitalyUpstream}, or any implementation). */
  upstream: GitUpstream;
  /**
   * How `POST …/git-upload-pack` reaches the storage server: `sidechannel` (Gitaly's
   * `PostUploadPackWithSidechannel`, what GitLab uses), `v3` (the HTTP/2 raw-codec
   * `PostUploadPackV3`), or `grpc` (the plain streaming `PostUploadPack`).
   * @default {"sidechannel"}
   */
  transport?: GitalyTransport;
  /**
   * Storage names; the first is the default, the others are selected by the URL's first
   * segment (see `routeRepository`).
   * @default {["default"]}
   */
  storages?: readonly string[];
  /**
   * Retries of calls failing with a retryable status, taken only while nothing was
   * sent to the client and the request body can still be replayed.
   * @default {GITALY_RETRY_POLICY}
   */
  retry?: RetryPolicy;
  /**
   * The source of backoff jitter, numbers in `[0, 1)`.
   * @default {Math.random}
   */
  random?: () => number;
  /**
   * Request-body bytes kept so a retried call can send them again; a longer body is
   * streamed and its call is not retried once it has read past this.
   * @default {1048576}
   */
  replayLimit?: number;
  /**
   * `git -c` options for every call (`uploadpack.allowFilter=true`, …), as Gitaly's
   * `git_config_options`.
   * @default {[]}
   */
  gitConfigOptions?: readonly string[];
  /**
   * Called once per request when its response has ended. Must not throw.
   * @default {undefined}
   */
  onLog?: (entry: FrontLogEntry) => void;
}

interface _Resolved {
  upstream: GitUpstream;
  transport: GitalyTransport;
  storages: readonly string[];
  retry: RetryPolicy;
  random: () => number;
  replayLimit: number;
  gitConfigOptions: readonly string[];
  onLog: ((entry: FrontLogEntry) => void) | undefined;
}

const _TRANSPORTS: readonly GitalyTransport[] = ["sidechannel", "v3", "grpc"];

function _resolve(options: GitHttpFrontOptions): _Resolved {
  const transport = options.transport ?? "sidechannel";
  if (!_TRANSPORTS.includes(transport)) {
    throw new TypeError(`Cannot create GitHttpFront: transport must be one of ${_TRANSPORTS.join(", ")}`);
  }
  const storages = options.storages ?? ["default"];
  if (storages.length === 0 || storages.some((s) => s === "" || s.includes("/"))) {
    throw new TypeError("Cannot create GitHttpFront: storages must be non-empty names without '/'");
  }
  const replayLimit = options.replayLimit ?? 1024 * 1024;
  if (!Number.isInteger(replayLimit) || replayLimit < 0) {
    throw new RangeError(
      `Cannot create GitHttpFront: replayLimit must be an integer >= 0, received ${replayLimit}`,
    );
  }
  return {
    upstream: options.upstream,
    transport,
    storages: [...storages],
    retry: _checkRetryPolicy(options.retry ?? GITALY_RETRY_POLICY),
    random: options.random ?? Math.random,
    replayLimit,
    gitConfigOptions: [...(options.gitConfigOptions ?? [])],
    onLog: options.onLog,
  };
}

const _ADVERTISEMENT = "application/x-git-upload-pack-advertisement";
const _RESULT = "application/x-git-upload-pack-result";

/** A plain-text error response; git prints the body's lines as `remote: …`. */
function _textResponse(status: number, message: string, headers: Record<string, string> = {}): Response {
  return new Response(message.endsWith("\n") ? message : `${message}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-cache", ...headers },
  });
}

function _sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Never settles (a stand-in for "the call has not failed yet"). */
const _never = new Promise<never>(() => {});

interface _InFlight {
  controller: AbortController;
  done: Promise<void>;
}

/** The bookkeeping of one request, turned into a log entry at the end. */
class _Exchange {
  readonly started = performance.now();
  readonly method: string;
  readonly path: string;
  readonly gitProtocol: string;
  route: GitHttpRoute | null = null;
  status = 0;
  bytesIn = 0;
  bytesOut = 0;
  attempts = 0;
  /** The response body is streamed from the storage server; it ends the exchange itself. */
  streaming = false;
  outcome: FrontLogEntry["outcome"] = "ok";
  error: string | undefined;

  constructor(method: string, path: string, gitProtocol: string) {
    this.method = method;
    this.path = path;
    this.gitProtocol = gitProtocol;
  }

  entry(transport: GitalyTransport): FrontLogEntry {
    return {
      method: this.method,
      path: this.path,
      service: this.route?.service ?? null,
      repository: this.route?.repository.name ?? null,
      transport,
      gitProtocol: this.gitProtocol,
      status: this.status,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      durationMs: Math.round((performance.now() - this.started) * 10) / 10,
      attempts: this.attempts,
      outcome: this.outcome,
      ...(this.error === undefined ? {} : { error: this.error }),
    };
  }
}

/** An attempt that produced output (or ended cleanly without any). */
interface _Started {
  first: Uint8Array | null;
  reader: ReadableStreamDefaultReader<Uint8Array>;
  done: Promise<unknown>;
}

/**
 * Git's smart HTTP for upload-pack (Workhorse's role), as a `fetch`-style handler for
 * `Deno.serve`:
 *
 * - `GET /<repo>/info/refs?service=git-upload-pack` → `InfoRefsUploadPack`;
 * - `POST /<repo>/git-upload-pack` → `PostUploadPackWithSidechannel`, `PostUploadPackV3`
 *   or `PostUploadPack`, by {@linkcode GitHttpFrontOptions.transport}.
 *
 * Request bodies are gzip-decoded when `Content-Encoding: gzip`; the `Git-Protocol`
 * header becomes `git_protocol`. Both directions stream with backpressure: the response
 * is pulled from the storage server as the client reads it, never held whole.
 *
 * A call failing with `UNAVAILABLE` is retried (Gitaly's client policy by default) as
 * long as nothing was sent to the client yet. Failures before the first byte become
 * HTTP statuses (`NOT_FOUND` → 404, `INVALID_ARGUMENT` → 400, see `httpStatusFromGrpc`)
 * with a `text/plain` message git shows; a failure after it cuts the response, so git
 * reports an error instead of taking a truncated one. A client that goes away cancels
 * the call (the storage server stops git).
 *
 * @example Serve a fake upstream and fetch the advertisement
 * ```ts
 * import { GitHttpFront, type GitUpstream } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const advertisement = "001e# service=git-upload-pack\n0000" + "0000";
 * const upstream: GitUpstream = {
 *   client: () =>
 *     Promise.resolve({
 *       infoRefsUploadPack: () => new Response(advertisement).body!,
 *       postUploadPack: () => ({ body: new Response("0008NAK\n").body!, done: Promise.resolve(null) }),
 *     }),
 * };
 * const logs: string[] = [];
 * const front = new GitHttpFront({ upstream, onLog: (e) => logs.push(`${e.repository} ${e.status}`) });
 * const response = await front.fetch(new Request("http://h/foo.git/info/refs?service=git-upload-pack"));
 * assert.equal(response.status, 200);
 * assert.equal(response.headers.get("content-type"), "application/x-git-upload-pack-advertisement");
 * assert.equal(await response.text(), advertisement);
 * await front.idle();
 * assert.deepEqual(logs, ["foo.git 200"]);
 * ```
 */
export class GitHttpFront {
  readonly #o: _Resolved;
  readonly #inFlight = new Set<_InFlight>();
  #idleWaiters: (() => void)[] = [];

  /**
   * Creates the front.
   *
   * @param options upstream, transport, storages, retries, logging
   * @throws {TypeError} For an unknown transport or invalid storage names.
   * @throws {RangeError} For an invalid retry policy or replay limit.
   */
  constructor(options: GitHttpFrontOptions) {
    this.#o = _resolve(options);
  }

  /** The transport used for `git-upload-pack` calls. */
  get transport(): GitalyTransport {
    return this.#o.transport;
  }

  /** Requests whose response has not ended yet. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Resolves once no request is in flight. */
  idle(): Promise<void> {
    if (this.#inFlight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Stops every request in flight: their calls are cancelled, their responses cut.
   *
   * @param reason recorded as the cause
   */
  abort(reason: unknown = new DOMException("The front is shutting down", "AbortError")): void {
    for (const request of this.#inFlight) request.controller.abort(reason);
  }

  /**
   * Handles one request (a `Deno.serve` handler).
   *
   * @param request the request
   * @returns the response; never rejects
   */
  readonly fetch = (request: Request): Promise<Response> => this.#handle(request);

  async #handle(request: Request): Promise<Response> {
    const { path } = _rawPathAndQuery(request.url);
    const exchange = new _Exchange(request.method, path, request.headers.get("git-protocol") ?? "");
    const controller = new AbortController();
    const finished = Promise.withResolvers<void>();
    const entry: _InFlight = { controller, done: finished.promise };
    this.#inFlight.add(entry);
    // Not `request.signal`: Deno.serve aborts it after successful responses too (and warns).
    // A client that leaves is seen when the response body is cancelled.
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      this.#inFlight.delete(entry);
      finished.resolve();
      if (this.#o.onLog !== undefined) {
        try {
          this.#o.onLog(exchange.entry(this.#o.transport));
        } catch {
          // a throwing logger must not break serving
        }
      }
      if (this.#inFlight.size === 0) {
        const waiters = this.#idleWaiters;
        this.#idleWaiters = [];
        for (const wake of waiters) wake();
      }
    };
    try {
      const response = await this.#serve(request, exchange, controller, end);
      exchange.status = response.status;
      if (response.status !== 200 && exchange.outcome === "ok") exchange.outcome = "error";
      // Small responses count as ended when handed over; streamed ones end with their body.
      if (!exchange.streaming) end();
      return response;
    } catch (error) {
      exchange.outcome = controller.signal.aborted ? "cancelled" : "error";
      exchange.error = String(error);
      exchange.status = 500;
      end();
      return _textResponse(500, `Cannot serve request: ${String(error)}`);
    }
  }

  async #serve(
    request: Request,
    exchange: _Exchange,
    controller: AbortController,
    end: () => void,
  ): Promise<Response> {
    const signal = controller.signal;
    let route: GitHttpRoute;
    try {
      route = parseGitHttpRequest(request.method, request.url, this.#o.storages);
    } catch (error) {
      if (!(error instanceof FrontError)) throw error;
      exchange.error = error.message;
      const headers: Record<string, string> = error.code === "METHOD_NOT_ALLOWED"
        ? { allow: error.message.includes("info/refs") ? "GET" : "POST" }
        : {};
      return _textResponse(error.status, error.message, headers);
    }
    exchange.route = route;
    const repository = route.repository;
    const call: UploadPackCall = {
      gitProtocol: exchange.gitProtocol,
      gitConfigOptions: this.#o.gitConfigOptions,
      signal,
    };

    let body: _ReplayBody | null = null;
    if (route.service === "upload-pack") {
      const encoding = (request.headers.get("content-encoding") ?? "").trim().toLowerCase();
      let source = request.body;
      if (encoding === "gzip" || encoding === "x-gzip") {
        source = source?.pipeThrough(new DecompressionStream("gzip")) ?? null;
      } else if (encoding !== "" && encoding !== "identity") {
        exchange.error = `unsupported content-encoding ${encoding}`;
        void request.body?.cancel().catch(() => {});
        return _textResponse(415, `Cannot read request: unsupported Content-Encoding ${encoding}`);
      }
      body = new _ReplayBody(source, this.#o.replayLimit);
    }

    const started = await this.#attempts(route, call, body, exchange, signal);
    exchange.bytesIn = body?.length ?? 0;
    if (started instanceof GrpcError) {
      body?.cancel(started);
      exchange.error = started.message;
      const status = signal.aborted ? 499 : httpStatusFromGrpc(started.code);
      if (signal.aborted) exchange.outcome = "cancelled";
      return _textResponse(status, _describe(started, repository));
    }

    const contentType = route.service === "info-refs" ? _ADVERTISEMENT : _RESULT;
    const headers = { "content-type": contentType, "cache-control": "no-cache" };
    const { reader, done } = started;
    let first = started.first;
    if (first !== null) exchange.bytesOut += first.byteLength;
    let finished = false;
    const finish = (outcome: FrontLogEntry["outcome"], error?: unknown) => {
      if (finished) return;
      finished = true;
      exchange.outcome = outcome;
      exchange.bytesIn = body?.length ?? 0;
      if (error !== undefined) exchange.error = error instanceof Error ? error.message : String(error);
      body?.cancel();
      // Stop the call unless it ended well (it may still run after a failed read).
      if (outcome !== "ok") controller.abort(error ?? new DOMException("The response ended", "AbortError"));
      end();
    };
    if (first === null) {
      // A clean end without output: the status decides (the caller ends the exchange).
      body?.cancel();
      try {
        await done;
      } catch (error) {
        const status = GrpcError.from(error);
        exchange.error = status.message;
        return _textResponse(httpStatusFromGrpc(status.code), _describe(status, repository));
      }
      return new Response(null, { status: 200, headers });
    }
    const stream = new ReadableStream<Uint8Array>({
      start(stream) {
        stream.enqueue(first!);
        first = null;
      },
      async pull(stream) {
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await reader.read();
        } catch (error) {
          finish(signal.aborted ? "aborted" : "error", error);
          stream.error(error);
          return;
        }
        if (!result.done) {
          exchange.bytesOut += result.value.byteLength;
          stream.enqueue(result.value);
          return;
        }
        try {
          await done;
        } catch (error) {
          // The output ended but the call failed: cut the response so git sees an error.
          finish("error", error);
          stream.error(error);
          return;
        }
        finish("ok");
        stream.close();
      },
      cancel(reason) {
        // The client went away (or Deno.serve gave up on the connection).
        void reader.cancel(reason).catch(() => {});
        finish("cancelled", reason ?? "client went away");
      },
    });
    exchange.streaming = true;
    return new Response(stream, { status: 200, headers });
  }

  /** Runs attempts until one produces output, or returns the final error. */
  async #attempts(
    route: GitHttpRoute,
    call: UploadPackCall,
    body: _ReplayBody | null,
    exchange: _Exchange,
    signal: AbortSignal,
  ): Promise<_Started | GrpcError> {
    const { retry, upstream, transport } = this.#o;
    for (let attempt = 1;; attempt++) {
      exchange.attempts = attempt;
      let error: GrpcError;
      let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
      try {
        const client = await upstream.client(transport, { signal });
        let output: ReadableStream<Uint8Array>;
        let done: Promise<unknown>;
        if (route.service === "info-refs") {
          output = client.infoRefsUploadPack(route.repository, call);
          done = Promise.resolve();
        } else {
          ({ body: output, done } = client.postUploadPack(route.repository, body!.stream(), {
            ...call,
            transport,
          }));
        }
        done.catch(() => {});
        reader = output.getReader();
        const read = reader.read();
        read.catch(() => {});
        // The first output, or the call's failure if that comes first (a sidechannel
        // the server never opened has no output to fail).
        const first = await Promise.race([read, done.then(() => _never)]);
        if (!first.done) return { first: first.value, reader, done };
        return { first: null, reader, done };
      } catch (reason) {
        error = GrpcError.from(signal.aborted ? signal.reason : reason);
        void reader?.cancel(error).catch(() => {});
      }
      const replayable = body === null || body.replayable;
      if (
        signal.aborted || attempt >= retry.maxAttempts || !replayable ||
        !retry.retryableStatuses.includes(error.code)
      ) {
        return error;
      }
      try {
        await _sleep(retryBackoff(retry, attempt, this.#o.random), signal);
      } catch {
        return GrpcError.from(signal.reason);
      }
    }
  }
}
