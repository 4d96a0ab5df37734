/**
 * A typed client for Gitaly's upload-pack RPCs: the advertisement, the fetch over three
 * transports (plain gRPC streaming, sidechannel, PostUploadPackV3) and the SSH fetch, as
 * byte streams, over connections the caller provides.
 *
 * @module
 */

import { create } from "@bufbuild/protobuf";
import type { BackchannelClient } from "../backchannel/client.ts";
import { _rawResponseBytes, type GrpcClient, type GrpcStreamCall } from "../grpc/client.ts";
import type { Metadata } from "../grpc/metadata.ts";
import { GrpcError, Status } from "../grpc/status.ts";
import { parseSideband } from "../pktline/sideband.ts";
import { readPkts } from "../pktline/scanner.ts";
import { callWithSidechannel } from "../sidechannel/call.ts";
import type { SidechannelClientConn } from "../sidechannel/conn.ts";
import { SidechannelError } from "../sidechannel/errors.ts";
import type { SidechannelRegistry } from "../sidechannel/registry.ts";
import {
  _encodeV3Header,
  _plainStats,
  _POST_UPLOAD_PACK_V3,
  _repositoryMessage,
  _SMART_HTTP,
  _SSH,
} from "./_gitaly_methods.ts";
import {
  InfoRefsRequestSchema,
  type PostUploadPackRequest,
  PostUploadPackRequestSchema,
  type PostUploadPackResponse as _PostUploadPackResponseMessage,
  PostUploadPackWithSidechannelRequestSchema,
} from "./gen/smarthttp_pb.ts";
import { SSHUploadPackWithSidechannelRequestSchema } from "./gen/ssh_pb.ts";

/**
 * How a fetch's bytes travel between the client and the storage server:
 *
 * - `"sidechannel"`: `PostUploadPackWithSidechannel`, the bodies on a yamux stream the
 *   server opens back over a backchannel connection (Gitaly's production path);
 * - `"v3"`: `PostUploadPackV3`, raw bytes as gRPC messages of plain HTTP/2
 *   (`application/grpc+raw`; Gitaly's unmerged proof of concept);
 * - `"grpc"`: `PostUploadPack`, protobuf `data` messages both ways (the removed
 *   original, the slow baseline).
 *
 * @example
 * ```ts
 * import type { GitalyTransport } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const transports: GitalyTransport[] = ["sidechannel", "v3", "grpc"];
 * assert.equal(transports.length, 3);
 * ```
 */
export type GitalyTransport = "sidechannel" | "v3" | "grpc";

/**
 * A repository on a storage server (the fields of Gitaly's `Repository` message that a
 * fetch uses).
 *
 * @example
 * ```ts
 * import type { GitalyRepository } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const repo: GitalyRepository = { storageName: "default", relativePath: "group/project.git", glRepository: "project-1" };
 * assert.equal(repo.storageName, "default");
 * ```
 */
export interface GitalyRepository {
  /** The storage name (`storage_name`). */
  storageName: string;
  /** The path below the storage root (`relative_path`). */
  relativePath: string;
  /** GitLab's repository identifier, e.g. `project-1` (`gl_repository`). */
  glRepository?: string;
  /** GitLab's project path, for logs (`gl_project_path`). */
  glProjectPath?: string;
}

/**
 * Options of one upload-pack RPC.
 *
 * @example
 * ```ts
 * import type { UploadPackCall } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const call: UploadPackCall = { gitProtocol: "version=2", gitConfigOptions: ["uploadpack.allowFilter=true"], timeout: 60_000 };
 * assert.equal(call.gitProtocol, "version=2");
 * ```
 */
export interface UploadPackCall {
  /**
   * The client's `Git-Protocol` (`version=2`), passed to git as `GIT_PROTOCOL`.
   * @default {""}
   */
  gitProtocol?: string;
  /**
   * `git -c` options for this fetch, as `key=value`.
   * @default {[]}
   */
  gitConfigOptions?: readonly string[];
  /**
   * Aborting cancels the RPC (the server stops git); the streams and `done` fail with
   * `CANCELLED`.
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * Request metadata (e.g. `authorization`, correlation ids).
   * @default {[]}
   */
  metadata?: Metadata;
  /**
   * Deadline in milliseconds (`grpc-timeout`); then `DEADLINE_EXCEEDED`.
   * @default {undefined}
   */
  timeout?: number;
}

/**
 * Options of {@linkcode GitalyClient.postUploadPack}: an {@linkcode UploadPackCall} and its transport.
 *
 * @example
 * ```ts
 * import type { PostUploadPackCall } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const call: PostUploadPackCall = { transport: "v3", gitProtocol: "version=2", signal: AbortSignal.timeout(60_000) };
 * assert.equal(call.transport, "v3");
 * ```
 */
export interface PostUploadPackCall extends UploadPackCall {
  /** How the bytes travel (see {@linkcode GitalyTransport}). */
  transport: GitalyTransport;
}

/**
 * What the client asked for, counted by the server while git read the request (Gitaly's
 * `PackfileNegotiationStatistics`), with plain numbers.
 *
 * @example
 * ```ts
 * import type { PackfileNegotiationStats } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const stats: PackfileNegotiationStats = { payloadSize: 67, packets: 2, caps: ["multi_ack"], wants: 1, haves: 0, shallows: 0, deepen: "", filter: "" };
 * assert.equal(stats.wants, 1);
 * ```
 */
export interface PackfileNegotiationStats {
  /** Bytes of all packet payloads. */
  payloadSize: number;
  /** Packets before `done`. */
  packets: number;
  /** Capabilities of the first `want` (protocol v0/v1). */
  caps: string[];
  /** `want` lines. */
  wants: number;
  /** `have` lines. */
  haves: number;
  /** `shallow` lines. */
  shallows: number;
  /** The last `deepen*` line's argument, or `""`. */
  deepen: string;
  /** The filter spec, or `""`. */
  filter: string;
}

/**
 * A fetch in progress ({@linkcode GitalyClient.postUploadPack}).
 *
 * - `body`: git's response (the smart-HTTP `git-upload-pack` result), with backpressure
 *   to the server. It closes only once the RPC ended with OK; otherwise it errors with
 *   the RPC's {@linkcode GrpcError} after the bytes the server sent before failing (for
 *   example git's `ERR` packet). Cancelling it cancels the RPC.
 * - `done`: settles with the RPC: the negotiation statistics (sidechannel), `null` for
 *   the `grpc` and `v3` transports (their responses carry none); rejects with the
 *   {@linkcode GrpcError}. It waits for `body` to be read to its end.
 *
 * @example
 * ```ts
 * import type { PostUploadPackResponse } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const response: PostUploadPackResponse = { body: new Response("0008NAK\n").body!, done: Promise.resolve(null) };
 * assert.equal(await new Response(response.body).text(), "0008NAK\n");
 * assert.equal(await response.done, null);
 * ```
 */
export interface PostUploadPackResponse {
  /** git's output. */
  readonly body: ReadableStream<Uint8Array>;
  /** The outcome. */
  readonly done: Promise<PackfileNegotiationStats | null>;
}

/**
 * An SSH fetch in progress ({@linkcode GitalyClient.sshUploadPack}): git's stdout
 * (sideband band 1) and stderr (band 2), both closed once the RPC ended with OK or
 * errored with its {@linkcode GrpcError}, and `done` with the statistics. Read both
 * streams concurrently: stderr buffers up to 1 MiB unread, then the response waits.
 *
 * @example
 * ```ts
 * import type { SshUploadPackResponse } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const stats = { payloadSize: 0, packets: 0, caps: [], wants: 0, haves: 0, shallows: 0, deepen: "", filter: "" };
 * const response: SshUploadPackResponse = { stdout: new Response("").body!, stderr: new Response("").body!, done: Promise.resolve(stats) };
 * assert.equal((await response.done).packets, 0);
 * ```
 */
export interface SshUploadPackResponse {
  /** git's stdout. */
  readonly stdout: ReadableStream<Uint8Array>;
  /** git's stderr (progress and errors). */
  readonly stderr: ReadableStream<Uint8Array>;
  /** The negotiation statistics, or the RPC's {@linkcode GrpcError}. */
  readonly done: Promise<PackfileNegotiationStats>;
}

/**
 * The connections a {@linkcode GitalyClient} uses; give the ones the transports you call
 * need.
 *
 * @example
 * ```ts
 * import type { GitalyConnections } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const none: GitalyConnections = {};
 * assert.equal(none.grpc, undefined);
 * ```
 */
export interface GitalyConnections {
  /**
   * A plain gRPC connection: `InfoRefsUploadPack` and the `grpc` transport (and `v3`
   * when there is no `v3` connection). Without it, the backchannel's stream-1 client
   * serves these.
   */
  grpc?: GrpcClient;
  /**
   * A multiplexed connection and the registry of its `sidechannel` handshaker: needed
   * for the `sidechannel` transport and for {@linkcode GitalyClient.sshUploadPack}.
   */
  backchannel?: { client: BackchannelClient; registry: SidechannelRegistry };
  /** A connection for `PostUploadPackV3` (e.g. to the storage server's separate V3 port). */
  v3?: GrpcClient;
}

const _STDERR_BUFFER = 1024 * 1024;

/** A GrpcError for anything an RPC or a sidechannel can fail with. */
function _grpcError(error: unknown): GrpcError {
  if (error instanceof GrpcError) return error;
  if (error instanceof SidechannelError) return error.toGrpcError();
  return GrpcError.from(error, Status.UNKNOWN);
}

function _deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** The gRPC call options from an {@linkcode UploadPackCall}. */
function _callOptions(call: UploadPackCall, signal: AbortSignal | undefined, metadata: Metadata = []) {
  return {
    metadata: [...(call.metadata ?? []), ...metadata],
    ...(signal === undefined ? {} : { signal }),
    ...(call.timeout === undefined ? {} : { timeout: call.timeout }),
  };
}

/**
 * Sends `first` then one message per chunk of `body`, then half-closes. A failing
 * `body` cancels the call; a call that ended first stops reading `body`.
 */
async function _sendRequests<T>(
  call: GrpcStreamCall<T, unknown>,
  first: T,
  body: ReadableStream<Uint8Array>,
  message: (chunk: Uint8Array) => T,
): Promise<void> {
  const writer = call.requests.getWriter();
  const reader = body.getReader();
  let sent = false;
  // A call that ends while the body is still awaited (the server failed, or finished
  // without it) does not need it any more.
  void call.done.catch(() => {}).finally(() => {
    if (!sent) void reader.cancel().catch(() => {});
  });
  try {
    await writer.write(first);
    for (;;) {
      let read: ReadableStreamReadResult<Uint8Array>;
      try {
        read = await reader.read();
      } catch (error) {
        call.cancel(error);
        return;
      }
      if (read.done) break;
      if (read.value.byteLength > 0) await writer.write(message(read.value));
    }
    sent = true;
    await writer.close();
  } catch {
    // The call ended (its outcome is in `done`): stop reading the body.
    sent = true;
    await reader.cancel().catch(() => {});
  } finally {
    reader.releaseLock();
    writer.releaseLock();
  }
}

/** A byte stream of the `data` of response messages. */
function _dataOf<T>(
  responses: ReadableStream<T>,
  data: (message: T) => Uint8Array,
): ReadableStream<Uint8Array> {
  const reader = responses.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        let read: ReadableStreamReadResult<T>;
        try {
          read = await reader.read();
        } catch (error) {
          controller.error(_grpcError(error));
          return;
        }
        if (read.done) {
          controller.close();
          return;
        }
        const bytes = data(read.value);
        if (bytes.byteLength > 0) {
          controller.enqueue(bytes);
          return;
        }
      }
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

/**
 * One RPC with a sidechannel, as Gitaly's clients run it: the callback writes `input`
 * (framed, then `0000`) while the caller reads the response from `conn`, and ends when
 * {@linkcode _SidechannelRun.finishReading} is called (the response was read to its end,
 * or abandoned).
 */
class _SidechannelRun<R> {
  /** Resolves with the conn once the server opened it; never rejects. */
  readonly conn: Promise<SidechannelClientConn>;
  /** The RPC's outcome (waiter errors after OK included), as a GrpcError on failure. */
  readonly outcome: Promise<R>;
  readonly #controller = new AbortController();
  /** Resolves when reading is over, with its failure (the callback's error) or undefined. */
  readonly #finished = _deferred<unknown>();
  readonly #conn = _deferred<SidechannelClientConn>();
  #current: SidechannelClientConn | undefined;

  constructor(
    registry: SidechannelRegistry,
    input: ReadableStream<Uint8Array>,
    call: UploadPackCall,
    invoke: (options: { metadata: Metadata; signal?: AbortSignal; timeout?: number }) => Promise<R>,
  ) {
    this.conn = this.#conn.promise;
    const signal = call.signal === undefined
      ? this.#controller.signal
      : AbortSignal.any([call.signal, this.#controller.signal]);
    const onAbort = () => {
      this.#current?.reset(signal.reason);
      this.#finished.resolve(undefined);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    this.outcome = callWithSidechannel(registry, async (conn) => {
      this.#current = conn;
      if (signal.aborted) conn.reset(signal.reason);
      this.#conn.resolve(conn);
      const stopInput = this.#pump(conn, input);
      const failure = await this.#finished.promise;
      stopInput();
      // Gitaly's rule: a failed read is the callback's error, reported if the RPC succeeded.
      if (failure !== undefined) throw failure;
    }, (metadata) => invoke(_callOptions(call, signal, metadata))).then(
      (result) => result,
      (error) => {
        throw _grpcError(error);
      },
    ).finally(() => {
      signal.removeEventListener("abort", onAbort);
      // The sidechannel never opened (a validation error, say): the input is not needed.
      if (this.#current === undefined && !input.locked) void input.cancel().catch(() => {});
    });
    this.outcome.catch(() => {});
  }

  /**
   * The response was read to its end, or reading failed: let the callback return (and
   * fail with `failure`, which `outcome` reports if the RPC itself succeeds).
   *
   * @param failure why reading stopped early, if it did
   */
  finishReading(failure?: unknown): void {
    this.#finished.resolve(failure);
  }

  /** Cancels the RPC and resets the sidechannel. */
  abort(reason: unknown): void {
    this.#controller.abort(reason);
  }

  /** Copies `input` to the sidechannel, then `0000`; returns a function that stops it. */
  #pump(conn: SidechannelClientConn, input: ReadableStream<Uint8Array>): () => void {
    const reader = input.getReader();
    let stopped = false;
    void (async () => {
      try {
        for (;;) {
          let read: ReadableStreamReadResult<Uint8Array>;
          try {
            read = await reader.read();
          } catch (error) {
            if (!stopped) this.abort(error);
            return;
          }
          if (read.done || stopped) break;
          if (read.value.byteLength > 0) await conn.write(read.value);
        }
        if (!stopped) await conn.closeWrite();
      } catch {
        // The sidechannel failed: the response side reports it.
      } finally {
        if (stopped) await reader.cancel().catch(() => {});
        reader.releaseLock();
      }
    })();
    return () => {
      if (stopped) return;
      stopped = true;
      void reader.cancel().catch(() => {});
    };
  }
}

/**
 * A client for Gitaly's upload-pack RPCs (`SmartHTTPService`, `SSHService`) that turns
 * them into byte streams, over connections the caller dials and owns.
 *
 * - {@linkcode GitalyClient.infoRefsUploadPack}: the smart-HTTP advertisement.
 * - {@linkcode GitalyClient.postUploadPack}: a smart-HTTP fetch over the chosen
 *   {@linkcode GitalyTransport}.
 * - {@linkcode GitalyClient.sshUploadPack}: an SSH fetch (always a sidechannel).
 *
 * Everything streams with backpressure: a slow reader of a response slows the server's
 * git. Failures are {@linkcode GrpcError}s with Gitaly's codes, on the response streams
 * and on `done`. The sidechannel rules are Gitaly's client rules: when the RPC fails,
 * its error wins and a sidechannel that never opened is not an error; when it succeeds,
 * a failure of the sidechannel (or one that never opened) is reported.
 *
 * @example Fetch from a storage server over each transport
 * ```ts
 * import { BackchannelClient, GitalyClient, GrpcClient, SidechannelRegistry, StorageServer } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * const git = (...args: string[]) => new Deno.Command("git", { args, env: { GIT_CONFIG_GLOBAL: "/dev/null" } }).output();
 * await git("init", "-q", "--bare", `${root}/a.git`);
 * await git("-C", `${root}/a.git`, "-c", "user.name=a", "-c", "user.email=a@b", "commit-tree", "-m", "x", "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
 *
 * await using server = await StorageServer.start({ storages: { default: root }, port: 0 });
 * const registry = new SidechannelRegistry();
 * await using backchannel = await BackchannelClient.dial({ port: server.addr.port, handshakers: { sidechannel: registry } });
 * await using grpc = await GrpcClient.connect({ port: server.addr.port });
 * const client = new GitalyClient({ grpc, backchannel: { client: backchannel, registry } });
 * const repo = { storageName: "default", relativePath: "a.git" };
 *
 * // protocol v2 ls-refs: the repository has no branches yet
 * const request = new TextEncoder().encode("0014command=ls-refs\n0000");
 * for (const transport of ["sidechannel", "v3", "grpc"] as const) {
 *   const response = client.postUploadPack(repo, ReadableStream.from([request]), { transport, gitProtocol: "version=2" });
 *   assert.equal(await new Response(response.body).text(), "0000");
 *   const stats = await response.done;
 *   assert.equal(stats === null, transport !== "sidechannel");
 * }
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export class GitalyClient {
  readonly #grpc: GrpcClient | undefined;
  readonly #backchannel: { client: BackchannelClient; registry: SidechannelRegistry } | undefined;
  readonly #v3: GrpcClient | undefined;

  /**
   * Creates a client over connections the caller owns (and closes).
   *
   * @param connections the connections for the transports to be used
   */
  constructor(connections: GitalyConnections) {
    this.#grpc = connections.grpc;
    this.#backchannel = connections.backchannel;
    this.#v3 = connections.v3;
  }

  #plain(what: string): GrpcClient {
    const client = this.#grpc ?? this.#backchannel?.client.grpc;
    if (client === undefined) {
      throw new TypeError(`Cannot call ${what}: the GitalyClient has no grpc or backchannel connection`);
    }
    return client;
  }

  #multiplexed(what: string): { client: BackchannelClient; registry: SidechannelRegistry } {
    if (this.#backchannel === undefined) {
      throw new TypeError(`Cannot call ${what}: the GitalyClient has no backchannel connection`);
    }
    return this.#backchannel;
  }

  /**
   * The smart-HTTP advertisement (`GET info/refs?service=git-upload-pack`) of a
   * repository: `InfoRefsUploadPack`'s `data`, as one byte stream.
   *
   * @param repo the repository
   * @param call protocol (`version=2` gives the v2 capability advertisement), config,
   * signal, metadata, deadline
   * @returns the advertisement; errors with the RPC's {@linkcode GrpcError}
   * @throws {TypeError} Without a `grpc`, `backchannel` or `v3` connection.
   */
  infoRefsUploadPack(repo: GitalyRepository, call: UploadPackCall = {}): ReadableStream<Uint8Array> {
    const client = this.#grpc ?? this.#backchannel?.client.grpc ?? this.#v3;
    if (client === undefined) {
      throw new TypeError("Cannot call InfoRefsUploadPack: the GitalyClient has no connection");
    }
    const request = create(InfoRefsRequestSchema, {
      repository: _repositoryMessage(repo),
      gitConfigOptions: [...(call.gitConfigOptions ?? [])],
      gitProtocol: call.gitProtocol ?? "",
    });
    const stream = client.serverStream(
      _SMART_HTTP.infoRefsUploadPack,
      request,
      _callOptions(call, call.signal),
    );
    return _dataOf(stream.responses, (m) => m.data);
  }

  /**
   * A smart-HTTP fetch (`POST git-upload-pack`): sends `body` (the git client's
   * request) to git on the storage server and streams git's response back.
   *
   * - `sidechannel`: `PostUploadPackWithSidechannel`; the request is framed onto the
   *   sidechannel as it is read, the response is read from the sidechannel straight
   *   into the reader's buffer (BYOB), and `done` has the statistics.
   * - `v3`: `PostUploadPackV3` (`application/grpc+raw`) on the `v3` connection (or the
   *   plain one): the request parameters as the first message, then `body`'s chunks as
   *   raw messages; the response messages' bytes are the body, a byte stream (BYOB reads
   *   are copied straight from the HTTP/2 stream into the reader's buffer).
   * - `grpc`: `PostUploadPack`, protobuf `data` messages both ways.
   *
   * `body` is read as the connection accepts it; if the server finishes (or fails)
   * before it is read to the end, it is cancelled. A failing `body` cancels the RPC.
   *
   * @param repo the repository
   * @param body the git client's request body (already decompressed)
   * @param call the transport, protocol, config, signal, metadata, deadline
   * @returns the response body and the outcome
   * @throws {TypeError} If the transport's connection is missing or unknown.
   */
  postUploadPack(
    repo: GitalyRepository,
    body: ReadableStream<Uint8Array>,
    call: PostUploadPackCall,
  ): PostUploadPackResponse {
    switch (call.transport) {
      case "sidechannel":
        return this.#withSidechannel(repo, body, call);
      case "v3":
        return this.#v3Fetch(repo, body, call);
      case "grpc":
        return this.#grpcFetch(repo, body, call);
      default:
        throw new TypeError(
          `Cannot call PostUploadPack: unknown transport ${JSON.stringify(call.transport)}`,
        );
    }
  }

  #grpcFetch(
    repo: GitalyRepository,
    body: ReadableStream<Uint8Array>,
    call: UploadPackCall,
  ): PostUploadPackResponse {
    const client = this.#plain("PostUploadPack");
    const stream = client.stream<PostUploadPackRequest, _PostUploadPackResponseMessage>(
      _SMART_HTTP.postUploadPack,
      _callOptions(call, call.signal),
    );
    void _sendRequests(
      stream,
      create(PostUploadPackRequestSchema, {
        repository: _repositoryMessage(repo),
        gitConfigOptions: [...(call.gitConfigOptions ?? [])],
        gitProtocol: call.gitProtocol ?? "",
      }),
      body,
      (data) => create(PostUploadPackRequestSchema, { data }),
    );
    return {
      body: _dataOf(stream.responses, (m) => m.data),
      done: stream.done.then(() => null, (error) => Promise.reject(_grpcError(error))),
    };
  }

  #v3Fetch(
    repo: GitalyRepository,
    body: ReadableStream<Uint8Array>,
    call: UploadPackCall,
  ): PostUploadPackResponse {
    const client = this.#v3 ?? this.#plain("PostUploadPackV3");
    const stream = client.stream(_POST_UPLOAD_PACK_V3, _callOptions(call, call.signal));
    const header = _encodeV3Header({
      repository: _repositoryMessage(repo),
      gitConfigOptions: [...(call.gitConfigOptions ?? [])],
      gitProtocol: call.gitProtocol ?? "",
    });
    void _sendRequests(stream, header, body, (chunk) => chunk);
    return {
      // Errors are GrpcErrors already; BYOB reads land straight in the reader's buffer.
      body: _rawResponseBytes(stream),
      done: stream.done.then(() => null, (error) => Promise.reject(_grpcError(error))),
    };
  }

  #withSidechannel(
    repo: GitalyRepository,
    body: ReadableStream<Uint8Array>,
    call: UploadPackCall,
  ): PostUploadPackResponse {
    const { client, registry } = this.#multiplexed("PostUploadPackWithSidechannel");
    const request = create(PostUploadPackWithSidechannelRequestSchema, {
      repository: _repositoryMessage(repo),
      gitConfigOptions: [...(call.gitConfigOptions ?? [])],
      gitProtocol: call.gitProtocol ?? "",
    });
    const run = new _SidechannelRun(
      registry,
      body,
      call,
      (options) => client.grpc.unary(_SMART_HTTP.postUploadPackWithSidechannel, request, options),
    );
    const done = run.outcome.then((response) => _plainStats(response.packfileNegotiationStatistics));
    done.catch(() => {});
    const noConn = run.outcome.then(() => null, () => null);
    const output: ReadableStream<Uint8Array> = new ReadableStream({
      type: "bytes",
      autoAllocateChunkSize: 64 * 1024,
      async pull(controller) {
        const request = controller.byobRequest!;
        const view = request.view!;
        const conn = await Promise.race([run.conn, noConn]);
        let n: number | null = null;
        let failure: unknown = undefined;
        if (conn !== null) {
          try {
            n = await conn.read(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
          } catch (error) {
            failure = error;
          }
        }
        if (n !== null) {
          request.respond(n);
          return;
        }
        // The end of the sidechannel (or its failure): the RPC's outcome decides.
        run.finishReading(failure);
        try {
          await done;
        } catch (error) {
          controller.error(error);
          return;
        }
        controller.close();
        controller.byobRequest?.respond(0);
      },
      cancel(reason) {
        run.abort(reason);
      },
    }, { highWaterMark: 0 });
    return { body: output, done };
  }

  /**
   * An SSH fetch (`SSHUploadPackWithSidechannel`): `stdin` (the git client's side of
   * the conversation) goes to `git upload-pack` on the storage server; its stdout and
   * stderr come back demultiplexed from sideband-64k.
   *
   * `stdin` is read until it ends (then `0000` tells the server) or until the response
   * ends (then it is cancelled): a git client over SSH keeps its side open until it has
   * the pack. A failing `stdin` cancels the RPC.
   *
   * @param repo the repository
   * @param stdin the git client's output
   * @param call protocol, config, signal, metadata, deadline
   * @returns stdout, stderr and the outcome
   * @throws {TypeError} Without a `backchannel` connection.
   */
  sshUploadPack(
    repo: GitalyRepository,
    stdin: ReadableStream<Uint8Array>,
    call: UploadPackCall = {},
  ): SshUploadPackResponse {
    const { client, registry } = this.#multiplexed("SSHUploadPackWithSidechannel");
    const request = create(SSHUploadPackWithSidechannelRequestSchema, {
      repository: _repositoryMessage(repo),
      gitConfigOptions: [...(call.gitConfigOptions ?? [])],
      gitProtocol: call.gitProtocol ?? "",
    });
    const run = new _SidechannelRun(
      registry,
      stdin,
      call,
      (options) => client.grpc.unary(_SSH.sSHUploadPackWithSidechannel, request, options),
    );
    const done = run.outcome.then((response) => _plainStats(response.packfileNegotiationStatistics));
    done.catch(() => {});
    const stdout = new TransformStream<Uint8Array, Uint8Array>(undefined, { highWaterMark: 1 }, {
      highWaterMark: 0,
    });
    const stderr = new TransformStream<Uint8Array, Uint8Array>(
      undefined,
      { highWaterMark: 1 },
      new ByteLengthQueuingStrategy({ highWaterMark: _STDERR_BUFFER }),
    );
    void (async () => {
      const out = stdout.writable.getWriter();
      const err = stderr.writable.getWriter();
      let stderrOpen = true;
      let failure: unknown = undefined;
      const conn = await Promise.race([run.conn, run.outcome.then(() => null, () => null)]);
      if (conn !== null) {
        try {
          for await (const pkt of readPkts(conn.readable)) {
            const { band, data } = parseSideband(pkt);
            if (data.byteLength === 0) continue;
            if (band === 1) {
              try {
                await out.write(data);
              } catch (error) {
                run.abort(error); // the consumer cancelled stdout: cancel the RPC
                throw error;
              }
            } else if (band === 2) {
              if (stderrOpen) await err.write(data).catch(() => (stderrOpen = false));
            } else {
              throw new GrpcError(Status.INTERNAL, `Cannot read SSH response: unexpected band: ${band}`);
            }
          }
        } catch (error) {
          failure = error;
        }
      }
      run.finishReading(failure);
      let outcome: unknown = undefined;
      try {
        await done;
      } catch (error) {
        outcome = error;
      }
      if (outcome === undefined) {
        await Promise.all([out.close().catch(() => {}), err.close().catch(() => {})]);
      } else {
        await Promise.all([out.abort(outcome).catch(() => {}), err.abort(outcome).catch(() => {})]);
      }
    })();
    return { stdout: stdout.readable, stderr: stderr.readable, done };
  }
}
