/**
 * Runs the interop peer binaries (`tests/interop/<peer>/`): a peer prints an optional
 * `LISTEN <port>` line first and exactly one JSON result line at the end
 * (`{"ok":true,...}` or `{"ok":false,"error":"..."}`), exiting 0 or 1.
 *
 * @module
 */

/** The JSON line a peer prints when it is done. */
export interface PeerResult {
  /** Whether the peer's own checks passed. */
  ok: boolean;
  /** Why not, when `ok` is false. */
  error?: string;
  /** Mode-specific fields. */
  [field: string]: unknown;
}

/** What a finished peer process left behind. */
export interface PeerExit {
  /** The parsed result line. */
  result: PeerResult;
  /** Exit code of the process. */
  code: number;
  /** Everything the peer wrote to stderr (logs). */
  stderr: string;
}

/** A running peer process. */
export interface RunningPeer extends AsyncDisposable {
  /** The port from `LISTEN <port>`, when started with `listen: true`. */
  readonly port: number;
  /** Waits for the process to exit and returns its result line. */
  exit(): Promise<PeerExit>;
  /** Asks the process to stop (SIGTERM) and waits for its result line. */
  stop(): Promise<PeerExit>;
  /** Kills the process (SIGKILL) if it still runs, and waits for it. */
  kill(): Promise<void>;
}

/** Options for {@linkcode startPeer}. */
export interface StartPeerOptions {
  /** Wait for a `LISTEN <port>` line first (the peer was given `-listen 127.0.0.1:0`). */
  listen?: boolean;
  /** Kill the peer if it has not exited after this many ms. */
  timeoutMs?: number;
}

class _Lines {
  readonly #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  #done = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** The next line without its newline, or `undefined` at the end. */
  async next(): Promise<string | undefined> {
    for (;;) {
      const nl = this.#buffer.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        return line;
      }
      if (this.#done) {
        if (this.#buffer === "") return undefined;
        const line = this.#buffer;
        this.#buffer = "";
        return line;
      }
      const { value, done } = await this.#reader.read();
      if (done) this.#done = true;
      else this.#buffer += value;
    }
  }

  /** All remaining lines. */
  async rest(): Promise<string[]> {
    const lines: string[] = [];
    for (let line = await this.next(); line !== undefined; line = await this.next()) lines.push(line);
    return lines;
  }
}

/**
 * Starts a peer binary. With `listen: true` it resolves once the peer printed
 * `LISTEN <port>`. Dispose it (`await using`) so a peer never outlives its test.
 */
export async function startPeer(
  binary: string,
  args: string[],
  options: StartPeerOptions = {},
): Promise<RunningPeer> {
  const { listen = false, timeoutMs = 60_000 } = options;
  const child = new Deno.Command(binary, { args, stdin: "null", stdout: "piped", stderr: "piped" }).spawn();
  const stdout = new _Lines(child.stdout);
  const stderrText = new Response(child.stderr).text();
  let finished = false;
  const status = child.status.then((s) => {
    finished = true;
    return s;
  });
  let killed = false;
  const kill = () => {
    if (killed || finished) return;
    killed = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
  };
  const timer = setTimeout(kill, timeoutMs);
  const preamble: string[] = [];
  let port = 0;
  if (listen) {
    for (;;) {
      const line = await stdout.next();
      if (line === undefined) {
        clearTimeout(timer);
        const [s, err] = await Promise.all([status, stderrText]);
        throw new Error(`${binary} exited (${s.code}) before LISTEN: ${preamble.join("\n")}\n${err}`);
      }
      const m = /^LISTEN (\d+)$/.exec(line);
      if (m) {
        port = Number(m[1]);
        break;
      }
      preamble.push(line);
    }
  }
  let exited: Promise<PeerExit> | undefined;
  const exit = (): Promise<PeerExit> => {
    exited ??= (async () => {
      const [lines, s, stderr] = await Promise.all([stdout.rest(), status, stderrText]);
      clearTimeout(timer);
      const all = [...preamble, ...lines].filter((l) => l.trim() !== "");
      const last = all.at(-1);
      let result: PeerResult;
      try {
        result = JSON.parse(last ?? "") as PeerResult;
      } catch {
        result = {
          ok: false,
          error: `no JSON result line (exit ${s.code}${killed ? ", killed" : ""}): ${all.join("\n")}`,
        };
      }
      return { result, code: s.code, stderr };
    })();
    return exited;
  };
  return {
    port,
    exit,
    stop() {
      if (!finished) {
        try {
          child.kill("SIGTERM");
        } catch {
          // already exited
        }
      }
      return exit();
    },
    async kill() {
      kill();
      await exit();
    },
    async [Symbol.asyncDispose]() {
      kill();
      await exit();
    },
  };
}

/** Runs a peer to completion and returns its exit. */
export async function runPeer(binary: string, args: string[], timeoutMs = 60_000): Promise<PeerExit> {
  await using peer = await startPeer(binary, args, { timeoutMs });
  return await peer.exit();
}

/** Throws with the peer's result and stderr unless it reported ok and exited 0. */
export function assertPeerOk(exit: PeerExit, what = "peer"): PeerResult {
  if (!exit.result.ok || exit.code !== 0) {
    const stderr = exit.stderr.length > 4000 ? `${exit.stderr.slice(0, 4000)}…` : exit.stderr;
    throw new Error(
      `${what} failed (exit ${exit.code}): ${exit.result.error ?? "ok:false"}\n` +
        `result: ${JSON.stringify(exit.result).slice(0, 4000)}\nstderr: ${stderr}`,
    );
  }
  return exit.result;
}
