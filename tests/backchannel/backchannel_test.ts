import assert from "node:assert/strict";
import {
  BACKCHANNEL_CLIENT,
  BackchannelClient,
  BackchannelError,
  BackchannelRegistry,
  BackchannelServer,
  duplexPair,
  getBackchannelPeer,
  GrpcClient,
  GrpcError,
  type GrpcInterceptor,
  grpcMethod,
  GrpcServer,
  rawCodec,
  serveBackchannel,
  sidechannelErrorInterceptor,
  Status,
  YamuxSession,
} from "../../mod.ts";
import { text, transports, utf8, withTimeout } from "../_util.ts";

const vote = grpcMethod({
  service: "gitaly.RefTransaction",
  name: "VoteTransaction",
  kind: "unary",
  request: rawCodec,
  response: rawCodec,
});
const mutate = grpcMethod({
  service: "gitaly.RefService",
  name: "Mutate",
  kind: "unary",
  request: rawCodec,
  response: rawCodec,
});
const whoami = grpcMethod({
  service: "demo.Peer",
  name: "WhoAmI",
  kind: "unary",
  request: rawCodec,
  response: rawCodec,
});

Deno.test("backchannel: TestBackchannel_concurrentRequestsFromMultipleClients", async () => {
  let interceptorCalls = 0;
  const counting: GrpcInterceptor = (next) => (call) => {
    interceptorCalls++;
    return next(call);
  };
  // Gitaly's side: a mutator that votes over the backchannel of the calling peer.
  const ref: { listener?: ReturnType<typeof serveBackchannel> } = {};
  const gitaly = new GrpcServer({ interceptors: [sidechannelErrorInterceptor] }).handle(
    mutate,
    async (request, call) => {
      const peer = getBackchannelPeer(call);
      const backchannel = await ref.listener!.backchannel.registry.backchannel(peer.id);
      return await backchannel.unary(vote, request);
    },
  );
  await using listener = serveBackchannel({
    hostname: "127.0.0.1",
    port: 0,
    backchannel: { interceptors: [counting] },
  }, gitaly);
  ref.listener = listener;

  const plain = Array.from({ length: 25 }, async () => {
    await using client = await GrpcClient.connect({ port: listener.addr.port });
    const error = await client.unary(mutate, utf8("x")).catch((e) => e);
    assert.ok(error instanceof GrpcError);
    assert.equal(error.code, Status.FAILED_PRECONDITION);
    assert.match(error.details, /non-multiplexed connection/);
  });
  const multiplexed = Array.from({ length: 25 }, async (_, i) => {
    // Each client's own server answers votes with an error naming the client.
    const praefect = new GrpcServer().handle(vote, (request) => {
      throw new GrpcError(Status.INTERNAL, `multiplexed ${text(request)}`);
    });
    await using client = await BackchannelClient.dial({ port: listener.addr.port, server: praefect });
    await Promise.all([0, 1].map(async () => {
      const error = await client.grpc.unary(mutate, utf8(String(i))).catch((e) => e);
      assert.ok(error instanceof GrpcError);
      assert.equal(error.details, `multiplexed ${i}`);
    }));
  });
  await withTimeout(Promise.all([...plain, ...multiplexed]), 60_000, "50 clients");
  assert.equal(interceptorCalls, 50);
});

Deno.test("backchannel: peer ids start at 1 per server; peers leave the registry when they disconnect", async () => {
  const server = new GrpcServer().handle(
    whoami,
    (_request, call) => utf8(String(getBackchannelPeer(call).id)),
  );
  const backchannel = new BackchannelServer(server);
  const clients: BackchannelClient[] = [];
  for (let i = 0; i < 3; i++) {
    const [a, b] = duplexPair();
    const served = backchannel.serveConnection(b);
    clients.push(await BackchannelClient.connect(a));
    const { peer } = await served;
    assert.equal(peer!.id, i + 1);
  }
  for (const [i, client] of clients.entries()) {
    assert.equal(text(await client.grpc.unary(whoami, new Uint8Array(0))), String(i + 1));
  }
  assert.equal(backchannel.registry.size, 3);
  await clients[1]!.close();
  await backchannel.registry.get(2)?.closed;
  assert.equal(backchannel.registry.get(2), undefined);
  await assert.rejects(backchannel.registry.backchannel(2), (e: unknown) => {
    assert.ok(e instanceof BackchannelError);
    assert.equal(e.code, "UNKNOWN_PEER");
    assert.match(e.message, /no backchannel for peer 2/);
    return true;
  });
  await Promise.all([clients[0]!.close(), clients[2]!.close()]);
});

Deno.test("backchannel: the server's client back to a peer reaches the peer's own server (BACKCHANNEL_CLIENT)", async () => {
  const server = new GrpcServer().handle(mutate, async (request, call) => {
    const client = await getBackchannelPeer(call).client();
    const again = await getBackchannelPeer(call).client();
    assert.equal(client, again, "one backchannel connection per peer");
    return await client.unary(vote, request);
  });
  const [a, b] = duplexPair();
  void new BackchannelServer(server).serveConnection(b);
  let seenClient: unknown;
  const own = new GrpcServer().handle(vote, (request, call) => {
    seenClient = call.peer.values.get(BACKCHANNEL_CLIENT);
    return utf8(text(request).toUpperCase());
  });
  await using client = await BackchannelClient.connect(a, { server: own });
  assert.equal(text(await client.grpc.unary(mutate, utf8("yes"))), "YES");
  assert.equal(seenClient, client);
});

Deno.test("backchannel: without its own server, a client resets plain server-opened streams", async () => {
  const errors: unknown[] = [];
  const server = new GrpcServer().handle(mutate, async (request, call) => {
    const client = await getBackchannelPeer(call).client();
    return await client.unary(vote, request);
  });
  const [a, b] = duplexPair();
  void new BackchannelServer(server).serveConnection(b);
  await using client = await BackchannelClient.connect(a, { onError: (e) => errors.push(e) });
  const error = await client.grpc.unary(mutate, utf8("x")).catch((e) => e);
  assert.ok(error instanceof GrpcError);
  assert.equal(error.code, Status.UNAVAILABLE);
  assert.ok(errors.some((e) => e instanceof BackchannelError && e.code === "HANDSHAKE"));
});

for (const transport of transports) {
  Deno.test(`backchannel: TestHandshaker_idempotentClose (${transport.name})`, async () => {
    const pair = await transport.pair();
    const backchannel = new BackchannelServer(new GrpcServer());
    const served = backchannel.serveConnection(pair.server);
    const client = await BackchannelClient.connect(pair.client);
    const { connection, peer } = await served;
    const first = client.close();
    const second = client.close();
    assert.equal(first, second);
    assert.equal(await first, await second);
    await client.close();
    await connection.closed;
    await peer!.close();
    await peer!.close();
    await pair.close();
  });
}

Deno.test("backchannel: the server handshake times out when stream 1 never comes", async () => {
  const errors: unknown[] = [];
  const backchannel = new BackchannelServer(new GrpcServer(), { handshakeTimeout: 50 });
  const [a, b] = duplexPair();
  await a.write(utf8("backchannel"));
  const session = YamuxSession.client(a); // but never opens a stream
  const error = await backchannel.serveConnection(b).catch((e) => e);
  errors.push(error);
  assert.ok(error instanceof BackchannelError);
  assert.equal(error.code, "HANDSHAKE");
  assert.equal(error.status, Status.UNAVAILABLE);
  await session.closed;
  assert.equal(backchannel.registry.size, 0);
});

Deno.test("backchannel: a client that sends nothing times out in listenmux", async () => {
  const backchannel = new BackchannelServer(new GrpcServer(), { handshakeTimeout: 50 });
  const [a, b] = duplexPair();
  const error = await backchannel.serveConnection(b).catch((e) => e);
  assert.equal(error.code, "HANDSHAKE");
  await assert.rejects(a.read(new Uint8Array(1)));
});

Deno.test("backchannel: BackchannelClient.connect() fails with HANDSHAKE on a dead transport or abort", async () => {
  const [a, b] = duplexPair();
  b.reset();
  await assert.rejects(BackchannelClient.connect(a), (e: unknown) => {
    assert.ok(e instanceof BackchannelError);
    assert.equal(e.code, "HANDSHAKE");
    return true;
  });
  const [c] = duplexPair({ highWaterMark: 0 }); // the magic write never completes
  const controller = new AbortController();
  const connecting = BackchannelClient.connect(c, { signal: controller.signal });
  const reason = new Error("give up");
  controller.abort(reason);
  await assert.rejects(connecting, (e: unknown) => e === reason);
  await assert.rejects(BackchannelClient.dial({ port: 1 }), { code: "HANDSHAKE" });
  assert.throws(() => new BackchannelServer(new GrpcServer(), { handshakeTimeout: -1 }), RangeError);
  await assert.rejects(BackchannelClient.connect(duplexPair()[0], { handshakeTimeout: 0.5 }), RangeError);
  await assert.rejects(
    BackchannelClient.connect(duplexPair()[0], {
      handshakers: { side: { handshake: () => Promise.resolve() } },
    }),
    RangeError,
  );
});

Deno.test("backchannel: plain and multiplexed clients share one listener, which shuts down cleanly", async () => {
  const echo = grpcMethod({
    service: "demo.Echo",
    name: "Echo",
    kind: "unary",
    request: rawCodec,
    response: rawCodec,
  });
  const listener = serveBackchannel(
    { hostname: "127.0.0.1", port: 0 },
    new GrpcServer().handle(echo, (r) => r),
  );
  const plain = await GrpcClient.connect({ port: listener.addr.port });
  const muxed = await BackchannelClient.dial({ port: listener.addr.port });
  assert.deepEqual(await plain.unary(echo, utf8("p")), utf8("p"));
  assert.deepEqual(await muxed.grpc.unary(echo, utf8("m")), utf8("m"));
  assert.equal(listener.connections, 2);
  assert.equal(listener.backchannel.registry.size, 1);
  await listener.shutdown();
  await Promise.all([plain.closed, muxed.closed]);
  assert.equal(listener.connections, 0);
  await muxed.close();
  await plain.close();
});

Deno.test("BackchannelRegistry starts empty", async () => {
  const registry = new BackchannelRegistry();
  assert.equal(registry.size, 0);
  await assert.rejects(registry.backchannel(1), { code: "UNKNOWN_PEER" });
});
