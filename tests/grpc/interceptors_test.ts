import assert from "node:assert/strict";
import {
  concurrencyLimitInterceptor,
  GrpcError,
  type GrpcInterceptor,
  GrpcKey,
  type GrpcLogEntry,
  GrpcMetrics,
  GrpcServer,
  loggingInterceptor,
  Status,
  tokenAuthInterceptor,
} from "../../mod.ts";
import { utf8 } from "../_util.ts";
import { grpcError, grpcPair, grpcTransports, RAW, rawServer, u64, until } from "./_setup.ts";

const pipe = grpcTransports[0]!;

function tracer(name: string, trace: string[]): GrpcInterceptor {
  return (next) => async (call) => {
    trace.push(`${call.side} ${name} in`);
    try {
      await next(call);
      trace.push(`${call.side} ${name} out`);
    } catch (error) {
      trace.push(`${call.side} ${name} error ${GrpcError.from(error).code}`);
      throw error;
    }
  };
}

Deno.test("Interceptors wrap calls onion-style on both sides, the first outermost", async () => {
  const trace: string[] = [];
  const server = new GrpcServer({ interceptors: [tracer("a", trace), tracer("b", trace)] })
    .handle(RAW.echo, (request) => {
      trace.push("handler");
      if (request.byteLength === 0) throw new GrpcError(Status.NOT_FOUND, "none");
      return request;
    });
  const pair = await grpcPair(pipe, server, { interceptors: [tracer("a", trace), tracer("b", trace)] });
  try {
    await pair.client.unary(RAW.echo, new Uint8Array(1));
    assert.deepEqual(trace, [
      "client a in",
      "client b in",
      "server a in",
      "server b in",
      "handler",
      "server b out",
      "server a out",
      "client b out",
      "client a out",
    ]);
    trace.length = 0;
    await grpcError(pair.client.unary(RAW.echo, new Uint8Array(0)));
    assert.deepEqual(trace.filter((t) => t.startsWith("server")), [
      "server a in",
      "server b in",
      "server b error 5",
      "server a error 5",
    ]);
    assert.deepEqual(trace.slice(-2), ["client b error 5", "client a error 5"]);
  } finally {
    await pair.close();
  }
});

Deno.test("A server interceptor hands values to the handler and can map errors to statuses", async () => {
  const USER = new GrpcKey<string>("user");
  const auth: GrpcInterceptor = (next) => async (call) => {
    const user = call.requestMetadata.find(([k]) => k === "x-user")?.[1];
    if (typeof user === "string") call.values.set(USER, user);
    try {
      await next(call);
    } catch (error) {
      if (error instanceof TypeError) throw new GrpcError(Status.INVALID_ARGUMENT, error.message);
      throw error;
    }
  };
  const server = new GrpcServer({ interceptors: [auth] }).handle(RAW.echo, (_request, call) => {
    const user = call.values.get(USER);
    if (user === undefined) throw new TypeError("who are you?");
    return utf8(`hi ${user}`);
  });
  const pair = await grpcPair(pipe, server);
  try {
    assert.deepEqual(
      await pair.client.unary(RAW.echo, new Uint8Array(0), { metadata: [["x-user", "ann"]] }),
      utf8("hi ann"),
    );
    const error = await grpcError(pair.client.unary(RAW.echo, new Uint8Array(0)));
    assert.equal(error.code, Status.INVALID_ARGUMENT);
    assert.equal(error.details, "who are you?");
  } finally {
    await pair.close();
  }
});

Deno.test("tokenAuthInterceptor() sends a bearer token and rejects missing or wrong ones with UNAUTHENTICATED", async () => {
  const verified: string[] = [];
  const server = rawServer({
    interceptors: [tokenAuthInterceptor({
      verify: (token) => {
        verified.push(token);
        return token === "v2.good";
      },
    })],
  });
  const good = await grpcPair(pipe, server, {
    interceptors: [tokenAuthInterceptor({ token: () => Promise.resolve("v2.good") })],
  });
  const bad = await grpcPair(pipe, server, { interceptors: [tokenAuthInterceptor({ token: "v2.bad" })] });
  const none = await grpcPair(pipe, server);
  try {
    assert.deepEqual(await good.client.unary(RAW.echo, utf8("x")), utf8("x"));
    assert.equal((await grpcError(bad.client.unary(RAW.echo, utf8("x")))).code, Status.UNAUTHENTICATED);
    assert.equal((await grpcError(none.client.unary(RAW.echo, utf8("x")))).code, Status.UNAUTHENTICATED);
    const basic = await grpcError(
      none.client.unary(RAW.echo, utf8("x"), { metadata: [["authorization", "Basic eA"]] }),
    );
    assert.equal(basic.code, Status.UNAUTHENTICATED);
    assert.deepEqual(verified, ["v2.good", "v2.bad"]);
    // The handler never ran for rejected calls: a streaming call is refused before any message.
    const pull = none.client.serverStream(RAW.pull, u64(1 << 20));
    assert.equal((await grpcError(Array.fromAsync(pull.responses))).code, Status.UNAUTHENTICATED);
  } finally {
    await Promise.all([good.close(), bad.close(), none.close()]);
  }
  assert.throws(() => tokenAuthInterceptor({}), TypeError);
});

Deno.test("tokenAuthInterceptor() with a fixed token, a custom header and no scheme", async () => {
  const options = { token: "abc", header: "x-token", scheme: "" };
  const server = rawServer({ interceptors: [tokenAuthInterceptor(options)] });
  const pair = await grpcPair(pipe, server, { interceptors: [tokenAuthInterceptor(options)] });
  try {
    assert.deepEqual(await pair.client.unary(RAW.echo, utf8("y")), utf8("y"));
  } finally {
    await pair.close();
  }
});

Deno.test("loggingInterceptor() reports every call once, with status, duration and counters", async () => {
  const serverLog: GrpcLogEntry[] = [];
  const clientLog: GrpcLogEntry[] = [];
  const pair = await grpcPair(
    pipe,
    rawServer({ interceptors: [loggingInterceptor((e) => serverLog.push(e))] }),
    {
      interceptors: [loggingInterceptor((e) => {
        clientLog.push(e);
        throw new Error("a broken logger");
      })],
    },
  );
  try {
    await pair.client.unary(RAW.echo, new Uint8Array(10));
    await grpcError(pair.client.unary(RAW.echo, new Uint8Array(1), { metadata: [["x-fail-with", "9"]] }));
    assert.equal(
      (await Array.fromAsync(pair.client.serverStream(RAW.pull, u64(100_000)).responses)).length,
      2,
    );
    await until(() => serverLog.length === 3, "the server's log"); // it logs after sending the status
    assert.deepEqual(serverLog.map((e) => [e.side, e.method, e.status]), [
      ["server", "/raw.Raw/Echo", "OK"],
      ["server", "/raw.Raw/Echo", "FAILED_PRECONDITION"],
      ["server", "/raw.Raw/Pull", "OK"],
    ]);
    assert.deepEqual(clientLog.map((e) => e.code), [0, 9, 0]);
    assert.equal(serverLog[1]!.error?.code, Status.FAILED_PRECONDITION);
    assert.equal(serverLog[2]!.stats.messagesSent, 2);
    assert.equal(serverLog[2]!.stats.bytesSent, 100_000);
    assert.equal(clientLog[0]!.stats.bytesSent, 10);
    assert.ok(serverLog.every((e) => e.durationMs >= 0));
  } finally {
    await pair.close();
  }
});

Deno.test("GrpcMetrics counts calls by method and status, in flight, messages and bytes", async () => {
  const metrics = new GrpcMetrics();
  const clientMetrics = new GrpcMetrics();
  const pair = await grpcPair(pipe, rawServer({ interceptors: [metrics.interceptor] }), {
    interceptors: [clientMetrics.interceptor],
  });
  try {
    await Promise.all([1, 2, 3].map((n) => pair.client.unary(RAW.echo, new Uint8Array(n))));
    await grpcError(pair.client.unary(RAW.echo, new Uint8Array(1), { metadata: [["x-fail-with", "5"]] }));
    assert.equal(
      readBig(await pair.client.clientStream(RAW.push, [new Uint8Array(7), new Uint8Array(8)])),
      15,
    );
    await until(() => metrics.snapshot()["/raw.Raw/Push"]?.inFlight === 0, "the server's last call");
    const snapshot = metrics.snapshot();
    assert.deepEqual(snapshot["/raw.Raw/Echo"]!.finished, { OK: 3, NOT_FOUND: 1 });
    assert.equal(snapshot["/raw.Raw/Echo"]!.started, 4);
    assert.equal(snapshot["/raw.Raw/Echo"]!.inFlight, 0);
    assert.equal(snapshot["/raw.Raw/Echo"]!.bytesReceived, 7);
    assert.equal(snapshot["/raw.Raw/Push"]!.messagesReceived, 2);
    assert.equal(clientMetrics.snapshot()["/raw.Raw/Push"]!.bytesSent, 15);
  } finally {
    await pair.close();
  }
});

function readBig(bytes: Uint8Array): number {
  return Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0));
}

Deno.test("concurrencyLimitInterceptor() bounds running calls, queues in order, and sheds past maxQueued", async () => {
  let running = 0;
  let peak = 0;
  const gates: (() => void)[] = [];
  const entered = new GrpcMetrics();
  const server = new GrpcServer({
    interceptors: [entered.interceptor, concurrencyLimitInterceptor({ limit: 2, maxQueued: 2 })],
  })
    .handle(RAW.echo, async (request) => {
      peak = Math.max(peak, ++running);
      await new Promise<void>((resolve) => gates.push(resolve));
      running--;
      return request;
    });
  const pair = await grpcPair(pipe, server);
  try {
    const calls = [1, 2, 3, 4].map((n) => pair.client.unary(RAW.echo, new Uint8Array([n])));
    await until(
      () => gates.length === 2 && entered.snapshot()["/raw.Raw/Echo"]?.inFlight === 4,
      "4 calls in",
    );
    const shed = await grpcError(pair.client.unary(RAW.echo, new Uint8Array([5])));
    assert.equal(shed.code, Status.RESOURCE_EXHAUSTED);
    for (let released = 0; released < 4; released++) {
      await until(() => gates.length > 0, "a running call");
      gates.shift()!();
    }
    const results = await Promise.all(calls);
    assert.deepEqual(results.map((r) => r[0]), [1, 2, 3, 4]);
    assert.equal(peak, 2);
  } finally {
    await pair.close();
  }
  assert.throws(() => concurrencyLimitInterceptor({ limit: 0 }), RangeError);
  assert.throws(() => concurrencyLimitInterceptor({ limit: 1, maxQueued: -1 }), RangeError);
});

Deno.test("concurrencyLimitInterceptor() on the client: a queued call honours its deadline and cancellation", async () => {
  const pair = await grpcPair(pipe, rawServer(), {
    interceptors: [concurrencyLimitInterceptor({ limit: 1 })],
  });
  try {
    const blocker = pair.client.unary(RAW.hang, new Uint8Array(1), { timeout: 200 });
    const waiting = await grpcError(pair.client.unary(RAW.echo, new Uint8Array(1), { timeout: 20 }));
    assert.equal(waiting.code, Status.DEADLINE_EXCEEDED);
    const controller = new AbortController();
    const cancelled = pair.client.unary(RAW.echo, new Uint8Array(1), { signal: controller.signal });
    controller.abort();
    assert.equal((await grpcError(cancelled)).code, Status.CANCELLED);
    assert.equal((await grpcError(blocker)).code, Status.DEADLINE_EXCEEDED);
    assert.deepEqual(await pair.client.unary(RAW.echo, new Uint8Array([9])), new Uint8Array([9]));
  } finally {
    await pair.close();
  }
});
