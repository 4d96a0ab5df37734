/**
 * Helpers for the git tests: repositories, requests, response parsing, pack
 * verification, and process/fd inspection through `/proc`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { encodeDelim, encodeFlush, encodePkt, PktScanner } from "../../mod.ts";
import { type GeneratedRepo, generateRepo, type RepoSpec, SMALL_SPEC } from "../../bench/_reference_repo.ts";
import { concat, ignoreUnless } from "../_util.ts";

/** True when git is missing (tests are then ignored, or fail under CI). */
export const noGit: boolean = ignoreUnless("git");

const _env = {
  PATH: Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_CONFIG_SYSTEM: "/dev/null",
  GIT_TERMINAL_PROMPT: "0",
  LANG: "C",
};

/** Runs git; returns trimmed stdout; throws with stderr on failure. */
export async function git(
  args: string[],
  options: { stdin?: Uint8Array; env?: Record<string, string> } = {},
): Promise<string> {
  const child = new Deno.Command("git", {
    args,
    clearEnv: true,
    env: { ..._env, ...options.env },
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(options.stdin);
    await writer.close();
  }
  const out = await child.output();
  if (!out.success) {
    throw new Error(`git ${args.join(" ")} failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout).trim();
}

/** A storage (temp dir) holding one generated repository at `repo.git`. */
export interface TestStorage {
  /** The storage root. */
  root: string;
  /** Storages map with `default` → root. */
  storages: Record<string, string>;
  /** The repository. */
  repo: GeneratedRepo;
  /** Removes everything. */
  cleanup(): Promise<void>;
}

/** Creates a storage with a repository generated from `spec` (the small one by default). */
export async function makeStorage(spec: RepoSpec = SMALL_SPEC): Promise<TestStorage> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "sidechannel-git-" }));
  const repo = await generateRepo(`${root}/repo.git`, spec);
  return {
    root,
    storages: { default: root },
    repo,
    cleanup: () => Deno.remove(root, { recursive: true }),
  };
}

/** The pkt-line encoding of lines (strings) and specials ("0000", "0001"). */
export function pkts(...lines: string[]): Uint8Array {
  return concat(lines.map((l) => l === "0000" ? encodeFlush() : l === "0001" ? encodeDelim() : encodePkt(l)));
}

/** Capabilities a git 2.39 client sends in a v0 fetch. */
export const V0_CAPS =
  "multi_ack_detailed no-done side-band-64k thin-pack include-tag ofs-delta agent=git/2.39.5";

/** A v0 stateless request: wants (first with caps), optional extra lines, flush, haves, done. */
export function v0Request(
  wants: string[],
  options: { caps?: string; extra?: string[]; haves?: string[]; done?: boolean } = {},
): Uint8Array {
  const lines = wants.map((w, i) => i === 0 ? `want ${w} ${options.caps ?? V0_CAPS}\n` : `want ${w}\n`);
  lines.push(...(options.extra ?? []), "0000");
  for (const h of options.haves ?? []) lines.push(`have ${h}\n`);
  if (options.done ?? true) lines.push("done\n");
  return pkts(...lines);
}

/** A v2 `command=fetch` request with the given arguments (ends with a flush). */
export function v2FetchRequest(args: string[]): Uint8Array {
  return pkts("command=fetch\n", "agent=git/2.39.5\n", "object-format=sha1\n", "0001", ...args, "0000");
}

/** The packets of a response, as strings for data (latin1) and the special names. */
export function splitPkts(bytes: Uint8Array): { kind: string; payload: Uint8Array }[] {
  const scanner = new PktScanner();
  scanner.push(bytes);
  const out: { kind: string; payload: Uint8Array }[] = [];
  for (let pkt = scanner.next(); pkt !== undefined; pkt = scanner.next()) {
    out.push({ kind: pkt.kind, payload: pkt.kind === "data" ? pkt.payload : new Uint8Array(0) });
  }
  scanner.end();
  return out;
}

/** Collects sideband payloads after the response's preamble lines. */
export function demux(packets: { kind: string; payload: Uint8Array }[]): {
  pack: Uint8Array;
  progress: string;
  error: string;
} {
  const pack: Uint8Array[] = [];
  let progress = "";
  let error = "";
  for (const p of packets) {
    if (p.kind !== "data" || p.payload.byteLength === 0) continue;
    const band = p.payload[0];
    if (band === 1) pack.push(p.payload.subarray(1));
    else if (band === 2) progress += new TextDecoder().decode(p.payload.subarray(1));
    else if (band === 3) error += new TextDecoder().decode(p.payload.subarray(1));
  }
  return { pack: concat(pack), progress, error };
}

/** Text of a packet payload. */
export function pktText(p: { payload: Uint8Array }): string {
  return new TextDecoder().decode(p.payload);
}

/**
 * Indexes `pack` into a fresh bare repository (`index-pack --stdin --fix-thin`), points
 * `refs` at it, writes `shallow`, runs `git fsck`; returns the repository path.
 */
export async function verifyPack(
  pack: Uint8Array,
  refs: Record<string, string>,
  options: { shallow?: string[] } = {},
): Promise<{ dir: string; objects: { type: string; count: number }[]; cleanup(): Promise<void> }> {
  assert.equal(new TextDecoder().decode(pack.subarray(0, 4)), "PACK", "pack signature");
  const dir = await Deno.makeTempDir({ prefix: "sidechannel-verify-" });
  await git(["init", "-q", "--bare", dir]);
  await git(["-C", dir, "index-pack", "--stdin", "--fix-thin"], { stdin: pack });
  if (options.shallow !== undefined) {
    await Deno.writeTextFile(`${dir}/shallow`, options.shallow.join("\n") + "\n");
  }
  for (const [ref, oid] of Object.entries(refs)) await git(["-C", dir, "update-ref", ref, oid]);
  await git(["-C", dir, "fsck", "--no-dangling", "--no-progress"]);
  const check = await git(["-C", dir, "cat-file", "--batch-all-objects", "--batch-check=%(objecttype)"]);
  const counts = new Map<string, number>();
  for (const type of check.split("\n").filter((l) => l !== "")) counts.set(type, (counts.get(type) ?? 0) + 1);
  return {
    dir,
    objects: [...counts].map(([type, count]) => ({ type, count })).sort((a, b) =>
      a.type.localeCompare(b.type)
    ),
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
}

/** `/proc/<pid>/stat` state letter (`S`, `R`, `Z`, …) and parent pid, or `null` if gone. */
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

/** Direct children of `pid`. */
export function childrenOf(pid: number): number[] {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).split(" ").filter((s) => s !== "").map(
      Number,
    );
  } catch {
    return [];
  }
}

/**
 * Open file descriptors of this process, by kind: `pipe` (what child stdio uses, and so
 * what a leak of ours would be), `socket`, and `other` (files, eventfds, …). The runtime
 * creates and drops a socket pair of its own for its signal driver at moments that depend
 * on timing, so leak checks compare pipes (and `all` only in a quiet process).
 */
export function openFds(): { pipe: number; socket: number; other: number; all: number } {
  const counts = { pipe: 0, socket: 0, other: 0, all: 0 };
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    let target: string;
    try {
      target = Deno.readLinkSync(`/proc/self/fd/${entry.name}`);
    } catch {
      continue; // the directory's own fd, closed by now
    }
    counts.all++;
    if (target.startsWith("pipe:")) counts.pipe++;
    else if (target.startsWith("socket:")) counts.socket++;
    else counts.other++;
  }
  return counts;
}

/** Whether `/proc` works here (Linux). */
export const hasProc: boolean = (() => {
  try {
    Deno.statSync("/proc/self/fd");
    return true;
  } catch {
    return false;
  }
})();

/** Reads a whole stream. */
export async function drain(readable: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(readable).arrayBuffer());
}
