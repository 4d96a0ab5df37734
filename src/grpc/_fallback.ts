/**
 * Serving a plain HTTP request on an HTTP/2 stream with a `Request` → `Response`
 * handler (the non-gRPC half of a shared port).
 *
 * @module
 */

import type { Http2Headers } from "../http2/headers.ts";
import type { Http2Stream } from "../http2/stream.ts";
import type { GrpcPeer } from "./call.ts";

/** Response headers HTTP/2 forbids (RFC 9113 §8.2.2) or that describe HTTP/1.1 framing. */
const _HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
]);

/**
 * Sends headers and ends the stream without a body. Not `respond({ endStream })`: a
 * `close()` right after it could drop the still-queued HEADERS, while `writable.close()`
 * resolves once the end is on its way.
 */
async function _respondEmpty(stream: Http2Stream, headers: Http2Headers): Promise<void> {
  try {
    stream.respond(headers);
    await stream.writable.close();
  } catch {
    // already responded or reset
  }
}

function _respondError(stream: Http2Stream, status: number): Promise<void> {
  return _respondEmpty(stream, [[":status", String(status)], ["content-type", "text/plain"]]);
}

/**
 * Turns the stream into a `Request`, calls `handler`, streams its `Response` back.
 * Rejects only with errors already reported through `onError`.
 */
export async function _serveFallback(
  stream: Http2Stream,
  handler: (request: Request, peer: GrpcPeer) => Response | Promise<Response>,
  peer: GrpcPeer,
  onError: (error: unknown) => void,
): Promise<void> {
  let method = "GET";
  let scheme = peer.secure ? "https" : "http";
  let authority: string | undefined;
  let host: string | undefined;
  let path = "/";
  const headers = new Headers();
  for (const [name, value] of stream.headers) {
    switch (name) {
      case ":method":
        method = value;
        continue;
      case ":scheme":
        scheme = value;
        continue;
      case ":authority":
        authority = value;
        continue;
      case ":path":
        path = value;
        continue;
      case "host":
        host = value;
        break;
    }
    if (name.startsWith(":")) continue;
    try {
      headers.append(name, value);
    } catch {
      // a value Headers rejects: leave it out
    }
  }
  const controller = new AbortController();
  let finished = false;
  stream.closed.then(() => {
    if (!finished) {
      controller.abort(new DOMException("Cannot continue: the client reset the stream", "AbortError"));
    }
  });
  let request: Request;
  try {
    const hasBody = method !== "GET" && method !== "HEAD";
    request = new Request(new URL(path, `${scheme}://${authority ?? host ?? "localhost"}`), {
      method,
      headers,
      body: hasBody ? stream.readable : null,
      signal: controller.signal,
      // @ts-ignore: `duplex` is in the Fetch standard, not yet in Deno's RequestInit type
      duplex: "half",
    });
  } catch {
    await _respondError(stream, 400);
    await stream.close().catch(() => {});
    return;
  }
  try {
    let response: Response;
    try {
      response = await handler(request, peer);
      if (!(response instanceof Response)) {
        throw new TypeError("Cannot serve fallback: handler did not return a Response");
      }
    } catch (error) {
      onError(error);
      await _respondError(stream, 500);
      return;
    }
    const out: Http2Headers = [[":status", String(response.status)]];
    for (const [name, value] of response.headers) {
      if (!_HOP_BY_HOP.has(name)) out.push([name, value]);
    }
    const body = response.body;
    if (body === null || method === "HEAD" || response.status === 204 || response.status === 304) {
      await body?.cancel().catch(() => {});
      await _respondEmpty(stream, out);
      return;
    }
    stream.respond(out);
    try {
      await body.pipeTo(stream.writable);
    } catch (error) {
      // The client went away (the stream is reset), or the body failed: reset so the client
      // never mistakes a truncated body for a complete one.
      if (!controller.signal.aborted) onError(error);
      stream.reset("INTERNAL_ERROR");
    }
  } finally {
    finished = true;
    await stream.close().catch(() => {});
  }
}
