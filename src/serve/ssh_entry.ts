/**
 * The SSH-style entry as a program: git runs it as its SSH command (or through the
 * `ext::` remote helper) and it serves `git-upload-pack` by calling
 * `SSHUploadPackWithSidechannel` on a storage server.
 *
 * ```sh
 * GIT_SSH_COMMAND="deno run -A src/serve/ssh_entry.ts --upstream 127.0.0.1:8075" \
 *   git clone ssh://git@localhost/foo.git
 * git -c protocol.ext.allow=always clone \
 *   "ext::deno run -A src/serve/ssh_entry.ts --upstream 127.0.0.1:8075 %S foo.git"
 * ```
 *
 * Own options come first (`--upstream HOST:PORT`, `--storage NAME` (repeatable, the
 * first is the default), `--token T` or `SIDECHANNEL_TOKEN`, `--upstream-tls`,
 * `--upstream-ca FILE`); everything after them is what git passes. `-G` (git's probe for
 * OpenSSH) exits 0, so git passes `-o SendEnv=GIT_PROTOCOL` and protocol v2 works; the
 * protocol comes from the `GIT_PROTOCOL` environment variable git sets. Exit code 0 on
 * success, 128 with `fatal: …` on stderr otherwise.
 *
 * @module
 */

import { _hostPort } from "./_cli.ts";
import { FrontError } from "./errors.ts";
import { parseSshArgs, routeSshPath, serveSshUploadPack } from "./ssh.ts";
import { GitalyUpstream } from "./upstream.ts";

const _enc = new TextEncoder();

function _fatal(message: string): number {
  Deno.stderr.writeSync(_enc.encode(`fatal: ${message}\n`));
  return 128;
}

async function _main(args: string[]): Promise<number> {
  let upstream: { hostname: string; port: number } | null = null;
  const storages: string[] = [];
  let token = Deno.env.get("SIDECHANNEL_TOKEN") ?? null;
  let tls = false;
  let ca: string | null = null;
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("--")) break;
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (name === "upstream-tls") {
      tls = true;
      continue;
    }
    if (!["upstream", "storage", "token", "upstream-ca"].includes(name)) {
      return _fatal(`unknown option --${name}`);
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : args[++i];
    if (value === undefined) return _fatal(`--${name} needs a value`);
    if (name === "upstream") upstream = _hostPort("upstream", value);
    else if (name === "storage") storages.push(value);
    else if (name === "token") token = value;
    else {
      ca = await Deno.readTextFile(value);
      tls = true;
    }
  }
  const rest = args.slice(i);
  if (rest[0] === "-G") return 0; // git asks whether this is OpenSSH: say yes
  if (upstream === null) return _fatal("--upstream HOST:PORT is required");
  let repository;
  try {
    const request = parseSshArgs(rest);
    repository = routeSshPath(request.path, storages.length === 0 ? ["default"] : storages);
  } catch (error) {
    if (error instanceof FrontError) return _fatal(error.message);
    throw error;
  }
  await using pool = new GitalyUpstream({
    ...upstream,
    ...(token === null ? {} : { token }),
    ...(tls ? { tls: ca === null ? true : { caCerts: [ca] } } : {}),
  });
  return await serveSshUploadPack({
    upstream: pool,
    repository: { storageName: repository.storageName, relativePath: repository.relativePath },
    stdin: Deno.stdin.readable,
    stdout: Deno.stdout.writable,
    stderr: Deno.stderr.writable,
    gitProtocol: Deno.env.get("GIT_PROTOCOL") ?? "",
  });
}

if (import.meta.main) {
  let code: number;
  try {
    code = await _main(Deno.args);
  } catch (error) {
    code = _fatal(error instanceof Error ? error.message : String(error));
  }
  Deno.exit(code);
}
