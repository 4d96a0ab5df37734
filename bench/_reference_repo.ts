/**
 * Deterministic git repositories for the upload-pack benchmarks and tests.
 *
 * {@linkcode generateRepo} writes a bare repository with `git fast-import` from a
 * {@linkcode RepoSpec}: text commits with fixed authors and dates, plus pseudo-random
 * binary blobs from a seeded generator, so the same spec always yields the same commit
 * ids. {@linkcode referenceRepo} builds the big benchmark repository once into
 * `.cache/reference-repo` and reuses it while its completion marker matches.
 *
 * Run directly to build (or verify) the cached reference repository:
 * `deno run -A bench/_reference_repo.ts`.
 *
 * @module
 */

/** What to generate. */
export interface RepoSpec {
  /** Number of commits on `main`. */
  commits: number;
  /** Number of text files; every commit rewrites three of them. */
  textFiles: number;
  /** Lines of 64 pseudo-random hex digits in each text file revision. */
  textLines: number;
  /** Number of pseudo-random binary blobs, added at evenly spaced commits. */
  blobs: number;
  /** Size of each binary blob in bytes. */
  blobSize: number;
  /** Seed of the blob generator. */
  seed: number;
  /** Write a bitmap when repacking. */
  bitmap: boolean;
}

/** The benchmark repository: 3,000 commits and twenty 10 MiB blobs (≈ 220 MiB pack). */
export const REFERENCE_SPEC: RepoSpec = Object.freeze({
  commits: 3000,
  textFiles: 30,
  textLines: 48,
  blobs: 20,
  blobSize: 10 * 1024 * 1024,
  seed: 0x5eed,
  bitmap: true,
});

/** The test repository: 50 commits and three 4 KiB blobs, generated in a fraction of a second. */
export const SMALL_SPEC: RepoSpec = Object.freeze({
  commits: 50,
  textFiles: 6,
  textLines: 4,
  blobs: 3,
  blobSize: 4096,
  seed: 7,
  bitmap: true,
});

/** For tests that need a pack of at least 50 MiB: six 10 MiB blobs (≈ 61 MiB pack). */
export const MEDIUM_SPEC: RepoSpec = Object.freeze({
  commits: 200,
  textFiles: 12,
  textLines: 8,
  blobs: 6,
  blobSize: 10 * 1024 * 1024,
  seed: 0x60,
  bitmap: true,
});

/** Where {@linkcode MEDIUM_SPEC}'s repository is cached. */
export const MEDIUM_REPO_DIR: string = new URL("../.cache/test-repo-60m", import.meta.url).pathname;

/** What {@linkcode generateRepo} produced. */
export interface GeneratedRepo {
  /** Absolute path of the bare repository. */
  path: string;
  /** Commit id of `refs/heads/main` (the last commit). */
  head: string;
  /** Commit id of `refs/heads/side` (the commit in the middle of `main`). */
  side: string;
  /** Commit id of the first (root) commit. */
  root: string;
  /** Object id of the annotated tag `refs/tags/v1` (pointing at `side`). */
  tag: string;
}

const _EPOCH = 1_700_000_000;
const _enc = new TextEncoder();

/** The environment for generator git commands: no user or system configuration. */
function _gitEnv(): Record<string, string> {
  return {
    PATH: _path(),
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_CONFIG_SYSTEM: "/dev/null",
    GIT_TERMINAL_PROMPT: "0",
    LANG: "C",
  };
}

function _path(): string {
  try {
    return Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin";
  } catch {
    return "/usr/local/bin:/usr/bin:/bin";
  }
}

async function _git(args: string[], cwd?: string): Promise<string> {
  const out = await new Deno.Command("git", {
    args,
    clearEnv: true,
    env: _gitEnv(),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(cwd === undefined ? {} : { cwd }),
  }).output();
  if (!out.success) {
    throw new Error(`git ${args.join(" ")} failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout).trim();
}

/** Fills `out` with xorshift32 output continuing from `state`; returns the new state. */
function _fillRandom(out: Uint8Array, state: number): number {
  const words = new Uint32Array(out.buffer, out.byteOffset, out.byteLength >>> 2);
  let x = state >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  for (let i = words.length * 4; i < out.byteLength; i++) out[i] = (x >>> (8 * (i & 3))) & 0xff;
  return x >>> 0;
}

/** The text of file `f` as of commit `c`: deterministic lines of hex digits. */
function _fileText(f: number, c: number, lines: number): string {
  let text = `file ${f}, revision ${c}\n`;
  let x = (Math.imul(c, 2654435761) ^ Math.imul(f + 1, 40503)) >>> 0 || 1;
  for (let line = 0; line < lines; line++) {
    let hex = "";
    for (let w = 0; w < 8; w++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      hex += (x >>> 0).toString(16).padStart(8, "0");
    }
    text += `${hex}\n`;
  }
  return text;
}

/**
 * Writes the fast-import stream for `spec` to `writer`, with backpressure.
 *
 * Marks: `:1`..`:blobs` are the binary blobs, commits are `:(1000000 + i)`.
 */
async function _writeStream(writer: WritableStreamDefaultWriter<Uint8Array>, spec: RepoSpec): Promise<void> {
  const write = (s: string | Uint8Array) => writer.write(typeof s === "string" ? _enc.encode(s) : s);
  const data = (s: string) => {
    const bytes = _enc.encode(s);
    return `data ${bytes.byteLength}\n${s}\n`;
  };
  let state = spec.seed;
  const blobAt = new Map<number, number>();
  for (let b = 0; b < spec.blobs; b++) {
    blobAt.set(Math.floor(((b + 1) * spec.commits) / (spec.blobs + 1)), b + 1);
  }
  const side = Math.floor(spec.commits / 2);
  for (let c = 1; c <= spec.commits; c++) {
    const blob = blobAt.get(c);
    if (blob !== undefined) {
      await write(`blob\nmark :${blob}\ndata ${spec.blobSize}\n`);
      // Chunks of at most 1 MiB keep the generator's memory flat.
      let left = spec.blobSize;
      while (left > 0) {
        const chunk = new Uint8Array(Math.min(left, 1024 * 1024));
        state = _fillRandom(chunk, state);
        await write(chunk);
        left -= chunk.byteLength;
      }
      await write("\n");
    }
    const when = _EPOCH + c * 60;
    let cmd = `commit refs/heads/main\nmark :${1_000_000 + c}\n`;
    cmd += `author Bench Author <author@example.com> ${when} +0000\n`;
    cmd += `committer Bench Committer <committer@example.com> ${when} +0000\n`;
    cmd += data(`commit ${c}\n\nDeterministic commit number ${c}.\n`);
    if (c > 1) cmd += `from :${1_000_000 + c - 1}\n`;
    for (let k = 0; k < 3; k++) {
      const f = (c * 3 + k) % spec.textFiles;
      cmd += `M 100644 inline text/file-${String(f).padStart(3, "0")}.txt\n${
        data(_fileText(f, c, spec.textLines))
      }`;
    }
    if (blob !== undefined) cmd += `M 100644 :${blob} blobs/blob-${String(blob).padStart(2, "0")}.bin\n`;
    await write(cmd + "\n");
    if (c === side) {
      await write(`reset refs/heads/side\nfrom :${1_000_000 + c}\n\n`);
      await write(
        `tag v1\nfrom :${1_000_000 + c}\ntagger Bench Tagger <tagger@example.com> ${when} +0000\n${
          data("Version 1\n")
        }`,
      );
    }
  }
  await write("done\n");
}

/**
 * Generates a bare repository at `dir` (which must not exist or be empty) from `spec`.
 *
 * Deterministic: the same spec gives the same commit ids on every machine.
 *
 * @param dir where to create the repository
 * @param spec what to put in it
 * @returns the repository path and a few object ids
 */
export async function generateRepo(dir: string, spec: RepoSpec): Promise<GeneratedRepo> {
  if (spec.commits < 2) throw new RangeError("Cannot generate repository: need at least 2 commits");
  await Deno.mkdir(dir, { recursive: true });
  await _git(["init", "--quiet", "--bare", "--initial-branch=main", dir]);
  await _git(["-C", dir, "config", "gc.auto", "0"]);
  const child = new Deno.Command("git", {
    args: ["-C", dir, "fast-import", "--quiet", "--date-format=raw", "--done"],
    clearEnv: true,
    env: _gitEnv(),
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).arrayBuffer();
  const writer = child.stdin.getWriter();
  try {
    await _writeStream(writer, spec);
    await writer.close();
  } catch (error) {
    await writer.abort(error).catch(() => {});
  }
  const status = await child.status;
  if (!status.success) {
    throw new Error(`git fast-import failed (${status.code}): ${new TextDecoder().decode(await stderr)}`);
  }
  await stderr;
  await _git(["-C", dir, "repack", "-adq", ...(spec.bitmap ? ["--write-bitmap-index"] : [])]);
  await _git(["-C", dir, "pack-refs", "--all"]);
  const [head, side, root, tag] = await Promise.all([
    _git(["-C", dir, "rev-parse", "refs/heads/main"]),
    _git(["-C", dir, "rev-parse", "refs/heads/side"]),
    _git(["-C", dir, "rev-list", "--max-parents=0", "refs/heads/main"]),
    _git(["-C", dir, "rev-parse", "refs/tags/v1"]),
  ]);
  return { path: await Deno.realPath(dir), head, side, root, tag };
}

/** Where the cached reference repository lives. */
export const REFERENCE_REPO_DIR: string = new URL("../.cache/reference-repo", import.meta.url).pathname;

const _MARKER = "sidechannel-reference-repo.json";

/**
 * The cached benchmark repository, generated on first use (about 15 s) and reused while
 * its completion marker matches {@linkcode REFERENCE_SPEC}.
 *
 * Generation goes to a temporary sibling directory that is renamed into place at the
 * end, so an interrupted run never leaves a half-built repository behind, and
 * concurrent first uses (parallel test files) end up sharing one complete copy.
 *
 * @param spec the spec; defaults to {@linkcode REFERENCE_SPEC}
 * @param dir the cache directory
 * @returns the repository
 */
export async function referenceRepo(
  spec: RepoSpec = REFERENCE_SPEC,
  dir: string = REFERENCE_REPO_DIR,
): Promise<GeneratedRepo> {
  const key = JSON.stringify(spec);
  try {
    const marker = JSON.parse(await Deno.readTextFile(`${dir}/${_MARKER}`)) as {
      spec: string;
      repo: GeneratedRepo;
    };
    if (marker.spec === key) {
      const head = await _git(["-C", dir, "rev-parse", "refs/heads/main"]);
      if (head === marker.repo.head) return { ...marker.repo, path: await Deno.realPath(dir) };
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound) && !(error instanceof SyntaxError)) throw error;
  }
  const tmp = `${dir}.tmp-${crypto.randomUUID()}`;
  try {
    const repo = await generateRepo(tmp, spec);
    await Deno.writeTextFile(`${tmp}/${_MARKER}`, JSON.stringify({ spec: key, repo: { ...repo, path: "" } }));
    try {
      await Deno.rename(tmp, dir);
    } catch {
      // Another process finished first (the directory is not empty), or a stale, incomplete
      // copy is in the way: keep a complete one, replace a stale one.
      if (!(await _complete(dir, key))) {
        await Deno.remove(dir, { recursive: true }).catch(() => {});
        await Deno.rename(tmp, dir);
      }
    }
    return { ...repo, path: await Deno.realPath(dir) };
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

async function _complete(dir: string, key: string): Promise<boolean> {
  try {
    const marker = JSON.parse(await Deno.readTextFile(`${dir}/${_MARKER}`)) as { spec: string };
    return marker.spec === key;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  const started = performance.now();
  const repo = await referenceRepo();
  let packBytes = 0;
  for await (const entry of Deno.readDir(`${repo.path}/objects/pack`)) {
    if (entry.name.endsWith(".pack")) {
      packBytes += (await Deno.stat(`${repo.path}/objects/pack/${entry.name}`)).size;
    }
  }
  // deno-lint-ignore no-console
  console.log(
    `${repo.path}: main ${repo.head}, pack ${(packBytes / 1048576).toFixed(1)} MiB, ${
      ((performance.now() - started) / 1000).toFixed(1)
    } s`,
  );
}
