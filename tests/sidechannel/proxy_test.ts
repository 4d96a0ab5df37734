import assert from "node:assert/strict";
import {
  BackchannelClient,
  BackchannelServer,
  callWithSidechannel,
  type GrpcCall,
  GrpcError,
  GrpcServer,
  type GrpcServerCall,
  GrpcValues,
  type Metadata,
  openSidechannelForCall,
  SIDECHANNEL_DOWNSTREAM,
  SIDECHANNEL_ID_METADATA,
  type SidechannelClientConn,
  sidechannelErrorInterceptor,
  sidechannelProxyInterceptor,
  SidechannelRegistry,
  type SidechannelServerConn,
  Status,
} from "../../mod.ts";
import { readAll, text, transports, utf8 } from "../_util.ts";
import { SC } from "./_harness.ts";

/** Reads exactly `n` bytes (the server side of the "without closeWrite" cases). */
async function readN(conn: SidechannelServerConn, n: number): Promise<string> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const k = await conn.read(out.subarray(got));
    if (k === null) throw new Error("short read");
    got += k;
  }
  return text(out);
}

interface Topology {
  client: BackchannelClient;
  registry: SidechannelRegistry;
  proxyErrors: unknown[];
  close(): Promise<void>;
}

/**
 * client → proxy → upstream, each hop a backchannel connection. The upstream's `custom`
 * and `stream` handlers are given; the proxy forwards both with the proxy interceptor.
 */
async function topology(
  upstreamCustom: (call: GrpcServerCall) => Promise<void>,
  transportIndex = 0,
): Promise<Topology> {
  const upstreamServer = new GrpcServer({ interceptors: [sidechannelErrorInterceptor] })
    .handle(SC.custom, async (_request, call) => {
      await upstreamCustom(call);
      return utf8("done");
    })
    .handle(SC.stream, async function* (_request, call) {
      await upstreamCustom(call);
      yield utf8("done");
    });
  const up = await transports[transportIndex]!.pair();
  void new BackchannelServer(upstreamServer).serveConnection(up.server);
  const upstreamRegistry = new SidechannelRegistry();
  const proxyErrors: unknown[] = [];
  const upstream = await BackchannelClient.connect(up.client, {
    handshakers: { sidechannel: upstreamRegistry },
    grpc: {
      interceptors: [sidechannelProxyInterceptor(upstreamRegistry, { onError: (e) => proxyErrors.push(e) })],
    },
  });
  const forward = (call: GrpcCall) => ({
    metadata: call.requestMetadata.filter(([name]) => name === SIDECHANNEL_ID_METADATA) as Metadata,
    values: new GrpcValues().set(SIDECHANNEL_DOWNSTREAM, call),
  });
  const proxyServer = new GrpcServer()
    .handle(SC.custom, (request, call) => upstream.grpc.unary(SC.custom, request, forward(call)))
    .handle(SC.stream, async function* (request, call) {
      const stream = upstream.grpc.serverStream(SC.stream, request, forward(call));
      for await (const message of stream.responses) yield message;
      await stream.done;
    });
  const down = await transports[transportIndex]!.pair();
  void new BackchannelServer(proxyServer).serveConnection(down.server);
  const registry = new SidechannelRegistry();
  const client = await BackchannelClient.connect(down.client, { handshakers: { sidechannel: registry } });
  return {
    client,
    registry,
    proxyErrors,
    async close() {
      await client.close();
      await upstream.close();
      await Promise.all([up.close(), down.close()]);
    },
  };
}

/** The client's side: write "hello" (optionally closeWrite), read everything. */
function clientCallback(closeWrite: boolean, received: string[]) {
  return async (conn: SidechannelClientConn) => {
    await conn.write(utf8("hello"));
    if (closeWrite) await conn.closeWrite();
    received.push(text(await readAll(conn.readable)));
  };
}

for (const kind of ["unary", "stream"] as const) {
  const name = kind === "unary" ? "TestUnaryProxy" : "TestStreamProxy";
  const invoke = (t: Topology) => (metadata: Metadata) =>
    kind === "unary"
      ? t.client.grpc.unary(SC.custom, new Uint8Array(0), { metadata }).then(text)
      : (async () => {
        const stream = t.client.grpc.serverStream(SC.stream, new Uint8Array(0), { metadata });
        const messages = (await Array.fromAsync(stream.responses)).map(text);
        await stream.done; // Recv → EOF
        return messages.join(",");
      })();

  for (const [index, transport] of transports.entries()) {
    Deno.test(`sidechannel proxy: ${name} (${transport.name})`, async () => {
      const t = await topology(async (call) => {
        const conn = await openSidechannelForCall(call);
        assert.equal(text(await readAll(conn.readable)), "hello");
        await conn.write(utf8("world"));
        await conn.close();
      }, index);
      const received: string[] = [];
      assert.equal(await callWithSidechannel(t.registry, clientCallback(true, received), invoke(t)), "done");
      assert.deepEqual(received, ["world"]);
      assert.equal(t.registry.waiting, 0);
      await t.close();
    });
  }

  Deno.test(`sidechannel proxy: ${name}_${kind === "unary" ? "withoutCloseWrite" : "noCloseWrite"}`, async () => {
    const t = await topology(async (call) => {
      const conn = await openSidechannelForCall(call);
      assert.equal(await readN(conn, 5), "hello");
      await conn.write(utf8("world"));
      await conn.close();
    });
    const received: string[] = [];
    assert.equal(await callWithSidechannel(t.registry, clientCallback(false, received), invoke(t)), "done");
    assert.deepEqual(received, ["world"]);
    await t.close();
  });

  Deno.test(`sidechannel proxy: ${name}_upstreamError keeps the trailing data and the status`, async () => {
    const t = await topology(async (call) => {
      const conn = await openSidechannelForCall(call);
      assert.equal(await readN(conn, 5), "hello");
      await conn.write(utf8("leftover data"));
      throw new GrpcError(Status.FAILED_PRECONDITION, "something went wrong");
    });
    const received: string[] = [];
    const error = await callWithSidechannel(t.registry, clientCallback(false, received), invoke(t))
      .catch((e) => e);
    assert.ok(error instanceof GrpcError, String(error));
    assert.equal(error.code, Status.FAILED_PRECONDITION);
    assert.equal(error.details, "something went wrong");
    assert.deepEqual(received, ["leftover data"]);
    await t.close();
  });
}

Deno.test("sidechannel proxy: the proxy appends its own id; the upstream uses the last one", async () => {
  const seen: string[][] = [];
  const t = await topology(async (call) => {
    seen.push(
      call.requestMetadata.filter(([n]) => n === SIDECHANNEL_ID_METADATA).map(([, v]) => String(v)),
    );
    const conn = await openSidechannelForCall(call);
    await readAll(conn.readable);
    await conn.close();
  });
  const received: string[] = [];
  for (let i = 0; i < 3; i++) {
    await callWithSidechannel(
      t.registry,
      clientCallback(true, received),
      (metadata) => t.client.grpc.unary(SC.custom, new Uint8Array(0), { metadata }),
    );
  }
  // The client's ids then the proxy's, both counting from 0 in their own registries.
  assert.deepEqual(seen, [["0", "0"], ["1", "1"], ["2", "2"]]);
  await t.close();
});

Deno.test("sidechannel proxy: an upstream that never opens the sidechannel is not an error", async () => {
  const t = await topology(() => Promise.resolve());
  const error = await callWithSidechannel(
    t.registry,
    () => {},
    (metadata) => t.client.grpc.unary(SC.custom, new Uint8Array(0), { metadata }),
  ).catch((e) => e);
  // The proxy call succeeds; only the client's own waiter reports that it never ran.
  assert.equal(error.code, "CALLBACK_DID_NOT_RUN");
  assert.deepEqual(t.proxyErrors, []);
  await t.close();
});

Deno.test("sidechannel proxy: an upstream that resets mid-transfer fails the call; the client sees an error", async () => {
  const t = await topology(async (call) => {
    const conn = await openSidechannelForCall(call);
    await conn.write(new Uint8Array(100_000));
    conn.reset(new Error("upstream gave up"));
  });
  let readError: unknown;
  const error = await callWithSidechannel(t.registry, async (conn) => {
    await conn.closeWrite();
    try {
      await readAll(conn.readable);
    } catch (e) {
      readError = e;
      throw e;
    }
  }, (metadata) => t.client.grpc.unary(SC.custom, new Uint8Array(0), { metadata })).catch((e) => e);
  assert.ok(error instanceof GrpcError, String(error));
  assert.equal(error.code, Status.CANCELLED); // the upstream sidechannel was reset
  assert.ok(readError !== undefined, "the client must not see a clean end");
  await t.close();
});
