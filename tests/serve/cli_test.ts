import assert from "node:assert/strict";
import { _hostPort, _parseServeArgs } from "../../src/serve/_cli.ts";
import { _formatFrontLog } from "../../src/serve/main.ts";

Deno.test("_parseServeArgs() defaults: both roles, ./repos, 8080 and 8075, sidechannel", () => {
  const config = _parseServeArgs([]);
  assert.equal(config.mode, "both");
  assert.deepEqual(config.storages, [["default", "repos"]]);
  assert.equal(config.hostname, "127.0.0.1");
  assert.equal(config.port, 8080);
  assert.equal(config.grpcPort, 8075);
  assert.equal(config.v3Port, null);
  assert.equal(config.transport, "sidechannel");
  assert.equal(config.drainTimeout, 30000);
  assert.equal(config.sidechannelWriteBuffer, 262144);
  assert.equal(config.upstreamTls, false);
  assert.equal(config.help, false);
});

Deno.test("_parseServeArgs() reads flags (both forms), repeated storages and env, flags winning", () => {
  const config = _parseServeArgs([
    "--port=9000",
    "--transport",
    "v3",
    "--storage",
    "main=/srv/a",
    "--storage=archive=/srv/b",
    "--git-config",
    "uploadpack.allowFilter=true",
    "--verbose",
  ], {
    SIDECHANNEL_PORT: "1234",
    SIDECHANNEL_GRPC_PORT: "0",
    SIDECHANNEL_TOKEN: "t",
    SIDECHANNEL_V3_PORT: "0",
  });
  assert.equal(config.port, 9000);
  assert.equal(config.grpcPort, 0);
  assert.equal(config.v3Port, 0);
  assert.equal(config.transport, "v3");
  assert.deepEqual(config.storages, [["main", "/srv/a"], ["archive", "/srv/b"]]);
  assert.deepEqual(config.gitConfig, ["uploadpack.allowFilter=true"]);
  assert.equal(config.token, "t");
  assert.equal(config.verbose, true);
  assert.deepEqual(_parseServeArgs([], { SIDECHANNEL_STORAGE: "a=/x, b=/y" }).storages, [["a", "/x"], [
    "b",
    "/y",
  ]]);
});

Deno.test("_parseServeArgs() modes: --upstream is front only, --server-only is the storage server", () => {
  const front = _parseServeArgs([
    "--upstream",
    "10.0.0.1:8075",
    "--upstream-v3",
    "[::1]:9000",
    "--upstream-ca",
    "ca.pem",
  ]);
  assert.equal(front.mode, "front");
  assert.deepEqual(front.upstream, { hostname: "10.0.0.1", port: 8075 });
  assert.deepEqual(front.upstreamV3, { hostname: "::1", port: 9000 });
  assert.equal(front.upstreamTls, true);
  assert.equal(_parseServeArgs(["--server-only"]).mode, "server");
  assert.equal(_parseServeArgs(["--cert", "c", "--key", "k"]).upstreamTls, true);
});

Deno.test("_parseServeArgs() refuses unknown flags, bad values and contradictions", () => {
  for (
    const args of [
      ["--nope"],
      ["positional"],
      ["--port"],
      ["--port", "65536"],
      ["--port", "x"],
      ["--transport", "ftp"],
      ["--storage", "noequals"],
      ["--storage", "a=/x", "--storage", "a=/y"],
      ["--storage", "bad/name=/x"],
      ["--upstream", "nohost"],
      ["--upstream", "h:0"],
      ["--upstream-v3", "h:1"],
      ["--server-only", "--upstream", "h:1"],
      ["--cert", "c"],
      ["--http-key", "k"],
      ["--drain-timeout", "-1"],
      ["--sidechannel-write-buffer", "-5"],
      ["--git-config", "novalue"],
      ["--log-format", "xml"],
      ["--help=yes"],
      ["--port", "1", "--port", "2"],
    ]
  ) {
    assert.throws(() => _parseServeArgs(args), RangeError, args.join(" "));
  }
  assert.throws(() => _hostPort("x", "[::1]"), RangeError);
});

Deno.test("_formatFrontLog() writes one line per request with repo, transport, bytes, duration, status", () => {
  const entry = {
    method: "POST",
    path: "/foo.git/git-upload-pack",
    service: "upload-pack" as const,
    repository: "foo.git",
    transport: "sidechannel" as const,
    gitProtocol: "version=2",
    status: 200,
    bytesIn: 120,
    bytesOut: 3 * 1024 * 1024,
    durationMs: 42.5,
    attempts: 1,
    outcome: "ok" as const,
  };
  const line = _formatFrontLog(entry, "text");
  assert.match(
    line,
    /^\S+Z POST \/foo\.git\/git-upload-pack 200 repo=foo\.git transport=sidechannel protocol=v2 in=120B out=3\.0MiB 42\.5ms attempts=1 ok$/,
  );
  assert.equal(line.includes("\n"), false);
  const json = JSON.parse(_formatFrontLog({ ...entry, error: "x" }, "json"));
  assert.equal(json.repository, "foo.git");
  assert.equal(json.error, "x");
});
