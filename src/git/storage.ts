/**
 * Storages and repository resolution: from a Gitaly `Repository` message to the git
 * directory to run git in, with Gitaly's validation errors and a stricter path policy.
 *
 * @module
 */

import { GrpcError, Status } from "../grpc/status.ts";

/**
 * Storage names mapped to their root directories (Gitaly's `[[storage]]` entries).
 *
 * Either a `Map` or a plain object; only own properties of an object count.
 *
 * @example
 * ```ts
 * import type { Storages } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const asObject: Storages = { default: "/var/opt/gitaly/repositories" };
 * const asMap: Storages = new Map([["default", "/var/opt/gitaly/repositories"]]);
 * assert.equal(asMap instanceof Map, true);
 * assert.equal(Object.keys(asObject).length, 1);
 * ```
 */
export type Storages = ReadonlyMap<string, string> | Readonly<Record<string, string>>;

/**
 * The part of a Gitaly `Repository` message that locates a repository. The generated
 * `Repository` type fits.
 */
export interface RepositoryLocation {
  /** The storage name (`storage_name = 2`). */
  readonly storageName?: string;
  /** The path relative to the storage root (`relative_path = 3`). */
  readonly relativePath?: string;
}

/** A repository that {@linkcode resolveRepository} found and checked. */
export interface ResolvedRepository {
  /** The storage name from the request. */
  readonly storageName: string;
  /** The relative path from the request. */
  readonly relativePath: string;
  /** The storage root, symlinks resolved. */
  readonly storagePath: string;
  /** The git directory to run git in, symlinks resolved; inside `storagePath`. */
  readonly path: string;
  /** `false` when the git directory is the `.git` folder of a work tree. */
  readonly bare: boolean;
}

/** Entries a git directory must have, checked in this order (Gitaly's `ValidateGitDirectory`). */
const _GIT_DIR_ENTRIES = ["objects", "refs", "HEAD"] as const;

function _storageRoot(storages: Storages, name: string): string | undefined {
  if (storages instanceof Map) return storages.get(name);
  const record = storages as Readonly<Record<string, string>>;
  return Object.hasOwn(record, name) ? record[name] : undefined;
}

function _invalid(details: string): GrpcError {
  return new GrpcError(Status.INVALID_ARGUMENT, details);
}

/** Whether `path` is `root` or below it (both absolute, normalized, no trailing slash but "/"). */
function _isInside(root: string, path: string): boolean {
  if (path === root) return true;
  const prefix = root.endsWith("/") ? root : root + "/";
  return path.startsWith(prefix);
}

async function _realPath(path: string): Promise<string | null> {
  try {
    return await Deno.realPath(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) return null;
    throw new GrpcError(Status.INTERNAL, `Cannot resolve repository: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

async function _isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) return false;
    throw new GrpcError(Status.INTERNAL, `Cannot resolve repository: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** The first of objects/refs/HEAD missing in `dir`, or `null` if all exist. */
async function _missingEntry(dir: string): Promise<string | null> {
  for (const entry of _GIT_DIR_ENTRIES) {
    try {
      await Deno.stat(`${dir}/${entry}`);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) return entry;
      throw new GrpcError(Status.INTERNAL, `Cannot resolve repository: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  return null;
}

/**
 * Resolves a repository inside its storage and checks that it is a git directory.
 *
 * Checks, in Gitaly's order, with Gitaly's codes and texts where Gitaly has the case:
 * 1. no repository, or neither storage nor path set → `INVALID_ARGUMENT`
 *    "repository not set";
 * 2. empty relative path → `INVALID_ARGUMENT` "repository path not set";
 * 3. empty storage name → `INVALID_ARGUMENT` "storage name not set";
 * 4. unknown storage → `INVALID_ARGUMENT` "storage name not found";
 * 5. storage root missing → `NOT_FOUND` "storage does not exist";
 * 6. a relative path that is absolute, contains a `..` segment or a NUL byte →
 *    `INVALID_ARGUMENT` ("relative path escapes root directory" for the first two).
 *    Stricter than Gitaly, which joins and cleans the path first and only refuses a
 *    result outside the storage (so it takes `/a` as `a` and `a/../b` as `b`);
 * 7. no such directory → `NOT_FOUND` "repository not found";
 * 8. the directory's real path (symlinks resolved) outside the storage's real path →
 *    `INVALID_ARGUMENT` "relative path escapes root directory" (Gitaly follows
 *    symlinks without this check);
 * 9. not a git directory: the directory must have `objects`, `refs` and `HEAD` (bare),
 *    or hold a `.git` directory that has them (also inside the storage) → else
 *    `FAILED_PRECONDITION` `repository not valid: "HEAD" does not exist` naming the
 *    first missing entry. A `.git` file (`gitdir:` link) is not followed.
 *
 * The returned path is the real path, so git runs on exactly the directory that was
 * checked. A symlink swapped between this check and git's start is not detected; the
 * storage is trusted not to change under the server.
 *
 * `git_object_directory` and `git_alternate_object_directories` (Gitaly's quarantine
 * directories for writes) are not used.
 *
 * Needs read permission for the storage.
 *
 * @param storages storage names and root directories
 * @param repository the request's repository (`undefined` when unset)
 * @returns the resolved repository
 * @throws {GrpcError} With the codes above; `INTERNAL` for unexpected file system errors.
 *
 * @example
 * ```ts
 * import { GrpcError, resolveRepository, Status } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await new Deno.Command("git", { args: ["init", "--bare", "-q", `${root}/project.git`] }).output();
 * const storages = { default: root };
 *
 * const repo = await resolveRepository(storages, { storageName: "default", relativePath: "project.git" });
 * assert.equal(repo.path, `${await Deno.realPath(root)}/project.git`);
 * assert.equal(repo.bare, true);
 *
 * for (const [relativePath, code] of [["../etc", Status.INVALID_ARGUMENT], ["missing.git", Status.NOT_FOUND]] as const) {
 *   const error = await resolveRepository(storages, { storageName: "default", relativePath }).catch((e) => e);
 *   assert.ok(error instanceof GrpcError);
 *   assert.equal(error.code, code);
 * }
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function resolveRepository(
  storages: Storages,
  repository: RepositoryLocation | null | undefined,
): Promise<ResolvedRepository> {
  const storageName = repository?.storageName ?? "";
  const relativePath = repository?.relativePath ?? "";
  if (repository === null || repository === undefined || (storageName === "" && relativePath === "")) {
    throw _invalid("repository not set");
  }
  if (relativePath === "") throw _invalid("repository path not set");
  if (storageName === "") throw _invalid("storage name not set");
  const root = _storageRoot(storages, storageName);
  if (root === undefined) throw _invalid("storage name not found");
  const storagePath = await _realPath(root);
  if (storagePath === null || !(await _isDirectory(storagePath))) {
    throw new GrpcError(Status.NOT_FOUND, "storage does not exist");
  }

  if (relativePath.includes("\0")) throw _invalid("relative path contains a NUL byte");
  if (relativePath.startsWith("/")) throw _invalid("relative path escapes root directory");
  if (relativePath.split("/").includes("..")) throw _invalid("relative path escapes root directory");

  const joined = `${storagePath === "/" ? "" : storagePath}/${relativePath}`;
  const real = await _realPath(joined);
  if (real === null || !(await _isDirectory(real))) {
    throw new GrpcError(Status.NOT_FOUND, "repository not found");
  }
  if (!_isInside(storagePath, real)) throw _invalid("relative path escapes root directory");

  const missing = await _missingEntry(real);
  if (missing === null) return { storageName, relativePath, storagePath, path: real, bare: true };

  const dotGit = await _realPath(`${real}/.git`);
  if (dotGit !== null && (await _isDirectory(dotGit))) {
    if (!_isInside(storagePath, dotGit)) throw _invalid("relative path escapes root directory");
    if ((await _missingEntry(dotGit)) === null) {
      return { storageName, relativePath, storagePath, path: dotGit, bare: false };
    }
  }
  throw new GrpcError(Status.FAILED_PRECONDITION, `repository not valid: "${missing}" does not exist`);
}
