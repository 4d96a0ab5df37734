/**
 * Helpers for the serve tests: git commands with a clean environment, fronts on
 * loopback, a direct (in-process) upstream for front-only tests, and /proc checks.
 *
 * @module
 */

import {
  GitHttpFront,
  type GitHttpFrontOptions,
  type GitUpstream,
  type GitUpstreamClient,
  GrpcError,
  infoRefsUploadPack,
  parseConfigOptions,
  postUploadPackError,
  resolveRepository,
  spawnUploadPack,
  type Storages,
} from "../../mod.ts";

/** A clean environment for git clients: no user or system config, no prompts. */
export function gitEnv(extra: Record<string, string> = {}): Record<string, string> {
  // HOME, DENO_DIR and XDG_CACHE_HOME pass through: the SSH entry is a deno program and
  // needs the module cache. git's own configuration stays out (GIT_CONFIG_*).
  const pass: Record<string, string> = {};
  for (const name of ["HOME", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) pass[name] = value;
  }
  return {
    ...pass,
    PATH: Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_CONFIG_SYSTEM: "/dev/null",
    GIT_TERMINAL_PROMPT: "0",
    LANG: "C",
    ...extra,
  };
}

/** What a git command did. */
export interface GitRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs git with a clean environment; never throws on a non-zero exit. */
export async function runGit(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; timeout?: number } = {},
): Promise<GitRun> {
  const child = new Deno.Command("git", {
    args,
    clearEnv: true,
    env: gitEnv(options.env),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, options.timeout ?? 60_000);
  try {
    const out = await child.output();
    return {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs git and throws with its stderr on failure; returns trimmed stdout. */
export async function git(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<string> {
  const run = await runGit(args, options);
  if (run.code !== 0) throw new Error(`git ${args.join(" ")} failed (${run.code}): ${run.stderr}`);
  return run.stdout.trim();
}

/**
 * An upstream that runs git in this process (no storage server), for tests of the
 * front's HTTP side; every transport behaves the same.
 */
export function directUpstream(storages: Storages, hooks: { calls?: number } = {}): GitUpstream {
  const client: GitUpstreamClient = {
    infoRefsUploadPack(repository, call = {}) {
      let inner: ReadableStream<Uint8Array> | undefined;
      let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
      return new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            if (reader === undefined) {
              const repo = await resolveRepository(storages, repository);
              inner = infoRefsUploadPack(repo.path, {
                gitProtocol: call.gitProtocol ?? "",
                config: parseConfigOptions(call.gitConfigOptions ?? []),
                ...(call.signal === undefined ? {} : { signal: call.signal }),
              });
              reader = inner.getReader();
            }
            const { value, done } = await reader.read();
            if (done) controller.close();
            else controller.enqueue(value);
          } catch (error) {
            controller.error(GrpcError.from(error));
          }
        },
        cancel: (reason) => reader?.cancel(reason),
      });
    },
    postUploadPack(repository, body, call) {
      hooks.calls = (hooks.calls ?? 0) + 1;
      const done = Promise.withResolvers<null>();
      done.promise.catch(() => {});
      let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
      let result: Promise<null> | undefined;
      const stream = new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            if (reader === undefined) {
              const repo = await resolveRepository(storages, repository);
              const uploadPack = spawnUploadPack(repo.path, {
                stdin: body,
                gitProtocol: call.gitProtocol ?? "",
                config: parseConfigOptions(call.gitConfigOptions ?? []),
                ...(call.signal === undefined ? {} : { signal: call.signal }),
              });
              reader = uploadPack.stdout.getReader();
              result = uploadPack.result.then((r) => {
                const error = postUploadPackError(r);
                if (error !== undefined) throw error;
                return null;
              });
              result.then(done.resolve, done.reject);
            }
            const { value, done: end } = await reader.read();
            if (end) {
              await result;
              controller.close();
            } else {
              controller.enqueue(value);
            }
          } catch (error) {
            const status = GrpcError.from(error);
            done.reject(status);
            controller.error(status);
          }
        },
        cancel: (reason) => reader?.cancel(reason),
      });
      return { body: stream, done: done.promise };
    },
  };
  return { client: () => Promise.resolve(client) };
}

/** A front on 127.0.0.1 with its base URL. */
export interface RunningFront {
  url: string;
  front: GitHttpFront;
  server: Deno.HttpServer<Deno.NetAddr>;
  close(): Promise<void>;
}

/** Serves a {@linkcode GitHttpFront} with `Deno.serve` on an ephemeral port. */
export function serveFront(options: GitHttpFrontOptions): RunningFront {
  const front = new GitHttpFront(options);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, front.fetch);
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    front,
    server,
    async close() {
      front.abort();
      await server.shutdown();
    },
  };
}

/** `/proc/<pid>/stat` state letter and parent, or `null` when the process is gone. */
export function procState(pid: number): { state: string; ppid: number; comm: string } | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const close = stat.lastIndexOf(")");
    const rest = stat.slice(close + 2).split(" ");
    return { state: rest[0]!, ppid: Number(rest[1]), comm: stat.slice(stat.indexOf("(") + 1, close) };
  } catch {
    return null;
  }
}

/** All descendants of `pid` (children, grandchildren, …) with their state. */
export function descendants(pid: number): { pid: number; state: string; comm: string }[] {
  const out: { pid: number; state: string; comm: string }[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    let children: number[] = [];
    try {
      for (const task of Deno.readDirSync(`/proc/${parent}/task`)) {
        children.push(
          ...Deno.readTextFileSync(`/proc/${parent}/task/${task.name}/children`).split(" ").filter((s) =>
            s !== ""
          ).map(Number),
        );
      }
    } catch {
      children = [];
    }
    for (const child of children) {
      const state = procState(child);
      if (state === null) continue;
      out.push({ pid: child, state: state.state, comm: state.comm });
      queue.push(child);
    }
  }
  return out;
}

/** Polls `check` every 20 ms until it returns true or `ms` pass; returns the last result. */
export async function waitFor(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (true) {
    if (await check()) return true;
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Adds a commit with one new file on `refs/heads/main` of a bare repository; returns its id. */
export async function addCommit(bare: string, file: string, content: string): Promise<string> {
  const message = `add ${file}\n`;
  const stream = [
    "commit refs/heads/main",
    "committer Test Committer <test@example.com> 1800000000 +0000",
    `data ${new TextEncoder().encode(message).byteLength}`,
    message.slice(0, -1),
    "from refs/heads/main^0",
    `M 100644 inline ${file}`,
    `data ${new TextEncoder().encode(content).byteLength}`,
    content,
    "",
  ].join("\n");
  const child = new Deno.Command("git", {
    args: ["-C", bare, "fast-import", "--quiet", "--force"],
    clearEnv: true,
    env: gitEnv(),
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(stream));
  await writer.close();
  const out = await child.output();
  if (!out.success) throw new Error(`fast-import failed: ${new TextDecoder().decode(out.stderr)}`);
  return await git(["-C", bare, "rev-parse", "refs/heads/main"]);
}

/**
 * A bare repository at `dir` that borrows all objects of `source` (alternates) and
 * copies its references: a unique path (for /proc checks) without copying the objects.
 */
export async function borrowRepo(source: string, dir: string): Promise<void> {
  await git(["init", "-q", "--bare", "--initial-branch=main", dir]);
  await Deno.writeTextFile(`${dir}/objects/info/alternates`, `${source}/objects\n`);
  await Deno.copyFile(`${source}/packed-refs`, `${dir}/packed-refs`);
}

/** The command line of a process (NUL-separated arguments joined by spaces), or `""`. */
export function cmdline(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").join(" ");
  } catch {
    return "";
  }
}
