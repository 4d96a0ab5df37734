/**
 * The gRPC client: calls over one HTTP/2 connection, dialled (h2c or TLS with ALPN) or
 * over any duplex (a yamux stream).
 *
 * @module
 */

import { Http2Connection } from "../http2/connection.ts";
import { Http2Error } from "../http2/errors.ts";
import { _checkedHeaders, type Http2Headers } from "../http2/headers.ts";
import type { Http2ConnectionOptions } from "../http2/options.ts";
import type { Http2Stream } from "../http2/stream.ts";
import { _Lazy } from "../streams/_lazy.ts";
import { fromDenoConn } from "../streams/deno_conn.ts";
import type { Duplex } from "../streams/duplex.ts";
import { _asyncIterator, _MessageReader, _MessageWriter, _Stats } from "./_message_io.ts";
import { _resolveMessageOptions } from "./_options.ts";
import {
  _applyInterceptors,
  type GrpcCall,
  type GrpcInterceptor,
  type GrpcMetadataList,
  type GrpcNext,
  type GrpcPeer,
} from "./call.ts";
import { rawCodec } from "./codec.ts";
import type { Compression } from "./compression.ts";
import { formatGrpcContentType, parseGrpcContentType } from "./content_type.ts";
import { decodeGrpcMessage } from "./message_encoding.ts";
import { decodeBinaryHeader, decodeMetadata, encodeMetadata, type Metadata } from "./metadata.ts";
import type { GrpcMethod, GrpcMethodKind } from "./method.ts";
import { GrpcError, Status, statusFromHttp, statusFromHttp2Error } from "./status.ts";
import { formatGrpcTimeout } from "./timeout.ts";
import { GrpcValues } from "./values.ts";

/**
 * Options for {@linkcode GrpcClient}: gRPC settings plus every HTTP/2 connection option.
 *
 * @example
 * ```ts
 * import { duplexPair, GrpcClient, type GrpcClientOptions, gzipCompression } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const options: GrpcClientOptions = {
 *   authority: "gitaly.internal:8075",
 *   maxReceiveMessageBytes: 16 << 20,
 *   sendCompression: gzipCompression,
 *   initialWindowSize: 8 << 20,
 * };
 * const [a] = duplexPair();
 * const client = new GrpcClient(a, options);
 * assert.equal(client.connection.role, "client");
 * client.abort();
 * await client.closed;
 * ```
 */
export interface GrpcClientOptions extends Http2ConnectionOptions {
  /**
   * The `:authority` of requests. {@linkcode GrpcClient.connect} sets `host:port`.
   * @default {"localhost"}
   */
  authority?: string;
  /**
   * The `:scheme` of requests. {@linkcode GrpcClient.connect} sets `https` for TLS.
   * @default {"http"}
   */
  scheme?: "http" | "https";
  /**
   * Largest response message accepted (after decompression), checked on the envelope's
   * declared length before it is buffered; larger → `RESOURCE_EXHAUSTED`.
   * @default {4194304}
   */
  maxReceiveMessageBytes?: number;
  /**
   * Largest request message sent; larger → `RESOURCE_EXHAUSTED` before anything is sent.
   * @default {4294967295}
   */
  maxSendMessageBytes?: number;
  /**
   * Compress requests with this `grpc-encoding` (every message of 1 KiB or more).
   * @default {undefined}
   */
  sendCompression?: Compression;
  /**
   * Encodings accepted on responses, announced in `grpc-accept-encoding`.
   * @default {[gzipCompression]}
   */
  acceptCompression?: readonly Compression[];
  /**
   * Interceptors around every call, the first outermost.
   * @default {[]}
   */
  interceptors?: readonly GrpcInterceptor[];
  /**
   * The `user-agent` header.
   * @default {"sidechannel-grpc/0.1"}
   */
  userAgent?: string;
  /**
   * The server, as interceptors see it in `call.peer`. {@linkcode GrpcClient.connect}
   * fills the addresses.
   * @default {{ secure: false, values: new GrpcValues() }}
   */
  peer?: GrpcPeer;
}

/**
 * Options for {@linkcode GrpcClient.connect}: where to dial, plus every client option.
 *
 * @example
 * ```ts
 * import { GrpcClient, type GrpcConnectOptions, GrpcError, Status } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const options: GrpcConnectOptions = { hostname: "127.0.0.1", port: listener.addr.port };
 * listener.close(); // nobody listens any more
 * const error = await GrpcClient.connect(options).catch((e) => e);
 * assert.ok(error instanceof GrpcError);
 * assert.equal(error.code, Status.UNAVAILABLE);
 * ```
 */
export interface GrpcConnectOptions extends GrpcClientOptions {
  /**
   * The server's host name or address.
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /** The server's port. */
  port: number;
  /**
   * Dial TLS and negotiate `h2` by ALPN; `caCerts` adds PEM certificates to trust
   * (a self-signed server).
   * @default {false}
   */
  tls?: boolean | { caCerts?: string[] };
  /**
   * Aborts the dial.
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/**
 * Options for one call.
 *
 * @example
 * ```ts
 * import { duplexPair, GrpcClient, type GrpcCallOptions, grpcMethod, GrpcServer, rawCodec, serveGrpcConnection, Status } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const hang = grpcMethod({ service: "demo.Raw", name: "Hang", kind: "unary", request: rawCodec, response: rawCodec });
 * const server = new GrpcServer().handle(hang, (_request, call) =>
 *   new Promise((_, reject) => call.signal.addEventListener("abort", () => reject(call.signal.reason))));
 * const [a, b] = duplexPair();
 * serveGrpcConnection(b, server);
 * await using client = new GrpcClient(a);
 * const options: GrpcCallOptions = { timeout: 20, metadata: [["x-request-id", "42"]] };
 * const error = await client.unary(hang, new Uint8Array(0), options).catch((e) => e);
 * assert.equal(error.code, Status.DEADLINE_EXCEEDED);
 * ```
 */
export interface GrpcCallOptions {
  /**
   * Custom request metadata.
   * @default {[]}
   */
  metadata?: Metadata;
  /**
   * Deadline, in milliseconds from now: sent as `grpc-timeout`; when it passes the call
   * is cancelled (RST_STREAM CANCEL) and fails with `DEADLINE_EXCEEDED`.
   * @default {undefined}
   */
  timeout?: number;
  /**
   * Aborting cancels the call (RST_STREAM CANCEL); it fails with `CANCELLED`.
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * Values for interceptors (`call.values`).
   * @default {new GrpcValues()}
   */
  values?: GrpcValues;
  /**
   * Called with the response header metadata when it arrives (what it throws is ignored).
   * @default {undefined}
   */
  onHeader?: (metadata: Metadata) => void;
  /**
   * Called with the trailer metadata when the status arrives, also for errors (what it
   * throws is ignored).
   * @default {undefined}
   */
  onTrailer?: (metadata: Metadata) => void;
}

/**
 * A streaming call in progress, from {@linkcode GrpcClient.stream} or
 * {@linkcode GrpcClient.serverStream}.
 *
 * - `requests`: write messages (each write resolves once the connection took it, so a
 *   fast producer is paced by flow control); `close()` half-closes.
 * - `responses`: the server's messages, pulled as you read; after the last one it
 *   closes on status OK, or errors with the {@linkcode GrpcError}.
 * - `header`/`trailer`: the response metadata; `done` settles with the status (resolves
 *   on OK, rejects with the `GrpcError`). None of them needs to be observed.
 * - `cancel()`: RST_STREAM(CANCEL); everything fails with `CANCELLED`. Cancelling
 *   `responses` does the same.
 *
 * @typeParam I the request message type
 * @typeParam O the response message type
 *
 * @example A bidi echo
 * ```ts
 * import { duplexPair, GrpcClient, grpcMethod, GrpcServer, type GrpcStreamCall, rawCodec, serveGrpcConnection } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const bidi = grpcMethod({ service: "demo.Raw", name: "Bidi", kind: "bidi_streaming", request: rawCodec, response: rawCodec });
 * const server = new GrpcServer().handle(bidi, (requests) => requests);
 * const [a, b] = duplexPair();
 * serveGrpcConnection(b, server);
 * await using client = new GrpcClient(a);
 * const call: GrpcStreamCall<Uint8Array, Uint8Array> = client.stream(bidi);
 * const writer = call.requests.getWriter();
 * const reader = call.responses.getReader();
 * await writer.write(new Uint8Array([1]));
 * assert.deepEqual((await reader.read()).value, new Uint8Array([1]));
 * await writer.close();
 * assert.equal((await reader.read()).done, true);
 * await call.done;
 * ```
 */
export interface GrpcStreamCall<I, O> {
  /** Request messages to send; closing half-closes the call. */
  readonly requests: WritableStream<I>;
  /** Response messages. */
  readonly responses: ReadableStream<O>;
  /** The response header metadata (empty for a trailers-only response). */
  readonly header: Promise<Metadata>;
  /** The trailer metadata. */
  readonly trailer: Promise<Metadata>;
  /** Resolves when the call ends with status OK; rejects with its {@linkcode GrpcError}. */
  readonly done: Promise<void>;
  /** The call, as interceptors see it (metadata, stats). */
  readonly call: GrpcCall;
  /**
   * Cancels the call.
   *
   * @param reason recorded as the `GrpcError`'s cause
   */
  cancel(reason?: unknown): void;
}

interface _Resolved {
  authority: string;
  scheme: "http" | "https";
  maxReceiveMessageBytes: number;
  maxSendMessageBytes: number;
  sendCompression: Compression | undefined;
  acceptCompression: ReadonlyMap<string, Compression>;
  acceptEncodingHeader: string;
  userAgent: string;
  peer: GrpcPeer;
  /** Request headers without deadline or metadata, by path and codec (checked once, frozen). */
  requestHeaders: Map<string, Http2Headers>;
}

function _resolveGrpcClientOptions(options: GrpcClientOptions): _Resolved {
  const messages = _resolveMessageOptions("GrpcClient", options);
  const scheme = options.scheme ?? "http";
  if (scheme !== "http" && scheme !== "https") {
    throw new TypeError(`Cannot create GrpcClient: scheme must be http or https, received ${scheme}`);
  }
  return {
    ...messages,
    authority: options.authority ?? "localhost",
    scheme,
    userAgent: options.userAgent ?? "sidechannel-grpc/0.1",
    peer: options.peer ?? { secure: false, values: new GrpcValues() },
    requestHeaders: new Map(),
  };
}

function _header(headers: Http2Headers, name: string): string | undefined {
  for (let i = 0; i < headers.length; i++) {
    const field = headers[i]!;
    if (field[0] === name) return field[1];
  }
  return undefined;
}

const _CONTENT_TYPES = new Map<string, string>();

/** `application/grpc` for protobuf (what grpc-go sends), `application/grpc+<name>` otherwise. */
function _contentType(codec: string): string {
  let value = _CONTENT_TYPES.get(codec);
  if (value === undefined) {
    value = formatGrpcContentType(codec === "proto" ? undefined : codec);
    if (_CONTENT_TYPES.size < 64) _CONTENT_TYPES.set(codec, value);
  }
  return value;
}

type _Mode =
  | { t: "unary"; request: unknown }
  | { t: "client"; requests: AsyncIterable<unknown> | Iterable<unknown> }
  | { t: "stream" };

/** The client side of one call. */
class _ClientCall implements GrpcCall {
  readonly side = "client" as const;
  readonly method: GrpcMethod<unknown, unknown>;
  readonly requestMetadata: GrpcMetadataList;
  readonly responseHeader: GrpcMetadataList = [];
  readonly responseTrailer: GrpcMetadataList = [];
  readonly deadline: number | undefined;
  readonly peer: GrpcPeer;
  readonly stats = new _Stats();
  #values: GrpcValues | undefined;
  /** The response header metadata, for streaming callers (created only if asked for). */
  readonly header = new _Lazy<Metadata>();
  /** The trailer metadata, likewise. */
  readonly trailer = new _Lazy<Metadata>();
  /** Settles with the status (from the trailers), independent of interceptors. */
  readonly status = new _Lazy<void>();
  /** The response headers are valid gRPC: messages may be read. */
  readonly #valid = new _Lazy<void>();
  #validated = false;
  readonly #opened = new _Lazy<Http2Stream>();
  readonly #connection: Http2Connection;
  readonly #options: _Resolved;
  readonly #mode: _Mode;
  /** Created on first use of `signal`: most calls never look at it. */
  #controller: AbortController | undefined;
  #aborted = false;
  #abortReason: unknown;
  readonly #callOptions: GrpcCallOptions;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #unlink: (() => void) | undefined;
  #reader: _MessageReader<unknown> | undefined;
  #writer: _MessageWriter<unknown> | undefined;
  #receiveCompression: Compression | undefined;
  #stream: Http2Stream | undefined;
  #settled = false;
  /** A response message this side rejected: the call's outcome whatever the server's status. */
  #rejected: GrpcError | undefined;
  /** The response read in progress (streaming calls). */
  #reading: Promise<unknown> | undefined;
  /** The unary response, once read. */
  response: unknown;

  constructor(
    connection: Http2Connection,
    options: _Resolved,
    method: GrpcMethod<unknown, unknown>,
    mode: _Mode,
    callOptions: GrpcCallOptions,
  ) {
    this.#connection = connection;
    this.#options = options;
    this.method = method;
    this.#mode = mode;
    this.#callOptions = callOptions;
    this.peer = options.peer;
    this.#values = callOptions.values;
    this.requestMetadata = callOptions.metadata === undefined
      ? []
      : [...callOptions.metadata] as GrpcMetadataList;
    const timeout = callOptions.timeout;
    if (timeout !== undefined && !Number.isFinite(timeout)) {
      throw new RangeError(
        `Cannot call ${method.path}: timeout must be a finite number, received ${timeout}`,
      );
    }
    const user = callOptions.signal;
    if (user !== undefined) {
      if (user.aborted) this.#abort(user.reason);
      else {
        const onAbort = () => this.#abort(user.reason);
        user.addEventListener("abort", onAbort, { once: true });
        this.#unlink = () => user.removeEventListener("abort", onAbort);
      }
    }
    if (timeout !== undefined) {
      this.deadline = Date.now() + timeout;
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#abort(new DOMException("Cannot continue: the deadline has passed", "TimeoutError"));
      }, Math.max(0, Math.min(Math.ceil(timeout), 0x7fff_ffff)));
    } else {
      this.deadline = undefined;
    }
  }

  get values(): GrpcValues {
    return this.#values ??= new GrpcValues();
  }

  cancel(reason?: unknown): void {
    this.#abort(new DOMException("Cannot continue: the call was cancelled", "AbortError"), reason);
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  #abort(reason: unknown, cause?: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#abortReason = cause !== undefined && reason instanceof DOMException
      ? new GrpcError(Status.CANCELLED, reason.message, { cause })
      : reason ?? new DOMException("Cannot continue: the call was cancelled", "AbortError");
    this.#controller?.abort(this.#abortReason);
    this.#stream?.reset("CANCEL");
    this.#cleanup();
  }

  #cleanup(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#unlink?.();
    this.#unlink = undefined;
  }

  /** The GrpcError for a failure of the transport, a reset, or our own abort. */
  toStatus(error: unknown): GrpcError {
    if (this.#aborted) return GrpcError.from(this.#abortReason, Status.CANCELLED);
    if (error instanceof GrpcError) return error;
    if (error instanceof Http2Error) {
      if (error.streamId !== undefined && error.remote) {
        return new GrpcError(
          statusFromHttp2Error(error.errorCode),
          `Cannot complete the call: the server reset the stream (${error.code})`,
          { cause: error },
        );
      }
      if (error.streamId === undefined || error.code === "REFUSED_STREAM") {
        return new GrpcError(Status.UNAVAILABLE, `Cannot complete the call: ${error.message}`, {
          cause: error,
        });
      }
      return new GrpcError(Status.INTERNAL, `Cannot complete the call: ${error.message}`, { cause: error });
    }
    return GrpcError.from(error, Status.UNAVAILABLE);
  }

  /** The innermost step of the chain: the HTTP/2 exchange. */
  async run(): Promise<void> {
    try {
      const stream = await this.#open();
      const mode = this.#mode;
      if (mode.t === "stream") {
        await this.status.promise;
        // A response being read when the status came (it came with the end of the body)
        // is part of the outcome: one we reject (too large, undecodable) fails the call
        // even though the server's status is OK.
        await this.#reading?.catch(() => {});
        if (this.#rejected !== undefined) throw this.#rejected;
        return;
      }
      // Send in the background: if the server answers early (an error), its status is
      // what the caller needs, not the failed write.
      const sending = mode.t === "unary"
        ? this.send(mode.request).then(() => this.closeRequests())
        : this.#sendAll(mode.requests);
      sending.catch(() => {});
      let response: unknown;
      try {
        response = await this.next();
      } catch (error) {
        await this.status.promise;
        throw error;
      }
      if (response === undefined) {
        await this.status.promise;
        await sending;
        throw new GrpcError(
          Status.INTERNAL,
          `Cannot complete ${this.method.path}: the server sent no response message`,
        );
      }
      const extra = await this.next();
      if (extra !== undefined) {
        stream.reset("CANCEL");
        throw new GrpcError(
          Status.INTERNAL,
          `Cannot complete ${this.method.path}: the server sent more than one response message`,
        );
      }
      await this.status.promise;
      this.response = response;
    } catch (error) {
      throw this.toStatus(error);
    }
  }

  /** After the interceptor chain: stop timers; cancel a stream left unfinished. */
  end(): void {
    this.#cleanup();
    const stream = this.#stream;
    if (stream === undefined) return;
    // A streaming caller may still read buffered responses after the status; the other
    // kinds have read all they need.
    if (!this.#settled || (this.#mode.t !== "stream" && stream.state !== "closed")) stream.reset("CANCEL");
  }

  async #sendAll(source: AsyncIterable<unknown> | Iterable<unknown>): Promise<void> {
    const iterator = _asyncIterator(source);
    let done = false;
    try {
      for (;;) {
        const result = await iterator.next();
        if (result.done) {
          done = true;
          break;
        }
        await this.send(result.value);
      }
    } finally {
      if (!done) void Promise.resolve(iterator.return?.()).catch(() => {});
    }
    await this.closeRequests();
  }

  /** The request headers of a call without deadline or metadata: the same for every call of a method. */
  #plainHeaders(): Http2Headers {
    const o = this.#options;
    const codec = this.method.requestCodec.name;
    const key = `${this.method.path} ${codec}`;
    let headers = o.requestHeaders.get(key);
    if (headers === undefined) {
      const list: Http2Headers = [
        [":method", "POST"],
        [":scheme", o.scheme],
        [":authority", o.authority],
        [":path", this.method.path],
        ["content-type", _contentType(codec)],
        ["te", "trailers"],
        ["user-agent", o.userAgent],
      ];
      if (o.sendCompression !== undefined) list.push(["grpc-encoding", o.sendCompression.name]);
      list.push(["grpc-accept-encoding", o.acceptEncodingHeader]);
      try {
        headers = _checkedHeaders(list, "request");
      } catch {
        return list; // invalid (a bad authority): request() reports it
      }
      if (o.requestHeaders.size < 256) o.requestHeaders.set(key, headers);
    }
    return headers;
  }

  async #open(): Promise<Http2Stream> {
    if (this.deadline === undefined && this.requestMetadata.length === 0) {
      return await this.#openWith(this.#plainHeaders());
    }
    const o = this.#options;
    const headers: Http2Headers = [
      [":method", "POST"],
      [":scheme", o.scheme],
      [":authority", o.authority],
      [":path", this.method.path],
      ["content-type", _contentType(this.method.requestCodec.name)],
      ["te", "trailers"],
      ["user-agent", o.userAgent],
    ];
    if (this.deadline !== undefined) {
      headers.push(["grpc-timeout", formatGrpcTimeout(this.deadline - Date.now())]);
    }
    if (o.sendCompression !== undefined) headers.push(["grpc-encoding", o.sendCompression.name]);
    headers.push(["grpc-accept-encoding", o.acceptEncodingHeader]);
    if (this.requestMetadata.length > 0) {
      try {
        headers.push(...encodeMetadata(this.requestMetadata));
      } catch (error) {
        throw new GrpcError(Status.INTERNAL, `Cannot call ${this.method.path}: ${(error as Error).message}`, {
          cause: error,
        });
      }
    }
    return await this.#openWith(headers);
  }

  async #openWith(headers: Http2Headers): Promise<Http2Stream> {
    if (this.#aborted) throw this.#abortReason;
    let stream: Http2Stream;
    try {
      // The stream is reset by #abort(); a signal is only needed to stop waiting for a
      // stream slot, for calls that can be aborted before they have one.
      const signal = this.#callOptions.signal !== undefined || this.deadline !== undefined ||
          this.#mode.t === "stream" || this.#controller !== undefined
        ? this.signal
        : undefined;
      stream = await this.#connection.request(headers, signal === undefined ? {} : { signal });
    } catch (error) {
      const status = this.toStatus(error);
      this.#fail(status);
      throw status;
    }
    this.#stream = stream;
    if (this.#aborted) stream.reset("CANCEL");
    this.#opened.resolve(stream);
    // #receive handles every failure it expects; anything else still ends the call
    // instead of becoming an unhandled rejection.
    this.#receive(stream).catch((error) => {
      stream.reset("CANCEL");
      this.#fail(this.toStatus(error));
    });
    return stream;
  }

  #onHeader(metadata: Metadata): void {
    try {
      this.#callOptions.onHeader?.(metadata);
    } catch {
      // the caller's callback
    }
  }

  #fail(error: GrpcError): void {
    this.#settled = true;
    this.#opened.reject(error);
    this.#valid.reject(error);
    this.header.reject(error);
    this.trailer.reject(error);
    this.status.reject(error);
  }

  /** Reads the response headers and trailers; settles `status`. */
  async #receive(stream: Http2Stream): Promise<void> {
    let response: Http2Headers;
    try {
      response = await stream.response;
    } catch (error) {
      this.#fail(this.toStatus(error));
      return;
    }
    if (_header(response, "grpc-status") !== undefined) {
      // Trailers-Only: the status is in the headers; there is no body.
      this.header.resolve([]);
      this.#onHeader([]);
      this.#validated = true;
      this.#valid.resolve();
      this.#settle(response);
      stream.trailers.catch(() => {});
      return;
    }
    const httpStatus = Number(_header(response, ":status"));
    const contentType = _header(response, "content-type");
    let problem: GrpcError | undefined;
    if (httpStatus !== 200) {
      problem = new GrpcError(
        statusFromHttp(httpStatus),
        `Cannot complete the call: HTTP status ${httpStatus}`,
      );
    } else if (contentType === undefined || parseGrpcContentType(contentType) === undefined) {
      problem = new GrpcError(
        Status.UNKNOWN,
        `Cannot complete the call: the response content-type ${
          JSON.stringify(contentType ?? "")
        } is not gRPC`,
      );
    } else {
      const encoding = _header(response, "grpc-encoding");
      if (encoding !== undefined && encoding !== "identity") {
        this.#receiveCompression = this.#options.acceptCompression.get(encoding);
        if (this.#receiveCompression === undefined) {
          problem = new GrpcError(
            Status.INTERNAL,
            `Cannot complete the call: the server used grpc-encoding ${
              JSON.stringify(encoding)
            }, not accepted`,
          );
        }
      }
    }
    if (problem !== undefined) {
      stream.reset("CANCEL");
      this.#fail(problem);
      return;
    }
    const metadata = decodeMetadata(response);
    this.responseHeader.push(...(metadata as GrpcMetadataList));
    this.header.resolve(metadata);
    this.#onHeader(metadata);
    this.#validated = true;
    this.#valid.resolve();
    let trailers: Http2Headers | undefined;
    try {
      trailers = await stream.trailers;
    } catch (error) {
      this.#fail(this.toStatus(error));
      return;
    }
    if (trailers === undefined) {
      this.#settled = true;
      const error = new GrpcError(
        Status.INTERNAL,
        "Cannot complete the call: the server ended the stream without trailers",
      );
      this.trailer.reject(error);
      this.status.reject(error);
      return;
    }
    this.#settle(trailers);
  }

  /** Turns trailers (or trailers-only headers) into the status. */
  #settle(fields: Http2Headers): void {
    this.#settled = true;
    const metadata = decodeMetadata(fields);
    this.responseTrailer.push(...(metadata as GrpcMetadataList));
    this.trailer.resolve(metadata);
    try {
      this.#callOptions.onTrailer?.(metadata);
    } catch {
      // the caller's callback
    }
    const raw = _header(fields, "grpc-status");
    const code = raw === "0" ? 0 : raw !== undefined && /^[0-9]{1,2}$/.test(raw) ? Number(raw) : NaN;
    if (code === Status.OK) {
      this.status.resolve();
      return;
    }
    let error: GrpcError;
    if (Number.isNaN(code)) {
      error = new GrpcError(
        Status.INTERNAL,
        `Cannot complete the call: bad grpc-status ${JSON.stringify(raw ?? "")}`,
        {
          metadata,
        },
      );
    } else {
      const message = decodeGrpcMessage(_header(fields, "grpc-message") ?? "");
      const details = _header(fields, "grpc-status-details-bin");
      const statusDetailsBin = details === undefined ? undefined : decodeBinaryHeader(details)?.[0];
      error = new GrpcError((code <= 16 ? code : Status.UNKNOWN) as Status, message, {
        metadata,
        ...(statusDetailsBin === undefined ? {} : { statusDetailsBin }),
      });
    }
    this.status.reject(error);
  }

  /** The next response message, or `undefined` at the end of the body. */
  next(): Promise<unknown> {
    if (this.#mode.t !== "stream") return this.#next(undefined);
    return this.#track(this.#next(undefined));
  }

  /**
   * Streaming calls: the next bytes of the response messages, copied into `view`
   * (message boundaries are not kept); `null` at the end of the body.
   */
  readInto(view: Uint8Array): Promise<number | null> {
    return this.#track(this.#next(view)) as Promise<number | null>;
  }

  /**
   * Remembers the read in progress, so that a status arriving with the rest of the
   * body waits for it (see run()).
   */
  #track(reading: Promise<unknown>): Promise<unknown> {
    this.#reading = reading;
    const done = () => {
      if (this.#reading === reading) this.#reading = undefined;
    };
    reading.then(done, done);
    return reading;
  }

  /** The next message, or with `view` the next bytes (see readInto()). */
  async #next(view: Uint8Array | undefined): Promise<unknown> {
    try {
      if (this.#reader === undefined) {
        const stream = this.#stream ?? await this.#opened.promise;
        if (!this.#validated) await this.#valid.promise;
        this.#reader ??= new _MessageReader(stream, this.method.responseCodec, {
          maxBytes: this.#options.maxReceiveMessageBytes,
          compression: this.#receiveCompression,
          stats: this.stats,
        });
      }
      return await (view === undefined ? this.#reader.next() : this.#reader.readInto(view));
    } catch (error) {
      if (error instanceof GrpcError && !this.#aborted) {
        this.#rejected ??= error;
        // A bad message: the call is over for us, tell the server.
        this.#opened.promise.then((stream) => stream.reset("CANCEL"), () => {});
        this.status.reject(error);
      }
      throw this.toStatus(error);
    }
  }

  async send(message: unknown): Promise<void> {
    const stream = this.#stream ?? await this.#opened.promise;
    this.#writer ??= new _MessageWriter(stream, this.method.requestCodec, {
      maxBytes: this.#options.maxSendMessageBytes,
      compression: this.#options.sendCompression,
      stats: this.stats,
    });
    try {
      await this.#writer.write(message);
    } catch (error) {
      if (error instanceof GrpcError && error.code === Status.RESOURCE_EXHAUSTED && !this.#aborted) {
        this.#abort(error);
      }
      throw this.toStatus(error);
    }
  }

  async closeRequests(): Promise<void> {
    const stream = this.#stream ?? await this.#opened.promise;
    this.#writer ??= new _MessageWriter(stream, this.method.requestCodec, {
      maxBytes: this.#options.maxSendMessageBytes,
      compression: this.#options.sendCompression,
      stats: this.stats,
    });
    try {
      await this.#writer.close();
    } catch (error) {
      throw this.toStatus(error);
    }
  }
}

function _streamCall<I, O>(call: _ClientCall, done: Promise<void>): GrpcStreamCall<I, O> {
  done.catch(() => {});
  const requests = new WritableStream<I>({
    write: (message) => call.send(message),
    close: () => call.closeRequests(),
    abort: (reason) => call.cancel(reason),
  });
  const responses = new ReadableStream<O>({
    pull: async (controller) => {
      const message = await call.next();
      if (message !== undefined) {
        controller.enqueue(message as O);
        return;
      }
      await done;
      controller.close();
    },
    cancel: (reason) => call.cancel(reason),
  }, { highWaterMark: 0 });
  return {
    requests,
    responses,
    get header() {
      return call.header.promise;
    },
    get trailer() {
      return call.trailer.promise;
    },
    done,
    call,
    cancel: (reason?: unknown) => call.cancel(reason),
  };
}

/**
 * The response messages of a streaming call whose response codec is `rawCodec`, as one
 * readable byte stream: a BYOB read copies payload bytes straight from the HTTP/2
 * stream into the reader's buffer (no buffer per message; message boundaries are not
 * kept, empty messages vanish; default reads get chunks of up to 64 KiB). It locks `responses`; it closes once the call ended with OK and errors with
 * the call's {@linkcode GrpcError} otherwise; cancelling it cancels the call.
 *
 * @throws {TypeError} If the method's response codec is not `rawCodec`.
 */
export function _rawResponseBytes(stream: GrpcStreamCall<unknown, Uint8Array>): ReadableStream<Uint8Array> {
  const call = stream.call;
  if (!(call instanceof _ClientCall) || call.method.responseCodec !== rawCodec) {
    throw new TypeError("Cannot read response bytes: the call's responses are not rawCodec messages");
  }
  // Nobody else may read messages meanwhile.
  stream.responses.getReader();
  const done = stream.done;
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: 64 * 1024,
    async pull(controller) {
      const request = controller.byobRequest!;
      const view = request.view!;
      let n: number | null;
      try {
        n = await call.readInto(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
        if (n === null) await done;
      } catch (error) {
        controller.error(error);
        return;
      }
      if (n !== null) {
        request.respond(n);
        return;
      }
      controller.close();
      controller.byobRequest?.respond(0);
    },
    cancel: (reason) => call.cancel(reason),
  }, { highWaterMark: 0 });
}

/**
 * A gRPC client on one HTTP/2 connection.
 *
 * Create it over any duplex (`new GrpcClient(yamuxStream)`, an in-memory pipe, a
 * `fromDenoConn()` TCP connection) or an existing client-side {@linkcode Http2Connection},
 * or dial with {@linkcode GrpcClient.connect} (h2c, or TLS with ALPN `h2`). Calls run
 * concurrently as HTTP/2 streams, up to the server's `SETTINGS_MAX_CONCURRENT_STREAMS`
 * (further calls wait for a slot).
 *
 * Failures are {@linkcode GrpcError}s with the status `code`: the server's status; a
 * response that is not gRPC mapped from its HTTP status (404 → `UNIMPLEMENTED`, 503 →
 * `UNAVAILABLE`, …); a reset stream from its HTTP/2 code (`CANCEL` → `CANCELLED`,
 * `REFUSED_STREAM` → `UNAVAILABLE`); a lost connection → `UNAVAILABLE`; our own
 * deadline → `DEADLINE_EXCEEDED`, our own cancellation → `CANCELLED`.
 *
 * @example Unary, client streaming and metadata over an in-memory pipe
 * ```ts
 * import { duplexPair, GrpcClient, GrpcError, grpcMethod, GrpcServer, rawCodec, serveGrpcConnection, Status } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const echo = grpcMethod({ service: "demo.Raw", name: "Echo", kind: "unary", request: rawCodec, response: rawCodec });
 * const sum = grpcMethod({ service: "demo.Raw", name: "Sum", kind: "client_streaming", request: rawCodec, response: rawCodec });
 * const server = new GrpcServer()
 *   .handle(echo, (request, call) => {
 *     if (request.length === 0) throw new GrpcError(Status.INVALID_ARGUMENT, "empty");
 *     call.responseHeader.push(["x-echo", "1"]);
 *     return request;
 *   })
 *   .handle(sum, async (requests) => {
 *     let total = 0;
 *     for await (const message of requests) total += message.length;
 *     return new Uint8Array([total]);
 *   });
 * const [a, b] = duplexPair();
 * serveGrpcConnection(b, server);
 * await using client = new GrpcClient(a);
 * let header;
 * assert.deepEqual(await client.unary(echo, new Uint8Array([1]), { onHeader: (m) => header = m }), new Uint8Array([1]));
 * assert.deepEqual(header, [["x-echo", "1"]]);
 * const error = await client.unary(echo, new Uint8Array(0)).catch((e) => e);
 * assert.equal(error.code, Status.INVALID_ARGUMENT);
 * assert.deepEqual(await client.clientStream(sum, [new Uint8Array(2), new Uint8Array(3)]), new Uint8Array([5]));
 * ```
 */
export class GrpcClient implements AsyncDisposable {
  readonly #connection: Http2Connection;
  readonly #options: _Resolved;
  readonly #chain: GrpcNext;

  /**
   * Creates a client over a transport.
   *
   * @param transport a duplex (the client owns it from now on) or a client-side
   * {@linkcode Http2Connection} (HTTP/2 options are then ignored)
   * @param options gRPC and HTTP/2 options
   * @throws {RangeError} For limits or HTTP/2 options out of range.
   * @throws {TypeError} For an invalid scheme or compression list.
   */
  constructor(transport: Duplex | Http2Connection, options: GrpcClientOptions = {}) {
    this.#options = _resolveGrpcClientOptions(options);
    if (transport instanceof Http2Connection) {
      if (transport.role !== "client") {
        throw new TypeError("Cannot create GrpcClient: the connection is a server");
      }
      this.#connection = transport;
    } else {
      const {
        authority: _a,
        scheme: _s,
        maxReceiveMessageBytes: _r,
        maxSendMessageBytes: _m,
        sendCompression: _c,
        acceptCompression: _ac,
        interceptors: _i,
        userAgent: _u,
        peer: _p,
        ...http2
      } = options;
      this.#connection = Http2Connection.client(transport, http2);
    }
    this.#chain = _applyInterceptors([...(options.interceptors ?? [])], (call: GrpcCall) => {
      if (!(call instanceof _ClientCall)) {
        return Promise.reject(
          new TypeError("Cannot run call: an interceptor passed another object to next()"),
        );
      }
      return call.run();
    });
  }

  /**
   * Dials a server: TCP with h2c prior knowledge, or TLS negotiating `h2` by ALPN.
   *
   * @param options address, TLS, and client options
   * @returns the connected client
   * @throws {GrpcError} `UNAVAILABLE` if the connection or the TLS handshake fails, or
   * the server negotiates a protocol other than `h2`.
   */
  static async connect(options: GrpcConnectOptions): Promise<GrpcClient> {
    const hostname = options.hostname ?? "127.0.0.1";
    const { hostname: _hostname, port, tls, signal, ...clientOptions } = options;
    signal?.throwIfAborted();
    let conn: Deno.Conn;
    try {
      if (tls) {
        const caCerts = typeof tls === "object" ? tls.caCerts : undefined;
        const tlsConn = await Deno.connectTls({
          hostname,
          port,
          alpnProtocols: ["h2"],
          ...(caCerts === undefined ? {} : { caCerts }),
        });
        conn = tlsConn;
        const { alpnProtocol } = await tlsConn.handshake();
        if (alpnProtocol !== null && alpnProtocol !== "h2") {
          tlsConn.close();
          throw new GrpcError(
            Status.UNAVAILABLE,
            `Cannot connect: the server negotiated ${alpnProtocol}, not h2`,
          );
        }
      } else {
        conn = await Deno.connect({ hostname, port });
      }
    } catch (error) {
      if (error instanceof GrpcError) throw error;
      throw new GrpcError(Status.UNAVAILABLE, `Cannot connect to ${hostname}:${port}: ${String(error)}`, {
        cause: error,
      });
    }
    if (signal?.aborted) {
      conn.close();
      signal.throwIfAborted();
    }
    const host = hostname.includes(":") ? `[${hostname}]` : hostname;
    return new GrpcClient(fromDenoConn(conn), {
      authority: `${host}:${port}`,
      scheme: tls ? "https" : "http",
      peer: {
        remoteAddr: conn.remoteAddr,
        localAddr: conn.localAddr,
        secure: Boolean(tls),
        values: new GrpcValues(),
      },
      ...clientOptions,
    });
  }

  /** The HTTP/2 connection (stats, ping, goAway). */
  get connection(): Http2Connection {
    return this.#connection;
  }

  /** Settles when the connection is closed. Never rejects. */
  get closed(): Promise<void> {
    return this.#connection.closed;
  }

  #call(method: GrpcMethod<unknown, unknown>, mode: _Mode, options: GrpcCallOptions): _ClientCall {
    return new _ClientCall(this.#connection, this.#options, method, mode, options);
  }

  /**
   * Calls a unary method.
   *
   * @typeParam I the request message type
   * @typeParam O the response message type
   * @param method the method
   * @param request the request message
   * @param options metadata, deadline, signal, header/trailer callbacks
   * @returns the response message
   * @throws {GrpcError} With the call's status.
   */
  async unary<I, O>(
    method: GrpcMethod<I, O, "unary">,
    request: I,
    options: GrpcCallOptions = {},
  ): Promise<O> {
    const call = this.#call(method as GrpcMethod<unknown, unknown>, { t: "unary", request }, options);
    try {
      await this.#chain(call);
    } finally {
      call.end();
    }
    return call.response as O;
  }

  /**
   * Calls a client-streaming method with the messages of an iterable (a generator, an
   * array, a `ReadableStream`), pulled as the connection accepts them.
   *
   * @typeParam I the request message type
   * @typeParam O the response message type
   * @param method the method
   * @param requests the request messages
   * @param options metadata, deadline, signal, header/trailer callbacks
   * @returns the response message
   * @throws {GrpcError} With the call's status.
   */
  async clientStream<I, O>(
    method: GrpcMethod<I, O, "client_streaming">,
    requests: AsyncIterable<I> | Iterable<I>,
    options: GrpcCallOptions = {},
  ): Promise<O> {
    const call = this.#call(method as GrpcMethod<unknown, unknown>, { t: "client", requests }, options);
    try {
      await this.#chain(call);
    } finally {
      call.end();
    }
    return call.response as O;
  }

  /**
   * Calls a server-streaming method: sends `request`, half-closes, and returns the call
   * with its `responses`.
   *
   * @typeParam I the request message type
   * @typeParam O the response message type
   * @param method the method
   * @param request the request message
   * @param options metadata, deadline, signal, header/trailer callbacks
   * @returns the call in progress
   */
  serverStream<I, O>(
    method: GrpcMethod<I, O, "server_streaming">,
    request: I,
    options: GrpcCallOptions = {},
  ): GrpcStreamCall<I, O> {
    const call = this.#call(method as GrpcMethod<unknown, unknown>, { t: "stream" }, options);
    const done = this.#chain(call).finally(() => call.end());
    call.send(request).then(() => call.closeRequests()).catch(() => {});
    return _streamCall<I, O>(call, done);
  }

  /**
   * Starts a call of any kind with streams both ways (bidi streaming, or full control
   * over the other kinds).
   *
   * @typeParam I the request message type
   * @typeParam O the response message type
   * @param method the method
   * @param options metadata, deadline, signal, header/trailer callbacks
   * @returns the call in progress
   */
  stream<I, O>(
    method: GrpcMethod<I, O, GrpcMethodKind>,
    options: GrpcCallOptions = {},
  ): GrpcStreamCall<I, O> {
    const call = this.#call(method as GrpcMethod<unknown, unknown>, { t: "stream" }, options);
    return _streamCall<I, O>(call, this.#chain(call).finally(() => call.end()));
  }

  /**
   * Closes gracefully: no new calls; open calls finish; then the transport closes.
   *
   * @returns resolves when the connection is closed
   */
  close(): Promise<void> {
    return this.#connection.close();
  }

  /**
   * Closes at once: every open call fails with `UNAVAILABLE`.
   *
   * @param reason recorded as the cause
   */
  abort(reason?: unknown): void {
    this.#connection.abort(reason);
  }

  /** Same as {@linkcode GrpcClient.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
