/**
 * `deno task serve` as a program (`src/serve/main.ts`): the start-up banner, cloning from
 * the printed URL, the request log, front-only and server-only processes with a token,
 * TLS between front and storage server, and the drain on SIGTERM.
 */

import assert from "node:assert/strict";
import {
  generateRepo,
  MEDIUM_REPO_DIR,
  MEDIUM_SPEC,
  referenceRepo,
  SMALL_SPEC,
} from "../../bench/_reference_repo.ts";
import { noGit } from "../git/_git.ts";
import { borrowRepo, descendants, git, gitEnv, waitFor } from "./_harness.ts";

const MAIN = new URL("../../src/serve/main.ts", import.meta.url).pathname;
const FIXTURES = new URL("../fixtures/http2/", import.meta.url).pathname;
const MiB = 1024 * 1024;

/** A running `main.ts` whose stdout lines are collected as they come. */
interface Serve {
  child: Deno.ChildProcess;
  lines: string[];
  /** Waits for a line matching `pattern`; returns its match. */
  line(pattern: RegExp, ms?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit status. */
  status: Promise<Deno.CommandStatus>;
  stderr: Promise<string>;
  kill(signal: Deno.Signal): void;
  /** SIGKILL if still running (cleanup after a failed assertion). */
  stop(): void;
}

function serve(args: string[], env: Record<string, string> = {}): Serve {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const waker: { wake: (() => void) | null } = { wake: null };
  const reading = (async () => {
    let rest = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
      waker.wake?.();
    }
  })();
  const stderr = new Response(child.stderr).text();
  const status = reading.then(() => child.status);
  return {
    child,
    lines,
    status,
    stderr,
    kill: (signal) => child.kill(signal),
    stop() {
      try {
        child.kill("SIGKILL");
      } catch {
        // exited
      }
    },
    async line(pattern, ms = 30_000) {
      const deadline = performance.now() + ms;
      for (let seen = 0;;) {
        for (; seen < lines.length; seen++) {
          const match = lines[seen]!.match(pattern);
          if (match) return match;
        }
        if (performance.now() > deadline) {
          throw new Error(
            `no line matching ${pattern} in:\n${lines.join("\n")}\n${await Promise.race([stderr, ""])}`,
          );
        }
        const waited = Promise.withResolvers<void>();
        waker.wake = waited.resolve;
        const timer = setTimeout(waited.resolve, 200);
        await Promise.race([waited.promise, status]);
        clearTimeout(timer);
      }
    },
  };
}

Deno.test({
  name: "serve: --help exits 0 with the usage; a bad flag exits 2 with the reason",
  async fn() {
    const help = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", MAIN, "--help"] }).output();
    assert.equal(help.code, 0);
    assert.match(new TextDecoder().decode(help.stdout), /deno task serve \[options\]/);
    const bad = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", MAIN, "--transport", "ftp"] })
      .output();
    assert.equal(bad.code, 2);
    assert.match(new TextDecoder().decode(bad.stderr), /Cannot parse --transport/);
  },
});

Deno.test({
  name:
    "serve: creates the repos directory, says how to add a repository, serves it, logs one line per request",
  ignore: noGit,
  async fn() {
    const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "sidechannel-main-" }));
    const proc = serve(["--port", "0", "--grpc-port", "0", "--repos", `${root}/repos`]);
    try {
      await proc.line(/^ready$/);
      assert.ok((await Deno.stat(`${root}/repos`)).isDirectory, "created");
      const hint = await proc.line(
        /\(no repositories yet\) add one: +git clone --bare <url> (\S+)\/<name>\.git/,
      );
      assert.equal(hint[1], `${root}/repos`);
      const url = (await proc.line(/^front: (http:\/\/127\.0\.0\.1:\d+) \(transport sidechannel\)$/))[1]!;
      await proc.line(/^ssh: GIT_SSH_COMMAND=".*ssh_entry\.ts --upstream 127\.0\.0\.1:\d+"/);

      const repo = await generateRepo(`${root}/repos/foo.git`, SMALL_SPEC);
      await git(["clone", "-q", `${url}/foo.git`, `${root}/clone`]);
      assert.equal(await git(["-C", `${root}/clone`, "rev-parse", "HEAD"]), repo.head);
      // The fetch (after ls-refs, whose response is a few hundred bytes).
      const log = await proc.line(
        /^\S+Z POST \/foo\.git\/git-upload-pack 200 repo=foo\.git transport=sidechannel protocol=v2 in=\S+ out=(\S+KiB) (\S+)ms attempts=1 ok$/,
      );
      assert.ok(Number(log[2]) > 0);
      proc.kill("SIGTERM");
      await proc.line(/^stopped$/);
      assert.equal((await proc.status).code, 0);
    } finally {
      proc.stop();
      await proc.status;
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "serve: --server-only and a front-only process (--upstream, --upstream-v3, v3, token) work together",
  ignore: noGit,
  async fn() {
    const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "sidechannel-main-" }));
    const repo = await generateRepo(`${root}/repos/group/bar.git`, SMALL_SPEC);
    const env = { SIDECHANNEL_TOKEN: "between-us" };
    const server = serve(
      ["--server-only", "--grpc-port", "0", "--v3-port", "0", "--repos", `${root}/repos`],
      env,
    );
    let front: Serve | undefined;
    try {
      const main =
        (await server.line(/^storage server: gRPC \+ backchannel on (127\.0\.0\.1:\d+) \(h2c\)$/))[1]!;
      const v3 = (await server.line(/^storage server: PostUploadPackV3 \(h2c\) on (127\.0\.0\.1:\d+)$/))[1]!;
      await server.line(/^ {4}group\/bar\.git$/);
      await server.line(/^ready$/);
      front = serve(["--port", "0", "--upstream", main, "--upstream-v3", v3, "--transport", "v3"], env);
      const url = (await front.line(/^front: (http:\/\/\S+) \(transport v3 via 127\.0\.0\.1:\d+\)$/))[1]!;
      await git(["clone", "-q", "--bare", `${url}/group/bar`, `${root}/clone.git`]);
      assert.equal(await git(["-C", `${root}/clone.git`, "rev-parse", "main"]), repo.head);
      await front.line(/ POST \/group\/bar\/git-upload-pack 200 repo=group\/bar\.git transport=v3 /);
      await server.line(/ rpc \/gitaly\.SmartHTTPService\/PostUploadPackV3 OK repo=default:group\/bar\.git /);
      front.kill("SIGTERM");
      server.kill("SIGTERM");
      assert.equal((await server.status).code, 0);
      assert.equal((await front.status).code, 0);
    } finally {
      front?.stop();
      server.stop();
      await Promise.all([server.status, front?.status]);
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "serve: TLS between front and storage server (--cert, --key, --upstream-ca)",
  ignore: noGit,
  async fn() {
    const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "sidechannel-main-" }));
    const repo = await generateRepo(`${root}/repos/tls.git`, SMALL_SPEC);
    const proc = serve([
      "--port=0",
      "--grpc-port=0",
      `--repos=${root}/repos`,
      `--cert=${FIXTURES}cert.pem`,
      `--key=${FIXTURES}key.pem`,
      `--upstream-ca=${FIXTURES}ca.pem`,
    ]);
    try {
      await proc.line(/^storage server: gRPC \+ backchannel on 127\.0\.0\.1:\d+ \(TLS\)$/);
      const url = (await proc.line(/^front: (http:\/\/\S+) /))[1]!;
      await git(["clone", "-q", "--bare", `${url}/tls.git`, `${root}/clone.git`]);
      assert.equal(await git(["-C", `${root}/clone.git`, "rev-parse", "main"]), repo.head);
      proc.kill("SIGTERM");
      assert.equal((await proc.status).code, 0);
    } finally {
      proc.stop();
      await proc.status;
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "serve: SIGTERM drains a clone in flight; with a short --drain-timeout it cuts a stalled one and exits",
  ignore: noGit,
  async fn() {
    const medium = await referenceRepo(MEDIUM_SPEC, MEDIUM_REPO_DIR);
    const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "sidechannel-drain-" }));
    await borrowRepo(medium.path, `${root}/repos/big.git`);
    const received = (dir: string) => {
      let total = 0;
      try {
        for (const e of Deno.readDirSync(`${dir}/objects/pack`)) {
          total += Deno.statSync(`${dir}/objects/pack/${e.name}`).size;
        }
      } catch {
        // not yet
      }
      return total;
    };
    const clone = (url: string, dir: string) =>
      new Deno.Command("git", {
        args: ["clone", "-q", "--bare", `${url}/big.git`, dir],
        clearEnv: true,
        env: gitEnv(),
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
    let first: Serve | undefined;
    let second: Serve | undefined;
    try {
      // 1. Drained: the clone started before SIGTERM completes, then the process exits 0.
      first = serve(["--port=0", "--grpc-port=0", `--repos=${root}/repos`]);
      const url = (await first.line(/^front: (http:\/\/\S+) /))[1]!;
      const client = clone(url, `${root}/drained.git`);
      assert.ok(await waitFor(() => received(`${root}/drained.git`) > MiB, 30_000), "pack flowing");
      first.kill("SIGTERM");
      await first.line(/^SIGTERM: draining 1 request\(s\) in flight/);
      const out = await client.output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      await git(["-C", `${root}/drained.git`, "fsck", "--connectivity-only", "--no-dangling"]);
      await first.line(/ POST \/big\.git\/git-upload-pack 200 .* ok$/);
      await first.line(/^stopped$/);
      assert.equal((await first.status).code, 0);

      // 2. Bounded: a client that stopped reading is cut after --drain-timeout.
      second = serve(["--port=0", "--grpc-port=0", `--repos=${root}/repos`, "--drain-timeout=300"]);
      const url2 = (await second.line(/^front: (http:\/\/\S+) /))[1]!;
      const stalled = clone(url2, `${root}/stalled.git`);
      assert.ok(await waitFor(() => received(`${root}/stalled.git`) > MiB, 30_000), "pack flowing");
      const tree = [stalled.pid, ...descendants(stalled.pid).map((p) => p.pid)];
      for (const pid of tree) Deno.kill(pid, "SIGSTOP");
      try {
        second.kill("SIGTERM");
        await second.line(/^stopped$/);
        assert.equal((await second.status).code, 0, "exited while the client was still stalled");
        await second.line(/ POST \/big\.git\/git-upload-pack 200 .* (aborted|cancelled|error)/, 1000);
      } finally {
        for (const pid of tree) {
          try {
            Deno.kill(pid, "SIGKILL");
          } catch {
            // gone
          }
        }
        await stalled.output();
      }
    } finally {
      first?.stop();
      second?.stop();
      await Promise.all([first?.status, second?.status]);
      await Deno.remove(root, { recursive: true });
    }
  },
});
