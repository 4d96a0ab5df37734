import assert from "node:assert/strict";
import {
  type FrontLogEntry,
  GitHttpFront,
  type GitHttpFrontOptions,
  type GitUpstream,
  type GitUpstreamClient,
  GrpcError,
  type RepositoryLocation,
  Status,
  type UploadPackCall,
} from "../../mod.ts";
import { text, utf8 } from "../_util.ts";

const INFO = "http://h/foo.git/info/refs?service=git-upload-pack";
const POST = "http://h/foo.git/git-upload-pack";

/** A scripted upload-pack call: chunks to send, then an outcome. */
interface Script {
  chunks?: string[];
  /** Fail the call with this status before any output. */
  failBefore?: Status;
  /** Fail the call after the chunks. */
  failAfter?: Status;
  /** Output waits for this promise after the chunks (a long transfer). */
  hold?: Promise<void>;
}

interface Recorded {
  repository: RepositoryLocation;
  call: UploadPackCall & { transport?: string };
  body: string;
}

/** An upstream that plays scripts in order, one per call, and records the calls. */
function scripted(scripts: Script[], recorded: Recorded[] = []): GitUpstream & { connects: number } {
  let next = 0;
  const play = (
    repository: RepositoryLocation,
    call: UploadPackCall & { transport?: string } = {},
    input: ReadableStream<Uint8Array> | null,
  ) => {
    const script = scripts[Math.min(next++, scripts.length - 1)]!;
    const record: Recorded = { repository, call, body: "" };
    recorded.push(record);
    const done = Promise.withResolvers<null>();
    done.promise.catch(() => {});
    const chunks = [...(script.chunks ?? [])];
    let started = false;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (!started) {
          started = true;
          if (input !== null) record.body = text(new Uint8Array(await new Response(input).arrayBuffer()));
          if (script.failBefore !== undefined) {
            const error = new GrpcError(script.failBefore, "scripted failure");
            done.reject(error);
            controller.error(error);
            return;
          }
        }
        const chunk = chunks.shift();
        if (chunk !== undefined) return controller.enqueue(utf8(chunk));
        if (script.hold !== undefined) await script.hold;
        if (script.failAfter !== undefined) {
          const error = new GrpcError(script.failAfter, "scripted failure after output");
          done.reject(error);
          controller.error(error);
          return;
        }
        done.resolve(null);
        controller.close();
      },
      cancel(reason) {
        done.reject(GrpcError.from(reason, Status.CANCELLED));
        call.signal?.throwIfAborted();
      },
    });
    call.signal?.addEventListener("abort", () => done.reject(GrpcError.from(call.signal!.reason)));
    return { body, done: done.promise };
  };
  const client: GitUpstreamClient = {
    infoRefsUploadPack: (repository, call) => play(repository, call, null).body,
    postUploadPack: (repository, body, call) => play(repository, call, body),
  };
  const upstream = {
    connects: 0,
    client() {
      upstream.connects++;
      return Promise.resolve(client);
    },
  };
  return upstream;
}

function front(upstream: GitUpstream, options: Partial<GitHttpFrontOptions> = {}) {
  const logs: FrontLogEntry[] = [];
  const f = new GitHttpFront({ upstream, random: () => 0, onLog: (e) => logs.push(e), ...options });
  return { front: f, logs };
}

Deno.test("GitHttpFront serves info/refs with git's content type and passes Git-Protocol", async () => {
  const recorded: Recorded[] = [];
  const { front: f, logs } = front(
    scripted([{ chunks: ["001e# service=git-upload-pack\n0000", "0000"] }], recorded),
  );
  const response = await f.fetch(new Request(INFO, { headers: { "git-protocol": "version=2" } }));
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/x-git-upload-pack-advertisement");
  assert.equal(response.headers.get("cache-control"), "no-cache");
  assert.equal(await response.text(), "001e# service=git-upload-pack\n00000000");
  await f.idle();
  assert.deepEqual(recorded[0]!.repository, {
    storageName: "default",
    relativePath: "foo.git",
    name: "foo.git",
  });
  assert.equal(recorded[0]!.call.gitProtocol, "version=2");
  assert.equal(logs.length, 1);
  assert.equal(logs[0]!.status, 200);
  assert.equal(logs[0]!.bytesOut, 38);
  assert.equal(logs[0]!.outcome, "ok");
  assert.equal(logs[0]!.gitProtocol, "version=2");
});

Deno.test("GitHttpFront gunzips request bodies and passes transport and git config upstream", async () => {
  const recorded: Recorded[] = [];
  const { front: f, logs } = front(scripted([{ chunks: ["0008NAK\n"] }], recorded), {
    transport: "v3",
    gitConfigOptions: ["uploadpack.allowFilter=true"],
  });
  const request = "0032want 0123456789012345678901234567890123456789\n00000009done\n";
  const gzipped = new Response(new Blob([request]).stream().pipeThrough(new CompressionStream("gzip"))).body;
  const response = await f.fetch(
    new Request(POST, { method: "POST", body: gzipped, headers: { "content-encoding": "gzip" } }),
  );
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/x-git-upload-pack-result");
  assert.equal(await response.text(), "0008NAK\n");
  await f.idle();
  assert.equal(recorded[0]!.body, request);
  assert.equal(recorded[0]!.call.transport, "v3");
  assert.deepEqual(recorded[0]!.call.gitConfigOptions, ["uploadpack.allowFilter=true"]);
  assert.equal(logs[0]!.bytesIn, request.length);
  assert.equal(logs[0]!.transport, "v3");
});

Deno.test("GitHttpFront refuses an unknown Content-Encoding with 415", async () => {
  const { front: f } = front(scripted([{ chunks: ["x"] }]));
  const response = await f.fetch(
    new Request(POST, { method: "POST", body: "x", headers: { "content-encoding": "br" } }),
  );
  assert.equal(response.status, 415);
  assert.match(await response.text(), /Content-Encoding br/);
});

Deno.test("GitHttpFront maps gRPC failures before any output to HTTP statuses with a text message", async () => {
  const cases: [Status, number][] = [
    [Status.NOT_FOUND, 404],
    [Status.INVALID_ARGUMENT, 400],
    [Status.FAILED_PRECONDITION, 400],
    [Status.PERMISSION_DENIED, 403],
    [Status.INTERNAL, 500],
    [Status.UNAUTHENTICATED, 502],
    [Status.DEADLINE_EXCEEDED, 504],
    [Status.RESOURCE_EXHAUSTED, 429],
  ];
  for (const [code, status] of cases) {
    const upstream = scripted([{ failBefore: code }]);
    const { front: f, logs } = front(upstream);
    for (const request of [new Request(INFO), new Request(POST, { method: "POST", body: "0000" })]) {
      const response = await f.fetch(request);
      assert.equal(response.status, status, `${code} ${request.method}`);
      assert.equal(response.headers.get("content-type"), "text/plain; charset=utf-8");
      const message = await response.text();
      assert.ok(message.endsWith("\n"));
      if (code === Status.NOT_FOUND) assert.match(message, /^Repository not found: foo\.git/);
    }
    await f.idle();
    assert.equal(upstream.connects, 2, "not retried");
    assert.deepEqual(logs.map((l) => [l.status, l.outcome, l.attempts]), [[status, "error", 1], [
      status,
      "error",
      1,
    ]]);
  }
});

Deno.test("GitHttpFront retries UNAVAILABLE before any output, up to the policy's attempts", async () => {
  const recorded: Recorded[] = [];
  const upstream = scripted([
    { failBefore: Status.UNAVAILABLE },
    { failBefore: Status.UNAVAILABLE },
    { chunks: ["0008NAK\n", "PACK"] },
  ], recorded);
  const { front: f, logs } = front(upstream);
  const response = await f.fetch(new Request(POST, { method: "POST", body: "0009done\n" }));
  assert.equal(response.status, 200);
  assert.equal(await response.text(), "0008NAK\nPACK");
  await f.idle();
  assert.equal(upstream.connects, 3);
  // Every attempt got the whole request body (replayed).
  assert.deepEqual(recorded.map((r) => r.body), ["0009done\n", "0009done\n", "0009done\n"]);
  assert.equal(logs[0]!.attempts, 3);

  const always = scripted([{ failBefore: Status.UNAVAILABLE }]);
  const { front: g, logs: gLogs } = front(always);
  const failed = await g.fetch(new Request(INFO));
  assert.equal(failed.status, 503);
  await failed.text();
  await g.idle();
  assert.equal(always.connects, 4, "Gitaly's policy: 4 attempts");
  assert.equal(gLogs[0]!.attempts, 4);
});

Deno.test("GitHttpFront does not retry once the request body is past the replay limit", async () => {
  const recorded: Recorded[] = [];
  const upstream = scripted([{ failBefore: Status.UNAVAILABLE }, { chunks: ["ok"] }], recorded);
  const { front: f } = front(upstream, { replayLimit: 4 });
  const response = await f.fetch(new Request(POST, { method: "POST", body: "0009done\n" }));
  assert.equal(response.status, 503);
  await response.text();
  assert.equal(upstream.connects, 1);
  assert.equal(recorded[0]!.body, "0009done\n", "the body still streamed whole");
});

Deno.test("GitHttpFront cuts the response when the call fails after output was sent (no retry)", async () => {
  const upstream = scripted([{ chunks: ["0008NAK\n", "PACK"], failAfter: Status.UNAVAILABLE }, {
    chunks: ["x"],
  }]);
  const { front: f, logs } = front(upstream);
  const response = await f.fetch(new Request(POST, { method: "POST", body: "0000" }));
  assert.equal(response.status, 200);
  const reader = response.body!.getReader();
  assert.equal(text((await reader.read()).value!), "0008NAK\n");
  assert.equal(text((await reader.read()).value!), "PACK");
  await assert.rejects(
    reader.read(),
    (e: unknown) => e instanceof GrpcError && e.code === Status.UNAVAILABLE,
  );
  await f.idle();
  assert.equal(upstream.connects, 1);
  assert.equal(logs[0]!.outcome, "error");
  assert.equal(logs[0]!.bytesOut, 12);
});

Deno.test("GitHttpFront cancels the call when the client stops reading, and abort() stops calls in flight", async () => {
  const recorded: Recorded[] = [];
  const hold = Promise.withResolvers<void>();
  const { front: f, logs } = front(scripted([{ chunks: ["0008NAK\n"], hold: hold.promise }], recorded));
  const response = await f.fetch(new Request(POST, { method: "POST", body: "0000" }));
  const reader = response.body!.getReader();
  await reader.read();
  assert.equal(f.inFlight, 1);
  await reader.cancel(new Error("client went away"));
  await f.idle();
  assert.equal(recorded[0]!.call.signal!.aborted, true);
  assert.equal(logs[0]!.outcome, "cancelled");

  const second = await f.fetch(new Request(POST, { method: "POST", body: "0000" }));
  const r2 = second.body!.getReader();
  await r2.read();
  f.abort();
  assert.equal(recorded[1]!.call.signal!.aborted, true);
  hold.resolve();
  await assert.rejects(async () => {
    while (!(await r2.read()).done);
  });
  await f.idle();
  assert.equal(f.inFlight, 0);
});

Deno.test("GitHttpFront answers refused URLs locally without calling upstream", async () => {
  const upstream = scripted([{ chunks: ["x"] }]);
  const { front: f, logs } = front(upstream);
  const cases: [Request, number][] = [
    // (Request normalises "..", so the encoded form; raw ones are tested over TCP.)
    [new Request("http://h/a%2F..%2F..%2Fetc.git/info/refs?service=git-upload-pack"), 400],
    [new Request("http://h/foo.git/git-receive-pack", { method: "POST", body: "" }), 403],
    [new Request("http://h/foo.git/HEAD"), 404],
    [new Request(POST), 405],
  ];
  for (const [request, status] of cases) {
    const response = await f.fetch(request);
    assert.equal(response.status, status);
    assert.match(await response.text(), /^Cannot /);
  }
  assert.equal((await f.fetch(new Request(POST))).headers.get("allow"), "POST");
  assert.equal(upstream.connects, 0);
  assert.equal(logs.length, 5);
  assert.ok(logs.every((l) => l.attempts === 0 && l.outcome === "error"));
});

Deno.test("GitHttpFront rejects invalid options", () => {
  const upstream = scripted([]);
  assert.throws(() => new GitHttpFront({ upstream, transport: "carrier-pigeon" as never }), TypeError);
  assert.throws(() => new GitHttpFront({ upstream, storages: [] }), TypeError);
  assert.throws(() => new GitHttpFront({ upstream, replayLimit: -1 }), RangeError);
  assert.throws(
    () =>
      new GitHttpFront({
        upstream,
        retry: {
          maxAttempts: 0,
          initialBackoff: 1,
          maxBackoff: 1,
          backoffMultiplier: 2,
          retryableStatuses: [],
        },
      }),
    RangeError,
  );
});
