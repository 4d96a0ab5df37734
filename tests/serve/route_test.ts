import assert from "node:assert/strict";
import { FrontError, parseGitHttpRequest, parseSshArgs, routeRepository, routeSshPath } from "../../mod.ts";

const S = ["default", "archive"];
const INFO = "/info/refs?service=git-upload-pack";

Deno.test("routeRepository() maps segments to the default storage and appends .git", () => {
  assert.deepEqual(routeRepository(["foo"], S), {
    storageName: "default",
    relativePath: "foo.git",
    name: "foo.git",
  });
  assert.deepEqual(routeRepository(["g", "sub", "p.git"], S), {
    storageName: "default",
    relativePath: "g/sub/p.git",
    name: "g/sub/p.git",
  });
  // The first storage's name is not a prefix: it is a directory of the default storage.
  assert.equal(routeRepository(["default", "x.git"], S).relativePath, "default/x.git");
});

Deno.test("routeRepository() selects another storage by the first segment", () => {
  assert.deepEqual(routeRepository(["archive", "old.git"], S), {
    storageName: "archive",
    relativePath: "old.git",
    name: "archive:old.git",
  });
  // A single segment is always a repository, even if it names a storage.
  assert.equal(routeRepository(["archive"], S).storageName, "default");
});

Deno.test("routeRepository() refuses traversal, empty segments and control characters", () => {
  for (
    const segments of [[], [".."], ["a", ".."], ["."], ["a", "", "b"], ["a/b"], ["a\\b"], ["a\0"], ["a\n"], [
      ".git",
    ]]
  ) {
    assert.throws(() => routeRepository(segments, S), (e: unknown) => {
      assert.ok(e instanceof FrontError);
      assert.equal(e.code, "BAD_PATH");
      assert.equal(e.status, 400);
      return true;
    }, JSON.stringify(segments));
  }
  assert.throws(() => routeRepository(["a"], []), TypeError);
});

Deno.test("parseGitHttpRequest() recognises info/refs and git-upload-pack", () => {
  const info = parseGitHttpRequest("GET", `http://h/g/p.git${INFO}`, S);
  assert.equal(info.service, "info-refs");
  assert.equal(info.repository.relativePath, "g/p.git");
  const post = parseGitHttpRequest("POST", "http://h/archive/p/git-upload-pack", S);
  assert.equal(post.service, "upload-pack");
  assert.equal(post.repository.name, "archive:p.git");
  // Percent-encoded characters in names are decoded.
  assert.equal(
    parseGitHttpRequest("GET", `http://h/my%20repo.git${INFO}`, S).repository.relativePath,
    "my repo.git",
  );
});

Deno.test("parseGitHttpRequest() refuses raw and encoded traversal as sent", () => {
  for (
    const path of [
      "/../etc.git",
      "/a/../../etc.git",
      "/%2e%2e/etc.git",
      "/%2E%2E/x.git",
      "/a/%2e%2e%2f%2e%2e%2fetc.git",
      "/a%2F..%2F..%2Fb.git",
      "//x.git",
      "/a/./b.git",
      "/%00.git",
      "/%zz.git",
    ]
  ) {
    assert.throws(() => parseGitHttpRequest("GET", `http://h${path}${INFO}`, S), { code: "BAD_PATH" }, path);
    assert.throws(() => parseGitHttpRequest("POST", `http://h${path}/git-upload-pack`, S), {
      code: "BAD_PATH",
    }, path);
  }
});

Deno.test("parseGitHttpRequest() answers other URLs, services and methods with 404, 403, 405", () => {
  const cases: [string, string, number][] = [
    ["GET", "http://h/", 404],
    ["GET", "http://h/foo.git/HEAD", 404],
    ["GET", "http://h/foo.git/objects/info/packs", 404],
    ["GET", "http://h/info/refs?service=git-upload-pack", 404],
    ["GET", "http://h/foo.git/info/refs", 403],
    ["GET", "http://h/foo.git/info/refs?service=git-receive-pack", 403],
    ["POST", "http://h/foo.git/git-receive-pack", 403],
    ["POST", `http://h/foo.git${INFO}`, 405],
    ["GET", "http://h/foo.git/git-upload-pack", 405],
  ];
  for (const [method, url, status] of cases) {
    assert.throws(() => parseGitHttpRequest(method, url, S), (e: unknown) => {
      assert.ok(e instanceof FrontError);
      assert.equal(e.status, status, `${method} ${url}`);
      return true;
    });
  }
});

Deno.test("parseSshArgs() reads git's OpenSSH form and the ext:: form", () => {
  const ssh = parseSshArgs([
    "-o",
    "SendEnv=GIT_PROTOCOL",
    "-p",
    "22",
    "-4",
    "host",
    "git-upload-pack '/a/b.git'",
  ]);
  assert.deepEqual(ssh, {
    service: "git-upload-pack",
    path: "/a/b.git",
    host: "host",
    port: 22,
    sendEnv: ["GIT_PROTOCOL"],
  });
  assert.equal(parseSshArgs(["-p2222", "git@host", "git upload-pack 'x.git'"]).port, 2222);
  assert.equal(parseSshArgs(["host", "git-upload-pack 'it'\\''s.git'"]).path, "it's.git");
  assert.equal(parseSshArgs(["host", "git-upload-pack", "'/x.git'"]).path, "/x.git");
  assert.deepEqual(parseSshArgs(["git-upload-pack", "/x.git"]), {
    service: "git-upload-pack",
    path: "/x.git",
    host: null,
    port: null,
    sendEnv: [],
  });
});

Deno.test("parseSshArgs() refuses other services and malformed commands", () => {
  assert.throws(() => parseSshArgs(["host", "git-receive-pack '/x.git'"]), { code: "FORBIDDEN" });
  assert.throws(() => parseSshArgs(["host", "git-upload-archive '/x.git'"]), { code: "FORBIDDEN" });
  assert.throws(() => parseSshArgs(["host", "rm -rf /"]), { code: "BAD_COMMAND" });
  assert.throws(() => parseSshArgs(["host"]), { code: "BAD_COMMAND" });
  assert.throws(() => parseSshArgs(["host", "git-upload-pack"]), { code: "BAD_COMMAND" });
  assert.throws(() => parseSshArgs(["host", "git-upload-pack 'a' 'b'"]), { code: "BAD_COMMAND" });
  assert.throws(() => parseSshArgs(["host", "git-upload-pack 'x"]), { code: "BAD_COMMAND" });
  assert.throws(() => parseSshArgs(["-p"]), { code: "BAD_COMMAND" });
});

Deno.test("routeSshPath() strips leading slashes and ~/ and refuses traversal", () => {
  assert.equal(routeSshPath("/x.git", S).relativePath, "x.git");
  assert.equal(routeSshPath("~/g/x", S).relativePath, "g/x.git");
  assert.equal(routeSshPath("/archive/x.git", S).name, "archive:x.git");
  for (const path of ["/../x", "/a/../../x", "/a//b", "", "/"]) {
    assert.throws(() => routeSshPath(path, S), { code: "BAD_PATH" }, path);
  }
});
