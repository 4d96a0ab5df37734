/**
 * The front on `Deno.serve`: listening, HTTPS, and a bounded drain on shutdown.
 *
 * @module
 */

import { GitHttpFront, type GitHttpFrontOptions } from "./front.ts";

/** Options for {@linkcode GitHttpServer.start}: where to listen, plus the front's. */
export interface GitHttpServerOptions extends GitHttpFrontOptions {
  /**
   * The interface to listen on.
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * The port; 0 picks a free one (see `addr`).
   * @default {0}
   */
  port?: number;
  /** PEM certificate chain: serve HTTPS (with `key`). */
  cert?: string;
  /** PEM private key for `cert`. */
  key?: string;
  /**
   * How long {@linkcode GitHttpServer.shutdown} lets responses in flight finish before
   * cutting them, in milliseconds.
   * @default {30000}
   */
  drainTimeout?: number;
  /** Aborting starts {@linkcode GitHttpServer.shutdown}. */
  signal?: AbortSignal;
}

/**
 * A {@linkcode GitHttpFront} served by `Deno.serve` (HTTP/1.1, and HTTP/2 with TLS).
 *
 * {@linkcode GitHttpServer.shutdown} answers new requests with 503, lets the clones in
 * flight finish for up to `drainTimeout`, then cuts the rest (their calls are cancelled,
 * so the storage server stops their git processes) and closes every connection.
 *
 * @example A front whose upstream is unreachable answers 503
 * ```ts
 * import { GitalyUpstream, GitHttpServer } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const port = probe.addr.port;
 * probe.close();
 * await using upstream = new GitalyUpstream({ port, connectTimeout: 1000 });
 * await using server = await GitHttpServer.start({
 *   upstream,
 *   retry: { maxAttempts: 1, initialBackoff: 0, maxBackoff: 0, backoffMultiplier: 1, retryableStatuses: [] },
 * });
 * const response = await fetch(`${server.url}/foo.git/info/refs?service=git-upload-pack`);
 * assert.equal(response.status, 503);
 * assert.match(await response.text(), /unavailable/);
 * ```
 */
export class GitHttpServer implements AsyncDisposable {
  /** The front serving the requests. */
  readonly front: GitHttpFront;
  /** The address listened on. */
  readonly addr: Deno.NetAddr;
  /** `http://host:port` (or `https://`), for clone URLs. */
  readonly url: string;
  /** Settles when the server has stopped. */
  readonly finished: Promise<void>;
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #stop: AbortController;
  readonly #drainTimeout: number;
  #draining = { on: false };
  #pending = new Set<Promise<void>>();
  #shutdown: Promise<void> | null = null;

  private constructor(
    front: GitHttpFront,
    server: Deno.HttpServer<Deno.NetAddr>,
    stop: AbortController,
    options: GitHttpServerOptions,
  ) {
    this.front = front;
    this.#server = server;
    this.#stop = stop;
    this.addr = server.addr;
    this.#drainTimeout = options.drainTimeout ?? 30_000;
    const host = this.addr.hostname.includes(":") ? `[${this.addr.hostname}]` : this.addr.hostname;
    this.url = `${options.cert === undefined ? "http" : "https"}://${host}:${this.addr.port}`;
    this.finished = server.finished;
    options.signal?.addEventListener("abort", () => void this.shutdown(), { once: true });
  }

  /**
   * Starts listening.
   *
   * @param options where to listen, TLS, drain bound, and the front's options
   * @returns the running server
   * @throws {Deno.errors.AddrInUse} If the port is taken.
   * @throws {TypeError} For a certificate without a key, and the front's option errors.
   */
  static start(options: GitHttpServerOptions): Promise<GitHttpServer> {
    if ((options.cert === undefined) !== (options.key === undefined)) {
      return Promise.reject(new TypeError("Cannot start GitHttpServer: cert and key go together"));
    }
    const drain = options.drainTimeout ?? 30_000;
    if (!Number.isInteger(drain) || drain < 0) {
      return Promise.reject(
        new RangeError(`Cannot start GitHttpServer: drainTimeout must be >= 0, received ${drain}`),
      );
    }
    let front: GitHttpFront;
    try {
      front = new GitHttpFront(options);
    } catch (error) {
      return Promise.reject(error);
    }
    const listening = Promise.withResolvers<void>();
    // Deno.serve's graceful shutdown() waits for every response, even one whose client
    // stopped reading; aborting its signal closes every connection. So draining is done
    // here (new requests get 503, in-flight ones run), and the end is an abort.
    const stop = new AbortController();
    const draining = { on: false };
    const pending = new Set<Promise<void>>();
    let server: Deno.HttpServer<Deno.NetAddr>;
    try {
      server = Deno.serve({
        hostname: options.hostname ?? "127.0.0.1",
        port: options.port ?? 0,
        signal: stop.signal,
        ...(options.cert === undefined ? {} : { cert: options.cert, key: options.key! }),
        onListen: () => listening.resolve(),
        onError: () => new Response("Cannot serve request: internal error\n", { status: 500 }),
      }, (request, info) => {
        if (!draining.on) {
          // In flight until the response is delivered (not just produced): the drain
          // must not close a connection with the end of a response still unsent.
          const delivered = info.completed.catch(() => {});
          pending.add(delivered);
          void delivered.then(() => pending.delete(delivered));
          return front.fetch(request);
        }
        void request.body?.cancel().catch(() => {});
        return new Response("The server is shutting down, try again later\n", {
          status: 503,
          headers: { "content-type": "text/plain; charset=utf-8", connection: "close", "retry-after": "1" },
        });
      });
    } catch (error) {
      return Promise.reject(error);
    }
    return listening.promise.then(() => {
      const instance = new GitHttpServer(front, server, stop, options);
      instance.#draining = draining;
      instance.#pending = pending;
      return instance;
    });
  }

  /**
   * Drains and stops: new requests get 503, responses in flight may finish for up to the
   * drain timeout (or until `signal` aborts), then the rest are cut (their calls
   * cancelled) and every connection is closed. Resolves once the server has stopped.
   * Idempotent.
   *
   * @param options ends the drain early
   * @returns resolves when stopped
   */
  shutdown(options: { signal?: AbortSignal } = {}): Promise<void> {
    this.#shutdown ??= (async () => {
      this.#draining.on = true;
      const cut = Promise.withResolvers<void>();
      const timer = setTimeout(cut.resolve, this.#drainTimeout);
      const onAbort = () => cut.resolve();
      options.signal?.addEventListener("abort", onAbort, { once: true });
      try {
        const delivered = (async () => {
          while (this.#pending.size > 0) await Promise.all([...this.#pending]);
        })();
        await Promise.race([Promise.all([this.front.idle(), delivered]), cut.promise]);
      } finally {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      }
      this.front.abort(new DOMException("The server is shutting down", "AbortError"));
      this.#stop.abort();
      await this.#server.finished;
    })();
    return this.#shutdown;
  }

  /** Same as {@linkcode GitHttpServer.shutdown}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }
}
