/**
 * From a smart-HTTP URL (or an SSH command's path) to a storage and a relative path: the
 * routing Workhorse gets from Rails, done here by a fixed rule.
 *
 * @module
 */

import { FrontError } from "./errors.ts";

/** Where a repository lives on the storage server, and how to name it in logs. */
export interface RepositoryRoute {
  /** The storage name. */
  readonly storageName: string;
  /** The path relative to the storage root, always ending in `.git`. */
  readonly relativePath: string;
  /** `relativePath`, prefixed with `<storage>:` outside the default storage (for logs). */
  readonly name: string;
}

/** A smart-HTTP upload-pack request, parsed. */
export interface GitHttpRoute {
  /** `info-refs`: `GET …/info/refs?service=git-upload-pack`; `upload-pack`: `POST …/git-upload-pack`. */
  readonly service: "info-refs" | "upload-pack";
  /** The repository. */
  readonly repository: RepositoryRoute;
}

function _badPath(reason: string): FrontError {
  return new FrontError("BAD_PATH", `Cannot serve repository: ${reason}`);
}

/**
 * Maps repository path segments to a storage and relative path.
 *
 * The rule: when there is more than one segment and the first names a storage other than
 * the first (default) one, that storage serves the rest (`/archive/foo.git` → storage
 * `archive`, `foo.git`); everything else is in the default storage. A last segment
 * without `.git` gets it appended (`/foo` → `foo.git`), as GitLab does.
 *
 * Every segment must be non-empty, not `.` or `..`, and free of `/`, `\`, NUL and control
 * characters: nothing can point outside the storage (the storage server checks again,
 * symlinks included).
 *
 * @param segments the path's segments, already percent-decoded
 * @param storages storage names; the first is the default
 * @returns the route
 * @throws {FrontError} `BAD_PATH` for an empty path or a refused segment.
 * @throws {TypeError} Without storages.
 *
 * @example
 * ```ts
 * import { routeRepository } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(routeRepository(["group", "project"], ["default", "archive"]), {
 *   storageName: "default",
 *   relativePath: "group/project.git",
 *   name: "group/project.git",
 * });
 * assert.equal(routeRepository(["archive", "old.git"], ["default", "archive"]).storageName, "archive");
 * assert.throws(() => routeRepository(["..", "etc"], ["default"]), { code: "BAD_PATH" });
 * ```
 */
export function routeRepository(segments: readonly string[], storages: readonly string[]): RepositoryRoute {
  const defaultStorage = storages[0];
  if (defaultStorage === undefined) throw new TypeError("Cannot route repository: no storages");
  if (segments.length === 0) throw _badPath("no repository path");
  for (const segment of segments) {
    if (segment === "") throw _badPath("empty path segment");
    if (segment === "." || segment === "..") throw _badPath("path escapes the storage");
    // deno-lint-ignore no-control-regex
    if (/[\x00-\x1f\x7f/\\]/.test(segment)) throw _badPath("invalid character in path");
  }
  let storageName = defaultStorage;
  let rest = segments;
  if (segments.length > 1 && storages.indexOf(segments[0]!) > 0) {
    storageName = segments[0]!;
    rest = segments.slice(1);
  }
  const last = rest[rest.length - 1]!;
  const parts = [...rest.slice(0, -1), last.endsWith(".git") ? last : `${last}.git`];
  const relativePath = parts.join("/");
  if (relativePath === ".git") throw _badPath("no repository name");
  return {
    storageName,
    relativePath,
    name: storageName === defaultStorage ? relativePath : `${storageName}:${relativePath}`,
  };
}

/**
 * The path of a request URL exactly as sent (`Request.url` keeps it; `new URL()` would
 * resolve `..` and `%2e%2e` and so hide a traversal attempt), and its query.
 *
 * @param url an absolute URL (`http://host/path?query`)
 * @returns the raw path (`/` at least) and the query without `?` (`""` when none)
 */
export function _rawPathAndQuery(url: string): { path: string; query: string } {
  const scheme = url.indexOf("://");
  const start = url.indexOf("/", scheme < 0 ? 0 : scheme + 3);
  if (start < 0) return { path: "/", query: "" };
  let end = url.length;
  const hash = url.indexOf("#", start);
  if (hash >= 0) end = hash;
  const question = url.indexOf("?", start);
  if (question >= 0 && question < end) {
    return { path: url.slice(start, question), query: url.slice(question + 1, end) };
  }
  return { path: url.slice(start, end), query: "" };
}

/**
 * Parses a smart-HTTP request for git-upload-pack.
 *
 * - `GET /<repo>/info/refs?service=git-upload-pack` → `info-refs`;
 * - `POST /<repo>/git-upload-pack` → `upload-pack`.
 *
 * The path is taken as sent (see {@linkcode routeRepository} for the repository part):
 * each segment is percent-decoded, so `%2e%2e` and `%2F` are refused like `..` and `/`.
 *
 * @param method the request method
 * @param url the request URL as received (`Request.url`)
 * @param storages storage names; the first is the default
 * @returns the route
 * @throws {FrontError} `BAD_PATH` (400), `NOT_FOUND` (404) for other URLs,
 * `METHOD_NOT_ALLOWED` (405), `FORBIDDEN` (403) for `git-receive-pack` and dumb HTTP.
 *
 * @example
 * ```ts
 * import { parseGitHttpRequest } from "@sidechannel/transport";
 * import assert from "node:assert/strict";
 *
 * const route = parseGitHttpRequest("GET", "http://h/foo.git/info/refs?service=git-upload-pack", ["default"]);
 * assert.equal(route.service, "info-refs");
 * assert.equal(route.repository.relativePath, "foo.git");
 * assert.equal(parseGitHttpRequest("POST", "http://h/a/b/git-upload-pack", ["default"]).repository.name, "a/b.git");
 * assert.throws(() => parseGitHttpRequest("GET", "http://h/%2e%2e/x.git/info/refs?service=git-upload-pack", ["default"]), {
 *   code: "BAD_PATH",
 * });
 * assert.throws(() => parseGitHttpRequest("POST", "http://h/foo.git/git-receive-pack", ["default"]), { status: 403 });
 * ```
 */
export function parseGitHttpRequest(method: string, url: string, storages: readonly string[]): GitHttpRoute {
  const { path, query } = _rawPathAndQuery(url);
  const raw = path.split("/").slice(1);
  let service: GitHttpRoute["service"];
  let repoSegments: string[];
  const tail2 = raw.slice(-2).join("/");
  const tail1 = raw[raw.length - 1];
  if (tail2 === "info/refs" && raw.length > 2) {
    const requested = new URLSearchParams(query).get("service");
    if (requested === "git-receive-pack") {
      throw new FrontError("FORBIDDEN", "Cannot serve git-receive-pack: pushing is not supported");
    }
    if (requested !== "git-upload-pack") {
      throw new FrontError("FORBIDDEN", "Cannot serve info/refs: only smart HTTP (service=git-upload-pack)");
    }
    if (method !== "GET") {
      throw new FrontError("METHOD_NOT_ALLOWED", `Cannot serve info/refs: method ${method} is not GET`);
    }
    service = "info-refs";
    repoSegments = raw.slice(0, -2);
  } else if (tail1 === "git-upload-pack" && raw.length > 1) {
    if (method !== "POST") {
      throw new FrontError(
        "METHOD_NOT_ALLOWED",
        `Cannot serve git-upload-pack: method ${method} is not POST`,
      );
    }
    service = "upload-pack";
    repoSegments = raw.slice(0, -1);
  } else if (tail1 === "git-receive-pack" && raw.length > 1) {
    throw new FrontError("FORBIDDEN", "Cannot serve git-receive-pack: pushing is not supported");
  } else {
    throw new FrontError("NOT_FOUND", "Cannot serve URL: not a git-upload-pack smart HTTP URL");
  }
  const segments = repoSegments.map((segment) => {
    try {
      return decodeURIComponent(segment);
    } catch (error) {
      throw new FrontError("BAD_PATH", "Cannot serve repository: invalid percent-encoding in path", {
        cause: error,
      });
    }
  });
  return { service, repository: routeRepository(segments, storages) };
}
