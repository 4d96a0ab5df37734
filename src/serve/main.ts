/**
 * `deno task serve`: a storage server (Gitaly's role) and a smart-HTTP front
 * (Workhorse's role) in one process, serving the git repositories under `./repos`.
 *
 * ```sh
 * deno task serve                          # http://127.0.0.1:8080/<name>.git
 * deno task serve --transport v3 --port 9000
 * deno task serve --server-only --grpc-port 8075
 * deno task serve --upstream 127.0.0.1:8075 --port 8080
 * ```
 *
 * See `--help` (or `_USAGE` in `_cli.ts`) for every flag; each has an environment
 * variable `SIDECHANNEL_<FLAG>`. SIGINT or SIGTERM drains the clones in flight (up to
 * `--drain-timeout`), then exits; a second signal exits at once.
 *
 * @module
 */

import { type StorageLogEntry, StorageServer } from "../git/storage_server.ts";
import { _parseServeArgs, type _ServeConfig, _USAGE } from "./_cli.ts";
import type { FrontLogEntry } from "./front.ts";
import { GitHttpServer } from "./http_server.ts";
import { GitalyUpstream, type GitalyUpstreamOptions } from "./upstream.ts";

const _enc = new TextEncoder();

/** Writes one line to stdout (the program's log). */
function _say(line: string): void {
  const bytes = _enc.encode(`${line}\n`);
  let offset = 0;
  while (offset < bytes.byteLength) offset += Deno.stdout.writeSync(bytes.subarray(offset));
}

function _bytes(n: number): string {
  if (n < 1024) return `${n}B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)}KiB`;
  return `${(n / 1024 / 1024).toFixed(1)}MiB`;
}

/** One request as a log line (`text`) or a JSON object (`json`). */
export function _formatFrontLog(entry: FrontLogEntry, format: "text" | "json"): string {
  const time = new Date().toISOString();
  if (format === "json") return JSON.stringify({ time, ...entry });
  const fields = [
    time,
    entry.method,
    entry.path,
    String(entry.status),
    `repo=${entry.repository ?? "-"}`,
    `transport=${entry.transport}`,
    `protocol=${entry.gitProtocol === "" ? "v0" : entry.gitProtocol.replace(/^version=/, "v")}`,
    `in=${_bytes(entry.bytesIn)}`,
    `out=${_bytes(entry.bytesOut)}`,
    `${entry.durationMs}ms`,
    `attempts=${entry.attempts}`,
    entry.outcome,
  ];
  if (entry.error !== undefined) fields.push(`error=${JSON.stringify(entry.error)}`);
  return fields.join(" ");
}

function _formatStorageLog(entry: StorageLogEntry, format: "text" | "json"): string {
  const time = new Date().toISOString();
  if (format === "json") {
    return JSON.stringify({ time, ...entry, error: entry.error?.message, remoteAddr: undefined });
  }
  const repo = entry.repository === undefined
    ? "-"
    : `${entry.repository.storageName}:${entry.repository.relativePath}`;
  const fields = [
    time,
    "rpc",
    entry.method,
    entry.status,
    `repo=${repo}`,
    `transport=${entry.transport}`,
    `in=${_bytes(entry.bytesIn)}`,
    `out=${_bytes(entry.bytesOut)}`,
    `${Math.round(entry.durationMs * 10) / 10}ms`,
  ];
  if (entry.error !== undefined) fields.push(`error=${JSON.stringify(entry.error.details)}`);
  return fields.join(" ");
}

/** `*.git` directories (up to two levels down), sorted; at most `limit`. */
async function _repositories(root: string, limit = 50): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string, prefix: string, depth: number) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch {
      return;
    }
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const entry of entries) {
      if (found.length >= limit || !entry.isDirectory || entry.name.startsWith(".")) continue;
      if (entry.name.endsWith(".git")) found.push(`${prefix}${entry.name}`);
      else if (depth > 0) await walk(`${dir}/${entry.name}`, `${prefix}${entry.name}/`, depth - 1);
    }
  };
  await walk(root, "", 1);
  return found;
}

function _entryCommand(): string {
  const url = import.meta.resolve("./ssh_entry.ts");
  const target = url.startsWith("file:") ? new URL(url).pathname : url;
  return `deno run -A ${target}`;
}

async function _readPem(path: string | null): Promise<string | undefined> {
  return path === null ? undefined : await Deno.readTextFile(path);
}

function _hostPort(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

async function _run(config: _ServeConfig): Promise<number> {
  const storages: Record<string, string> = {};
  for (const [name, dir] of config.storages) {
    if (config.mode !== "front") await Deno.mkdir(dir, { recursive: true });
    storages[name] = config.mode === "front" ? dir : await Deno.realPath(dir);
  }
  const names = config.storages.map(([name]) => name);
  const cert = await _readPem(config.cert);
  const key = await _readPem(config.key);

  let storage: StorageServer | undefined;
  if (config.mode !== "front") {
    storage = await StorageServer.start({
      storages,
      hostname: config.hostname,
      port: config.grpcPort,
      sidechannelWriteBuffer: config.sidechannelWriteBuffer,
      ...(config.v3Port === null ? {} : { v3Port: config.v3Port }),
      ...(cert === undefined ? {} : { cert, key: key! }),
      ...(config.token === null ? {} : { token: config.token }),
      ...(config.mode === "server" || config.verbose
        ? { onLog: (entry: StorageLogEntry) => _say(_formatStorageLog(entry, config.logFormat)) }
        : {}),
    });
  }

  let upstream: GitalyUpstream | undefined;
  let http: GitHttpServer | undefined;
  if (config.mode !== "server") {
    const main = config.upstream ?? { hostname: storage!.addr.hostname, port: storage!.addr.port };
    const v3 = config.upstreamV3 ??
      (storage?.v3Addr === undefined
        ? undefined
        : { hostname: storage.v3Addr.hostname, port: storage.v3Addr.port });
    const ca = (await _readPem(config.upstreamCa)) ?? (config.mode === "both" ? cert : undefined);
    const options: GitalyUpstreamOptions = {
      ...main,
      ...(v3 === undefined ? {} : { v3 }),
      ...(config.upstreamTls ? { tls: ca === undefined ? true : { caCerts: [ca] } } : {}),
      ...(config.token === null ? {} : { token: config.token }),
      onError: config.verbose ? (error) => _say(`upstream connection: ${String(error)}`) : () => {},
    };
    upstream = new GitalyUpstream(options);
    const httpCert = await _readPem(config.httpCert);
    const httpKey = await _readPem(config.httpKey);
    http = await GitHttpServer.start({
      upstream,
      transport: config.transport,
      storages: names,
      hostname: config.hostname,
      port: config.port,
      ...(httpCert === undefined ? {} : { cert: httpCert, key: httpKey! }),
      drainTimeout: config.drainTimeout,
      gitConfigOptions: config.gitConfig,
      onLog: (entry) => _say(_formatFrontLog(entry, config.logFormat)),
    });
  }

  // Start-up banner: what is served and how to use it.
  _say("sidechannel serve");
  for (const [name] of config.storages) {
    _say(`  storage ${name}: ${storages[name]}`);
    if (config.mode === "front") continue;
    const repos = await _repositories(storages[name]!);
    const prefix = name === names[0] ? "" : `${name}/`;
    for (const repo of repos) {
      _say(`    ${repo}${http === undefined ? "" : `  →  git clone ${http.url}/${prefix}${repo}`}`);
    }
    if (repos.length === 0) {
      _say(`    (no repositories yet) add one:  git clone --bare <url> ${storages[name]}/<name>.git`);
    }
  }
  if (storage !== undefined) {
    const scheme = cert === undefined ? "h2c" : "TLS";
    _say(
      `storage server: gRPC + backchannel on ${
        _hostPort(storage.addr.hostname, storage.addr.port)
      } (${scheme})`,
    );
    if (storage.v3Addr !== undefined) {
      _say(
        `storage server: PostUploadPackV3 (h2c) on ${
          _hostPort(storage.v3Addr.hostname, storage.v3Addr.port)
        }`,
      );
    }
  }
  if (http !== undefined) {
    const via = config.upstream === null
      ? ""
      : ` via ${_hostPort(config.upstream.hostname, config.upstream.port)}`;
    _say(`front: ${http.url} (transport ${config.transport}${via})`);
    _say(`clone: git clone ${http.url}/<name>.git`);
  }
  const sshTarget = storage === undefined ? config.upstream : storage.addr;
  if (sshTarget !== null && sshTarget !== undefined) {
    const tokenHint = config.token === null ? "" : " (with SIDECHANNEL_TOKEN set)";
    _say(
      `ssh: GIT_SSH_COMMAND="${_entryCommand()} --upstream ${
        _hostPort(sshTarget.hostname, sshTarget.port)
      }" git clone ssh://localhost/<name>.git${tokenHint}`,
    );
  }
  _say("ready");

  // Signals: drain, then exit; a second signal exits at once.
  const stopped = Promise.withResolvers<string>();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  let stopping = false;
  const handlers = signals.map((signal) => {
    const handler = () => {
      if (stopping) {
        _say(`${signal} again: exiting now`);
        Deno.exit(130);
      }
      stopping = true;
      stopped.resolve(signal);
    };
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  const signal = await stopped.promise;
  const inFlight = http?.front.inFlight ?? 0;
  _say(`${signal}: draining ${inFlight} request(s) in flight (up to ${config.drainTimeout} ms)`);
  const deadline = AbortSignal.timeout(config.drainTimeout + 1000);
  await http?.shutdown();
  await Promise.race([upstream?.close(), new Promise((r) => deadline.addEventListener("abort", r))]);
  await storage?.shutdown({ signal: deadline });
  for (const [name, handler] of handlers) Deno.removeSignalListener(name, handler);
  _say("stopped");
  return 0;
}

async function _main(args: string[]): Promise<number> {
  let config: _ServeConfig;
  try {
    config = _parseServeArgs(args, Deno.env.toObject());
  } catch (error) {
    Deno.stderr.writeSync(_enc.encode(`${(error as Error).message}\n\n${_USAGE}`));
    return 2;
  }
  if (config.help) {
    _say(_USAGE);
    return 0;
  }
  try {
    return await _run(config);
  } catch (error) {
    let message = error instanceof Error ? error.message : String(error);
    if (error instanceof Deno.errors.AddrInUse) {
      message += " (another program uses the port: pick one with --port / --grpc-port, 0 for any)";
    }
    Deno.stderr.writeSync(_enc.encode(`fatal: ${message}\n`));
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await _main(Deno.args));
}
