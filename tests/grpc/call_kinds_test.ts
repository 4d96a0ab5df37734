import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import {
  GrpcClient,
  GrpcError,
  GrpcKey,
  grpcMethod,
  type GrpcPeer,
  GrpcServer,
  GrpcValues,
  protobufCodec,
  protobufMethods,
  rawCodec,
  serveGrpcConnection,
  Status,
} from "../../mod.ts";
import { PostUploadPackV3RequestSchema } from "../../src/git/gen/smarthttp_pb.ts";
import { TestService } from "../interop/gen/grpc/testing/test_pb.ts";
import { SimpleRequestSchema, SimpleResponseSchema } from "../interop/gen/grpc/testing/messages_pb.ts";
import { concat, pseudoRandomBytes, sha256Hex, utf8, withTimeout } from "../_util.ts";
import { grpcPair, grpcTransports, RAW, rawServer, readU64, u64, yamuxTransport } from "./_setup.ts";

for (const transport of grpcTransports) {
  Deno.test(`GrpcClient and GrpcServer run all four call kinds over ${transport.name}`, async () => {
    const pair = await grpcPair(transport, rawServer());
    try {
      const { client } = pair;
      assert.deepEqual(await client.unary(RAW.echo, utf8("hello")), utf8("hello"));
      assert.deepEqual(await client.unary(RAW.echo, new Uint8Array(0)), new Uint8Array(0));

      const pull = client.serverStream(RAW.pull, u64(1_000_000));
      const chunks = await Array.fromAsync(pull.responses);
      assert.equal(chunks.length, Math.ceil(1_000_000 / 65536));
      assert.equal(await sha256Hex(concat(chunks)), await sha256Hex(pseudoRandomBytes(1_000_000, 1)));
      await pull.done;

      const parts = [new Uint8Array(10), new Uint8Array(100_000), new Uint8Array(0), new Uint8Array(5)];
      assert.equal(readU64(await client.clientStream(RAW.push, parts)), 100_015);
      const generated = async function* () {
        for (let i = 0; i < 50; i++) yield await Promise.resolve(new Uint8Array(1000));
      };
      assert.equal(readU64(await client.clientStream(RAW.push, generated())), 50_000);

      const bidi = client.stream(RAW.bidi);
      const writer = bidi.requests.getWriter();
      const reader = bidi.responses.getReader();
      for (let i = 0; i < 20; i++) {
        await writer.write(pseudoRandomBytes(1 + i * 3000, i));
        const { value } = await reader.read();
        assert.deepEqual(value, pseudoRandomBytes(1 + i * 3000, i));
      }
      await writer.close();
      assert.equal((await reader.read()).done, true);
      await bidi.done;
    } finally {
      await pair.close();
    }
  });
}

Deno.test("GrpcClient runs 200 concurrent calls of mixed kinds on one connection", async () => {
  const pair = await grpcPair(grpcTransports[1]!, rawServer());
  try {
    const { client } = pair;
    await withTimeout(
      Promise.all(Array.from({ length: 200 }, async (_, i) => {
        if (i % 3 === 0) {
          assert.deepEqual(await client.unary(RAW.echo, u64(i)), u64(i));
        } else if (i % 3 === 1) {
          const bytes = await Array.fromAsync(client.serverStream(RAW.pull, u64(i * 1000)).responses);
          assert.equal(bytes.reduce((n, b) => n + b.byteLength, 0), i * 1000);
        } else {
          assert.equal(readU64(await client.clientStream(RAW.push, [new Uint8Array(i)])), i);
        }
      })),
      20_000,
    );
  } finally {
    await pair.close();
  }
});

Deno.test("GrpcServer serves both roles over yamux: each side calls the other (backchannel shape)", async () => {
  // Forward: yamux stream 1 from the dialer; backward: a stream the acceptor opens.
  const PEER = new GrpcKey<string>("peer-name");
  const seen: string[] = [];
  const whoami = grpcMethod({
    service: "demo.Who",
    name: "Am",
    kind: "unary",
    request: rawCodec,
    response: rawCodec,
  });
  const serverFor = (name: string) =>
    new GrpcServer().handle(whoami, (_request, call) => {
      seen.push(`${name} <- ${call.peer.values.get(PEER)}`);
      return utf8(name);
    });
  const forward = await yamuxTransport.pair();
  const backward = await yamuxTransport.pair();
  const conns = [
    serveGrpcConnection(forward.server, serverFor("gitaly"), {
      peer: { secure: false, values: new GrpcValues().set(PEER, "workhorse") },
    }),
    serveGrpcConnection(backward.client, serverFor("workhorse"), {
      peer: { secure: false, values: new GrpcValues().set(PEER, "gitaly") },
    }),
  ];
  const toGitaly = new GrpcClient(forward.client);
  const toWorkhorse = new GrpcClient(backward.server);
  try {
    assert.deepEqual(await toGitaly.unary(whoami, new Uint8Array(0)), utf8("gitaly"));
    assert.deepEqual(await toWorkhorse.unary(whoami, new Uint8Array(0)), utf8("workhorse"));
    assert.deepEqual(seen, ["gitaly <- workhorse", "workhorse <- gitaly"]);
  } finally {
    await Promise.all([toGitaly.close(), toWorkhorse.close(), ...conns.map((c) => c.close())]);
    await Promise.all([forward.close(), backward.close()]);
  }
});

Deno.test("GrpcServer handlers see the peer given to serveGrpcConnection", async () => {
  const log = { signals: [], peers: [] as GrpcPeer[], aborted: [] };
  const peer: GrpcPeer = { secure: true, values: new GrpcValues() };
  const pair = await grpcPair(grpcTransports[0]!, rawServer({}, log), {}, { peer });
  try {
    await pair.client.unary(RAW.echo, new Uint8Array(1));
    assert.equal(log.peers[0], peer);
  } finally {
    await pair.close();
  }
});

Deno.test("protobufMethods() calls grpc.testing.TestService with protobuf messages", async () => {
  const test = protobufMethods(TestService);
  assert.equal(test.unaryCall.path, "/grpc.testing.TestService/UnaryCall");
  assert.equal(test.fullDuplexCall.kind, "bidi_streaming");
  const server = new GrpcServer().handle(test.unaryCall, (request) =>
    create(SimpleResponseSchema, {
      payload: { body: new Uint8Array(request.responseSize) },
      username: `got ${request.payload?.body.byteLength}`,
    }));
  const pair = await grpcPair(grpcTransports[0]!, server);
  try {
    const response = await pair.client.unary(
      test.unaryCall,
      create(SimpleRequestSchema, { responseSize: 314159, payload: { body: new Uint8Array(271828) } }),
    );
    assert.equal(response.payload?.body.byteLength, 314159);
    assert.equal(response.username, "got 271828");
  } finally {
    await pair.close();
  }
});

Deno.test("A raw bidi handler decodes message 1 as protobuf and streams the rest as raw views (PostUploadPackV3)", async () => {
  const v3 = grpcMethod({
    service: "gitaly.SmartHTTPService",
    name: "PostUploadPackV3",
    kind: "bidi_streaming",
    request: rawCodec,
    response: rawCodec,
  });
  const first = protobufCodec(PostUploadPackV3RequestSchema);
  const server = new GrpcServer().handle(v3, async function* (requests) {
    const reader = requests.getReader();
    const head = await reader.read();
    if (head.done) throw new GrpcError(Status.INVALID_ARGUMENT, "no request");
    const request = first.decode(head.value);
    yield utf8(`repo=${request.repository?.relativePath} protocol=${request.gitProtocol}`);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      yield value; // a view of the received bytes, passed on as is
    }
  });
  const pair = await grpcPair(grpcTransports[1]!, server);
  try {
    const call = pair.client.stream(v3);
    const writer = call.requests.getWriter();
    await writer.write(first.encode(create(PostUploadPackV3RequestSchema, {
      repository: { storageName: "default", relativePath: "a.git" },
      gitProtocol: "version=2",
    })));
    const data = pseudoRandomBytes(3 << 20, 5);
    const writing = (async () => {
      for (let i = 0; i < data.byteLength; i += 65536) await writer.write(data.subarray(i, i + 65536));
      await writer.close();
    })();
    const [head, ...rest] = await Array.fromAsync(call.responses);
    await writing;
    assert.equal(new TextDecoder().decode(head), "repo=a.git protocol=version=2");
    assert.equal(await sha256Hex(concat(rest)), await sha256Hex(data));
    await call.done;
  } finally {
    await pair.close();
  }
});
