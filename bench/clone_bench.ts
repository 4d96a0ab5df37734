/**
 * Whole `git clone`s of the reference repository (3,000 commits, twenty 10 MiB blobs,
 * ≈ 217 MiB pack; `bench/_reference_repo.ts`) through `deno task serve` (storage server
 * and front in one process), for each transport, against
 * `git clone --no-local file://` of the same repository; then ten concurrent clones
 * against one serve process per transport, with the process's peak RSS (`VmHWM`).
 *
 * Run: deno run -A bench/clone_bench.ts [--rounds 5] [--concurrency 10] [--transports sidechannel,v3,grpc]
 *        [--skip-memory] [--out bench/results/clone.json]
 * Or as Deno.bench (3 clones per variant, no memory run): deno bench -A bench/clone_bench.ts
 * Chart: deno run -A bench/chart.ts (reads the JSON, writes SVGs under bench/results/)
 *
 * Rounds are interleaved (each round clones once per variant, the order rotating), and
 * the tables report medians; the ratio is median / median of the file:// clone. Clones
 * include the checkout, like a user's `git clone`. The serve process's CPU time per clone
 * comes from /proc/<pid>/stat. The memory runs clone `--bare` (ten checkouts would only
 * measure the disk) and sample `VmRSS` every 50 ms; `VmHWM` is read at the end.
 *
 * Numbers depend on the machine: on a shared 2-core VM expect ±10 % between runs.
 */

import { type GeneratedRepo, referenceRepo } from "./_reference_repo.ts";

type Transport = "sidechannel" | "v3" | "grpc";

interface Options {
  rounds: number;
  concurrency: number;
  transports: Transport[];
  memory: boolean;
  out: string;
}

function parseArgs(args: string[]): Options {
  const options: Options = {
    rounds: 5,
    concurrency: 10,
    transports: ["sidechannel", "v3", "grpc"],
    memory: true,
    out: new URL("./results/clone.json", import.meta.url).pathname,
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === "--rounds") options.rounds = Number(value());
    else if (arg === "--concurrency") options.concurrency = Number(value());
    else if (arg === "--transports") options.transports = value().split(",") as Transport[];
    else if (arg === "--skip-memory") options.memory = false;
    else if (arg === "--out") options.out = value();
    else throw new Error(`unknown argument ${arg}`);
  }
  return options;
}

const v8Flags = Deno.env.get("DENO_V8_FLAGS");
const MiB = 1024 * 1024;
const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
// Exactly what `deno task serve` runs (its V8 flags included), minus the leading `deno`.
const serveTask = (JSON.parse(await Deno.readTextFile(`${root}/deno.json`)).tasks.serve as string).split(
  /\s+/,
)
  .slice(1);
const env = {
  PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
  HOME: Deno.env.get("HOME") ?? "/tmp",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_CONFIG_SYSTEM: "/dev/null",
  GIT_TERMINAL_PROMPT: "0",
  LANG: "C",
};

function log(line: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`${line}\n`));
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, env, clearEnv: true, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** utime + stime of a process in seconds. */
function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks (USER_HZ = 100)
}

function status(pid: number, field: "VmRSS" | "VmHWM"): number {
  const text = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = text.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  return match ? Number(match[1]) * 1024 : 0;
}

/**
 * A `deno task serve` process (storage server + front) serving `.cache` as storage
 * `default`; `DENO_V8_FLAGS` passes through for experiments.
 */
async function startServe(
  transport: Transport,
): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...serveTask,
      "--port=0",
      "--grpc-port=0",
      `--transport=${transport}`,
      `--storage=default=${root}/.cache`,
    ],
    env: { ...env, NO_COLOR: "1", ...(v8Flags === undefined ? {} : { DENO_V8_FLAGS: v8Flags }) },
    cwd: root,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\nready\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`serve exited: ${text}`);
    text += value;
  }
  const url = text.match(/^front: (http:\/\/\S+) /m)![1]!;
  // Keep draining the request log.
  const drain = (async () => {
    while (!(await reader.read()).done);
  })();
  return {
    url,
    pid: child.pid,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // exited already
      }
      const exit = await child.status;
      await drain.catch(() => {});
      if (exit.code !== 0) {
        throw new Error(`serve (${transport}) exited with ${exit.code} ${exit.signal ?? ""}`);
      }
    },
  };
}

/** The reference repository, reachable in storage `.cache` as `reference-repo.git`, and its pack size. */
async function prepare(): Promise<{ repo: GeneratedRepo; packBytes: number }> {
  const repo = await referenceRepo();
  await Deno.mkdir(`${root}/.cache/tmp`, { recursive: true });
  const link = `${root}/.cache/reference-repo.git`;
  try {
    await Deno.lstat(link);
  } catch {
    await Deno.symlink("reference-repo", link);
  }
  let packBytes = 0;
  for await (const e of Deno.readDir(`${repo.path}/objects/pack`)) {
    if (e.name.endsWith(".pack")) packBytes += (await Deno.stat(`${repo.path}/objects/pack/${e.name}`)).size;
  }
  return { repo, packBytes };
}

const group = "git clone of the reference repository (≈ 217 MiB pack, with checkout)";
for (const variant of import.meta.main ? [] : ["file", "sidechannel", "v3", "grpc"] as const) {
  Deno.bench({
    group,
    name: variant === "file" ? "git clone --no-local file://" : `deno task serve, ${variant}`,
    baseline: variant === "file",
    n: 3,
    warmup: 1,
    async fn(b) {
      const { repo } = await prepare();
      const server = variant === "file" ? undefined : await startServe(variant);
      const dir = await Deno.makeTempDir({ dir: `${root}/.cache/tmp`, prefix: "clone-bench-" });
      try {
        const source = server === undefined ? `file://${repo.path}` : `${server.url}/reference-repo.git`;
        b.start();
        await run("git", [
          "clone",
          "-q",
          ...(server === undefined ? ["--no-local"] : []),
          source,
          `${dir}/c`,
        ]);
        b.end();
      } finally {
        await server?.stop();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

/** The interleaved rounds and the concurrent clones, with tables and the JSON file. */
async function main(options: Options): Promise<void> {
  const { repo, packBytes } = await prepare();
  const scratch = await Deno.makeTempDir({ dir: `${root}/.cache/tmp`, prefix: "clone-bench-" });

  const versions = {
    deno: Deno.version.deno,
    git: new TextDecoder().decode((await new Deno.Command("git", { args: ["--version"] }).output()).stdout)
      .trim(),
    cpu: Deno.readTextFileSync("/proc/cpuinfo").match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown",
    cores: navigator.hardwareConcurrency,
    loadBefore: Deno.loadavg(),
  };
  log(
    `reference repo: ${
      (packBytes / MiB).toFixed(1)
    } MiB pack; ${versions.git}; ${versions.cpu} × ${versions.cores}`,
  );

  // 1. Serial clones, interleaved rounds.
  const variants: ("file" | Transport)[] = ["file", ...options.transports];
  const servers = new Map<Transport, Awaited<ReturnType<typeof startServe>>>();
  for (const t of options.transports) servers.set(t, await startServe(t));
  const times = new Map<string, number[]>(variants.map((v) => [v, []]));
  const cpu = new Map<string, number[]>(variants.map((v) => [v, []]));
  try {
    // One warm-up clone per variant (page cache, JIT), not counted.
    for (let round = 0; round <= options.rounds; round++) {
      for (let k = 0; k < variants.length; k++) {
        const variant = variants[(k + round) % variants.length]!;
        const dir = `${scratch}/clone`;
        const server = variant === "file" ? undefined : servers.get(variant)!;
        const source = server === undefined ? `file://${repo.path}` : `${server.url}/reference-repo.git`;
        const args = ["clone", "-q", ...(variant === "file" ? ["--no-local"] : []), source, dir];
        const cpuBefore = server === undefined ? 0 : cpuSeconds(server.pid);
        const started = performance.now();
        await run("git", args);
        const seconds = (performance.now() - started) / 1000;
        if (round > 0) {
          times.get(variant)!.push(seconds);
          if (server !== undefined) cpu.get(variant)!.push(cpuSeconds(server.pid) - cpuBefore);
        }
        log(`${round === 0 ? "warm-up" : `round ${round}`} ${variant}: ${seconds.toFixed(2)} s`);
        await Deno.remove(dir, { recursive: true });
      }
    }
  } finally {
    for (const server of servers.values()) await server.stop();
  }

  // 2. Concurrent clones: peak RSS of the serve process.
  interface MemoryResult {
    transport: Transport;
    clones: number;
    ok: number;
    seconds: number;
    startRss: number;
    peakRss: number;
    vmHwm: number;
  }
  const memory: MemoryResult[] = [];
  if (options.memory) {
    for (const transport of options.transports) {
      const server = await startServe(transport);
      try {
        const startRss = status(server.pid, "VmRSS");
        let peakRss = startRss;
        let sampling = true;
        const sampler = (async () => {
          while (sampling) {
            peakRss = Math.max(peakRss, status(server.pid, "VmRSS"));
            await new Promise((r) => setTimeout(r, 50));
          }
        })();
        const started = performance.now();
        const results = await Promise.allSettled(
          Array.from(
            { length: options.concurrency },
            (_, i) =>
              run("git", ["clone", "-q", "--bare", `${server.url}/reference-repo.git`, `${scratch}/c${i}`]),
          ),
        );
        const seconds = (performance.now() - started) / 1000;
        const vmHwm = status(server.pid, "VmHWM");
        sampling = false;
        await sampler;
        const ok = results.filter((r) => r.status === "fulfilled").length;
        memory.push({ transport, clones: options.concurrency, ok, seconds, startRss, peakRss, vmHwm });
        log(
          `${options.concurrency} concurrent (${transport}): ${ok} ok in ${seconds.toFixed(1)} s, VmHWM ${
            (vmHwm / MiB).toFixed(0)
          } MiB`,
        );
        for (let i = 0; i < options.concurrency; i++) {
          await Deno.remove(`${scratch}/c${i}`, { recursive: true }).catch(() => {});
        }
      } finally {
        await server.stop();
      }
    }
  }
  await Deno.remove(scratch, { recursive: true });

  // Report.
  const baseline = median(times.get("file")!);
  const clone = variants.map((variant) => {
    const t = times.get(variant)!;
    const c = cpu.get(variant)!;
    return {
      variant,
      median: median(t),
      min: Math.min(...t),
      max: Math.max(...t),
      ratio: median(t) / baseline,
      serveCpu: c.length === 0 ? null : median(c),
      runs: t,
    };
  });
  const result = {
    date: new Date().toISOString(),
    ...versions,
    loadAfter: Deno.loadavg(),
    packBytes,
    rounds: options.rounds,
    clone,
    memory,
    limitBytes: 200 * MiB,
    targetRatio: 1.1,
  };
  await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
  await Deno.writeTextFile(options.out, JSON.stringify(result, null, 2) + "\n");
  // In the repository's format (`deno fmt --check` covers JSON).
  await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--quiet", "--config", `${root}/deno.json`, options.out],
    stdout: "null",
  }).output();

  const lines = [
    `git clone of the reference repository (${
      (packBytes / MiB).toFixed(0)
    } MiB pack, with checkout), ${options.rounds} interleaved rounds, medians:`,
    "",
    "| source | median s | min–max s | ratio to file:// | serve process CPU s |",
    "| --- | ---: | ---: | ---: | ---: |",
    ...clone.map((c) =>
      `| ${c.variant === "file" ? "`git clone --no-local file://`" : `front, ${c.variant}`} | ${
        c.median.toFixed(2)
      } | ${c.min.toFixed(2)}–${c.max.toFixed(2)} | ${c.ratio.toFixed(2)}× | ${
        c.serveCpu === null ? "–" : c.serveCpu.toFixed(2)
      } |`
    ),
  ];
  if (memory.length > 0) {
    lines.push(
      "",
      `${options.concurrency} concurrent \`git clone --bare\` against one serve process:`,
      "",
      "| transport | clones ok | wall s | RSS at start MiB | peak RSS (VmHWM) MiB | under 200 MiB |",
      "| --- | ---: | ---: | ---: | ---: | :---: |",
      ...memory.map((m) =>
        `| ${m.transport} | ${m.ok}/${m.clones} | ${m.seconds.toFixed(1)} | ${
          (m.startRss / MiB).toFixed(0)
        } | ${(m.vmHwm / MiB).toFixed(0)} | ${m.vmHwm < 200 * MiB ? "yes" : "**no**"} |`
      ),
    );
  }
  lines.push(
    "",
    `${versions.cpu} × ${versions.cores}, Deno ${versions.deno}, ${versions.git}; load average ${
      versions.loadBefore[0]!.toFixed(1)
    } before, ${result.loadAfter[0]!.toFixed(1)} after; JSON: ${options.out}`,
  );
  // deno-lint-ignore no-console
  console.log(lines.join("\n"));
}

if (import.meta.main) await main(parseArgs(Deno.args));
