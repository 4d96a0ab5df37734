import assert from "node:assert/strict";
import { GrpcError, type RepositoryLocation, resolveRepository, Status, type Storages } from "../../mod.ts";
import { git, noGit } from "./_git.ts";

interface Fixture {
  root: string;
  storage: string;
  outside: string;
  storages: Storages;
  cleanup(): Promise<void>;
}

/**
 * storage/
 *   bare.git            bare repository
 *   group/nested.git    bare repository
 *   work/.git           work tree repository
 *   plain/              a directory that is not a repository
 *   file.txt            a file
 *   link-inside.git  -> bare.git
 *   link-outside.git -> ../outside/evil.git
 *   dotgit-escape/.git -> ../../outside/evil.git
 *   parent-link      -> ..
 * outside/evil.git      bare repository outside the storage
 * storage-link      -> storage
 */
async function fixture(): Promise<Fixture> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "sidechannel-storage-" }));
  const storage = `${root}/storage`;
  const outside = `${root}/outside`;
  await Deno.mkdir(`${storage}/group`, { recursive: true });
  await Deno.mkdir(`${storage}/plain`);
  await Deno.mkdir(`${storage}/dotgit-escape`);
  await Deno.mkdir(outside);
  await git(["init", "-q", "--bare", `${storage}/bare.git`]);
  await git(["init", "-q", "--bare", `${storage}/group/nested.git`]);
  await git(["init", "-q", `${storage}/work`]);
  await git(["init", "-q", "--bare", `${outside}/evil.git`]);
  await Deno.writeTextFile(`${storage}/file.txt`, "not a repository\n");
  await Deno.symlink("bare.git", `${storage}/link-inside.git`);
  await Deno.symlink("../outside/evil.git", `${storage}/link-outside.git`);
  await Deno.symlink("../../outside/evil.git", `${storage}/dotgit-escape/.git`);
  await Deno.symlink("..", `${storage}/parent-link`);
  await Deno.symlink("storage", `${root}/storage-link`);
  return {
    root,
    storage,
    outside,
    storages: { default: storage, linked: `${root}/storage-link`, gone: `${root}/does-not-exist` },
    cleanup: () => Deno.remove(root, { recursive: true }),
  };
}

async function code(
  storages: Storages,
  repository: RepositoryLocation | undefined,
): Promise<[Status, string]> {
  const error = await resolveRepository(storages, repository).then(
    () => assert.fail("expected an error"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof GrpcError, `expected GrpcError, got ${error}`);
  return [error.code, error.details];
}

Deno.test({
  name: "resolveRepository() resolves bare, nested, work-tree and symlinked repositories inside the storage",
  ignore: noGit,
  async fn() {
    const f = await fixture();
    try {
      const bare = await resolveRepository(f.storages, { storageName: "default", relativePath: "bare.git" });
      assert.deepEqual(bare, {
        storageName: "default",
        relativePath: "bare.git",
        storagePath: f.storage,
        path: `${f.storage}/bare.git`,
        bare: true,
      });
      const nested = await resolveRepository(f.storages, {
        storageName: "default",
        relativePath: "group/nested.git/",
      });
      assert.equal(nested.path, `${f.storage}/group/nested.git`);
      const work = await resolveRepository(f.storages, { storageName: "default", relativePath: "work" });
      assert.equal(work.path, `${f.storage}/work/.git`);
      assert.equal(work.bare, false);
      const viaLink = await resolveRepository(f.storages, {
        storageName: "default",
        relativePath: "link-inside.git",
      });
      assert.equal(
        viaLink.path,
        `${f.storage}/bare.git`,
        "a symlink inside the storage resolves to its target",
      );
      const linkedStorage = await resolveRepository(f.storages, {
        storageName: "linked",
        relativePath: "bare.git",
      });
      assert.equal(linkedStorage.storagePath, f.storage, "a symlinked storage root is resolved too");
      assert.equal(linkedStorage.path, `${f.storage}/bare.git`);
      const asMap = await resolveRepository(new Map([["x", f.storage]]), {
        storageName: "x",
        relativePath: "bare.git",
      });
      assert.equal(asMap.path, `${f.storage}/bare.git`);
    } finally {
      await f.cleanup();
    }
  },
});

Deno.test({
  name: "resolveRepository() rejects unset fields and unknown storages with Gitaly's codes and texts",
  ignore: noGit,
  async fn() {
    const f = await fixture();
    try {
      assert.deepEqual(await code(f.storages, undefined), [Status.INVALID_ARGUMENT, "repository not set"]);
      assert.deepEqual(await code(f.storages, {}), [Status.INVALID_ARGUMENT, "repository not set"]);
      assert.deepEqual(await code(f.storages, { storageName: "", relativePath: "" }), [
        Status.INVALID_ARGUMENT,
        "repository not set",
      ]);
      assert.deepEqual(await code(f.storages, { storageName: "default" }), [
        Status.INVALID_ARGUMENT,
        "repository path not set",
      ]);
      assert.deepEqual(await code(f.storages, { relativePath: "bare.git" }), [
        Status.INVALID_ARGUMENT,
        "storage name not set",
      ]);
      for (const name of ["fake", "toString", "__proto__", "constructor"]) {
        assert.deepEqual(await code(f.storages, { storageName: name, relativePath: "bare.git" }), [
          Status.INVALID_ARGUMENT,
          "storage name not found",
        ], name);
      }
      assert.deepEqual(await code(f.storages, { storageName: "gone", relativePath: "bare.git" }), [
        Status.NOT_FOUND,
        "storage does not exist",
      ]);
    } finally {
      await f.cleanup();
    }
  },
});

Deno.test({
  name: "resolveRepository() refuses traversal: '..' segments, absolute paths and NUL bytes",
  ignore: noGit,
  async fn() {
    const f = await fixture();
    try {
      for (
        const relativePath of [
          "..",
          "../",
          "../outside/evil.git",
          "group/../../outside/evil.git",
          "group/../bare.git", // stays inside, still refused: no '..' at all
          "/etc",
          "/bare.git",
          "//bare.git",
        ]
      ) {
        assert.deepEqual(await code(f.storages, { storageName: "default", relativePath }), [
          Status.INVALID_ARGUMENT,
          "relative path escapes root directory",
        ], relativePath);
      }
      for (const relativePath of ["bare.git\0", "\0", "bare.git\0/../x"]) {
        const [status] = await code(f.storages, { storageName: "default", relativePath });
        assert.equal(status, Status.INVALID_ARGUMENT, JSON.stringify(relativePath));
      }
    } finally {
      await f.cleanup();
    }
  },
});

Deno.test({
  name: "resolveRepository() refuses symlink escapes from the storage",
  ignore: noGit,
  async fn() {
    const f = await fixture();
    try {
      for (const relativePath of ["link-outside.git", "parent-link/outside/evil.git", "dotgit-escape"]) {
        assert.deepEqual(await code(f.storages, { storageName: "default", relativePath }), [
          Status.INVALID_ARGUMENT,
          "relative path escapes root directory",
        ], relativePath);
      }
      // The escape target is a valid repository: only the storage boundary refused it.
      const outside = await resolveRepository({ out: f.outside }, {
        storageName: "out",
        relativePath: "evil.git",
      });
      assert.equal(outside.path, `${f.outside}/evil.git`);
    } finally {
      await f.cleanup();
    }
  },
});

Deno.test({
  name:
    "resolveRepository() reports missing repositories as NOT_FOUND and non-repositories as FAILED_PRECONDITION",
  ignore: noGit,
  async fn() {
    const f = await fixture();
    try {
      for (const relativePath of ["missing.git", "group/missing.git", "file.txt/x", "file.txt"]) {
        assert.deepEqual(await code(f.storages, { storageName: "default", relativePath }), [
          Status.NOT_FOUND,
          "repository not found",
        ], relativePath);
      }
      assert.deepEqual(await code(f.storages, { storageName: "default", relativePath: "plain" }), [
        Status.FAILED_PRECONDITION,
        'repository not valid: "objects" does not exist',
      ]);
      // A bare repository without HEAD names the first missing entry in Gitaly's order.
      await Deno.remove(`${f.storage}/group/nested.git/HEAD`);
      assert.deepEqual(await code(f.storages, { storageName: "default", relativePath: "group/nested.git" }), [
        Status.FAILED_PRECONDITION,
        'repository not valid: "HEAD" does not exist',
      ]);
      // The storage root itself is not a repository.
      assert.equal(
        (await code(f.storages, { storageName: "default", relativePath: "." }))[0],
        Status.FAILED_PRECONDITION,
      );
    } finally {
      await f.cleanup();
    }
  },
});
