/**
 * The gRPC server: a method router with handlers for the four call kinds, interceptors,
 * and a fallback for plain HTTP requests on the same port.
 *
 * @module
 */

import { _checkedHeaders, type Http2Headers } from "../http2/headers.ts";
import type { Http2Stream } from "../http2/stream.ts";
import { _asyncIterator, _MessageReader, _MessageWriter, _Stats } from "./_message_io.ts";
import { _resolveMessageOptions } from "./_options.ts";
import { _serveFallback } from "./_fallback.ts";
import {
  _applyInterceptors,
  type GrpcCall,
  type GrpcInterceptor,
  type GrpcMetadataList,
  type GrpcNext,
  type GrpcPeer,
  type GrpcServerCall,
} from "./call.ts";
import type { Compression } from "./compression.ts";
import { parseGrpcContentType } from "./content_type.ts";
import { encodeGrpcMessage } from "./message_encoding.ts";
import { decodeMetadata, encodeMetadata } from "./metadata.ts";
import type { GrpcMethod, GrpcMethodKind } from "./method.ts";
import { GrpcError, Status } from "./status.ts";
import { parseGrpcTimeout } from "./timeout.ts";
import { GrpcValues } from "./values.ts";

/**
 * The handler of a method, by call kind:
 *
 * - `unary`: `(request, call) => response`
 * - `server_streaming`: `(request, call) => responses` (an async generator, any
 *   `AsyncIterable` such as a `ReadableStream`, or an `Iterable`)
 * - `client_streaming`: `(requests, call) => response`
 * - `bidi_streaming`: `(requests, call) => responses`
 *
 * `requests` is a `ReadableStream` of the decoded messages, pulled as the handler reads
 * (flow control reaches the client); with {@linkcode rawCodec} each message is a view
 * of the received bytes, not a copy. Responses are written one at a time: the next is
 * pulled once the previous one was accepted by the connection. A handler ends the call
 * with a non-OK status by throwing a {@linkcode GrpcError} (anything else becomes
 * `UNKNOWN`).
 *
 * @typeParam I the request message type
 * @typeParam O the response message type
 * @typeParam K the call kind
 *
 * @example A server-streaming handler
 * ```ts
 * import { grpcMethod, type GrpcHandler, rawCodec } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const pull = grpcMethod({ service: "demo.Raw", name: "Pull", kind: "server_streaming", request: rawCodec, response: rawCodec });
 * const handler: GrpcHandler<Uint8Array, Uint8Array, "server_streaming"> = async function* (request) {
 *   for (let i = 0; i < request[0]!; i++) yield new Uint8Array([i]);
 * };
 * assert.equal(typeof handler, "function");
 * assert.equal(pull.kind, "server_streaming");
 * ```
 */
export type GrpcHandler<I, O, K extends GrpcMethodKind> = K extends "unary"
  ? (request: I, call: GrpcServerCall) => O | Promise<O>
  : K extends "server_streaming" ? (request: I, call: GrpcServerCall) => AsyncIterable<O> | Iterable<O>
  : K extends "client_streaming" ? (requests: ReadableStream<I>, call: GrpcServerCall) => O | Promise<O>
  : (requests: ReadableStream<I>, call: GrpcServerCall) => AsyncIterable<O> | Iterable<O>;

/**
 * Serves requests that are not gRPC (their `content-type` is not `application/grpc…`),
 * as a standard `Request` → `Response` handler. Both bodies stream with backpressure;
 * `request.signal` aborts if the client resets the stream. Response trailers cannot be
 * expressed by a `Response` and are not sent.
 *
 * @example
 * ```ts
 * import type { GrpcFallback } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const fallback: GrpcFallback = (request) => new Response(`hello ${new URL(request.url).pathname}`);
 * const response = await fallback(new Request("http://x/hi"), { secure: false, values: new (await import("@sidechannel/transport")).GrpcValues() });
 * assert.equal(await response.text(), "hello /hi");
 * ```
 */
export type GrpcFallback = (request: Request, peer: GrpcPeer) => Response | Promise<Response>;

/**
 * Options for {@linkcode GrpcServer}.
 *
 * @example
 * ```ts
 * import { GrpcServer, type GrpcServerOptions, gzipCompression, loggingInterceptor } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const options: GrpcServerOptions = {
 *   maxReceiveMessageBytes: 16 << 20,
 *   sendCompression: gzipCompression,
 *   interceptors: [loggingInterceptor(() => {})],
 *   fallback: () => new Response("not gRPC", { status: 404 }),
 * };
 * assert.deepEqual(new GrpcServer(options).paths, []);
 * ```
 */
export interface GrpcServerOptions {
  /**
   * Largest request message accepted (after decompression), checked on the envelope's
   * declared length before it is buffered; larger → `RESOURCE_EXHAUSTED`. gRPC's usual
   * default, which bounds what one message can make the server hold.
   * @default {4194304}
   */
  maxReceiveMessageBytes?: number;
  /**
   * Largest response message a handler may send; larger → `RESOURCE_EXHAUSTED`.
   * Unlimited up to what an envelope can declare, like grpc-go.
   * @default {4294967295}
   */
  maxSendMessageBytes?: number;
  /**
   * `grpc-encoding`s accepted on requests (`identity` always is). Requests in another
   * encoding get `UNIMPLEMENTED` and the list in `grpc-accept-encoding`.
   * @default {[gzipCompression]}
   */
  acceptCompression?: readonly Compression[];
  /**
   * Compress responses with this encoding when the client accepts it (its
   * `grpc-accept-encoding`). Off by default: raw pack data does not compress and CPU is
   * the bottleneck at gigabytes per second.
   * @default {undefined}
   */
  sendCompression?: Compression;
  /**
   * Interceptors around every call, the first outermost. They do not run for requests
   * rejected before a handler is found (unknown method, bad headers).
   * @default {[]}
   */
  interceptors?: readonly GrpcInterceptor[];
  /**
   * Handler for requests that are not gRPC. Without one they get HTTP 415 with
   * `grpc-status: 13`, as grpc-go answers them.
   * @default {undefined}
   */
  fallback?: GrpcFallback;
  /**
   * Called with handler errors that are not {@linkcode GrpcError}s (they become
   * `UNKNOWN`) and with failures of the fallback; for logging.
   * @default {undefined}
   */
  onError?: (error: unknown) => void;
}

interface _Resolved {
  /** Response headers without metadata or compression, by content-type (checked once, frozen). */
  responseHeaders: Map<string, Http2Headers>;
  maxReceiveMessageBytes: number;
  maxSendMessageBytes: number;
  acceptCompression: ReadonlyMap<string, Compression>;
  acceptEncodingHeader: string;
  sendCompression: Compression | undefined;
  fallback: GrpcFallback | undefined;
  onError: (error: unknown) => void;
}

function _resolveGrpcServerOptions(options: GrpcServerOptions): _Resolved {
  const messages = _resolveMessageOptions("GrpcServer", options);
  if (options.fallback !== undefined && typeof options.fallback !== "function") {
    throw new TypeError("Cannot create GrpcServer: fallback must be a function");
  }
  const onError = options.onError;
  return {
    ...messages,
    responseHeaders: new Map(),
    fallback: options.fallback,
    onError: (error) => {
      try {
        onError?.(error);
      } catch {
        // a throwing logger must not break the server
      }
    },
  };
}

interface _Route {
  method: GrpcMethod<unknown, unknown>;
  handler: (input: unknown, call: GrpcServerCall) => unknown;
}

const _DEFAULT_PEER: GrpcPeer = Object.freeze({ secure: false, values: new GrpcValues() });

/** The trailers of a call that succeeded without trailer metadata (checked once, frozen). */
const _OK_TRAILERS = _checkedHeaders([["grpc-status", "0"]], "trailers");

/** Response `content-type` by request `content-type` (the media type, lowercase). */
const _RESPONSE_TYPES = new Map<string, string>();

function _responseType(contentType: string): string {
  let type = _RESPONSE_TYPES.get(contentType);
  if (type === undefined) {
    type = contentType.split(";", 1)[0]!.trim().toLowerCase();
    if (_RESPONSE_TYPES.size < 64) _RESPONSE_TYPES.set(contentType, type);
  }
  return type;
}

/** Headers of a trailers-only or error response. */
function _statusFields(error: GrpcError | undefined, trailer: GrpcMetadataList): Http2Headers {
  if (error === undefined && trailer.length === 0) return _OK_TRAILERS;
  const fields: [string, string][] = [["grpc-status", String(error?.code ?? Status.OK)]];
  if (error !== undefined && error.details !== "") {
    fields.push(["grpc-message", encodeGrpcMessage(error.details)]);
  }
  if (error?.statusDetailsBin !== undefined) {
    fields.push(["grpc-status-details-bin", error.statusDetailsBin.toBase64({ omitPadding: true })]);
  }
  const metadata = error === undefined || error.metadata.length === 0
    ? trailer
    : [...trailer, ...error.metadata];
  if (metadata.length > 0) {
    try {
      fields.push(...encodeMetadata(metadata));
    } catch {
      // invalid trailer metadata from the application: the status still goes out
    }
  }
  return fields;
}

/**
 * Answers a stream that has sent nothing yet with a status: Trailers-Only, one HEADERS
 * frame with END_STREAM. Closing the stream afterwards still sends it (a client still
 * sending then gets RST_STREAM(NO_ERROR) after it, RFC 9113 §8.1).
 */
function _respondStatus(stream: Http2Stream, headers: Http2Headers, trailers: Http2Headers): void {
  stream.respond([...headers, ...trailers], { endStream: true });
}

/** The server side of one call. */
class _ServerCall implements GrpcServerCall {
  readonly side = "server" as const;
  readonly method: GrpcMethod<unknown, unknown>;
  readonly responseHeader: GrpcMetadataList = [];
  readonly responseTrailer: GrpcMetadataList = [];
  readonly deadline: number | undefined;
  readonly peer: GrpcPeer;
  readonly stats = new _Stats();
  /** Decoded on first use: most handlers never look at it. */
  #requestMetadata: GrpcMetadataList | undefined;
  readonly #route: _Route;
  readonly #stream: Http2Stream;
  readonly #options: _Resolved;
  readonly #contentType: string;
  readonly #receiveCompression: Compression | undefined;
  readonly #sendCompression: Compression | undefined;
  /** Created on first use of `signal`: most handlers never look at it. */
  #controller: AbortController | undefined;
  #values: GrpcValues | undefined;
  #aborted = false;
  #abortReason: unknown;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #headerSent = false;
  #ended = false;
  /** The stream died under us (client reset, connection lost). */
  #lost = false;
  #reader: _MessageReader<unknown> | undefined;
  #writer: _MessageWriter<unknown> | undefined;

  constructor(
    stream: Http2Stream,
    route: _Route,
    peer: GrpcPeer,
    options: _Resolved,
    fields: {
      contentType: string;
      timeoutMs: number | undefined;
      receive: Compression | undefined;
      send: Compression | undefined;
    },
  ) {
    this.#stream = stream;
    this.#route = route;
    this.method = route.method;
    this.peer = peer;
    this.#options = options;
    this.#contentType = fields.contentType;
    this.#receiveCompression = fields.receive;
    this.#sendCompression = fields.send;
    if (fields.timeoutMs !== undefined) {
      this.deadline = Date.now() + fields.timeoutMs;
      this.#timer = setTimeout(() => this.#expire(), Math.min(Math.ceil(fields.timeoutMs), 0x7fff_ffff));
    } else {
      this.deadline = undefined;
    }
    stream.closed.then(() => {
      if (this.#ended) return;
      this.#lost = true;
      this.#abort(new DOMException("Cannot continue: the client cancelled the call", "AbortError"));
    });
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  get values(): GrpcValues {
    return this.#values ??= new GrpcValues();
  }

  get requestMetadata(): GrpcMetadataList {
    return this.#requestMetadata ??= decodeMetadata(this.#stream.headers) as GrpcMetadataList;
  }

  sendHeader(): void {
    if (this.#headerSent || this.#lost) return;
    this.#headerSent = true;
    this.#stream.respond(this.#headerFields());
  }

  #headerFields(): Http2Headers {
    if (this.#sendCompression === undefined && this.responseHeader.length === 0) {
      const cache = this.#options.responseHeaders;
      let headers = cache.get(this.#contentType);
      if (headers === undefined) {
        headers = _checkedHeaders([
          [":status", "200"],
          ["content-type", this.#contentType],
          ["grpc-accept-encoding", this.#options.acceptEncodingHeader],
        ], "response");
        if (cache.size < 16) cache.set(this.#contentType, headers);
      }
      return headers;
    }
    const headers: Http2Headers = [[":status", "200"], ["content-type", this.#contentType]];
    if (this.#sendCompression !== undefined) headers.push(["grpc-encoding", this.#sendCompression.name]);
    headers.push(["grpc-accept-encoding", this.#options.acceptEncodingHeader]);
    if (this.responseHeader.length > 0) {
      try {
        headers.push(...encodeMetadata(this.responseHeader));
      } catch (error) {
        if (!this.#ended) {
          throw new GrpcError(Status.INTERNAL, `Cannot send headers: ${(error as Error).message}`);
        }
      }
    }
    return headers;
  }

  /** Runs the handler (the innermost step of the interceptor chain). */
  async run(): Promise<void> {
    const { method, handler } = this.#route;
    switch (method.kind) {
      case "unary": {
        const response = await handler(await this.#readOne(), this);
        await this.#send(response);
        return;
      }
      case "server_streaming":
        await this.#sendAll(handler(await this.#readOne(), this) as AsyncIterable<unknown>);
        return;
      case "client_streaming": {
        const response = await handler(this.#requests(), this);
        await this.#send(response);
        return;
      }
      case "bidi_streaming":
        await this.#sendAll(handler(this.#requests(), this) as AsyncIterable<unknown>);
        return;
    }
  }

  /** Ends the call with the outcome of `run()` (or an early error): trailers, then close. */
  async finish(reason: unknown): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    this.#clearTimer();
    if (this.#lost) return;
    const error = reason === undefined ? undefined : this.#toStatus(reason);
    if (error !== undefined) this.#abort(error);
    const fields = _statusFields(error, this.responseTrailer);
    const stream = this.#stream;
    try {
      if (!this.#headerSent) {
        this.#headerSent = true;
        _respondStatus(stream, this.#headerFields(), fields);
      } else {
        stream.setTrailers(fields);
        await stream.closeWrite();
      }
    } catch {
      // the stream failed meanwhile: nothing left to tell the client
    }
    // Unread request data is dropped (its flow-control credit returned); a client still
    // sending gets RST_STREAM(NO_ERROR).
    this.#reader?.cancel();
    await stream.close().catch(() => {});
  }

  #toStatus(reason: unknown): GrpcError {
    if (reason instanceof GrpcError) return reason;
    const signalReason = this.#aborted ? this.#abortReason : undefined;
    if (signalReason instanceof GrpcError) return signalReason;
    const error = GrpcError.from(reason, Status.UNKNOWN);
    if (error.code === Status.UNKNOWN) this.#options.onError(reason);
    return error;
  }

  #abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#abortReason = reason;
    this.#controller?.abort(reason);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #expire(): void {
    this.#timer = undefined;
    if (this.#ended) return;
    this.#abort(new DOMException("Cannot continue: the deadline has passed", "TimeoutError"));
    void this.finish(new GrpcError(Status.DEADLINE_EXCEEDED, "Deadline exceeded"));
  }

  #checkOpen(): void {
    if (!this.#ended) return;
    throw this.#aborted
      ? GrpcError.from(this.#abortReason, Status.CANCELLED)
      : new GrpcError(Status.CANCELLED, "Cannot continue: the call has ended");
  }

  #openReader(): _MessageReader<unknown> {
    this.#reader ??= new _MessageReader(this.#stream, this.method.requestCodec, {
      maxBytes: this.#options.maxReceiveMessageBytes,
      compression: this.#receiveCompression,
      stats: this.stats,
    });
    return this.#reader;
  }

  async #next(): Promise<unknown> {
    this.#checkOpen();
    try {
      return await this.#openReader().next();
    } catch (error) {
      if (error instanceof GrpcError) throw error;
      this.#checkOpen();
      throw GrpcError.from(this.#aborted ? this.#abortReason : error, Status.CANCELLED);
    }
  }

  async #readOne(): Promise<unknown> {
    const message = await this.#next();
    if (message === undefined) {
      throw new GrpcError(
        Status.INTERNAL,
        `Cannot call ${this.method.path}: the client sent no request message`,
      );
    }
    return message;
  }

  #requests(): ReadableStream<unknown> {
    return new ReadableStream<unknown>({
      pull: async (controller) => {
        const message = await this.#next();
        if (message === undefined) controller.close();
        else controller.enqueue(message);
      },
      // A handler that stops reading (breaks out of `for await`) may still respond:
      // leave the HTTP/2 stream alone. Unread data stays bounded by the stream window,
      // and the stream is closed after the status.
      cancel: () => {},
    }, { highWaterMark: 0 });
  }

  async #send(message: unknown): Promise<void> {
    this.#checkOpen();
    if (!this.#headerSent) this.sendHeader();
    this.#writer ??= new _MessageWriter(this.#stream, this.method.responseCodec, {
      maxBytes: this.#options.maxSendMessageBytes,
      compression: this.#sendCompression,
      stats: this.stats,
    });
    try {
      await this.#writer.write(message);
    } catch (error) {
      if (error instanceof GrpcError) throw error;
      this.#checkOpen();
      throw GrpcError.from(this.#aborted ? this.#abortReason : error, Status.CANCELLED);
    }
  }

  async #sendAll(source: AsyncIterable<unknown> | Iterable<unknown>): Promise<void> {
    const iterator = _asyncIterator(source);
    let done = false;
    try {
      for (;;) {
        const result = await iterator.next();
        if (result.done) {
          done = true;
          return;
        }
        await this.#send(result.value);
      }
    } finally {
      // Stopped early (the client went away, a send failed): let the source clean up.
      if (!done) void Promise.resolve(iterator.return?.()).catch(() => {});
    }
  }
}

/**
 * A gRPC server: routes calls by `:path` to handlers registered per method, runs
 * interceptors around them, and sends the status; requests that are not gRPC go to a
 * fallback handler. Serve it on connections with {@linkcode serveGrpc} (TCP, TLS) or
 * {@linkcode serveGrpcConnection} (any duplex: a yamux stream, an in-memory pipe), or
 * hand it streams from your own {@linkcode Http2Connection}s with
 * {@linkcode GrpcServer.handleStream}.
 *
 * Bad input maps to statuses: an unknown method → `UNIMPLEMENTED`, a malformed
 * envelope → `INTERNAL`, a message over the limit → `RESOURCE_EXHAUSTED`, an expired
 * `grpc-timeout` → `DEADLINE_EXCEEDED` (sent at once; the handler's `call.signal`
 * aborts). A client that goes away aborts `call.signal`, fails the handler's reads and
 * writes, and stops its response generator.
 *
 * @example Unary and server streaming over an in-memory pipe
 * ```ts
 * import { duplexPair, GrpcClient, grpcMethod, GrpcServer, rawCodec, serveGrpcConnection } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const echo = grpcMethod({ service: "demo.Raw", name: "Echo", kind: "unary", request: rawCodec, response: rawCodec });
 * const count = grpcMethod({ service: "demo.Raw", name: "Count", kind: "server_streaming", request: rawCodec, response: rawCodec });
 * const server = new GrpcServer()
 *   .handle(echo, (request) => request)
 *   .handle(count, function* (request) {
 *     for (let i = 0; i < request[0]!; i++) yield new Uint8Array([i]);
 *   });
 * const [a, b] = duplexPair();
 * serveGrpcConnection(b, server);
 * await using client = new GrpcClient(a);
 * assert.deepEqual(await client.unary(echo, new Uint8Array([1, 2])), new Uint8Array([1, 2]));
 * const call = client.serverStream(count, new Uint8Array([3]));
 * assert.deepEqual(await Array.fromAsync(call.responses), [new Uint8Array([0]), new Uint8Array([1]), new Uint8Array([2])]);
 * ```
 */
export class GrpcServer {
  readonly #options: _Resolved;
  readonly #routes = new Map<string, _Route>();
  readonly #services = new Set<string>();
  readonly #chain: GrpcNext;

  /**
   * Creates a server without methods; add them with {@linkcode GrpcServer.handle}.
   *
   * @param options limits, compression, interceptors, fallback
   * @throws {RangeError} For limits out of range.
   * @throws {TypeError} For an invalid fallback or compression list.
   */
  constructor(options: GrpcServerOptions = {}) {
    this.#options = _resolveGrpcServerOptions(options);
    const interceptors = [...(options.interceptors ?? [])];
    this.#chain = _applyInterceptors(interceptors, (call: GrpcCall) => {
      if (!(call instanceof _ServerCall)) {
        return Promise.reject(
          new TypeError("Cannot run call: an interceptor passed another object to next()"),
        );
      }
      return call.run();
    });
  }

  /** The paths of the registered methods. */
  get paths(): string[] {
    return [...this.#routes.keys()];
  }

  /**
   * Registers the handler of a method.
   *
   * @typeParam I the request message type
   * @typeParam O the response message type
   * @typeParam K the call kind
   * @param method the method, from {@linkcode grpcMethod} or {@linkcode protobufMethod}
   * @param handler its handler (see {@linkcode GrpcHandler})
   * @returns this server, for chaining
   * @throws {TypeError} If the path already has a handler.
   */
  handle<I, O, K extends GrpcMethodKind>(method: GrpcMethod<I, O, K>, handler: GrpcHandler<I, O, K>): this {
    if (typeof handler !== "function") {
      throw new TypeError(`Cannot handle ${method.path}: handler must be a function`);
    }
    if (this.#routes.has(method.path)) {
      throw new TypeError(`Cannot handle ${method.path}: it already has a handler`);
    }
    this.#routes.set(method.path, {
      method: method as unknown as GrpcMethod<unknown, unknown>,
      handler: handler as (input: unknown, call: GrpcServerCall) => unknown,
    });
    this.#services.add(method.service);
    return this;
  }

  /**
   * Serves one HTTP/2 stream (one request) of a server-side connection: a gRPC call,
   * or a fallback request. Never rejects; failures of the call become its status.
   *
   * @param stream a stream from {@linkcode Http2Connection.accept}
   * @param peer who the connection is with
   * @returns resolves when the call or request is finished
   */
  async handleStream(stream: Http2Stream, peer: GrpcPeer = _DEFAULT_PEER): Promise<void> {
    try {
      await this.#handle(stream, peer);
    } catch (error) {
      this.#options.onError(error);
      stream.reset("INTERNAL_ERROR");
    }
  }

  async #handle(stream: Http2Stream, peer: GrpcPeer): Promise<void> {
    let httpMethod: string | undefined;
    let path: string | undefined;
    let contentType: string | undefined;
    let timeout: string | undefined;
    let encoding: string | undefined;
    let acceptEncoding: string | undefined;
    for (const [name, value] of stream.headers) {
      switch (name) {
        case ":method":
          httpMethod = value;
          break;
        case ":path":
          path = value;
          break;
        case "content-type":
          contentType = value;
          break;
        case "grpc-timeout":
          timeout = value;
          break;
        case "grpc-encoding":
          encoding = value;
          break;
        case "grpc-accept-encoding":
          acceptEncoding = acceptEncoding === undefined ? value : `${acceptEncoding},${value}`;
          break;
      }
    }
    const subtype = contentType === undefined ? undefined : parseGrpcContentType(contentType);
    if (subtype === undefined) {
      if (this.#options.fallback !== undefined) {
        await _serveFallback(stream, this.#options.fallback, peer, this.#options.onError);
        return;
      }
      await this.#reject(
        stream,
        "415",
        "application/grpc",
        Status.INTERNAL,
        `invalid gRPC request content-type ${JSON.stringify(contentType ?? "")}`,
      );
      return;
    }
    const responseType = _responseType(contentType!);
    if (httpMethod !== "POST") {
      await this.#reject(
        stream,
        "405",
        responseType,
        Status.INTERNAL,
        `invalid gRPC request method ${JSON.stringify(httpMethod ?? "")}`,
      );
      return;
    }
    const route = path === undefined ? undefined : this.#routes.get(path);
    if (route === undefined) {
      await this.#reject(stream, "200", responseType, Status.UNIMPLEMENTED, this.#unknown(path ?? ""));
      return;
    }
    let receive: Compression | undefined;
    if (encoding !== undefined && encoding !== "identity") {
      receive = this.#options.acceptCompression.get(encoding);
      if (receive === undefined) {
        await this.#reject(
          stream,
          "200",
          responseType,
          Status.UNIMPLEMENTED,
          `grpc-encoding ${JSON.stringify(encoding)} is not supported`,
        );
        return;
      }
    }
    let send: Compression | undefined;
    const sendCompression = this.#options.sendCompression;
    if (sendCompression !== undefined && acceptEncoding !== undefined) {
      if (acceptEncoding.split(",").some((token) => token.trim() === sendCompression.name)) {
        send = sendCompression;
      }
    }
    let timeoutMs: number | undefined;
    if (timeout !== undefined) {
      try {
        timeoutMs = parseGrpcTimeout(timeout);
      } catch (error) {
        await this.#reject(stream, "200", responseType, Status.INTERNAL, (error as GrpcError).details);
        return;
      }
    }
    const call = new _ServerCall(stream, route, peer, this.#options, {
      contentType: responseType,
      timeoutMs,
      receive,
      send,
    });
    let outcome: unknown;
    try {
      await this.#chain(call);
    } catch (error) {
      outcome = error ?? new GrpcError(Status.UNKNOWN, "handler failed without a reason");
    }
    await call.finish(outcome);
  }

  #unknown(path: string): string {
    const match = /^\/([^/]+)\/([^/]+)$/.exec(path);
    if (match === null) return `malformed method name ${JSON.stringify(path)}`;
    const [, service, method] = match;
    if (!this.#services.has(service!)) return `unknown service ${service}`;
    return `unknown method ${method} for service ${service}`;
  }

  /** A status answer before any handler ran. */
  async #reject(
    stream: Http2Stream,
    status: string,
    contentType: string,
    code: Status,
    message: string,
  ): Promise<void> {
    const trailers: Http2Headers = [["grpc-status", String(code)], [
      "grpc-message",
      encodeGrpcMessage(message),
    ]];
    try {
      _respondStatus(stream, [
        [":status", status],
        ["content-type", contentType],
        ["grpc-accept-encoding", this.#options.acceptEncodingHeader],
      ], trailers);
    } catch {
      // the client went away
    }
    await stream.close().catch(() => {});
  }
}
